"""`runner run` end to end: the script owns the process; runner's own failures are explained."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import published, run_runner, store_dirs, write_script
from tests.wheels import serve_index

PROBE_BODY = """\
import json, os, sys
print(json.dumps({
    "argv": sys.argv,
    "file": __file__,
    "name": __name__,
    "cwd": os.getcwd(),
    "marker": os.environ.get("RUNNER_TEST_MARKER"),
    "prefix": sys.prefix,
    "virtual_env": os.environ.get("VIRTUAL_ENV"),
    "path0": os.environ["PATH"].split(os.pathsep)[0],
}))
"""


def test_script_sees_what_plain_python_would(tmp_path: Path) -> None:
    script = write_script(tmp_path / "probe.py", PROBE_BODY, [])
    workdir = tmp_path / "work"
    workdir.mkdir()
    args = ["../probe.py", "--help", "-x", "two words", ""]
    got = run_runner("run", *args, cwd=workdir, env={"RUNNER_TEST_MARKER": "m1"})
    assert got.returncode == 0, got.stderr
    seen = json.loads(got.stdout)
    plain = subprocess.run(
        [sys.executable, *args],
        cwd=workdir,
        env={**os.environ, "RUNNER_TEST_MARKER": "m1"},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    expected = json.loads(plain.stdout)
    assert seen["argv"] == expected["argv"] == args  # the path as given, arguments untouched
    for field in ("file", "name", "cwd", "marker"):
        assert seen[field] == expected[field], field
    assert seen["cwd"] == str(workdir)
    env_dir = seen["prefix"]
    assert seen["virtual_env"] == env_dir
    assert seen["path0"] == str(Path(env_dir) / "bin")
    assert Path(env_dir).parent == tmp_path / "cache" / "store"
    # The file that ran is the script itself, reached through the relative path as given.
    assert (workdir / seen["file"]).resolve() == script.resolve()


@pytest.mark.parametrize("code", [0, 1, 3, 255])
def test_exit_status_is_passed_through(tmp_path: Path, code: int) -> None:
    script = write_script(tmp_path / "exit.py", f"import sys\nsys.exit({code})\n", [])
    assert run_runner("run", str(script)).returncode == code


def test_death_by_signal_is_passed_through(tmp_path: Path) -> None:
    script = write_script(
        tmp_path / "kill.py", "import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n", []
    )
    got = run_runner("run", str(script))
    assert got.returncode == -signal.SIGTERM


def test_stdin_is_passed_through(tmp_path: Path) -> None:
    script = write_script(tmp_path / "cat.py", "import sys\nprint(sys.stdin.read().upper())\n", [])
    got = run_runner("run", str(script), input="hello from stdin")
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == "HELLO FROM STDIN"


def test_the_script_runs_in_the_process_runner_started(tmp_path: Path) -> None:
    """On POSIX runner execs: the script's pid is the pid the caller started."""
    from tests.conftest import RUNNER

    script = write_script(tmp_path / "pid.py", "import os\nprint(os.getpid())\n", [])
    proc = subprocess.Popen(
        [RUNNER, "run", str(script)], stdout=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    out, _ = proc.communicate(timeout=120)
    assert int(out.strip()) == proc.pid


def test_no_block_runs_isolated_from_runners_own_packages(tmp_path: Path) -> None:
    script = tmp_path / "plain.py"
    script.write_text(
        "import importlib.util as u\n"
        "names = ('typer', 'filelock', 'virtualenv', 'packaging', 'click')\n"
        "print([m for m in names if u.find_spec(m)])\n"
    )
    got = run_runner("run", str(script))
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == "[]"


def test_dependencies_installed_and_console_scripts_on_path(
    tmp_path: Path, offline_wheels: Path, cache_dir: Path
) -> None:
    body = (
        "import subprocess, beta, alpha\n"
        "print(alpha.VERSION, beta.VERSION)\n"
        "print(subprocess.run(['gamma-cli'], capture_output=True, text=True).stdout.strip())\n"
    )
    script = write_script(tmp_path / "deps.py", body, ["beta", "gamma"])
    first = run_runner("run", str(script))
    assert first.returncode == 0, first.stderr
    assert first.stdout.split() == ["1.0", "1.0", "gamma-cli", "ok"]
    assert len(published(cache_dir)) == 1
    manifest = json.loads((store_dirs(cache_dir)[0] / "runner-env.json").read_text())
    assert {d["name"] for d in manifest["installed"]} >= {"alpha", "beta", "gamma"}
    # Warm: same environment, nothing rebuilt, nothing printed by runner.
    second = run_runner("run", str(script))
    assert second.returncode == 0
    assert second.stdout == first.stdout
    assert second.stderr == ""
    assert len(store_dirs(cache_dir)) == 1


def test_same_needs_share_one_environment(
    tmp_path: Path, offline_wheels: Path, cache_dir: Path
) -> None:
    a = write_script(tmp_path / "a.py", "import alpha\nprint('a')\n", ["Alpha>=1", "beta"])
    b = write_script(
        tmp_path / "b.py", "import alpha\nprint('b')\n", ["beta", "alpha >= 1", "BETA"]
    )
    assert run_runner("run", str(a)).returncode == 0
    assert run_runner("run", str(b)).returncode == 0
    assert len(store_dirs(cache_dir)) == 1


def test_editing_the_block_selects_another_environment(
    tmp_path: Path, offline_wheels: Path, cache_dir: Path
) -> None:
    script = write_script(
        tmp_path / "s.py",
        "import importlib.util as u\nprint(bool(u.find_spec('beta')))\n",
        ["alpha"],
    )
    assert run_runner("run", str(script)).stdout.strip() == "False"
    script.write_text(script.read_text().replace('"alpha"', '"alpha", "beta"'))
    got = run_runner("run", str(script))
    assert got.stdout.strip() == "True", got.stderr
    assert len(published(cache_dir)) == 2


# ----------------------------------------------------------------------------- errors


def _assert_clean_error(got: object, code: int, *needles: str) -> None:
    assert got.returncode == code, (got.returncode, got.stderr)  # type: ignore[attr-defined]
    stderr = got.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in stderr
    assert "runner: error:" in stderr
    for needle in needles:
        assert needle in stderr, stderr


def test_missing_script(tmp_path: Path) -> None:
    _assert_clean_error(
        run_runner("run", str(tmp_path / "nope.py")), 101, "script not found", "nope.py"
    )


def test_directory_instead_of_script(tmp_path: Path) -> None:
    _assert_clean_error(run_runner("run", str(tmp_path)), 101, "is a directory")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads unreadable files")
def test_unreadable_script(tmp_path: Path) -> None:
    script = write_script(tmp_path / "secret.py", "print(1)\n", [])
    script.chmod(0)
    _assert_clean_error(run_runner("run", str(script)), 101, "permission denied")


def test_undecodable_script(tmp_path: Path) -> None:
    script = tmp_path / "bad.py"
    script.write_bytes(b"# /// script\n# dependencies = []\n# ///\nprint('\xff\xfe')\n")
    _assert_clean_error(run_runner("run", str(script)), 101, "cannot decode", "line 4")


def test_invalid_metadata_never_runs_the_script(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    script = tmp_path / "bad.py"
    script.write_text(
        '# /// script\n# dependencies = ["requests",\n# ///\n'
        f"open({str(marker)!r}, 'w').close()\n"
    )
    got = run_runner("run", str(script))
    _assert_clean_error(got, 102, "bad.py:")
    assert not marker.exists()


def test_requires_python_excluding_the_interpreter(tmp_path: Path) -> None:
    script = write_script(tmp_path / "future.py", "print(1)\n", [], requires_python='"<3"')
    _assert_clean_error(run_runner("run", "--python", sys.executable, str(script)), 103, "<3")


def test_dependency_that_does_not_exist(
    tmp_path: Path, offline_wheels: Path, cache_dir: Path
) -> None:
    script = write_script(tmp_path / "s.py", "print(1)\n", ["no-such-package-xyz"])
    got = run_runner("run", str(script))
    _assert_clean_error(got, 104, "no-such-package-xyz")
    assert published(cache_dir) == []
    assert store_dirs(cache_dir) == []  # a failed build leaves nothing behind
    # The user fixes the block: the next run succeeds.
    write_script(script, "import alpha\nprint(alpha.VERSION)\n", ["alpha"])
    fixed = run_runner("run", str(script))
    assert fixed.returncode == 0, fixed.stderr
    assert fixed.stdout.strip() == "1.0"


def test_unreachable_index(tmp_path: Path, cache_dir: Path) -> None:
    # The autouse fixture points PIP_INDEX_URL at a port where nothing listens.
    script = write_script(tmp_path / "s.py", "print(1)\n", ["alpha"])
    got = run_runner("run", str(script))
    _assert_clean_error(got, 105, "could not reach the package index")
    assert published(cache_dir) == []


def test_users_pip_configuration_is_honoured(
    tmp_path: Path, wheelhouse: Path, cache_dir: Path
) -> None:
    """Private indexes work: pip's own configuration (here PIP_INDEX_URL) is used."""
    script = write_script(tmp_path / "s.py", "import beta\nprint(beta.VERSION)\n", ["beta"])
    with serve_index(wheelhouse) as (url, requests):
        got = run_runner("run", str(script), env={"PIP_INDEX_URL": url})
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == "1.0"
    assert any(r.startswith("/simple/beta") for r in requests)


def test_cli_exit_status_of_a_command_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """A command ending in typer.Exit(n) (e.g. the Windows child's status) exits with n."""
    import typer

    from runner import cli

    @cli.app.command("exit-with-test-status")
    def _exit_with() -> None:
        raise typer.Exit(7)

    monkeypatch.setattr(sys, "argv", ["runner", "exit-with-test-status"])
    try:
        assert cli.main() == 7
    finally:
        cli.app.registered_commands.pop()


def test_unknown_runner_option_is_a_usage_error(tmp_path: Path) -> None:
    script = write_script(tmp_path / "s.py", "print('ran')\n", [])
    got = run_runner("run", "--no-such-flag", str(script))
    assert got.returncode == 2
    assert "no such option: --no-such-flag" in got.stderr
    assert got.stdout == ""


def test_version_flag() -> None:
    from runner import __version__

    for flag in ("--version", "-V"):
        got = run_runner(flag)
        assert got.returncode == 0
        assert got.stdout.strip() == __version__


# ----------------------------------------------------------------------------- the block used


def test_an_unclosed_block_is_ignored_with_a_warning_on_every_run(tmp_path: Path) -> None:
    script = tmp_path / "s.py"
    script.write_text('"""Doc."""\n# /// script\n# dependencies = ["alpha"]\nprint("ran")\n')
    for _ in range(2):  # the second run must not go warm and silent
        got = run_runner("run", str(script))
        assert got.returncode == 0, got.stderr
        assert got.stdout == "ran\n"
        warnings = [line for line in got.stderr.splitlines() if "warning" in line]
        assert len(warnings) == 1, got.stderr
        assert f"{script}:2:" in warnings[0] and "# ///" in warnings[0]
    quiet = run_runner("run", "-q", str(script))
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "ran\n", "")


def test_verbose_names_the_lines_of_the_block_used(tmp_path: Path) -> None:
    script = tmp_path / "s.py"
    script.write_text(
        "import sys\n# /// script\n# dependencies = []\n# ///\n# Prints ran.\nprint('ran')\n"
    )
    got = run_runner("run", "-v", str(script))
    assert got.returncode == 0, got.stderr
    assert "using the script block on lines 2-4" in got.stderr
    assert "warning" not in got.stderr
