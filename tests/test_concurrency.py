"""Real processes racing on one cache, and builds killed at every stage."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import RUNNER, published, readline, run_runner, store_dirs, write_script
from tests.wheels import serve_index

# Each child reports "ready" on one FIFO, then blocks reading another until the test closes
# its write end: that close releases all of them at the same instant. Then each child
# becomes `runner run ...` (exec: same process).
_BARRIER = (
    "import os, sys\n"
    "go = os.open(sys.argv[1], os.O_RDONLY)\n"
    "ready = os.open(sys.argv[2], os.O_WRONLY)\n"
    "os.write(ready, b'.')\n"
    "os.close(ready)\n"
    "os.read(go, 1)\n"
    "os.close(go)\n"
    "os.execv(sys.argv[3], sys.argv[3:])\n"
)


def start_at_barrier(tmp: Path, commands: list[list[str]]) -> list[subprocess.Popen[str]]:
    go_path, ready_path = tmp / "go", tmp / "ready"
    os.mkfifo(go_path)
    os.mkfifo(ready_path)
    # O_RDWR opens never block; holding the write end of `go` keeps the children waiting.
    go = os.open(go_path, os.O_RDWR)
    ready = os.open(ready_path, os.O_RDWR)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _BARRIER, str(go_path), str(ready_path), *cmd],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
        )
        for cmd in commands
    ]
    arrived = 0
    deadline = time.monotonic() + 120
    while arrived < len(procs):
        # A child that dies before arriving must fail the test, not hang it.
        readable, _, _ = select.select([ready], [], [], max(0.0, deadline - time.monotonic()))
        if not readable:
            for p in procs:
                p.kill()
            raise AssertionError(f"only {arrived} of {len(procs)} processes reached the barrier")
        arrived += len(os.read(ready, len(procs) - arrived))
    os.close(ready)
    os.close(go)  # no writer left: every child's read returns at once
    return procs


def finish(procs: list[subprocess.Popen[str]]) -> list[tuple[int, str, str]]:
    results = []
    for p in procs:
        out, err = p.communicate(timeout=240)
        results.append((p.returncode, out, err))
    return results


def test_twenty_simultaneous_cold_runs_build_once(
    tmp_path: Path, offline_wheels: Path, cache_dir: Path
) -> None:
    script = write_script(
        tmp_path / "s.py", "import alpha, beta, sys\nprint(alpha.VERSION, sys.argv[1])\n", ["beta"]
    )
    procs = start_at_barrier(tmp_path, [[RUNNER, "run", str(script), str(i)] for i in range(20)])
    results = finish(procs)
    for i, (code, out, err) in enumerate(results):
        assert code == 0, err
        assert out.split() == ["1.0", str(i)]
    assert len(published(cache_dir)) == 1
    assert len(store_dirs(cache_dir)) == 1
    builds = sum("building an environment" in err for _, _, err in results)
    assert builds == 1


def test_two_dependency_sets_ten_runs_each(
    tmp_path: Path, offline_wheels: Path, cache_dir: Path
) -> None:
    a = write_script(tmp_path / "a.py", "import alpha\nprint('a')\n", ["alpha"])
    b = write_script(tmp_path / "b.py", "import gamma\nprint('b')\n", ["gamma"])
    commands = [[RUNNER, "run", str(a if i % 2 else b)] for i in range(20)]
    results = finish(start_at_barrier(tmp_path, commands))
    assert all(code == 0 for code, _, _ in results), [e for c, _, e in results if c]
    assert sorted(out.strip() for _, out, _ in results) == ["a"] * 10 + ["b"] * 10
    assert len(published(cache_dir)) == 2
    assert len(store_dirs(cache_dir)) == 2


# --------------------------------------------------------------------------- kills


def _start_build(script: Path, extra_env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [RUNNER, "run", str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **extra_env},
        start_new_session=True,  # its own process group: we kill pip along with it
    )


def _kill_group(proc: subprocess.Popen[str]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    proc.communicate(timeout=60)


def _wait_for_checkpoint(fifo: Path, proc: subprocess.Popen[str]) -> int:
    """Wait until the build reaches its checkpoint (it writes its pid into the FIFO)."""
    if not fifo.exists():
        os.mkfifo(fifo)
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    assert proc.stderr is not None
    deadline = time.monotonic() + 180
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("the build did not reach its checkpoint within 180 s")
            ready, _, _ = select.select([fd, proc.stderr], [], [], min(left, 1.0))
            if fd in ready:
                data = os.read(fd, 64)
                if data:
                    return int(data)
            if proc.stderr in ready and not proc.stderr.readline() and proc.poll() is not None:
                raise AssertionError("the build ended before reaching its checkpoint")
    finally:
        os.close(fd)


class _EventList(list[str]):
    """A request log that signals when a wheel download starts."""

    def __init__(self) -> None:
        super().__init__()
        self.download = threading.Event()

    def append(self, item: str) -> None:
        super().append(item)
        if item.startswith("/files/"):
            self.download.set()


@pytest.mark.parametrize("stage", ["created", "installed", "compiled", "publish"])
def test_build_killed_at_a_checkpoint_is_never_trusted(
    tmp_path: Path, offline_wheels: Path, cache_dir: Path, stage: str
) -> None:
    script = write_script(tmp_path / "s.py", "import beta\nprint(beta.VERSION)\n", ["beta"])
    hang_file = tmp_path / "hung"
    os.mkfifo(hang_file)
    proc = _start_build(
        script, {"RUNNER_TEST_HANG_AT": stage, "RUNNER_TEST_HANG_FILE": str(hang_file)}
    )
    assert _wait_for_checkpoint(hang_file, proc) == proc.pid
    _kill_group(proc)
    leftovers = store_dirs(cache_dir)
    assert len(leftovers) == 1
    assert published(cache_dir) == []  # nothing a later run could trust
    assert list((cache_dir / "scripts").iterdir()) == []
    got = run_runner("run", str(script))
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == "1.0"
    target = (cache_dir / "envs" / published(cache_dir)[0].name).resolve()
    assert target != leftovers[0].resolve()
    assert json.loads((target / "runner-env.json").read_text())["requirements"] == ["beta"]


def test_build_killed_while_downloading(tmp_path: Path, wheelhouse: Path, cache_dir: Path) -> None:
    """A slow local index holds pip mid-download; the kill lands during installation."""
    script = write_script(tmp_path / "s.py", "import beta\nprint(beta.VERSION)\n", ["beta"])
    log = _EventList()
    with serve_index(wheelhouse, delay=30, requests=log) as (url, _):
        proc = _start_build(script, {"PIP_INDEX_URL": url})
        assert log.download.wait(timeout=120), proc.stderr
        _kill_group(proc)
    assert published(cache_dir) == []
    assert len(store_dirs(cache_dir)) == 1
    with serve_index(wheelhouse) as (url, _):
        got = run_runner("run", str(script), env={"PIP_INDEX_URL": url})
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == "1.0"
    assert len(published(cache_dir)) == 1


def test_waiting_process_says_it_waits(
    tmp_path: Path, offline_wheels: Path, cache_dir: Path
) -> None:
    script = write_script(tmp_path / "s.py", "import alpha\nprint('ok')\n", ["alpha"])
    hang_file = tmp_path / "hung"
    os.mkfifo(hang_file)
    builder = _start_build(
        script, {"RUNNER_TEST_HANG_AT": "installed", "RUNNER_TEST_HANG_FILE": str(hang_file)}
    )
    _wait_for_checkpoint(hang_file, builder)
    waiter = subprocess.Popen(
        [RUNNER, "run", str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        line = readline(waiter.stderr)
    except AssertionError:
        waiter.kill()
        _kill_group(builder)
        raise
    assert "waiting for another build" in line
    assert f"pid {builder.pid}" in line
    _kill_group(builder)  # the holder dies: its lock is released, the waiter builds
    out, err = waiter.communicate(timeout=120)
    assert waiter.returncode == 0, err
    assert out.strip() == "ok"


def _readline(proc: subprocess.Popen[str], timeout: float) -> str:
    """One line of the process's stderr, or fail after `timeout` seconds."""
    import select

    assert proc.stderr is not None
    ready, _, _ = select.select([proc.stderr], [], [], timeout)
    assert ready, f"no output within {timeout} s"
    return proc.stderr.readline()


def test_only_one_of_a_burst_runs_the_cold_path(
    tmp_path: Path, offline_wheels: Path, cache_dir: Path
) -> None:
    """Copies that miss queue before importing anything heavy; one imports the core and
    builds, the others take the warm path to what it published."""
    script = write_script(
        tmp_path / "s.py", "import alpha\nprint('ok', alpha.VERSION)\n", ["alpha"]
    )
    n = 12
    procs = start_at_barrier(
        tmp_path, [[sys.executable, "-X", "importtime", RUNNER, "run", str(script)]] * n
    )
    results = finish(procs)
    assert [(code, out) for code, out, _ in results] == [(0, "ok 1.0\n")] * n, results
    cold = [err for _, _, err in results if "| runner.api" in err]
    assert len(cold) == 1, [err.count("runner.api") for _, _, err in results]
    assert len(published(cache_dir)) == 1


def test_a_failed_build_fails_its_queued_copies_at_once(tmp_path: Path, cache_dir: Path) -> None:
    """The copies queued behind a failing build fail with its message right after it,
    without each running the installer again."""
    wheels = tmp_path / "wheels"
    from tests.wheels import make_wheel

    make_wheel(wheels, "beta", "1.0", requires=["alpha>=1.0"])  # alpha is missing
    script = write_script(tmp_path / "s.py", "import beta\n", ["beta"])
    with serve_index(wheels, delay=2.0) as (url, requests):
        args = [RUNNER, "run", "--index-url", url, str(script)]
        holder = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not any(r.startswith("/files/") for r in requests):  # it is installing
            assert holder.poll() is None and time.monotonic() < deadline, "no download"
            time.sleep(0.02)
        waiters = [
            subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(4)
        ]
        for waiter in waiters:
            line = _readline(waiter, 60)
            assert "waiting for another build of this environment" in line
            assert f"pid {holder.pid}" in line
        _, holder_err = holder.communicate(timeout=120)
        outcomes = [w.communicate(timeout=60) for w in waiters]
    assert holder.returncode == 104, holder_err
    error_line = next(line for line in holder_err.splitlines() if "runner: error:" in line)
    for waiter, (_, err) in zip(waiters, outcomes, strict=True):
        assert waiter.returncode == 104, err
        assert error_line in err
        assert "building an environment" not in err
    assert len(list((cache_dir / "logs").glob("*.log"))) == 1  # one installer run in all
