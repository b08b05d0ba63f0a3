"""Unit tests of the launcher's pure pieces: argv recognition, digests, lock paths, aliases."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.api import RunOptions
from runner.cache import Cache
from tests import warmpath

# (id, argv after the program name, expected (pairs, script, args) or None)
ARGV = [
    ("plain", ["run", "s.py"], ([], "s.py", [])),
    ("args", ["run", "s.py", "a", "b"], ([], "s.py", ["a", "b"])),
    (
        "script-args-look-like-options",
        ["run", "s.py", "--help", "-p", "x", "--"],
        ([], "s.py", ["--help", "-p", "x", "--"]),
    ),
    (
        "python-equals",
        ["run", "--python=/opt/py/bin/python3", "s.py"],
        ([("python", "/opt/py/bin/python3")], "s.py", []),
    ),
    (
        "python-separate",
        ["run", "--python", "/opt/py/bin/python3", "s.py"],
        ([("python", "/opt/py/bin/python3")], "s.py", []),
    ),
    (
        "python-short",
        ["run", "-p", "/opt/py/bin/python3", "s.py", "-p"],
        ([("python", "/opt/py/bin/python3")], "s.py", ["-p"]),
    ),
    ("python-version-name-kept", ["run", "-p", "3.12", "s.py"], ([("python", "3.12")], "s.py", [])),
    # As click reads it: a short option's value starts right after the letter.
    ("short-with-attached-value", ["run", "-p3.12", "s.py"], ([("python", "3.12")], "s.py", [])),
    ("flag-cluster", ["run", "-qv", "s.py"], ([], "s.py", [])),
    ("double-dash", ["run", "--", "s.py", "--x"], ([], "s.py", ["--x"])),
    ("double-dash-dash-script", ["run", "--", "-weird.py"], ([], "-weird.py", [])),
    (
        "options-then-double-dash",
        ["run", "--no-index", "--", "s.py"],
        ([("no-index", "")], "s.py", []),
    ),
    ("flags", ["run", "-q", "--offline", "--locked", "s.py"], ([("locked", "")], "s.py", [])),
    ("installer-not-selecting", ["run", "--installer", "uv", "s.py"], ([], "s.py", [])),
    (
        "repeated-with",
        ["run", "--with", "a", "--with=b", "s.py"],
        ([("with", "a"), ("with", "b")], "s.py", []),
    ),
    (
        "index-url",
        ["run", "--index-url", "https://i.invalid/simple", "s.py"],
        ([("index-url", "https://i.invalid/simple")], "s.py", []),
    ),
    ("unknown-option", ["run", "--frobnicate", "s.py"], None),
    ("unknown-short", ["run", "-x", "s.py"], None),
    ("verbose", ["run", "-v", "s.py"], ([], "s.py", [])),
    ("refresh", ["run", "--refresh", "s.py"], ([], "s.py", [])),
    ("help-goes-to-cli", ["run", "--help"], None),
    ("flag-with-value", ["run", "--no-index=1", "s.py"], None),
    ("missing-value", ["run", "--python"], None),
    ("no-script", ["run"], None),
    ("only-options", ["run", "--no-index"], None),
    ("stdin-script", ["run", "-", "x"], ([], "-", ["x"])),
    ("not-run", ["sync", "s.py"], None),
    ("global-option-first", ["-v", "run", "s.py"], None),
    ("empty", [], None),
]


@pytest.mark.parametrize(("argv", "expected"), [c[1:] for c in ARGV], ids=[c[0] for c in ARGV])
def test_parse_run_argv(argv: list[str], expected: object) -> None:
    assert warmpath.parse_run_argv(argv) == expected


def test_parse_run_argv_pairs_match_cold_path_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    argv = [
        "run",
        "-p",
        "venv/bin/python",
        "--with",
        "rich",
        "--find-links",
        "wheels",
        "--no-index",
        "--exclude-newer",
        "2025-01-01",
        "--extra-index-url",
        "https://e.invalid/",
        "s.py",
    ]
    parsed = warmpath.parse_run_argv(argv)
    assert parsed is not None
    options = RunOptions(
        python="venv/bin/python",
        with_requirements=("rich",),
        find_links=("wheels",),
        no_index=True,
        exclude_newer="2025-01-01",
        extra_index_urls=("https://e.invalid/",),
    )
    assert sorted(parsed[0]) == sorted(options.selection_pairs())


# (id, option name, value, expected relative to the working directory or literal)
CANONICAL = [
    ("python-relative-path", "python", "venv/bin/python", "{cwd}/venv/bin/python"),
    ("python-dot-path", "python", "./py", "{cwd}/py"),
    ("python-parent-path", "python", "../x/python", "{parent}/x/python"),
    ("python-absolute", "python", "/usr/bin/python3", "/usr/bin/python3"),
    ("python-name-kept", "python", "python3.12", "python3.12"),
    ("find-links-relative", "find-links", "wheels", "{cwd}/wheels"),
    ("find-links-url-kept", "find-links", "https://h.invalid/links/", "https://h.invalid/links/"),
    ("find-links-file-url-kept", "find-links", "file:///w", "file:///w"),
    ("index-url-kept", "index-url", "./not-a-path", "./not-a-path"),
    ("with-kept", "with", "./pkg", "./pkg"),
]


@pytest.mark.parametrize(
    ("name", "value", "expected"), [c[1:] for c in CANONICAL], ids=[c[0] for c in CANONICAL]
)
def test_canonical_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    cwd = tmp_path / "work"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    want = expected.format(cwd=os.getcwd(), parent=os.path.dirname(os.getcwd()))
    assert warmpath.canonical_option(name, value) == want


def test_relative_options_from_two_directories_select_differently(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    digests = set()
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        monkeypatch.chdir(tmp_path / d)
        pairs = warmpath.parse_run_argv(["run", "--find-links", "wheels", "s.py"])[0]  # type: ignore[index]
        digests.add(warmpath.selection_digest("", pairs, None, "/s"))
    assert len(digests) == 2


# ------------------------------------------------------------------ selection digest

BLOCK = 'requires-python = ">=3.8"\ndependencies = ["rich>=13", "requests<3"]\n'


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, len(BLOCK) - 1),
    st.sampled_from(["delete", "replace", "insert"]),
    st.characters(exclude_categories=["Cs"]),
)
def test_digest_changes_with_any_single_character(at: int, how: str, ch: str) -> None:
    if how == "delete":
        changed = BLOCK[:at] + BLOCK[at + 1 :]
    elif how == "replace":
        changed = BLOCK[:at] + ch + BLOCK[at + 1 :]
    else:
        changed = BLOCK[:at] + ch + BLOCK[at:]
    if changed == BLOCK:
        return
    assert warmpath.selection_digest(changed, [], None, "/d") != warmpath.selection_digest(
        BLOCK, [], None, "/d"
    )


def test_digest_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    d = warmpath.selection_digest
    base = d(BLOCK, [], None, "/d")
    assert d(None, [], None, "/d") != d("", [], None, "/d")  # no block vs empty block
    assert d(BLOCK, [("python", "/p")], None, "/d") != base
    assert d(BLOCK, [("with", "a"), ("with", "b")], None, "/d") == d(
        BLOCK, [("with", "b"), ("with", "a")], None, "/d"
    )
    assert d(BLOCK, [], b"lock", "/d") != base
    assert d(BLOCK, [], b"lock", "/d") != d(BLOCK, [], b"lock2", "/d")
    # The directory matters only with a lock file or find-links in the block.
    assert d(BLOCK, [], None, "/other") == base
    assert d(BLOCK, [], b"lock", "/d") != d(BLOCK, [], b"lock", "/other")
    links = '[tool.runner]\nfind-links = ["wheels"]\n'
    assert d(links, [], None, "/d") != d(links, [], None, "/other")
    monkeypatch.setenv("RUNNER_PYTHON", "/opt/py/bin/python3")
    assert d(BLOCK, [], None, "/d") != base


# ------------------------------------------------------------------ lock path

LOCKS = [
    ("plain", "tool.py", "pylock.tool.toml"),
    ("dots-become-hyphens", "my.tool.py", "pylock.my-tool.toml"),
    ("no-suffix", "tool", "pylock.tool.toml"),
    ("directory-kept", "sub/dir/x.py", "sub/dir/pylock.x.toml"),
    ("absolute", "/srv/scripts/x.py", "/srv/scripts/pylock.x.toml"),
    ("only-suffix", ".py", "pylock.script.toml"),
    ("other-suffix", "x.pyw", "pylock.x-pyw.toml"),
    ("double-py", "x.py.py", "pylock.x-py.toml"),
]


@pytest.mark.parametrize(("script", "lock"), [c[1:] for c in LOCKS], ids=[c[0] for c in LOCKS])
def test_lock_path_for(script: str, lock: str) -> None:
    assert warmpath.lock_path_for(script) == lock


# ------------------------------------------------------------------ aliases


@pytest.fixture
def alias(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Cache, Path, Path, str]:
    """A valid alias with one stat check and one variable check."""
    cache = Cache(tmp_path / "cache")
    cache.ensure()
    env_dir = cache.store / "k-123"
    env_dir.mkdir()
    checked = tmp_path / "python3"
    checked.write_text("#!")
    monkeypatch.setenv("RUNNER_TEST_VAR", "one")
    digest = "d" * 64
    cache.write_alias(
        digest, env_dir, stat_paths=(str(checked),), var_names=("RUNNER_TEST_VAR",), script="/s.py"
    )
    assert warmpath.read_alias(str(cache.root), digest) == str(env_dir)
    return cache, env_dir, checked, digest


def test_read_alias_missing(tmp_path: Path) -> None:
    assert warmpath.read_alias(str(tmp_path), "0" * 64) is None


def test_read_alias_rejects_every_truncation(alias: tuple[Cache, Path, Path, str]) -> None:
    cache, _, _, digest = alias
    path = cache.scripts / digest
    full = path.read_bytes()
    assert full.endswith(b"\nend\n")
    for cut in range(len(full)):  # every cut, at a line end too: the end marker is gone
        path.write_bytes(full[:cut])
        assert warmpath.read_alias(str(cache.root), digest) is None, full[:cut]


@pytest.mark.parametrize(
    "text",
    [
        b"runner-alias 1\nenv\t/x\nend\n",
        b"runner-alias 10\nenv\t/x\nend\n",
        b"something else\nenv\t/x\nend\n",
        b"runner-alias 2\nenv\t/x\nfuture\tthing\nend\n",
        b"runner-alias 2\n\xff\xfe\nend\n",
        b"runner-alias 2\nend\n",
        b"runner-alias 2\nenv\t/x\n",
        b"",
    ],
    ids=[
        "old-format",
        "newer-format",
        "foreign",
        "unknown-line",
        "not-utf8",
        "no-env",
        "no-end",
        "empty",
    ],
)
def test_read_alias_rejects_foreign(tmp_path: Path, text: bytes) -> None:
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "a").write_bytes(text)
    assert warmpath.read_alias(str(tmp_path), "a") is None


def test_read_alias_rejects_changed_stat(alias: tuple[Cache, Path, Path, str]) -> None:
    cache, _, checked, digest = alias
    st = checked.stat()
    os.utime(checked, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert warmpath.read_alias(str(cache.root), digest) is None


def test_read_alias_rejects_changed_size(alias: tuple[Cache, Path, Path, str]) -> None:
    cache, _, checked, digest = alias
    st = checked.stat()
    checked.write_text("#!longer")
    os.utime(checked, ns=(st.st_atime_ns, st.st_mtime_ns))  # same mtime, other size
    assert warmpath.read_alias(str(cache.root), digest) is None


def test_read_alias_rejects_removed_stat_path(alias: tuple[Cache, Path, Path, str]) -> None:
    cache, _, checked, digest = alias
    checked.unlink()
    assert warmpath.read_alias(str(cache.root), digest) is None


def test_read_alias_rejects_changed_variable(
    alias: tuple[Cache, Path, Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache, _, _, digest = alias
    monkeypatch.setenv("RUNNER_TEST_VAR", "two")
    assert warmpath.read_alias(str(cache.root), digest) is None
    monkeypatch.delenv("RUNNER_TEST_VAR")
    assert warmpath.read_alias(str(cache.root), digest) is None
    monkeypatch.setenv("RUNNER_TEST_VAR", "one")
    assert warmpath.read_alias(str(cache.root), digest) is not None
