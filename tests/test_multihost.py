"""Several hosts, one cache: each simulated host is a UTS namespace with its own hostname.

Real processes on "host-a", "host-b", ... share one cache directory, as the nodes of a
cluster share a cache on NFS, Lustre or GPFS, with RUNNER_LOCK=soft (marker-file leases
naming pid and host) and with native locks. The namespaces change only the host name, so
a soft lock cannot tell whether another host's holder lives: it must wait for the lease.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from tests.cluster_support import on_host, unshare_unavailable
from tests.conftest import RUNNER, published, store_dirs, write_script
from tests.wheels import serve_index

_WHY_NOT = unshare_unavailable()
pytestmark = pytest.mark.skipif(_WHY_NOT is not None, reason=_WHY_NOT or "")

# Soft lease (RUNNER_LOCK_LEASE, the same on every host): a holder refreshes its marker every
# third of it; another host takes over a marker unchanged for this long. Short where a test
# waits for a takeover; long elsewhere, so a busy machine cannot delay a heartbeat that much.
LEASE = 3.0
LONG_LEASE = 30.0
# What the takeover may take beyond the lease on a busy machine: polling and process start.
SLACK = 6.0

# The task checks, before anything else, that its environment is complete: published with a
# manifest, and every file each installed distribution's RECORD names is present.
TASK = """\
import os, socket, sys
from importlib import metadata

assert os.path.exists(os.path.join(sys.prefix, "runner-env.json")), "no manifest"
for dist in metadata.distributions():
    if str(dist.locate_file("")).startswith(sys.prefix):
        for name in dist.files or ():
            assert dist.locate_file(name).exists(), f"half-built: {name} is missing"
import beta
print(socket.gethostname(), sys.prefix, flush=True)
if len(sys.argv) > 1:  # hold the environment until told to finish
    print("ready", flush=True)
    sys.stdin.readline()
    import alpha
    print("still intact", alpha.VERSION, flush=True)
"""

# Runs N copies of a command at once on its host; their stderr goes to the driver's (one
# stream, line by line), their stdout is collected and printed as JSON at the end.
DRIVER = """\
import json, subprocess, sys
n, argv = int(sys.argv[1]), sys.argv[2:]
procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) for _ in range(n)]
print(json.dumps([[p.communicate(timeout=300)[0], p.returncode] for p in procs]))
"""


@pytest.fixture(params=["soft", "native"])
def lock_env(request: pytest.FixtureRequest) -> dict[str, str]:
    if request.param == "soft":
        return {"RUNNER_LOCK": "soft", "RUNNER_LOCK_LEASE": str(LONG_LEASE)}
    return {}


class Lines:
    """Lines of a stream, each with the time it arrived, read by a thread (never blocks)."""

    def __init__(self, stream: IO[str]):
        self.queue: queue.Queue[tuple[float, str]] = queue.Queue()
        self.seen: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.queue.put((time.monotonic(), line))

    def wait_for(self, text: str, timeout: float) -> float:
        """The arrival time of the first line containing `text`."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                at, line = self.queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {text!r} within {timeout}s; saw {self.seen}") from None
            self.seen.append(line)
            if text in line:
                return at

    def none_within(self, text: str, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                _, line = self.queue.get(timeout=left)
            except queue.Empty:
                return
            self.seen.append(line)
            assert text not in line, self.seen

    def rest(self) -> str:
        self.thread.join(timeout=60)
        while not self.queue.empty():
            self.seen.append(self.queue.get()[1])
        return "".join(self.seen)


def _host_env(index: str, extra: dict[str, str]) -> dict[str, str]:
    return dict(os.environ, PIP_INDEX_URL=index, **extra)


def _start_host(
    host: str, copies: int, argv: list[str], env: dict[str, str]
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        on_host(host, [sys.executable, "-c", DRIVER, str(copies), *argv]),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _results(host: subprocess.Popen[str], stderr: str) -> list[tuple[str, int]]:
    """The copies' (stdout, status) once the host's driver has ended (its JSON is small)."""
    assert host.wait(timeout=300) == 0, stderr
    assert host.stdout is not None
    return [(text, rc) for text, rc in json.loads(host.stdout.read())]


def _check_tasks(results: list[tuple[str, int]], host: str, stderr: str) -> set[str]:
    """Every copy succeeded on `host`; the environments they ran in."""
    prefixes = set()
    for text, rc in results:
        assert rc == 0, stderr
        name, prefix = text.split()
        assert name == host
        prefixes.add(prefix)
    return prefixes


@pytest.fixture
def beta_script(tmp_path: Path) -> Path:
    return write_script(tmp_path / "task.py", TASK, ["beta"])


def host_script(directory: Path, host: str) -> Path:
    """The task with the same needs (the same environment) but a block of its own bytes.

    Copies of one script first queue on a per-script lock (`locks/alias-<digest>.lock`,
    flock); different scripts with the same needs meet only on the environment's build lock.
    A script per host makes the hosts meet there, on the soft lock under test, as they do
    on a filesystem whose flock is local to each node.
    """
    spaces = " " * (1 + sum(map(ord, host)) % 7)
    block = f'# /// script\n# dependencies = [{spaces}"beta"]\n# ///\n'
    path = directory / f"task-{host}.py"
    path.write_text(block + TASK)
    return path


@pytest.fixture
def wheels(wheelhouse: Path) -> Path:
    return wheelhouse


@pytest.fixture
def slow_index(wheels: Path) -> Iterator[str]:
    # Each download takes a second: the first build lasts long enough for every copy on
    # every host to arrive while it runs.
    with serve_index(wheels, delay=1.0) as (url, _):
        yield url


def test_one_build_per_key_across_hosts(
    tmp_path: Path, cache_dir: Path, lock_env: dict[str, str], slow_index: str
) -> None:
    env = _host_env(slow_index, lock_env)
    hosts = {
        name: _start_host(name, 4, [RUNNER, "run", str(host_script(tmp_path, name))], env)
        for name in ("host-a", "host-b", "host-c")
    }
    prefixes: set[str] = set()
    stderr = ""
    for name, proc in hosts.items():
        out, err = proc.communicate(timeout=300)
        stderr += err
        assert proc.returncode == 0, err
        results = [(text, rc) for text, rc in json.loads(out)]
        prefixes |= _check_tasks(results, name, err)
    assert "Traceback" not in stderr
    # One environment, built once, and all twelve copies on three hosts ran in it.
    assert [str(p) for p in store_dirs(cache_dir)] == sorted(prefixes)
    assert len(published(cache_dir)) == 1
    assert stderr.count("building an environment") == 1, stderr
    if lock_env:  # a soft lock names the host and pid waited for
        assert "waiting for another build of this environment (pid " in stderr


@contextlib.contextmanager
def hung_build(
    script: Path, wheels: Path, env: dict[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    """A build on host-a that holds the build lock, alive, while its download hangs.

    The whole process group (runner and its installer) is killed on exit at the latest.
    """
    downloading = threading.Event()

    class Requests(list[str]):
        def append(self, path: str) -> None:
            super().append(path)
            if path.startswith("/files/"):
                downloading.set()

    # The installer must wait for the download rather than time out and fail the build.
    patient = {**env, "PIP_TIMEOUT": "600", "PIP_RETRIES": "0", "UV_HTTP_TIMEOUT": "600"}
    with serve_index(wheels, delay=120.0, requests=Requests()) as (stuck, _):
        builder = subprocess.Popen(
            on_host("host-a", [RUNNER, "run", str(script)]),
            env=_host_env(stuck, patient),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            assert downloading.wait(timeout=120), "host-a never started downloading"
            yield builder
        finally:
            if builder.poll() is None:
                os.killpg(builder.pid, signal.SIGKILL)
            builder.wait(timeout=60)


def test_killed_build_is_taken_over_by_another_host(
    tmp_path: Path, beta_script: Path, cache_dir: Path, lock_env: dict[str, str], wheels: Path
) -> None:
    if lock_env:
        lock_env = {**lock_env, "RUNNER_LOCK_LEASE": str(LEASE)}
    with serve_index(wheels) as (fast, _), hung_build(beta_script, wheels, lock_env) as builder:
        # host-b arrives and waits for host-a's build.
        mine = host_script(tmp_path, "host-b")
        waiter = _start_host("host-b", 3, [RUNNER, "run", str(mine)], _host_env(fast, lock_env))
        assert waiter.stderr is not None
        lines = Lines(waiter.stderr)
        # Its copies queue behind the first, which waits for host-a's build lock.
        lines.wait_for("waiting for another build", timeout=120)
        lines.wait_for("on host-a", timeout=120)
        # Cleanup on host-c leaves host-a's build in progress alone (no grace period).
        swept = subprocess.run(
            on_host("host-c", [RUNNER, "cache", "clean"]),
            env=_host_env(fast, {**lock_env, "RUNNER_PRUNE_GRACE": "0"}),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert swept.returncode == 0, swept.stderr
        [half_built] = store_dirs(cache_dir)
        # While host-a lives its lock is never taken, however many leases pass.
        lines.none_within("building an environment", 2 * LEASE)
        assert store_dirs(cache_dir) == [half_built]
        os.killpg(builder.pid, signal.SIGKILL)
        killed = time.monotonic()
        took_over = lines.wait_for("building an environment", timeout=LEASE + SLACK + 60)
        stderr = lines.rest()
        results = _results(waiter, stderr)
    delay = took_over - killed
    bound = (LEASE if lock_env else 0.0) + SLACK
    print(f"takeover after {delay:.2f}s (bound {bound:.1f}s)")
    assert delay <= bound, f"took over after {delay:.1f}s"
    [used] = _check_tasks(results, "host-b", stderr)
    assert stderr.count("building an environment") == 1, stderr
    # host-a's half-built directory was never published or used by anyone.
    assert used != str(half_built)
    assert not (half_built / "runner-env.json").exists()
    assert [os.path.realpath(p) for p in published(cache_dir)] == [used]


def test_hosts_that_disagree_about_the_lease_get_an_error(
    tmp_path: Path, beta_script: Path, cache_dir: Path, wheels: Path
) -> None:
    soft = {"RUNNER_LOCK": "soft", "RUNNER_LOCK_LEASE": str(LEASE)}
    other = {**soft, "RUNNER_LOCK_LEASE": str(LEASE + 1), "RUNNER_PRUNE_GRACE": "0"}
    with serve_index(wheels) as (fast, _), hung_build(beta_script, wheels, soft):
        run = subprocess.run(
            on_host("host-b", [RUNNER, "run", str(host_script(tmp_path, "host-b"))]),
            env=_host_env(fast, other),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 106, run.stderr
        assert "Traceback" not in run.stderr
        assert "RUNNER_LOCK_LEASE" in run.stderr and "hint:" in run.stderr
        # Cleanup from that host treats the lock as held: host-a's build stays.
        [building] = store_dirs(cache_dir)
        swept = subprocess.run(
            on_host("host-b", [RUNNER, "cache", "clean"]),
            env=_host_env(fast, other),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert swept.returncode == 0 and "Traceback" not in swept.stderr, swept.stderr
        assert store_dirs(cache_dir) == [building]


def test_cleanup_on_one_host_spares_an_env_in_use_on_another(
    beta_script: Path, cache_dir: Path, lock_env: dict[str, str], wheels: Path
) -> None:
    with serve_index(wheels) as (index, _):
        env = _host_env(index, {**lock_env, "RUNNER_PRUNE_GRACE": "0"})
        user = subprocess.Popen(
            on_host("host-a", [RUNNER, "run", str(beta_script), "hold"]),
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert user.stdout is not None and user.stdin is not None
        lines = Lines(user.stdout)
        lines.wait_for("ready", timeout=120)
        in_use = Path(lines.seen[0].split()[1])
        cleaners = [
            [RUNNER, "cache", "clean"],
            [RUNNER, "cache", "prune", "--older-than", "0s"],
            [RUNNER, "cache", "clean", str(beta_script)],
        ]
        for argv in cleaners:
            done = subprocess.run(
                on_host("host-b", argv), env=env, capture_output=True, text=True, timeout=120
            )
            assert done.returncode == 0, done.stderr
        # host-b removed nothing host-a runs in: the script goes on in an intact environment.
        assert (in_use / "runner-env.json").exists()
        user.stdin.write("finish\n")
        user.stdin.flush()
        lines.wait_for("still intact 1.0", timeout=60)
        assert user.wait(timeout=60) == 0, user.stderr and user.stderr.read()
        # Once host-a's script has ended, host-b's cleanup removes the environment.
        again = subprocess.run(
            on_host("host-b", [RUNNER, "cache", "clean"]),
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert again.returncode == 0, again.stderr
        assert store_dirs(cache_dir) == [] and published(cache_dir) == []
