"""pip's effective index configuration as runner reads it, and when uv's own wins."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runner.installers import pip_handoff, uv_handoff
from runner.pipconfig import (
    PipIndexConfig,
    config_files,
    read_pip_config,
    uv_index_configuration,
)
from runner.spec import IndexSettings


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    """An environment whose pip/uv configuration locations are all inside tmp_path."""
    return {
        "HOME": str(tmp_path / "home"),
        "XDG_CONFIG_HOME": str(tmp_path / "home" / ".config"),
        "XDG_CONFIG_DIRS": str(tmp_path / "xdg"),
    }


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_files_in_pips_order(home: dict[str, str], tmp_path: Path) -> None:
    files = config_files(home, platform="linux")
    assert files == [
        str(tmp_path / "xdg" / "pip" / "pip.conf"),
        "/etc/pip.conf",
        str(tmp_path / "home" / ".pip" / "pip.conf"),
        str(tmp_path / "home" / ".config" / "pip" / "pip.conf"),
    ]
    # An existing PIP_CONFIG_FILE replaces the user's files and comes last.
    own = write(tmp_path / "own.conf", "")
    assert config_files({**home, "PIP_CONFIG_FILE": str(own)}, platform="linux") == [
        *files[:2],
        str(own),
    ]
    # A missing one leaves them in place; the null device turns every file off.
    missing = str(tmp_path / "missing.conf")
    assert config_files({**home, "PIP_CONFIG_FILE": missing}, platform="linux")[-3:] == [
        *files[2:],
        missing,
    ]
    assert config_files({**home, "PIP_CONFIG_FILE": os.devnull}) == []


def test_later_files_sections_and_variables_win(home: dict[str, str], tmp_path: Path) -> None:
    write(
        tmp_path / "xdg" / "pip" / "pip.conf",
        "[install]\nindex-url = https://global-install/simple\n"
        "[global]\ntrusted-host = a b\nproxy = http://proxy:3128\n",
    )
    write(
        tmp_path / "home" / ".config" / "pip" / "pip.conf",
        "[global]\nindex-url = https://user-global/simple\n"
        "extra_index_url =\n    https://x1/simple\n    https://x2/simple\n"
        "find-links = /w1 /w2\nno-index = no\ncert = /ca.pem\n",
    )
    config = read_pip_config(home)
    # pip orders by section before file: [install] of any file beats [global] of any file.
    assert config.index_url == "https://global-install/simple"
    assert config.extra_index_urls == ("https://x1/simple", "https://x2/simple")
    assert config.find_links == ("/w1", "/w2")
    assert config.trusted_hosts == ("a", "b") and config.proxy == "http://proxy:3128"
    assert config.cert == "/ca.pem" and config.no_index is False
    # (The machine's own /etc/pip.conf, which pip always reads, may be among the sources.)
    assert [s for s in config.sources if s.startswith(str(tmp_path))] == [
        str(tmp_path / "xdg" / "pip" / "pip.conf"),
        str(tmp_path / "home" / ".config" / "pip" / "pip.conf"),
    ]
    with_vars = read_pip_config(
        {**home, "PIP_INDEX_URL": "https://var/simple", "PIP_NO_INDEX": "true"}
    )
    assert with_vars.index_url == "https://var/simple" and with_vars.no_index is True
    assert with_vars.sources[-1] == "PIP_* variables"
    off = read_pip_config({**home, "PIP_CONFIG_FILE": os.devnull})
    assert off == PipIndexConfig() and off.empty


def test_pip_configuration_reaches_uv_with_pips_strategy(tmp_path: Path) -> None:
    conf = write(
        tmp_path / "pip.conf",
        "[global]\nindex-url = https://u:pw@main/simple\n"
        "extra-index-url = https://second/simple\nfind-links = /wheels dir\n"
        "trusted-host = main\ncert = /ca.pem\nclient-cert = /me.pem\nproxy = http://p:1\n"
        "[install]\nconstraint = /caps.txt\n",
    )
    handoff = uv_handoff(
        IndexSettings(extra_index_urls=("https://explicit/simple",), find_links=("/mine",)),
        environ={"PIP_CONFIG_FILE": str(conf), "UV_NO_CONFIG": "1"},
        cwd=str(tmp_path),
    )
    env = handoff.env
    assert env["UV_INDEX_STRATEGY"] == "unsafe-best-match"
    assert env["UV_DEFAULT_INDEX"] == "https://u:pw@main/simple"
    assert env["UV_EXTRA_INDEX_URL"] == "https://second/simple https://explicit/simple"
    assert env["UV_INSECURE_HOST"] == "main"
    assert env["SSL_CERT_FILE"] == "/ca.pem" and env["SSL_CLIENT_CERT"] == "/me.pem"
    assert env["HTTPS_PROXY"] == env["HTTP_PROXY"] == "http://p:1"
    # Locations go in the requirements file as file: URLs (no quoting to go wrong).
    assert handoff.lines == (
        "-c /caps.txt",  # pip's constraints apply to uv's resolution too
        "--find-links file:///wheels",
        f"--find-links {Path.cwd().joinpath('dir').as_uri()}",  # relative: to the cwd, as pip
        "--find-links file:///mine",
    )
    assert str(conf) in handoff.description


def test_uvs_own_configuration_wins_but_explicit_settings_still_apply(tmp_path: Path) -> None:
    conf = write(tmp_path / "pip.conf", "[global]\nindex-url = https://pip/simple\n")
    environ = {
        "PIP_CONFIG_FILE": str(conf),
        "UV_NO_CONFIG": "1",
        "UV_EXTRA_INDEX_URL": "https://uv-extra/simple",
    }
    assert uv_index_configuration(environ, str(tmp_path)) == "UV_EXTRA_INDEX_URL"
    plain = uv_handoff(IndexSettings(), environ=environ, cwd=str(tmp_path))
    assert plain.env == {} and plain.lines == ()
    assert "uv's own configuration (UV_EXTRA_INDEX_URL)" in plain.description
    explicit = uv_handoff(
        IndexSettings(index_url="https://script/simple", extra_index_urls=("https://e/simple",)),
        environ=environ,
        cwd=str(tmp_path),
    )
    assert explicit.env == {
        "UV_DEFAULT_INDEX": "https://script/simple",  # beats UV_INDEX_URL and uv.toml in uv
        "UV_EXTRA_INDEX_URL": "https://uv-extra/simple https://e/simple",
    }


def test_uv_files_count_only_when_they_set_indexes(home: dict[str, str], tmp_path: Path) -> None:
    project = tmp_path / "project" / "sub"
    project.mkdir(parents=True)
    assert uv_index_configuration(home, str(project)) is None
    write(tmp_path / "project" / "pyproject.toml", "[tool.uv]\ncache-dir = '/c'\n")
    user = write(tmp_path / "home" / ".config" / "uv" / "uv.toml", "native-tls = true\n")
    assert uv_index_configuration(home, str(project)) is None
    user.write_text("[[index]]\nurl = 'https://mine/simple'\ndefault = true\n")
    assert uv_index_configuration(home, str(project)) == str(user)
    assert uv_index_configuration({**home, "UV_NO_CONFIG": "1"}, str(project)) is None
    user.unlink()
    pyproject = write(
        tmp_path / "project" / "pyproject.toml", "[tool.uv.pip]\nextra-index-url = ['https://x']\n"
    )
    assert uv_index_configuration(home, str(project)) == str(pyproject)
    system = write(tmp_path / "xdg" / "uv" / "uv.toml", "index-url = 'https://corp/simple'\n")
    pyproject.unlink()
    assert uv_index_configuration(home, str(project)) == str(system)
    explicit = write(tmp_path / "elsewhere.toml", "find-links = ['/w']\n")
    system.unlink()
    assert uv_index_configuration({**home, "UV_CONFIG_FILE": str(explicit)}, str(project)) == str(
        explicit
    )


def test_pip_gets_explicit_settings_with_its_command_line_meaning(tmp_path: Path) -> None:
    ambient = PipIndexConfig(extra_index_urls=("https://conf-extra/simple",))
    handoff = pip_handoff(
        IndexSettings(
            index_url="https://u:p@script/simple?a=1&b",
            extra_index_urls=("https://e/simple",),
            find_links=(str(tmp_path / "a dir#1"),),
        ),
        ambient=ambient,
    )
    assert handoff.env == {}
    assert handoff.lines == (
        "--index-url 'https://u:p@script/simple?a=1&b'",
        # In a requirements file --index-url drops the configured extra indexes: named again.
        "--extra-index-url https://conf-extra/simple",
        "--extra-index-url https://e/simple",
        f"--find-links {(tmp_path / 'a dir#1').as_uri()}",
    )
    assert "%20" in handoff.lines[-1] and "%231" in handoff.lines[-1]
    assert pip_handoff(IndexSettings(no_index=True, index_url="https://x")).lines == ("--no-index",)
