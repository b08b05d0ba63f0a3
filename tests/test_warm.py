"""The warm path: stdlib-only launcher, aliases that never pick the wrong environment, leases."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import (
    RUNNER,
    published,
    readline,
    run_runner,
    store_dirs,
    write_fifo,
    write_script,
)

BANNED = (
    "typer",
    "click",
    "packaging",
    "tomllib",
    "filelock",
    "virtualenv",
    "json",
    "pathlib",
    "subprocess",
    "logging",
    "runner.cli",
    "runner.api",
    "dataclasses",
    "typing",
    "inspect",
)


def _imported_modules(importtime_stderr: str) -> set[str]:
    """Modules imported from the moment the `runner` package loads (site-time imports,
    such as an editable install's path finder, belong to the interpreter, not to us)."""
    names: list[str] = []
    for line in importtime_stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.append(line.rsplit("|", 1)[1].strip())
    return set(names[names.index("runner") :]) if "runner" in names else set(names)


def test_warm_launcher_imports_nothing_heavy(tmp_path: Path, offline_wheels: Path) -> None:
    script = write_script(
        tmp_path / "s.py", "import alpha\nprint('warm', alpha.VERSION)\n", ["alpha"]
    )
    assert run_runner("run", str(script)).returncode == 0  # cold: builds, writes the alias
    got = subprocess.run(
        [sys.executable, "-X", "importtime", RUNNER, "run", str(script)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == "warm 1.0"
    imported = _imported_modules(got.stderr)
    assert "runner.launcher" in imported  # the measurement saw the launcher
    assert not imported & set(BANNED), imported & set(BANNED)


def test_fast_path_module_alone_imports_nothing_heavy(tmp_path: Path, offline_wheels: Path) -> None:
    """Without `site` nothing is imported before the launcher: every import is its own."""
    script = write_script(
        tmp_path / "s.py", "import alpha\nprint('warm', alpha.VERSION)\n", ["alpha"]
    )
    assert run_runner("run", str(script)).returncode == 0
    root = Path(__file__).resolve().parent.parent
    code = (
        "import sys\nsys.argv = ['runner', 'run', sys.argv[1]]\n"
        "from runner.launcher import main\nmain()\n"
    )
    got = subprocess.run(
        [sys.executable, "-S", "-X", "importtime", "-c", code, str(script)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(root)},
        check=False,
    )
    assert got.stdout.strip() == "warm 1.0", got.stderr
    names = {
        line.rsplit("|", 1)[1].strip()
        for line in got.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "runner.launcher" in names
    assert not names & set(BANNED), names & set(BANNED)


def test_cold_run_imports_neither_typer_nor_click(tmp_path: Path) -> None:
    """A miss goes from the launcher straight to the core (counter-check: the core really
    ran, and the CLI's own commands still use typer)."""
    script = write_script(tmp_path / "s.py", "print('cold')\n", [])
    got = subprocess.run(
        [sys.executable, "-X", "importtime", RUNNER, "run", str(script)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert got.stdout.strip() == "cold"
    imported = _imported_modules(got.stderr)
    assert {"runner.api", "runner.builder"} <= imported
    # Nothing to install, so nothing to check with packaging either.
    assert not {"typer", "click", "runner.cli", "packaging", "filelock"} & imported
    other = subprocess.run(
        [sys.executable, "-X", "importtime", RUNNER, "cache", "dir"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert other.returncode == 0, other.stderr
    assert "typer" in _imported_modules(other.stderr)


# Runs the console entry point, writing every command runner.proc.run starts to $COMMANDS,
# and after each the modules imported by then.
_RECORD_COMMANDS = """
import os, sys
import runner.proc as proc
original = proc.run
def recorded(cmd, *args, **kwargs):
    with open(os.environ["COMMANDS"], "a") as f:
        f.write(" ".join(cmd) + "\\n")
        f.write("imported " + " ".join(sorted(sys.modules)) + "\\n")
    return original(cmd, *args, **kwargs)
proc.run = recorded
sys.argv = ["runner", *sys.argv[1:]]
from runner.launcher import main
sys.exit(main())
"""

# Modules a cold run of a script with dependencies does without (tests/test_warm.py's list
# of the warm path is longer: packaging and filelock bring logging, inspect, dataclasses).
COLD_BANNED = (
    "typer",
    "click",
    "runner.cli",
    "runner.lifecycle",  # the daily prune is decided with one stat
    "runner.lockfile",  # the script has no lock file
    "importlib.metadata",  # pip's Requires-Python comes from its METADATA
    "configparser",  # no pip configuration file
    "socket",
    "filelock",  # nobody else holds the build lock: a stdlib flock takes it
)
# ... and what it imports only once the installer runs (beside it, `proc.run(meanwhile=)`):
# everyday requirements (`runner.simplereq`) need no `packaging` before that.
BEFORE_INSTALL_BANNED = ("packaging", "concurrent.futures", "csv", "compileall")


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_cold_build_starts_only_the_installer_and_imports_nothing_it_does_not_use(
    tmp_path: Path, offline_wheels: Path, installer: str
) -> None:
    script = write_script(
        tmp_path / "s.py", "import alpha, beta\nprint('cold', beta.VERSION)\n", ["alpha", "beta"]
    )
    commands = tmp_path / "commands"
    run = ["run", "--installer", installer, str(script)]
    got = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", _RECORD_COMMANDS, *run],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COMMANDS": str(commands)},
    )
    assert got.stdout.strip() == "cold 1.0", got.stderr[-2000:]
    imported = _imported_modules(got.stderr)
    assert {"runner.api", "runner.builder"} <= imported  # it did build
    assert not imported & set(COLD_BANNED), imported & set(COLD_BANNED)
    # runner's own interpreter is known in-process: the installer is the only process.
    started, before = commands.read_text().splitlines()
    assert "install" in started
    early = set(before.split()[1:]) & set(BEFORE_INSTALL_BANNED)
    assert not early, early
    assert "packaging.requirements" in imported  # the build's check of what got installed


def test_warm_run_needs_no_index(tmp_path: Path, offline_wheels: Path) -> None:
    script = write_script(tmp_path / "s.py", "import beta\nprint(beta.VERSION)\n", ["beta"])
    assert run_runner("run", str(script)).returncode == 0
    # Take the wheels away and point pip at nothing: the warm run must not care.
    env = {"PIP_NO_INDEX": "", "PIP_FIND_LINKS": "", "RUNNER_NO_FASTPATH": ""}
    got = run_runner("run", str(script), env=env)
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == "1.0"
    assert got.stderr == ""


def test_cold_path_hit_also_needs_no_index(tmp_path: Path, offline_wheels: Path) -> None:
    script = write_script(tmp_path / "s.py", "import beta\nprint(beta.VERSION)\n", ["beta"])
    assert run_runner("run", str(script)).returncode == 0
    got = run_runner("run", str(script), env={"RUNNER_NO_FASTPATH": "1", "PIP_FIND_LINKS": ""})
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == "1.0"


def test_one_character_edit_never_reuses_the_old_alias(
    tmp_path: Path, offline_wheels: Path, cache_dir: Path
) -> None:
    script = write_script(tmp_path / "s.py", "import alpha\nprint(alpha.VERSION)\n", ["alpha>=1.0"])
    assert run_runner("run", str(script)).returncode == 0
    aliases = set((cache_dir / "scripts").iterdir())
    # `>=1.0` -> `<=1.0`: one character, a different environment.
    script.write_text(script.read_text().replace(">=1.0", "<=1.0"))
    got = run_runner("run", str(script))
    assert got.returncode == 0, got.stderr
    assert "building an environment" in got.stderr
    assert len(set((cache_dir / "scripts").iterdir()) - aliases) == 1
    assert len(published(cache_dir)) == 2


def test_stale_alias_falls_back_to_the_cold_path(
    tmp_path: Path, offline_wheels: Path, cache_dir: Path
) -> None:
    script = write_script(tmp_path / "s.py", "import alpha\nprint(alpha.VERSION)\n", ["alpha"])
    assert run_runner("run", str(script)).returncode == 0
    import shutil

    for env in store_dirs(cache_dir):  # the environment vanishes behind the alias's back
        shutil.rmtree(env)
    got = run_runner("run", str(script))
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == "1.0"
    assert "building an environment" in got.stderr


def test_running_script_holds_a_shared_lease(tmp_path: Path, cache_dir: Path) -> None:
    fifo = tmp_path / "release"
    os.mkfifo(fifo)
    script = write_script(
        tmp_path / "hold.py", f"print('started', flush=True)\nopen({str(fifo)!r}).read()\n", []
    )
    proc = subprocess.Popen([RUNNER, "run", str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert readline(proc.stdout).strip() == "started"
    except BaseException:
        proc.kill()
        proc.communicate(timeout=60)
        raise
    (env_dir,) = store_dirs(cache_dir)
    lease = os.open(env_dir / "runner-lease", os.O_RDONLY)
    try:
        try:
            fcntl.flock(lease, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held = False
        except BlockingIOError:
            held = True
        assert held, "the running script must hold its lease"
        write_fifo(fifo, "go")  # the script goes on and ends
        proc.communicate(timeout=60)
        fcntl.flock(lease, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released with the script
    finally:
        os.close(lease)
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=60)


def test_last_use_is_recorded_at_most_hourly(tmp_path: Path, cache_dir: Path) -> None:
    script = write_script(tmp_path / "s.py", "print('x')\n", [])
    assert run_runner("run", str(script)).returncode == 0
    (env_dir,) = store_dirs(cache_dir)
    lease = env_dir / "runner-lease"
    two_hours_ago = time.time() - 7200
    os.utime(lease, (two_hours_ago, two_hours_ago))
    assert run_runner("run", str(script)).returncode == 0
    touched = lease.stat().st_mtime
    assert touched > two_hours_ago + 3600
    recent_ns = time.time_ns() - 60 * 10**9
    os.utime(lease, ns=(recent_ns, recent_ns))
    assert run_runner("run", str(script)).returncode == 0
    # Within the hour: no write on the warm path (integer nanoseconds: exact).
    assert lease.stat().st_mtime_ns == recent_ns


def test_interpreter_change_invalidates_the_alias(tmp_path: Path, cache_dir: Path) -> None:
    """The alias records the interpreter's stat: a changed interpreter goes cold.

    The interpreter is a copy in tmp (a CPython binary finds its standard library through
    its build prefix), so changing its mtime disturbs nothing else on the machine.
    """
    py = tmp_path / "bin" / "python3"
    py.parent.mkdir()
    shutil.copy2(os.path.realpath(sys.executable), py)
    script = write_script(tmp_path / "s.py", "import sys\nprint('ok')\n", [])
    assert run_runner("run", "--python", str(py), str(script)).returncode == 0
    (alias,) = (cache_dir / "scripts").iterdir()
    assert any(line.startswith("stat\t") for line in alias.read_text().splitlines())
    from tests import warmpath

    digest = alias.name
    assert warmpath.read_alias(str(cache_dir), digest) is not None
    stat_paths = [
        x.split("\t")[1] for x in alias.read_text().splitlines() if x.startswith("stat\t")
    ]
    assert str(py) in stat_paths
    assert all(p.startswith(str(tmp_path)) for p in stat_paths), stat_paths  # nothing real
    st = os.stat(py)
    os.utime(py, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert warmpath.read_alias(str(cache_dir), digest) is None
    # The next run notices, goes cold and works again.
    got = run_runner("run", "--python", str(py), str(script))
    assert got.returncode == 0 and got.stdout == "ok\n", got.stderr
