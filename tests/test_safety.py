"""Never run or delete what is not ours: cleanup boundaries, leases that hold for everything
started from an environment, safe concurrent edits, build locks that report and time out.

Everything runs in real processes. Tests where ownership matters create a second user with
`useradd` (removed afterwards) and skip with the reason when not run as root.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import queue
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO

import pytest

from runner import cache as cache_mod
from runner import lifecycle
from runner.cache import Cache
from runner.config import Config
from runner.errors import CacheError
from tests.conftest import RUNNER, published, run_runner, store_dirs, write_script

pytestmark = pytest.mark.timeout(240)

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
DAY = 86400.0


def _ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"rc={result.returncode}\n{result.stdout}\n{result.stderr}"


def _json(*args: str, env: dict[str, str] | None = None) -> dict:
    result = run_runner(*args, "--json", env=env)
    _ok(result)
    return json.loads(result.stdout)


def _the_env(cache_dir: Path) -> Path:
    [pointer] = published(cache_dir)
    target = Cache(cache_dir).pointer_target(pointer.name)
    assert target is not None
    return target


def _age(path: Path, days: float) -> None:
    stamp = time.time() - days * DAY
    os.utime(path, (stamp, stamp), follow_symlinks=False)


def _tree(base: Path) -> dict[str, bytes | None]:
    """Every entry under `base` with its content (None for directories and links)."""
    out: dict[str, bytes | None] = {}
    for dirpath, dirnames, filenames in os.walk(base):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(base))
            out[rel] = path.read_bytes() if path.is_file() and not path.is_symlink() else None
    return out


class Lines:
    """Lines of a child's output, read by a thread so every wait has a timeout."""

    def __init__(self, stream: IO[str]):
        self.queue: queue.Queue[str] = queue.Queue()
        self.thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self.thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.queue.put(line)
        self.queue.put("")

    def next(self, timeout: float = 60) -> str:
        return self.queue.get(timeout=timeout)


# --------------------------------------------------------------------------- a second user


def _as_user(uid: int, gid: int, argv: list[str]) -> list[str]:
    """argv run as another user (setpriv keeps the environment we give it)."""
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", *argv]


# --------------------------------------------------------------------------- boundaries


def test_cleanup_removes_only_what_runner_made(
    tmp_path: Path, cache_dir: Path, offline_wheels: Path
) -> None:
    """Old entries with names runner never gives survive prune and clean, and are reported;
    the sentinel tree outside the cache is untouched; runner's own entries do go."""
    script = write_script(tmp_path / "s.py", "import alpha\nprint('ok')\n", ["alpha"])
    _ok(run_runner("run", str(script)))
    env_dir = _the_env(cache_dir)
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "precious.txt").write_text("keep me")
    (outside / "sub" / "more.txt").write_text("keep me too")
    planted = {
        "store/user-uploads": "dir",  # a dashed directory: once taken for a killed build
        "store/abc-def": "dir",
        "store/README": "file",
        "store/.hidden": "dir",
        "envs/notes.txt": "file",
        "envs/" + "e" * 32: "dir",  # a directory where a pointer would be
        "scripts/mine.txt": "file",
        "logs/mine.log": "file",
        "stdin/mine.py": "file",
        "locks/mine.lock": "file",
    }
    for rel, kind in planted.items():
        path = cache_dir / rel
        path.parent.mkdir(exist_ok=True)
        if kind == "dir":
            path.mkdir()
            (path / "data.txt").write_text("user data")
            (path / "link").symlink_to(outside)
        else:
            path.write_text("user data")
        _age(path, 40)
    before_outside = _tree(outside)
    pruned = _json("cache", "prune", "--older-than", "0s", "--grace", "0s")
    cleaned = _json("cache", "clean", "--grace", "0s")
    for rel, kind in planted.items():
        path = cache_dir / rel
        inside = path / "data.txt" if kind == "dir" else path
        assert inside.read_text() == "user data", rel
    assert _tree(outside) == before_outside
    assert not env_dir.exists()  # runner's own environment was removed (by prune)
    for data in (pruned, cleaned):
        foreign = {k["path"] for k in data["kept"] if k["reason"] == "not made by runner"}
        assert str(cache_dir / "store/user-uploads") in foreign
        assert str(cache_dir / "envs" / ("e" * 32)) in foreign
        assert str(cache_dir / "scripts/mine.txt") in foreign
    human = run_runner("cache", "clean")
    _ok(human)
    assert f"kept {cache_dir / 'store/user-uploads'} (not made by runner)" in human.stderr


@pytest.mark.parametrize("subdir", ["store", "envs", "scripts", "logs"])
@pytest.mark.parametrize("command", ["prune", "clean", "verify"])
def test_a_symlinked_cache_directory_is_refused(
    tmp_path: Path, cache_dir: Path, subdir: str, command: str
) -> None:
    script = write_script(tmp_path / "s.py", "print('ok')\n", [])
    _ok(run_runner("run", str(script)))
    # Move the directory out of the cache and link it back, with runner-like leftovers.
    elsewhere = tmp_path / "elsewhere" / subdir
    elsewhere.parent.mkdir()
    shutil.move(str(cache_dir / subdir), elsewhere)
    (cache_dir / subdir).symlink_to(elsewhere)
    leftover = elsewhere / ("f" * 32 + "-" + "0" * 12)
    leftover.mkdir()
    (leftover / "data").write_text("keep")
    _age(leftover, 40)
    before = _tree(elsewhere.parent)
    args = {"prune": ["--older-than", "0s"], "clean": [], "verify": ["--repair"]}[command]
    result = run_runner("cache", command, *args, env={"RUNNER_PRUNE_GRACE": "0"})
    assert result.returncode == 106, result.stderr
    # The trust rule names store/, envs/ and scripts/; cleanup's own check the others.
    assert str(cache_dir / subdir) in result.stderr
    assert "symlink" in result.stderr or "symbolic link" in result.stderr
    assert "Traceback" not in result.stderr
    assert _tree(elsewhere.parent) == before


@pytest.mark.parametrize("tag", [None, "Signature: 8a477f597d28d172789f06886806bc55\n# other\n"])
def test_a_directory_without_runners_cachedir_tag_is_not_cleaned(
    tmp_path: Path, tag: str | None
) -> None:
    root = tmp_path / "not-a-cache"
    victim = root / "store" / ("a" * 32 + "-" + "b" * 12)
    victim.mkdir(parents=True)
    (victim / "data").write_text("keep")
    (root / "envs").mkdir()
    os.chmod(root, 0o700)
    if tag is not None:
        (root / "CACHEDIR.TAG").write_text(tag)
    _age(victim, 40)
    env = {"RUNNER_CACHE_DIR": str(root), "RUNNER_PRUNE_GRACE": "0"}
    for args in (["clean"], ["prune", "--older-than", "0s"], ["verify", "--repair"]):
        result = run_runner("cache", *args, env=env)
        assert result.returncode == 106, result.stderr
        assert f"{root} does not look like a runner cache" in result.stderr
    assert (victim / "data").read_text() == "keep"


def test_cache_commands_check_the_roots_ownership(tmp_path: Path, cache_dir: Path) -> None:
    script = write_script(tmp_path / "s.py", "print('ok')\n", [])
    _ok(run_runner("run", str(script)))
    env_dir = _the_env(cache_dir)
    os.chmod(cache_dir, 0o777)
    try:
        for args in (["list"], ["clean"], ["prune", "--older-than", "0s"], ["verify"]):
            result = run_runner("cache", *args)
            assert result.returncode == 106, (args, result.stderr)
            assert f"the runner cache {cache_dir} is writable by other users" in result.stderr
        assert env_dir.exists()
        shared = run_runner("cache", "clean", env={"RUNNER_ALLOW_SHARED_CACHE": "1"})
        _ok(shared)
        assert not env_dir.exists()
    finally:
        os.chmod(cache_dir, 0o700)


def test_cache_commands_refuse_another_users_cache(
    tmp_path: Path, cache_dir: Path, other_user: tuple[str, int, int]
) -> None:
    _, uid, gid = other_user
    script = write_script(tmp_path / "s.py", "print('ok')\n", [])
    _ok(run_runner("run", str(script)))
    env_dir = _the_env(cache_dir)
    os.chown(cache_dir, uid, gid)
    try:
        result = run_runner("cache", "clean")
        assert result.returncode == 106
        assert f"{cache_dir} belongs to another user (uid {uid})" in result.stderr
        assert env_dir.exists()
    finally:
        os.chown(cache_dir, 0, 0)


def test_a_foreign_pointer_directory_is_reported_not_built_around(
    tmp_path: Path, cache_dir: Path
) -> None:
    script = write_script(tmp_path / "s.py", "print('ok')\n", [])
    _ok(run_runner("run", str(script)))
    [pointer] = published(cache_dir)
    _ok(run_runner("cache", "clean"))
    pointer.mkdir()  # someone's directory where runner's pointer belongs
    (pointer / "theirs").write_text("x")
    for _ in range(2):
        result = run_runner("run", str(script), env={"RUNNER_NO_FASTPATH": "1"})
        assert result.returncode == 106, result.stderr
        assert f"{pointer} is a directory, not a pointer runner made" in result.stderr
    assert store_dirs(cache_dir) == []  # nothing built and leaked
    assert (pointer / "theirs").read_text() == "x"


def test_file_exists_errors_name_the_path(tmp_path: Path, cache_dir: Path) -> None:
    cache_dir.mkdir(mode=0o700)
    (cache_dir / "logs").write_text("not a directory")
    script = write_script(tmp_path / "s.py", "print('ok')\n", [])
    result = run_runner("run", str(script))
    assert result.returncode == 106, result.stderr
    assert f"{cache_dir / 'logs'} is in the way" in result.stderr
    assert "File exists" in result.stderr


# --------------------------------------------------------------------------- leases


def _lease_script(tmp_path: Path, body: str) -> Path:
    return write_script(tmp_path / "lease.py", body, ["beta"])


def test_a_script_that_closes_its_descriptors_keeps_its_environment(
    tmp_path: Path, cache_dir: Path, offline_wheels: Path
) -> None:
    script = _lease_script(
        tmp_path,
        "import os, sys\nimport alpha\nos.closerange(3, 1000)\nprint('ready', flush=True)\n"
        "sys.stdin.readline()\nimport beta\nprint('still works', flush=True)\n",
    )
    proc = subprocess.Popen(
        [RUNNER, "run", str(script)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        lines = Lines(proc.stdout)
        assert lines.next() == "ready\n"
        env_dir = _the_env(cache_dir)
        assert lifecycle.probe_in_use(env_dir) is False  # the descriptor lease is gone ...
        [listed] = _json("cache", "list")["environments"]
        assert listed["in_use"] is True
        data = _json("cache", "clean")
        kept = {k["path"]: k for k in data["kept"]}
        assert kept[str(env_dir)]["reason"] == "in use"  # ... but the process is seen
        assert f"process {proc.pid} " in kept[str(env_dir)]["detail"]
        assert env_dir.exists()
        proc.stdin.write("\n")
        proc.stdin.close()
        assert lines.next() == "still works\n"
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
        proc.wait(timeout=60)
    data = _json("cache", "clean")  # nothing uses it any more
    # (the file store's and the bytecode index's entries count what was freed with it)
    assert [
        r["path"] for r in data["removed"] if r["kind"] not in ("stored files", "index entries")
    ] == [str(env_dir)]


def test_a_detached_child_keeps_the_environment_after_its_parent_ends(
    tmp_path: Path, cache_dir: Path, offline_wheels: Path
) -> None:
    # The child is a plain shell (not the environment's Python): only the VIRTUAL_ENV and
    # PATH it inherited say where it came from. When released it runs the env's Python.
    child = "read x; exec python -c 'import beta; print(\"child ok\")'"
    script = _lease_script(
        tmp_path,
        "import subprocess, sys\n"
        f"p = subprocess.Popen(['/bin/sh', '-c', {child!r}], start_new_session=True)\n"
        "sys.stdout.write(f'child {p.pid}\\nparent done\\n')  # one write: no interleaving\n"
        "sys.stdout.flush()\n",
    )
    proc = subprocess.Popen(
        [RUNNER, "run", str(script)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    child = None  # a pidfd: refers to the child itself, never to a later process of its pid
    try:
        assert proc.stdout is not None and proc.stdin is not None
        lines = Lines(proc.stdout)
        child_line = lines.next()
        assert child_line.startswith("child ") and lines.next() == "parent done\n"
        child_pid = int(child_line.split()[1])
        child = os.pidfd_open(child_pid)  # the child is blocked in `read`: still alive
        assert proc.wait(timeout=60) == 0  # the script is over; its child lives on
        env_dir = _the_env(cache_dir)
        data = _json("cache", "clean")
        kept = {k["path"]: k for k in data["kept"]}
        assert kept[str(env_dir)]["detail"] == f"process {child_pid} (sh)"
        assert env_dir.exists()
        proc.stdin.write("\n")
        proc.stdin.close()
        assert lines.next() == "child ok\n"  # its environment was still there
    finally:
        if child is not None:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(child, signal.SIGKILL)
            os.close(child)
        proc.kill()
        proc.wait(timeout=60)


def test_a_missing_lease_file_means_not_safe_to_remove(
    tmp_path: Path, cache_dir: Path, offline_wheels: Path
) -> None:
    script = write_script(tmp_path / "s.py", "import alpha\nprint('ok')\n", ["alpha"])
    _ok(run_runner("run", str(script)))
    env_dir = _the_env(cache_dir)
    (env_dir / "runner-lease").unlink()
    _age(env_dir, 40)
    for args in (["clean"], ["prune", "--older-than", "0s"]):
        data = _json("cache", *args)
        assert {"path": str(env_dir), "reason": "lease file missing"}.items() <= {
            k["path"]: k for k in data["kept"]
        }[str(env_dir)].items()
    assert (env_dir / "runner-env.json").exists()


def test_processes_using_private_and_shared_caches(
    tmp_path: Path, other_user: tuple[str, int, int]
) -> None:
    """Another user's process that names an environment counts only in a shared cache;
    in a shared cache a process whose details cannot be read counts as a user."""
    _, uid, gid = other_user
    env_dir = tmp_path / "cache" / "store" / ("c" * 32 + "-" + "d" * 12)
    env_dir.mkdir(parents=True)
    (env_dir / "runner-env.json").write_text("{}")  # published now
    environ = {"PATH": "/usr/bin:/bin", "VIRTUAL_ENV": str(env_dir)}
    proc = subprocess.Popen(
        _as_user(uid, gid, ["/bin/sh", "-c", "echo ready; read x"]),
        env=environ,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert Lines(proc.stdout).next() == "ready\n"
        assert lifecycle.processes_using([env_dir], shared=False) == {}
        users = lifecycle.processes_using([env_dir], shared=True)
        assert users[env_dir].startswith("process ") and "(sh)" in users[env_dir]
    finally:
        proc.kill()
        proc.wait(timeout=60)
    # Seen from the other user, root's processes (this one) cannot be inspected.
    system_python = "/usr/bin/python3"
    check = (
        "import sys; from pathlib import Path; from runner.lifecycle import processes_using\n"
        "d = Path(sys.argv[1])\n"
        "print(repr(processes_using([d], shared=False)))\n"
        "print(repr(processes_using([d], shared=True)))\n"
    )
    if not os.access(system_python, os.X_OK):
        pytest.skip(f"{system_python} is needed to run a check as the other user")
    repo = str(Path(__file__).resolve().parent.parent)
    result = subprocess.run(
        _as_user(uid, gid, [system_python, "-c", check, str(env_dir)]),
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": repo},
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"runner does not import under {system_python}: {result.stderr[-300:]}")
    private, shared = result.stdout.splitlines()
    assert private == "{}"
    assert "cannot inspect it" in shared and "of uid 0" in shared


def test_process_scan_costs_milliseconds(tmp_path: Path) -> None:
    dirs = [tmp_path / f"{i:032x}-{i:012x}" for i in range(50)]
    start = time.perf_counter()
    lifecycle.processes_using(dirs, shared=True)
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"scanning processes took {elapsed:.3f} s"


# --------------------------------------------------------------------------- verify


def test_verify_skips_an_environment_being_removed(
    tmp_path: Path, cache_dir: Path, offline_wheels: Path
) -> None:
    script = write_script(tmp_path / "s.py", "import alpha\nprint('ok')\n", ["alpha"])
    _ok(run_runner("run", str(script)))
    env_dir = _the_env(cache_dir)
    # A cleanup holds the lease exclusively and has started deleting files.
    fd = os.open(env_dir / "runner-lease", os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        site = next(env_dir.glob("lib/python*/site-packages"))
        (site / "alpha.py").unlink()
        data = _json("cache", "verify")
        assert data["environments"] == []
    finally:
        os.close(fd)
    result = run_runner("cache", "verify")  # no longer held: the damage is reported
    assert result.returncode == 106 and "alpha" in result.stderr


def test_verify_racing_clean_never_reports_damage(
    tmp_path: Path, cache_dir: Path, offline_wheels: Path
) -> None:
    needs = [["alpha"], ["beta"], ["gamma"], ["alpha", "gamma"]]  # four environments
    scripts = [write_script(tmp_path / f"s{i}.py", "\n", deps) for i, deps in enumerate(needs)]
    for _round in range(2):
        for s in scripts:
            _ok(run_runner("run", str(s)))
        env = {**os.environ}
        verify = subprocess.Popen(
            [RUNNER, "cache", "verify", "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        clean = run_runner("cache", "clean")
        out, err = verify.communicate(timeout=120)
        _ok(clean)
        assert verify.returncode == 0, err
        assert all(e["ok"] for e in json.loads(out)["environments"])


# --------------------------------------------------------------------------- prune reports


def test_prune_reports_the_incomplete_builds_it_keeps(tmp_path: Path, cache_dir: Path) -> None:
    script = write_script(tmp_path / "s.py", "print('ok')\n", [])
    _ok(run_runner("run", str(script)))
    key = published(cache_dir)[0].name
    leftover = cache_dir / "store" / f"{key}-{'0' * 12}"
    leftover.mkdir()
    stamp = time.time() - 600
    os.utime(leftover, (stamp, stamp))
    data = _json("cache", "prune")
    [kept] = [k for k in data["kept"] if k["path"] == str(leftover)]
    assert kept["reason"] == "incomplete build"
    assert abs(kept["removable_after"] - (stamp + 3600)) < 2
    human = run_runner("cache", "prune")
    assert f"kept {leftover} (incomplete build; removable after " in human.stderr
    assert ", in 49m)" in human.stderr or ", in 50m)" in human.stderr


# --------------------------------------------------------------------------- build locks


class HeldLock:
    """Another process holding a key's build lock until released."""

    def __init__(self, cache_dir: Path, key: str):
        (cache_dir / "locks").mkdir(parents=True, exist_ok=True)
        (cache_dir / "locks" / f"{key}.owner").write_text(
            "pid 4242 on testhost, building for x.py\n"
        )
        code = (
            "import sys, filelock\n"
            "lock = filelock.FileLock(sys.argv[1]); lock.acquire()\n"
            "print('held', flush=True); sys.stdin.readline()\n"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, str(cache_dir / "locks" / f"{key}.lock")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        assert Lines(self.proc.stdout).next() == "held\n"

    def release(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def test_waiters_give_up_after_runner_lock_timeout(tmp_path: Path, cache_dir: Path) -> None:
    script = write_script(tmp_path / "s.py", "print('ok')\n", [])
    _ok(run_runner("run", str(script)))
    key = published(cache_dir)[0].name
    _ok(run_runner("cache", "clean"))
    held = HeldLock(cache_dir, key)
    try:
        start = time.monotonic()
        result = run_runner("run", str(script), env={"RUNNER_LOCK_TIMEOUT": "2"})
        elapsed = time.monotonic() - start
    finally:
        held.release()
    assert result.returncode == 106, result.stderr
    assert "waiting for another build of this environment (pid 4242 on testhost" in result.stderr
    assert f"gave up after 2 s waiting for {cache_dir / 'locks' / (key + '.lock')}" in result.stderr
    assert "pid 4242 on testhost, building for x.py" in result.stderr
    assert 2 <= elapsed < 60
    _ok(run_runner("run", str(script), env={"RUNNER_LOCK_TIMEOUT": "2"}))  # free again


def test_waiters_say_again_what_they_wait_for(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "1" * 32
    monkeypatch.setattr(cache_mod, "WAIT_REPORT_INTERVAL", 0.3)
    monkeypatch.setenv("RUNNER_LOCK_TIMEOUT", "2.5")
    cache = Cache(cache_dir, config=Config.from_environ())
    cache.ensure()
    said: list[str] = []
    held = HeldLock(cache_dir, key)
    try:
        with (
            pytest.raises(CacheError, match=r"gave up after 2\.5 s"),
            cache.build_lock(key, label="y.py", on_wait=said.append, on_unlockable=said.append),
        ):
            pass
    finally:
        held.release()
    assert said[0] == "pid 4242 on testhost, building for x.py"
    assert len(said) >= 4, said  # about every 0.3 s over 1.5 s of waiting
    assert said[-1].startswith("pid 4242 on testhost, building for x.py; ")
    assert said[-1].endswith(" s so far")


def test_simultaneous_refresh_runs_build_once(
    tmp_path: Path, cache_dir: Path, offline_wheels: Path
) -> None:
    script = write_script(tmp_path / "s.py", "import alpha\nprint('ok')\n", ["alpha"])
    _ok(run_runner("run", str(script)))
    key = published(cache_dir)[0].name
    # 30 --refresh runs, all started before any build can begin: a build in progress holds
    # the key's lock until every one of them exists (Popen returns once the child exec'd).
    held = HeldLock(cache_dir, key)
    try:
        procs = [
            subprocess.Popen(
                [RUNNER, "run", "--refresh", str(script)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(30)
        ]
    finally:
        held.release()
    results = [(p.communicate(timeout=200), p.returncode) for p in procs]
    for (out, err), rc in results:
        assert rc == 0 and out == "ok\n", err
    assert len(store_dirs(cache_dir)) == 2  # the first environment and one refresh
    reused = sum("just refreshed by another run" in err for (_, err), _ in results)
    assert reused == 29
    # A refresh asked for after that build still builds anew.
    _ok(run_runner("run", "--refresh", str(script)))
    assert len(store_dirs(cache_dir)) == 3
    # Every directory of the one key goes in one clean (its build lock is taken once).
    removed = _json("cache", "clean")["removed"]
    assert len([r for r in removed if r["kind"] not in ("stored files", "index entries")]) == 3
    assert store_dirs(cache_dir) == []


# --------------------------------------------------------------------------- edits


def _deps(path: Path) -> list[str]:
    from runner.metadata import parse

    return list(parse(path.read_text(), str(path)).dependencies)


def test_concurrent_add_and_remove_keep_every_edit(tmp_path: Path) -> None:
    script = tmp_path / "s.py"
    for n in range(20):
        write_script(script, "print('ok')\n", ["yy"])
        add = subprocess.Popen(
            [RUNNER, "add", str(script), "xx"], stderr=subprocess.PIPE, text=True
        )
        remove = subprocess.Popen(
            [RUNNER, "remove", str(script), "yy"], stderr=subprocess.PIPE, text=True
        )
        for p in (add, remove):
            _, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
        assert _deps(script) == ["xx"], f"round {n}"


def test_ten_concurrent_adds_all_land(tmp_path: Path) -> None:
    script = write_script(tmp_path / "s.py", "print('ok')\n", [])
    link = tmp_path / "link.py"
    link.symlink_to(script)  # another name of the same file meets on the same lock
    procs = [
        subprocess.Popen(
            [RUNNER, "add", str(link if i % 2 else script), f"pkg{i}"],
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(10)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert sorted(_deps(script)) == sorted(f"pkg{i}" for i in range(10))
    assert link.is_symlink()


def test_edit_keeps_hard_links_mode_and_inode(tmp_path: Path) -> None:
    script = write_script(tmp_path / "s.py", "print('ok')\n", ["yy"])
    os.chmod(script, 0o750)
    other = tmp_path / "other-name.py"
    os.link(script, other)
    inode = script.stat().st_ino
    _ok(run_runner("add", str(script), "xx"))
    assert script.stat().st_ino == inode
    assert _deps(other) == ["yy", "xx"]  # the other name sees the edit
    assert stat.S_IMODE(script.stat().st_mode) == 0o750
    _ok(run_runner("remove", str(other), "yy"))
    assert _deps(script) == ["xx"]
    # A file with one name is replaced atomically (a new inode), its mode kept.
    os.unlink(other)
    _ok(run_runner("add", str(script), "zz"))
    assert script.stat().st_ino != inode and stat.S_IMODE(script.stat().st_mode) == 0o750


def test_editing_another_users_file_keeps_its_owner(
    tmp_path: Path, other_user: tuple[str, int, int]
) -> None:
    _, uid, gid = other_user
    script = write_script(tmp_path / "s.py", "print('ok')\n", ["yy"])
    os.chown(script, uid, gid)
    os.chmod(script, 0o640)
    inode = script.stat().st_ino
    _ok(run_runner("add", str(script), "xx"))
    _ok(run_runner("remove", str(script), "yy"))
    st = script.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), st.st_ino) == (uid, gid, 0o640, inode)
    assert _deps(script) == ["xx"]


_CLAIM_AS = """
import fcntl, os, sys  # all imported before the uid changes: the interpreter's and
from runner import start  # runner's files may be private to the user running the tests

uid, gid, theirs, ours = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
os.setgroups([])
os.setgid(gid)
os.setuid(uid)
fd = start.claim_bytecode(ours)
print(start.bytecode_unattended(theirs), start.claim_bytecode(theirs), fd is not None)
"""


def test_another_users_pending_marker_is_never_claimed_nor_taken_for_abandoned(
    other_user: tuple[str, int, int],
) -> None:
    """A shared cache: the bytecode of an environment another user built is pending, and
    its marker is theirs. This user cannot lock it, so the warm path must not take it for
    a killed job (which would send every run cold) nor try to compile it; a marker of
    this user's own, beside it, is claimed as usual (the directories are reachable)."""
    from runner import layout

    _, uid, gid = other_user
    # Not under pytest's private base directory: the other user must reach the markers.
    shared = Path(tempfile.mkdtemp(prefix="runner-shared-", dir="/tmp"))
    try:
        shared.chmod(0o755)
        theirs, ours = shared / "theirs", shared / "ours"
        for env_dir in (theirs, ours):
            env_dir.mkdir(mode=0o755)
            (env_dir / layout.BYTECODE_PENDING).write_text("1")
            (env_dir / layout.BYTECODE_PENDING).chmod(0o644)
        os.chown(ours / layout.BYTECODE_PENDING, uid, gid)  # "this user" is the other one
        got = subprocess.run(
            [sys.executable, "-c", _CLAIM_AS, str(uid), str(gid), str(theirs), str(ours)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert got.returncode == 0, got.stderr
        assert got.stdout.split() == ["False", "None", "True"]
        assert (theirs / layout.BYTECODE_PENDING).read_text() == "1"  # untouched
    finally:
        shutil.rmtree(shared, ignore_errors=True)
