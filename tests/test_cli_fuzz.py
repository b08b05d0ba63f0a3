"""The command line with random option values, in-process through `runner.launcher.main`
(the console script).

For any value a user can type: no traceback, an exit status from the documented set, a
usage error (2) as one `runner: error:` line (plus a hint) before any work is done, and
never the password of a URL in the output.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from runner import launcher

CLI_FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
DOCUMENTED = {0, 2, 101, 102, 103, 104, 105, 106, 107}
PASSWORD = "s3cr3t-pw"

INTERESTING = [
    "",
    " ",
    "not a req!!",
    "not a url",
    "rich",
    "rich>=13",
    "rich[",
    "a @ ",
    "a @ notaurl",
    "a @ file:///nonexistent/a-1.0-py3-none-any.whl",
    f"pkg @ https://user:{PASSWORD}@host/pkg.whl",
    f"pkg @ https://user:{PASSWORD}@host:abc/pkg.whl",
    f"https://user:{PASSWORD}@host:abc/simple",
    f"https://user:{PASSWORD}@host/simple",
    f"https://user:{PASSWORD}@[::1/simple",
    "https://",
    "http://:80/",
    "file:///nonexistent",
    "ftp://host/simple",
    "/nonexistent/wheels",
    "~",
    ".",
    "14 days",
    "0 days",
    "P14D",
    "999999999 days",
    "9" * 400 + " days",
    "2026-01-01T00:00:00Z",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "yesterday",
    "30d",
    "5x",
    "1e400",
    "9" * 400,
    "-1d",
    "3.12",
    ">=3.11",
    "python9.9",
    "pip",
    "uv",
    "auto",
    "PIP",
    "é",
    "\u2028",
    "a\tb",
    "a\nb",
    "--",
    "-x",
]
# argv strings cannot hold NUL bytes; everything else a shell can pass, the CLI must take.
values = st.one_of(
    st.sampled_from(INTERESTING),
    st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=30),
)
RUN_OPTIONS = [
    "--with",
    "--index-url",
    "--extra-index-url",
    "--find-links",
    "--exclude-newer",
    "--python",
    "--installer",
]


def invoke(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str]):
    monkeypatch.setattr(sys, "argv", ["runner", *argv])
    monkeypatch.setattr(sys, "stdin", None)  # nothing may wait for input
    code = launcher.main()
    out, err = capsys.readouterr()
    return code, out, err


def check(code: int, out: str, err: str) -> None:
    assert "Traceback" not in err + out, err
    assert code in DOCUMENTED, (code, err)
    assert PASSWORD not in err + out, err
    if code == 2 and "runner: error:" in err:
        lines = err.strip().splitlines()
        assert lines[0].startswith("runner: error: ")
        assert all(line.startswith("runner: hint: ") for line in lines[1:]), err


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "s.py"
    path.write_text('# /// script\n# dependencies = []\n# ///\nprint("ran")\n')
    return path


@CLI_FUZZ
@given(
    command=st.sampled_from(["run", "sync", "python", "lock"]),
    options=st.lists(st.tuples(st.sampled_from(RUN_OPTIONS), values), min_size=1, max_size=3),
)
@example(command="run", options=[("--with", "not a req!!")])
@example(command="sync", options=[("--extra-index-url", "not a url")])
@example(command="run", options=[("--index-url", f"https://u:{PASSWORD}@host:abc/")])
def test_random_option_values_give_documented_exits_without_tracebacks(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    script: Path,
    command: str,
    options: list[tuple[str, str]],
) -> None:
    if command == "lock":
        options = [o for o in options if o[0] not in ("--with", "--installer")]
    argv = [command]
    for name, value in options:
        argv += [f"{name}={value}"]
    # `run` never reaches the script (it does not exist: 101), `lock --check` stops at the
    # missing lock (107): valid values cost no build, invalid ones must fail first (2).
    target = str(tmp_path / "missing.py") if command in ("run", "python", "sync") else str(script)
    argv += ["--check", target] if command == "lock" else [target]
    code, out, err = invoke(monkeypatch, capsys, argv)
    check(code, out, err)
    assert code in (2, 101, 107), (code, err)
    assert not (tmp_path / "cache" / "store").exists()  # no work was done


@CLI_FUZZ
@given(
    requirements=st.lists(values, min_size=1, max_size=3),
    command=st.sampled_from(["add", "remove", "init"]),
)
@example(requirements=["0@\U00012544"], command="init")  # TOML's \U escape, not \u
def test_random_requirements_for_the_authoring_commands(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    script: Path,
    requirements: list[str],
    command: str,
) -> None:
    before = script.read_bytes()
    if command == "init":
        argv = ["init", str(tmp_path / "new.py")]
        for req in requirements:
            argv.append(f"--dep={req}")
    else:
        argv = [command, str(script), "--", *requirements]
    code, out, err = invoke(monkeypatch, capsys, argv)
    check(code, out, err)
    if code != 0:
        assert script.read_bytes() == before
    (tmp_path / "new.py").unlink(missing_ok=True)


@CLI_FUZZ
@given(older_than=values, grace=st.one_of(st.none(), values))
@example(older_than="5x", grace=None)
def test_random_durations_for_cache_commands(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    older_than: str,
    grace: str | None,
) -> None:
    argv = ["cache", "prune", "--dry-run", f"--older-than={older_than}"]
    if grace is not None:
        argv.append(f"--grace={grace}")
    code, out, err = invoke(monkeypatch, capsys, argv)
    check(code, out, err)
    assert code in (0, 2), err


def test_bad_values_are_one_line_usage_errors_naming_the_option(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], script: Path
) -> None:
    cases = [
        (["run", "--with", "not a req!!"], "--with 'not a req!!': not a valid requirement"),
        (["sync", "--with", "not a req!!"], "--with 'not a req!!'"),
        (["run", "--extra-index-url", "not a url"], "--extra-index-url 'not a url'"),
        (["python", "--index-url", "ftp://h/simple"], "--index-url 'ftp://h/simple': not an"),
        (["lock", "--find-links", "/nonexistent/w"], "--find-links '/nonexistent/w': no such"),
        (["run", "--exclude-newer", "yesterday"], "--exclude-newer: 'yesterday'"),
        (["run", "--installer", "conda"], "--installer 'conda'"),
        (["cache", "prune", "--older-than", "5x"], "--older-than '5x': not a duration"),
    ]
    for argv, needle in cases:
        target = [] if argv[0] == "cache" else [str(script)]
        code, out, err = invoke(monkeypatch, capsys, [*argv, *target])
        assert code == 2, (argv, err)
        assert out == ""
        assert err.startswith(f"runner: error: {needle}"), (argv, err)
        assert len(err.strip().splitlines()) == 2, err  # the error and its hint
