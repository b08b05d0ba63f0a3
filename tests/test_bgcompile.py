"""Large environments are published before their bytecode exists; a detached job compiles it.

Real processes throughout: `runner run`, the background job it starts, scripts, SIGKILL.
The job is stopped at its checkpoint (RUNNER_TEST_HANG_AT=background-compile), where it holds
its claim and the environment's lease but has compiled nothing yet.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import marshal
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner import alias
from runner.builder import BACKGROUND_MIN_FILES
from tests.conftest import RUNNER, published, read_fifo, readline, run_runner, write_script
from tests.wheels import make_wheel

pytestmark = pytest.mark.timeout(300)

PENDING = "runner-bytecode-pending"
MODULES = BACKGROUND_MIN_FILES + 50
HANG = "background-compile"
BODY = "import big.p1.m1\nprint('ok', big.p1.m1.VALUE)\n"


@pytest.fixture(scope="module")
def big_wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`big`: more modules than the background threshold, in ten subpackages; `crashy`: a
    .pth file that ends every isolated (`-I`) interpreter at start-up, as the compile
    program's is, while scripts (not isolated) run normally."""
    d = tmp_path_factory.mktemp("big-wheels")
    modules = {f"big.p{i % 10}.m{i}": f"VALUE = {i}\n" for i in range(MODULES)}
    modules["big.__init__"] = ""
    modules.update({f"big.p{i}.__init__": "" for i in range(10)})
    make_wheel(d, "big", "1.0", modules=modules)
    make_wheel(d, "tiny", "1.0")
    make_wheel(
        d,
        "crashy",
        "1.0",
        modules={"crashy": "X = 1\n"},
        other_files={"crashy.pth": "import os, sys; sys.flags.isolated and os._exit(3)\n"},
    )
    return d


@pytest.fixture
def big_index(monkeypatch: pytest.MonkeyPatch, big_wheels: Path) -> Path:
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(big_wheels))
    return big_wheels


def the_env(cache: Path) -> Path:
    (pointer,) = published(cache)
    return pointer.resolve()


def the_env_of(cache: Path, script: Path) -> Path:
    """The environment the alias of `script` names."""
    for path in (cache / "scripts").iterdir():
        parsed = alias.parse(path.read_text())
        if parsed is not None and str(script.resolve()) in parsed.scripts:
            return Path(parsed.env_dir)
    raise AssertionError(f"no alias for {script}")


def site_packages(env_dir: Path) -> Path:
    (site,) = env_dir.glob("lib/python*/site-packages")
    return site


def uncompiled(env_dir: Path) -> list[Path]:
    """The environment's `.py` files without a plain `.pyc` of this interpreter."""
    tag = sys.implementation.cache_tag
    return [
        source
        for source in site_packages(env_dir).rglob("*.py")
        if not (source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc").exists()
    ]


def snapshot(env_dir: Path) -> dict[str, tuple[int, int, int]]:
    """Every entry of the environment: (inode, mtime, size)."""
    found = {}
    for path in [env_dir, *env_dir.rglob("*")]:
        st = os.lstat(path)
        found[str(path)] = (st.st_ino, st.st_mtime_ns, st.st_size)
    return found


def wait_for_bytecode(env_dir: Path, timeout: float = 120) -> None:
    """Until no job holds the pending marker (a blocking flock: an event, not a poll)."""
    try:
        fd = os.open(env_dir / PENDING, os.O_RDONLY)
    except FileNotFoundError:
        return
    got = threading.Event()

    def wait() -> None:
        fcntl.flock(fd, fcntl.LOCK_SH)
        got.set()

    threading.Thread(target=wait, daemon=True).start()
    try:
        assert got.wait(timeout), "the background compile did not end"
    finally:
        os.close(fd)


def alias_target(cache: Path) -> str | None:
    """What the warm path would follow for the one alias in the cache (None: not valid)."""
    (path,) = (cache / "scripts").iterdir()
    return alias.read(str(path), os.environ, int(time.time()))


def logs(cache: Path) -> str:
    """The cache's logs: the build's, and its background compile's (the same file when
    both start within one second)."""
    return "".join(p.read_text() for p in sorted((cache / "logs").iterdir()))


def lease_busy(env_dir: Path) -> bool:
    fd = os.open(env_dir / "runner-lease", os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rpartition(")")[2].split()[1])


@contextlib.contextmanager
def hung_job(fifo: Path) -> Iterator[list[int]]:
    """Kill the job stopped at its checkpoint when the test ends, whatever happened."""
    pids: list[int] = []
    try:
        yield pids
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def kill_job(pid: int) -> None:
    """SIGKILL the job and wait until it has ended (it is not our child): a niced process on
    a busy machine may take a while to run its exit, and its locks go only then."""
    import select

    pidfd = os.pidfd_open(pid)
    try:
        os.kill(pid, signal.SIGKILL)
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        assert poller.poll(60_000), f"job {pid} did not end after SIGKILL"
    finally:
        os.close(pidfd)


def assert_yields_the_processor(pid: int) -> None:
    """The job runs at nice 10, and so does its scheduling group where Linux gives its
    session one (autogroup): nice alone would not keep it from taking half the processor
    from the scripts of other sessions."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        nice = int(f.read().rpartition(")")[2].split()[16])  # field 19 of the whole line
    assert nice == 10
    try:
        with open(f"/proc/{pid}/autogroup", encoding="ascii") as f:
            group = f.read()
    except OSError:
        return  # no autogroup here
    assert group.split()[-2:] == ["nice", "10"], group


def assert_warm_and_writes_nothing(script: Path, env_dir: Path, cache: Path) -> None:
    """A run with PYTHONDONTWRITEBYTECODE=1 takes the warm path (-v says nothing: only the
    cold path talks) and changes nothing in the environment: everything was compiled."""
    before = snapshot(env_dir)
    got = run_runner("run", "-v", str(script), env={"PYTHONDONTWRITEBYTECODE": "1"})
    assert got.returncode == 0, got.stderr
    assert got.stdout.startswith("ok")
    assert got.stderr == ""
    assert alias_target(cache) == str(env_dir)
    assert snapshot(env_dir) == before


def test_the_script_runs_before_the_compile_ends_and_every_later_run_is_warm(
    tmp_path: Path, cache_dir: Path, big_index: Path
) -> None:
    body = "import os, sys\n" + BODY + "print(os.getpid(), flush=True)\nsys.stdin.readline()\n"
    script = write_script(tmp_path / "s.py", body, ["big"])
    fifo = tmp_path / "hang"
    os.mkfifo(fifo)
    env = dict(os.environ, RUNNER_TEST_HANG_AT=HANG, RUNNER_TEST_HANG_FILE=str(fifo))
    run = subprocess.Popen(
        [RUNNER, "run", "-v", str(script)],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with hung_job(fifo) as jobs:
        try:
            jobs.append(int(read_fifo(fifo)))  # the job holds claim and lease, compiles nothing
            assert readline(run.stdout) == "ok 1\n"  # ... while the script runs
            script_pid = int(readline(run.stdout))
            # Detached: the job is not a child of the script (which may wait for children).
            assert parent_of(jobs[0]) != script_pid
            assert_yields_the_processor(jobs[0])
            _, err = run.communicate("\n", timeout=120)
        finally:
            run.kill()
            run.wait()
        assert run.returncode == 0, err
        assert f"compiling the bytecode in the background (pid {jobs[0]}" in err
        env_dir = the_env(cache_dir)
        assert (env_dir / PENDING).exists()
        missing = uncompiled(env_dir)
        assert len(missing) >= MODULES
        # The script wrote its own bytecode (PYTHONDONTWRITEBYTECODE unset), through the
        # __pycache__ directories made before publish: the alias is still valid.
        assert len(missing) == len(list(site_packages(env_dir).rglob("*.py"))) - 3
        assert alias_target(cache_dir) == str(env_dir)
        # Only the __pycache__ directly in a package of site-packages was made before
        # publish (the alias would notice it); the script made big/p1's, nobody big/p2's.
        big = site_packages(env_dir) / "big"
        assert (big / "__pycache__").is_dir() and (big / "p1" / "__pycache__").is_dir()
        assert not (big / "p2" / "__pycache__").exists()

        # Cleanup meanwhile skips the environment (the job's lease) and does not wait.
        assert lease_busy(env_dir)
        for command in (["prune", "--older-than", "0s"], ["clean"]):
            got = run_runner("cache", *command, "--json", timeout=60)
            assert got.returncode == 0, got.stderr
            kept = json.loads(got.stdout)["kept"]
            assert [(k["path"], k["reason"]) for k in kept] == [(str(env_dir), "in use")]
        assert env_dir.is_dir()

        # Never two jobs for one environment: another start finds the marker held.
        again = subprocess.run(
            [sys.executable, "-m", "runner.bgcompile", str(env_dir)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert again.returncode == 0, again.stderr
        assert "a job is at it" in again.stderr
        cold = run_runner("run", "-v", str(script), env={"RUNNER_NO_FASTPATH": "1"}, input="\n")
        assert cold.returncode == 0, cold.stderr
        assert "is being compiled in the background" in cold.stderr
        assert "compiling the bytecode in the background" not in cold.stderr
        assert len(uncompiled(env_dir)) == len(missing)

        # Killed: the environment still works, and the next run starts the compile again.
        kill_job(jobs[0])
        got = run_runner("run", "-v", str(script), input="\n")
        assert got.returncode == 0, got.stderr
        assert got.stdout.startswith("ok 1\n")
        assert "did not finish (it was stopped); starting it again" in got.stderr
        wait_for_bytecode(env_dir)
    assert not (env_dir / PENDING).exists()
    assert uncompiled(env_dir) == []
    # A restarted job rewrites every .pyc, the script's own too: environment-relative names.
    (own,) = (site_packages(env_dir) / "big" / "p1" / "__pycache__").glob("m1.*.pyc")
    code = marshal.loads(own.read_bytes()[16:])
    assert not os.path.isabs(code.co_filename), code.co_filename
    assert_warm_and_writes_nothing(script, env_dir, cache_dir)


def test_a_finished_background_compile_leaves_every_later_run_warm(
    tmp_path: Path, cache_dir: Path, big_index: Path
) -> None:
    script = write_script(tmp_path / "s.py", BODY, ["big"])
    got = run_runner("run", "-q", str(script))
    assert got.returncode == 0, got.stderr
    assert got.stdout == "ok 1\n"
    assert got.stderr == ""  # -q: nothing about the background compile either
    env_dir = the_env(cache_dir)
    wait_for_bytecode(env_dir)
    assert not (env_dir / PENDING).exists()
    assert uncompiled(env_dir) == []
    assert alias_target(cache_dir) == str(env_dir)
    assert_warm_and_writes_nothing(script, env_dir, cache_dir)
    assert f"the bytecode of {env_dir} is complete" in logs(cache_dir)


def test_the_job_lets_the_script_that_started_it_finish_first(
    tmp_path: Path, cache_dir: Path, big_index: Path
) -> None:
    """The first run's imports do not compete with the compile (it waits for the run's
    process, which became the script, to end: a pidfd; at most WAIT_FOR_SCRIPT s)."""
    script = write_script(tmp_path / "s.py", BODY + "import sys\nsys.stdin.readline()\n", ["big"])
    run = subprocess.Popen(
        [RUNNER, "run", str(script)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert readline(run.stdout) == "ok 1\n"
        env_dir = the_env(cache_dir)
        # Well within WAIT_FOR_SCRIPT: only the script's own imports have bytecode.
        assert len(uncompiled(env_dir)) == len(list(site_packages(env_dir).rglob("*.py"))) - 3
        assert (env_dir / PENDING).exists()
        _, err = run.communicate("\n", timeout=120)
    finally:
        run.kill()
        run.wait()
    assert run.returncode == 0, err
    wait_for_bytecode(env_dir)
    assert uncompiled(env_dir) == []


@pytest.mark.parametrize("command", ["sync", "verify"])
def test_sync_and_verify_repair_finish_a_killed_compile(
    tmp_path: Path, cache_dir: Path, big_index: Path, command: str
) -> None:
    script = write_script(tmp_path / "s.py", BODY, ["big"])
    fifo = tmp_path / "hang"
    os.mkfifo(fifo)
    env = dict(os.environ, RUNNER_TEST_HANG_AT=HANG, RUNNER_TEST_HANG_FILE=str(fifo))
    with hung_job(fifo) as jobs:
        run = subprocess.Popen(
            [RUNNER, "run", str(script)], env=env, stdout=subprocess.PIPE, text=True
        )
        try:
            jobs.append(int(read_fifo(fifo)))
            out, _ = run.communicate(timeout=120)
        finally:
            run.kill()
            run.wait()
        assert out == "ok 1\n"
        kill_job(jobs[0])
    env_dir = the_env(cache_dir)
    assert (env_dir / PENDING).exists()
    if command == "sync":
        got = run_runner("sync", "-v", str(script))
        assert f"the bytecode of {env_dir} is complete" in got.stderr
    else:
        got = run_runner("cache", "verify", "--repair", "--json")
        (check,) = json.loads(got.stdout)["environments"]
        assert (check["ok"], check["action"]) == (True, "compiled its bytecode")
    assert got.returncode == 0, got.stderr
    assert not (env_dir / PENDING).exists()
    assert uncompiled(env_dir) == []
    assert_warm_and_writes_nothing(script, env_dir, cache_dir)


def test_a_failing_compile_is_not_a_failure(
    tmp_path: Path, cache_dir: Path, big_index: Path
) -> None:
    script = write_script(tmp_path / "s.py", BODY, ["big", "crashy"])
    got = run_runner("run", str(script), env={"PYTHONDONTWRITEBYTECODE": "1"})
    assert got.returncode == 0, got.stderr
    assert got.stdout == "ok 1\n"
    env_dir = the_env(cache_dir)
    wait_for_bytecode(env_dir)
    assert not (env_dir / PENDING).exists()  # done with: no run starts it again
    assert len(uncompiled(env_dir)) >= MODULES
    assert "could not compile the environment's bytecode" in logs(cache_dir)
    got = run_runner("run", "-v", str(script))
    assert got.returncode == 0, got.stderr
    assert got.stderr == ""  # warm


def test_a_compile_that_never_finishes_is_given_up(
    tmp_path: Path, cache_dir: Path, big_index: Path
) -> None:
    script = write_script(tmp_path / "s.py", BODY, ["big"])
    assert run_runner("run", str(script)).returncode == 0
    env_dir = the_env(cache_dir)
    wait_for_bytecode(env_dir)
    (env_dir / PENDING).write_text("3")  # three starts, none of which finished
    got = run_runner("run", "-v", str(script))
    assert got.returncode == 0, got.stderr
    assert "not compiling the bytecode of" in got.stderr
    assert not (env_dir / PENDING).exists()
    assert run_runner("run", "-v", str(script)).stderr == ""  # warm again


def test_a_variant_links_what_the_background_compile_recorded_and_compiles_before_publish(
    tmp_path: Path, cache_dir: Path, big_index: Path
) -> None:
    """The background job records what it compiled in the bytecode index (runner.pycindex),
    as a build does; a variant then has few modules left to compile, so it compiles them
    before publish and its first run finds everything compiled."""
    first = write_script(tmp_path / "a.py", BODY, ["big"])
    assert run_runner("run", str(first)).returncode == 0
    wait_for_bytecode(the_env(cache_dir))
    assert len(list((cache_dir / "files" / "pyc").iterdir())) >= MODULES
    variant = write_script(tmp_path / "b.py", BODY, ["big", "tiny"])
    got = run_runner("run", "-v", str(variant))
    assert got.returncode == 0, got.stderr
    assert got.stdout == "ok 1\n"
    assert "in the background" not in got.stderr
    linked = re.search(r"bytecode index: (\d+) of \d+ files' bytecode linked", got.stderr)
    assert linked is not None and int(linked.group(1)) >= MODULES, got.stderr
    (env_dir,) = {p.resolve() for p in published(cache_dir)} - {the_env_of(cache_dir, first)}
    assert not (env_dir / PENDING).exists()
    assert uncompiled(env_dir) == []


def test_small_environments_are_compiled_before_publish(
    tmp_path: Path, cache_dir: Path, offline_wheels: Path
) -> None:
    script = write_script(tmp_path / "s.py", "import alpha\nprint('ok')\n", ["alpha"])
    got = run_runner("run", "-v", str(script))
    assert got.returncode == 0, got.stderr
    assert "in the background" not in got.stderr
    env_dir = the_env(cache_dir)
    assert not (env_dir / PENDING).exists()
    assert uncompiled(env_dir) == []


# In a session of its own (as a detached job is): first a process of that session whose
# parent shares it (a shell's child), then the session's own leader, lower their priority.
_YIELD_IN_A_SESSION = """
import subprocess, sys
from runner import proc
child = "from runner import proc; proc.yield_processor(10); "
child += "print(open('/proc/self/autogroup').read())"
got = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=60)
print(got.stdout.strip())
proc.yield_processor(10)
print(open("/proc/self/autogroup").read().strip())
"""


def test_yield_processor_renices_only_a_session_of_its_own() -> None:
    """The scheduling group is the whole session's: a process whose parent is in its
    session (started from a shell) must not lower the shell's group, only its own nice."""
    if not os.path.exists("/proc/self/autogroup"):
        pytest.skip("no autogroup here")
    got = subprocess.run(
        [sys.executable, "-c", _YIELD_IN_A_SESSION],
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,
        check=False,
    )
    assert got.returncode == 0, got.stderr
    from_shell, own_session = got.stdout.splitlines()
    assert from_shell.split()[-2:] == ["nice", "0"], from_shell
    assert own_session.split()[-2:] == ["nice", "10"], own_session
