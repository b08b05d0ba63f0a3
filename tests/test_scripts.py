"""Scripts as commands: install / list / uninstall / --force into a temporary bin directory,
launchers, `runner show`, the portable shebang, completion and `python -m runner`."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import RUNNER, published, run_runner, store_dirs, write_script
from tests.scriptserver import Route, serve_scripts
from tests.wheels import make_wheel, serve_index

pytestmark = pytest.mark.timeout(180)

BIN = str(Path(sys.executable).parent)  # where the `runner` console script lives
TOOL = b"""# /// script
# dependencies = []
# ///
import sys
print("tool", sys.argv[1:])
raise SystemExit(int(sys.argv[1]) if sys.argv[1:2] and sys.argv[1].isdigit() else 0)
"""


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "bin"
    monkeypatch.setenv("RUNNER_BIN_DIR", str(d))
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    return d


def launch(path: Path, *args: str, path_env: str | None = None) -> subprocess.CompletedProcess[str]:
    """Execute a launcher or script directly (the kernel reads its first line)."""
    env = dict(os.environ)
    if path_env is not None:
        env["PATH"] = path_env
    return subprocess.run(
        [str(path), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


# --------------------------------------------------------------------------- install


def test_install_writes_a_launcher_that_runs_the_stored_copy(
    tmp_path: Path, bin_dir: Path, cache_dir: Path
) -> None:
    source = tmp_path / "tool.py"
    source.write_bytes(TOOL)
    r = run_runner("install", str(source))
    assert r.returncode == 0, r.stderr
    assert "is not on PATH" in r.stderr  # the temporary bin directory is not
    launcher = bin_dir / "tool"
    assert os.stat(launcher).st_mode & stat.S_IXUSR
    source.write_bytes(b"print('edited')\n")  # the command keeps the copy it installed
    out = launch(launcher, "3", "--help")
    assert out.returncode == 3  # the script's status, passed through
    assert out.stdout == "tool ['3', '--help']\n"
    assert out.stderr == ""  # warm: nothing of runner's own
    stored = cache_dir / "installed" / "tool" / "tool.py"
    assert stored.read_bytes() == TOOL
    on_path = run_runner(
        "install", "--name", "tool2", str(stored), env={"PATH": f"{bin_dir}:{BIN}"}
    )
    assert on_path.returncode == 0 and "not on PATH" not in on_path.stderr


def test_list_shows_source_hash_and_environment(
    tmp_path: Path, bin_dir: Path, cache_dir: Path
) -> None:
    source = tmp_path / "tool.py"
    source.write_bytes(TOOL)
    assert run_runner("install", str(source), "--name", "t1").returncode == 0
    r = run_runner("list", "--json")
    assert r.returncode == 0, r.stderr
    (row,) = json.loads(r.stdout)
    assert row["name"] == "t1" and row["source"] == str(source)
    assert row["sha256"] == sha(TOOL)
    assert row["launcher"] == str(bin_dir / "t1") and row["launcher_present"]
    env = row["environment"]
    assert env["exists"] and Path(env["path"]) in store_dirs(cache_dir)
    text = run_runner("list")
    assert text.returncode == 0
    for value in ("t1", str(source), sha(TOOL), env["key"]):
        assert value in text.stdout


def test_install_never_overwrites_and_force_updates(tmp_path: Path, bin_dir: Path) -> None:
    source = tmp_path / "tool.py"
    source.write_bytes(TOOL)
    assert run_runner("install", str(source)).returncode == 0
    launcher = bin_dir / "tool"
    before = launcher.read_bytes()
    again = run_runner("install", str(source))
    assert again.returncode == 101 and "already installed" in again.stderr
    assert launcher.read_bytes() == before
    source.write_bytes(TOOL.replace(b'"tool"', b'"tool v2"'))
    forced = run_runner("install", "--force", str(source))
    assert forced.returncode == 0, forced.stderr
    assert launch(launcher).stdout == "tool v2 []\n"
    # A file runner did not write is never replaced, not even with --force.
    foreign = bin_dir / "other"
    foreign.write_text("#!/bin/sh\necho mine\n")
    for extra in ([], ["--force"]):
        r = run_runner("install", *extra, "--name", "other", str(source))
        assert r.returncode == 101 and "not written by runner" in r.stderr
        assert foreign.read_text() == "#!/bin/sh\necho mine\n"


def test_uninstall_removes_only_what_runner_wrote(
    tmp_path: Path, bin_dir: Path, cache_dir: Path
) -> None:
    source = tmp_path / "tool.py"
    source.write_bytes(TOOL)
    assert run_runner("install", str(source)).returncode == 0
    r = run_runner("uninstall", "tool")
    assert r.returncode == 0, r.stderr
    assert not (bin_dir / "tool").exists()
    assert not (cache_dir / "installed" / "tool").exists()
    assert json.loads(run_runner("list", "--json").stdout) == []
    missing = run_runner("uninstall", "tool")
    assert missing.returncode == 101 and "no installed command" in missing.stderr
    (bin_dir / "mine").write_text("#!/bin/sh\n")
    left = run_runner("uninstall", "mine")
    assert "left" in left.stderr and (bin_dir / "mine").exists()


def test_install_from_a_url_pinned_and_force_fetches_again(bin_dir: Path, cache_dir: Path) -> None:
    route = Route(TOOL, auth=("me", "pw-secret"))
    with serve_scripts({"/x/tool.py": route}) as srv:
        url = srv.url("/x/tool.py", userinfo="me:pw-secret@")
        bad = run_runner("install", "--allow-insecure-http", "--sha256", "1" * 64, url)
        assert bad.returncode == 108 and not (bin_dir / "tool").exists()
        r = run_runner("install", "--allow-insecure-http", "--sha256", sha(TOOL), url)
        assert r.returncode == 0, r.stderr
        assert launch(bin_dir / "tool", "x").stdout == "tool ['x']\n"
        (row,) = json.loads(run_runner("list", "--json").stdout)
        assert row["source"] == srv.url("/x/tool.py")  # no credentials
        hits = srv.hits("/x/tool.py")
        route.body = TOOL.replace(b'"tool"', b'"tool v2"')
        forced = run_runner("install", "--force", "--allow-insecure-http", url)
        assert forced.returncode == 0, forced.stderr
        assert srv.hits("/x/tool.py") == hits + 1  # fetched again although still fresh
        assert launch(bin_dir / "tool").stdout == "tool v2 []\n"
    for path in [*cache_dir.rglob("*"), *bin_dir.iterdir()]:
        if path.is_file() and not path.is_symlink():
            assert b"pw-secret" not in path.read_bytes(), path


def test_a_launcher_survives_cleaning_the_cache(
    tmp_path: Path, bin_dir: Path, cache_dir: Path
) -> None:
    source = tmp_path / "tool.py"
    source.write_bytes(TOOL)
    assert run_runner("install", str(source)).returncode == 0
    assert run_runner("cache", "clean").returncode == 0
    assert run_runner("cache", "prune", "--older-than", "0s").returncode == 0
    assert published(cache_dir) == []
    r = launch(bin_dir / "tool", "ok")
    assert r.returncode == 0 and r.stdout == "tool ['ok']\n", r.stderr  # rebuilt, then run
    assert (cache_dir / "installed" / "tool" / "tool.py").read_bytes() == TOOL


def test_install_refuses_credentials_it_would_write_into_the_launcher(
    tmp_path: Path, bin_dir: Path
) -> None:
    source = tmp_path / "tool.py"
    source.write_bytes(TOOL)
    r = run_runner("install", "--index-url", "https://u:hunter2@example.org/simple", str(source))
    assert r.returncode == 2 and "credentials" in r.stderr and "hunter2" not in r.stderr
    assert not (bin_dir / "tool").exists()


# --------------------------------------------------------------------------- show


def show_json(*args: str) -> dict[str, object]:
    r = run_runner("show", "--json", *args)
    assert r.returncode == 0, r.stderr
    data: dict[str, object] = json.loads(r.stdout)
    return data


def scalars(value: object) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in scalars(v)]
    if isinstance(value, list):
        return [s for v in value for s in scalars(v)]
    if value is None or isinstance(value, bool):
        return []
    return [str(value)]


def test_show_builds_nothing_and_matches_its_json(
    tmp_path: Path, cache_dir: Path, offline_wheels: Path
) -> None:
    script = write_script(tmp_path / "s.py", "import alpha\n", ["alpha"], requires_python='">=3.8"')
    info = show_json(str(script))
    assert store_dirs(cache_dir) == []  # nothing built
    assert info["block"] == {"first_line": 1, "last_line": 4}
    assert info["requires_python"] == ">=3.8"
    env = info["environment"]
    assert isinstance(env, dict) and env["exists"] is False and env["path"] is None
    assert info["distributions"] is None
    interp = info["interpreter"]
    assert isinstance(interp, dict) and "requires-python >=3.8" in str(interp["reason"])
    text = run_runner("show", str(script))
    assert "exists:" in text.stdout and "no (the next run builds it)" in text.stdout
    for value in scalars(info):
        assert value in text.stdout, value

    built = show_json("--build", str(script))
    assert built["distributions"] == [{"name": "alpha", "version": "1.0"}]
    env = built["environment"]
    assert isinstance(env, dict) and env["exists"] is True and Path(str(env["path"])).is_dir()
    alias = built["alias"]
    assert isinstance(alias, dict) and alias["state"] == "valid"
    text = run_runner("show", str(script))
    for value in scalars(built):
        assert value in text.stdout, value
    assert "alpha==1.0" in text.stdout


def test_show_reports_a_stale_lock_and_redacts_index_credentials(tmp_path: Path) -> None:
    index = tmp_path / "index"
    make_wheel(index, "alpha", "1.0")
    make_wheel(index, "beta", "1.0")
    script = write_script(tmp_path / "tool.py", "", ["alpha"])
    with serve_index(index) as (url, _):
        assert run_runner("lock", str(script), "--index-url", url).returncode == 0
    current = show_json(str(script))
    assert current["lock"] == {
        "path": str(tmp_path / "pylock.tool.toml"),
        "exists": True,
        "current": True,
        "problem": None,
    }
    write_script(script, "", ["alpha", "beta"])
    stale = show_json(str(script), "--index-url", "https://user:topsecret@example.org/simple")
    lock = stale["lock"]
    assert isinstance(lock, dict) and lock["current"] is False and "changed" in lock["problem"]
    alias = stale["alias"]
    assert isinstance(alias, dict) and alias["state"] == "unused"
    text = run_runner(
        "show", str(script), "--index-url", "https://user:topsecret@example.org/simple"
    )
    assert "stale:" in text.stdout and "***@example.org" in text.stdout
    assert "topsecret" not in text.stdout + text.stderr + json.dumps(stale)


def test_show_an_installed_command_and_a_url(bin_dir: Path, cache_dir: Path) -> None:
    with serve_scripts({"/tool.py": Route(TOOL)}) as srv:
        url = srv.url("/tool.py")
        assert run_runner("install", "--allow-insecure-http", url).returncode == 0
        by_name = show_json("tool")
        assert by_name["command"] == "tool" and by_name["source"] == url
        assert by_name["script"] == str(cache_dir / "installed" / "tool" / "tool.py")
        alias = by_name["alias"]
        assert isinstance(alias, dict) and alias["state"] == "valid"
        by_url = show_json("--allow-insecure-http", url)
        assert by_url["source"] == url and by_url["sha256"] == sha(TOOL)


# --------------------------------------------------------------------------- shebangs and entry


@pytest.mark.parametrize("form", ["--shebang", "--shebang=portable"])
def test_both_shebang_forms_run_as_commands(tmp_path: Path, form: str) -> None:
    tool = tmp_path / "tool"
    r = run_runner("init", str(tool), form)
    assert r.returncode == 0, r.stderr
    first = tool.read_text().splitlines()[0]
    assert first == ("#!/bin/sh" if form.endswith("portable") else "#!/usr/bin/env -S runner run")
    path_env = BIN + os.pathsep + os.environ.get("PATH", "")
    out = launch(tool, path_env=path_env)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "Hello from a runner script!\n"
    # Still a valid Python file and a valid block: runner run and python itself agree.
    assert run_runner("run", str(tool)).stdout == "Hello from a runner script!\n"
    plain = subprocess.run(
        [sys.executable, str(tool)], capture_output=True, text=True, timeout=60, check=False
    )
    assert plain.stdout == "Hello from a runner script!\n"


def test_python_dash_m_runner_behaves_like_runner(tmp_path: Path) -> None:
    script = write_script(
        tmp_path / "s.py", "import sys\nprint(sys.argv[1:])\nraise SystemExit(7)\n"
    )
    (tmp_path / "typer.py").write_text("raise SystemExit('shadowed')\n")  # cwd is not on sys.path
    for args in (["--help"], ["version"], ["run", str(script), "a"], ["nope"]):
        direct = run_runner(*args, cwd=tmp_path)
        module = subprocess.run(
            [sys.executable, "-m", "runner", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert (module.returncode, module.stdout) == (direct.returncode, direct.stdout), args
    assert run_runner("run", str(script), "a").returncode == 7


def test_shell_completion_completes_commands() -> None:
    env = {"_RUNNER_COMPLETE": "complete_bash", "COMP_WORDS": "runner ins", "COMP_CWORD": "1"}
    r = run_runner(env=env)
    assert r.returncode == 0
    assert r.stdout.split() == ["install"]
    script = run_runner("--show-completion", "bash")
    assert script.returncode == 0 and "_RUNNER_COMPLETE=complete_bash" in script.stdout
    assert RUNNER  # the console script these run


def test_force_by_name_updates_from_the_recorded_source_with_its_options(
    tmp_path: Path, bin_dir: Path, offline_wheels: Path
) -> None:
    source = tmp_path / "tool.py"
    source.write_bytes(TOOL)
    r = run_runner("install", "--with", "alpha", "--name", "tl", str(source))
    assert r.returncode == 0, r.stderr
    source.write_bytes(TOOL.replace(b'print("tool"', b'import alpha\nprint("tool", alpha.VERSION'))
    r = run_runner("install", "--force", "tl", cwd=tmp_path / "bin")
    assert r.returncode == 0, r.stderr
    assert launch(bin_dir / "tl").stdout == "tool 1.0 []\n"  # the new source, with --with
    (row,) = json.loads(run_runner("list", "--json").stdout)
    assert row["run_args"] == ["--with", "alpha"] and row["source"] == str(source)
