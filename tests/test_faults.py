"""Faults and hostile environments: a full disk, read-only and unwritable caches, damaged
environments, filesystems that cannot lock, shared-cache locks, and cache security.

Mount-based tests (tmpfs, read-only bind mounts, chown) need root; they skip cleanly
otherwise. Every fault is simulated so that the test fails without the protection.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from runner.fsutil import remove_tree
from tests.conftest import (
    RUNNER,
    published,
    readline,
    run_runner,
    store_dirs,
    write_script,
)
from tests.wheels import make_wheel

pytestmark = pytest.mark.timeout(240)

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
needs_root = pytest.mark.skipif(not IS_ROOT, reason="mounts and chown need root")


def _mount(*args: str) -> None:
    result = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"mount {' '.join(args)} failed: {result.stderr.strip()}")


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


@contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path))
    try:
        yield path
    finally:
        _umount(path)


@contextmanager
def read_only(path: Path) -> Iterator[Path]:
    """Make `path` read-only for everyone, root included (a read-only bind mount)."""
    _mount("--bind", str(path), str(path))
    try:
        result = subprocess.run(
            ["mount", "-o", "remount,bind,ro", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            pytest.skip(f"read-only remount failed: {result.stderr.strip()}")
        yield path
    finally:
        _umount(path)


def _ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"rc={result.returncode}\n{result.stdout}\n{result.stderr}"


# --------------------------------------------------------------------------- disk full


@needs_root
def test_disk_full_during_build_is_a_cache_error_and_recovers(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ~14 MB of incompressible text: more than the 12 MB cache can hold.
    blob = base64.b64encode(os.urandom(10_500_000)).decode()
    wheels = tmp_path / "big-wheels"  # outside the small filesystem
    make_wheel(wheels, "bigpkg", "1.0", modules={"bigpkg": f'BLOB = "{blob}"\nOK = "big ok"\n'})
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    script = write_script(
        tmp_path / "big.py", "import bigpkg\nprint(bigpkg.OK, len(bigpkg.BLOB))\n", ["bigpkg"]
    )
    with tmpfs(cache_dir, "12m"):
        result = run_runner("run", str(script))
        assert result.returncode == 106, result.stderr
        assert "no space left" in result.stderr.lower()
        assert str(cache_dir) in result.stderr
        assert "RUNNER_CACHE_DIR" in result.stderr and "prune" in result.stderr
        assert "Traceback" not in result.stderr
        assert published(cache_dir) == []  # nothing published
        # Whatever the failed build left is removable by prune, on the still-full disk.
        _ok(run_runner("cache", "prune", env={"RUNNER_PRUNE_GRACE": "0"}))
        assert store_dirs(cache_dir) == []
        # Once there is room, the next run simply works.
        subprocess.run(["mount", "-o", "remount,size=96m", str(cache_dir)], check=True)
        result = run_runner("run", str(script))
        _ok(result)
        assert result.stdout.split() == ["big", "ok", str(len(blob))]
        assert len(published(cache_dir)) == 1


def test_no_space_oserror_becomes_cache_error(cache_dir: Path) -> None:
    """Without root: the translation itself. An installer's own wording of a full disk is
    read in `installers` (tests/test_installers.py); the builder passes it on as ENOSPC."""
    import errno

    from runner.cache import Cache
    from runner.errors import InstallError

    cache = Cache(cache_dir)
    for exc in (
        OSError(errno.ENOSPC, "No space left on device"),
        OSError(errno.EDQUOT, "quota"),
    ):
        mapped = cache.build_failure(exc)
        assert mapped is not None and mapped.exit_code == 106
        assert str(cache_dir) in mapped.message and "space" in mapped.message
    assert cache.build_failure(InstallError("no release of foo can be installed")) is None
    assert cache.build_failure(KeyboardInterrupt()) is None


# --------------------------------------------------------------------------- permissions


@needs_root
def test_read_only_cache_root_gives_clear_error(tmp_path: Path, cache_dir: Path) -> None:
    cache_dir.mkdir(mode=0o700)
    script = write_script(tmp_path / "s.py", "print('hi')\n", [])
    with read_only(cache_dir):
        result = run_runner("run", str(script))
    assert result.returncode == 106, result.stderr
    assert str(cache_dir) in result.stderr
    assert "Read-only file system" in result.stderr
    assert "RUNNER_CACHE_DIR" in result.stderr
    assert "Traceback" not in result.stderr


@needs_root
def test_unwritable_cache_dir_names_it(tmp_path: Path) -> None:
    parent = tmp_path / "ro-parent"
    parent.mkdir()
    wanted = parent / "runner-cache"
    script = write_script(tmp_path / "s.py", "print('hi')\n", [])
    with read_only(parent):
        result = run_runner("run", str(script), env={"RUNNER_CACHE_DIR": str(wanted)})
    assert result.returncode == 106, result.stderr
    assert str(wanted) in result.stderr and "RUNNER_CACHE_DIR" in result.stderr


def test_cache_dir_under_a_file_names_it(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    script = write_script(tmp_path / "s.py", "print('hi')\n", [])
    result = run_runner("run", str(script), env={"RUNNER_CACHE_DIR": str(blocker / "cache")})
    assert result.returncode == 106, result.stderr
    assert str(blocker / "cache") in result.stderr and "RUNNER_CACHE_DIR" in result.stderr
    assert "Traceback" not in result.stderr


@needs_root
def test_published_environment_runs_from_read_only_cache(
    tmp_path: Path, cache_dir: Path, offline_wheels: Path
) -> None:
    script = write_script(
        tmp_path / "s.py", "import alpha; print('alpha', alpha.VERSION)\n", ["alpha"]
    )
    _ok(run_runner("run", str(script)))
    (cache_dir / "CACHEDIR.TAG").unlink()  # ensure() must not insist on rewriting it
    aliases = list((cache_dir / "scripts").iterdir())
    other = write_script(tmp_path / "other.py", "import beta\n", ["beta"])
    with read_only(cache_dir):
        warm = run_runner("run", str(script))  # the fast path, via the alias
        cold = run_runner("run", str(script), env={"RUNNER_NO_FASTPATH": "1"})
        missing = run_runner("run", str(other))
    for result in (warm, cold):
        _ok(result)
        assert result.stdout == "alpha 1.0\n"
        assert result.stderr == ""
    assert missing.returncode == 106 and str(cache_dir) in missing.stderr
    assert "Traceback" not in missing.stderr
    # And without the alias: the cold path's look-up alone.
    for alias in aliases:
        alias.unlink()
    with read_only(cache_dir):
        result = run_runner("run", str(script))
    _ok(result)
    assert result.stdout == "alpha 1.0\n"


@needs_root
@pytest.mark.parametrize("command", ["clean", "prune", "verify"])
def test_cleanup_of_a_read_only_cache_is_a_clear_error(
    tmp_path: Path, cache_dir: Path, command: str
) -> None:
    script = write_script(tmp_path / "s.py", "print('hi')\n", [])
    _ok(run_runner("run", str(script)))
    env_dir = _only_env(cache_dir)
    stamp = 1_000_000_000
    os.utime(env_dir / "runner-lease", (stamp, stamp))  # unused for years
    (env_dir / "bin" / "python").unlink()  # damaged, for verify --repair
    args = {"clean": [], "prune": ["--older-than", "1d"], "verify": ["--repair"]}[command]
    with read_only(cache_dir):
        result = run_runner("cache", command, *args)
    assert result.returncode == 106, result.stderr
    assert "Read-only file system" in result.stderr
    assert str(cache_dir) in result.stderr
    assert "Traceback" not in result.stderr
    assert env_dir.exists()


@needs_root
def test_lock_on_a_full_disk_is_a_clear_error(tmp_path: Path, cache_dir: Path) -> None:
    full = tmp_path / "full"
    with tmpfs(full, "64k"):
        script = write_script(full / "s.py", "print('hi')\n", [])
        with contextlib.suppress(OSError), open(full / "filler", "wb") as f:
            while True:
                f.write(b"x" * 4096)
                f.flush()
        result = run_runner("lock", str(script))
        assert result.returncode == 107, result.stderr
        assert f"cannot write {full / 'pylock.s.toml'}: No space left on device" in result.stderr
        assert "Traceback" not in result.stderr
        assert not (full / "pylock.s.toml").exists()
        assert sorted(p.name for p in full.iterdir()) == ["filler", "s.py"]  # no temp file


# --------------------------------------------------------------------------- damaged envs


def _only_env(cache_dir: Path) -> Path:
    [pointer] = published(cache_dir)
    return Path(os.path.realpath(pointer))


@pytest.mark.parametrize("damage", ["interpreter", "manifest-missing", "manifest-garbage", "lease"])
def test_damaged_environment_is_rebuilt(
    tmp_path: Path, cache_dir: Path, offline_wheels: Path, damage: str
) -> None:
    script = write_script(
        tmp_path / "s.py", "import alpha; print('alpha', alpha.VERSION)\n", ["alpha"]
    )
    _ok(run_runner("run", str(script)))
    env = _only_env(cache_dir)
    if damage == "interpreter":  # the base Python went away
        python = env / "bin" / "python"
        python.unlink()
        python.symlink_to(tmp_path / "removed-python3")
    elif damage == "manifest-missing":
        (env / "runner-env.json").unlink()
    elif damage == "manifest-garbage":
        (env / "runner-env.json").write_text('{"format": 1, "key": ')
    else:
        (env / "runner-lease").unlink()
    for extra in ({"RUNNER_NO_FASTPATH": "1"}, {}):
        result = run_runner("run", str(script), env=extra)
        _ok(result)
        assert result.stdout == "alpha 1.0\n"
    rebuilt = _only_env(cache_dir)
    assert rebuilt != env
    manifest = json.loads((rebuilt / "runner-env.json").read_text())
    assert rebuilt.name.startswith(manifest["key"])


@pytest.mark.parametrize("damage", ["top-level module", "file inside a package"])
def test_partly_deleted_environment_is_rebuilt_even_on_the_warm_path(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "solo", "1.0")
    make_wheel(
        wheels,
        "pkgx",
        "1.0",
        modules={"pkgx.__init__": "from pkgx.sub import VALUE\n", "pkgx.sub": "VALUE = 7\n"},
    )
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    script = write_script(
        tmp_path / "s.py", "import solo, pkgx; print(solo.VERSION, pkgx.VALUE)\n", ["solo", "pkgx"]
    )
    _ok(run_runner("run", str(script)))
    env = _only_env(cache_dir)
    (site,) = env.glob("lib/python*/site-packages")
    victim = site / "solo.py" if damage == "top-level module" else site / "pkgx" / "sub.py"
    victim.unlink()
    for extra in ({}, {"RUNNER_NO_FASTPATH": "1"}):  # the warm path first
        result = run_runner("run", str(script), env=extra)
        _ok(result)
        assert result.stdout == "1.0 7\n"
    rebuilt = _only_env(cache_dir)
    assert rebuilt != env
    assert not victim.exists()  # the damaged one was left alone (prune removes it later)


# --------------------------------------------------------------------------- locking


_FLOCK_FAULT = """\
import errno, fcntl, os

_code = getattr(errno, os.environ.get("TEST_FLOCK_ERRNO", "ENOLCK"))


def _flock(fd, op):
    raise OSError(_code, os.strerror(_code))


fcntl.flock = _flock
"""


def _start_runs(
    n: int, script: Path, env: dict[str, str], *args: str
) -> list[subprocess.Popen[str]]:
    full = {**os.environ, **env}
    return [
        subprocess.Popen(
            [RUNNER, "run", *args, str(script)],
            env=full,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(n)
    ]


def _finish(procs: list[subprocess.Popen[str]]) -> list[tuple[int, str, str]]:
    done = []
    for p in procs:
        out, err = p.communicate(timeout=200)
        done.append((p.returncode, out, err))
    return done


@pytest.mark.parametrize("code", ["ENOLCK", "EOPNOTSUPP", "ENOSYS"])
def test_concurrent_builds_without_working_locks(
    tmp_path: Path, cache_dir: Path, offline_wheels: Path, code: str
) -> None:
    fault = tmp_path / "fault"
    fault.mkdir()
    (fault / "sitecustomize.py").write_text(_FLOCK_FAULT)
    script = write_script(tmp_path / "s.py", "import beta; print('beta ok')\n", ["beta"])
    # virtualenv's own app-data locks live in a fresh directory, as on a real such mount.
    env = {
        "PYTHONPATH": str(fault),
        "TEST_FLOCK_ERRNO": code,
        "VIRTUALENV_OVERRIDE_APP_DATA": str(tmp_path / "app-data"),
    }
    outcomes = _finish(_start_runs(5, script, env, "-v"))
    for rc, out, err in outcomes:
        assert (rc, out) == (0, "beta ok\n"), err
        assert "Traceback" not in err, err
        # Said once, with -v, by each run that tried the lock; a run that started late
        # finds the environment already published and needs no lock.
        assert err.count("cannot lock") <= 1, err
    assert any("cannot lock" in err for _, _, err in outcomes)
    # At worst several builds; one pointer, naming a complete environment.
    [pointer] = published(cache_dir)
    env_dir = Path(os.path.realpath(pointer))
    assert (env_dir / "runner-env.json").exists()
    assert 1 <= len([d for d in store_dirs(cache_dir) if (d / "runner-env.json").exists()]) <= 5
    # Without -v nothing is said.
    quiet = run_runner("run", str(script), env={**env, "RUNNER_NO_FASTPATH": "1"})
    _ok(quiet)
    assert quiet.stderr == ""


def test_soft_locks_serialise_concurrent_builds(
    tmp_path: Path, cache_dir: Path, offline_wheels: Path
) -> None:
    script = write_script(tmp_path / "s.py", "import beta; print('beta ok')\n", ["beta"])
    outcomes = _finish(_start_runs(5, script, {"RUNNER_LOCK": "soft"}))
    for rc, out, err in outcomes:
        assert (rc, out) == (0, "beta ok\n"), err
    assert len(store_dirs(cache_dir)) == 1  # the marker lock excluded the other builders
    assert len(published(cache_dir)) == 1


def _key_of(cache_dir: Path) -> str:
    [pointer] = published(cache_dir)
    return pointer.name


def _clean(cache_dir: Path) -> None:
    _ok(run_runner("cache", "clean", env={"RUNNER_PRUNE_GRACE": "0"}))
    assert published(cache_dir) == [] and store_dirs(cache_dir) == []


def test_stale_soft_lock_of_killed_process_does_not_wedge(
    tmp_path: Path, cache_dir: Path, offline_wheels: Path
) -> None:
    script = write_script(tmp_path / "s.py", "import alpha; print('alpha ok')\n", ["alpha"])
    _ok(run_runner("run", str(script), env={"RUNNER_LOCK": "soft"}))
    key = _key_of(cache_dir)
    _clean(cache_dir)
    lock_path = cache_dir / "locks" / f"{key}.marker"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import filelock, signal, sys
                from runner.config import Config
                lock = filelock.SoftFileLease(
                    {str(lock_path)!r}, lease_duration=Config.from_environ().lock_lease
                )
                lock.acquire()
                print("held", flush=True)
                signal.pause()
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert readline(holder.stdout, 60) == "held\n"
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=60)
    assert lock_path.exists()  # the killed holder's marker stays behind
    result = run_runner("run", str(script), env={"RUNNER_LOCK": "soft"}, timeout=60)
    _ok(result)
    assert result.stdout == "alpha ok\n"


def test_soft_lock_from_a_dead_host_expires_and_names_the_holder(
    tmp_path: Path, cache_dir: Path, offline_wheels: Path
) -> None:
    env = {"RUNNER_LOCK": "soft", "RUNNER_LOCK_LEASE": "2"}
    script = write_script(tmp_path / "s.py", "import alpha; print('alpha ok')\n", ["alpha"])
    _ok(run_runner("run", str(script), env=env))
    key = _key_of(cache_dir)
    _clean(cache_dir)
    # A builder on another machine died holding the lock: its marker is never refreshed.
    # Made with filelock's public API by a process that calls itself build-node-7 and is
    # then killed (no private filelock modules: their format may change in any release).
    marker = cache_dir / "locks" / f"{key}.marker"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import signal, socket
                socket.gethostname = lambda: "build-node-7"
                import filelock
                lock = filelock.SoftFileLease({str(marker)!r}, lease_duration=2.0)
                lock.acquire()
                print("held", flush=True)
                signal.pause()
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert readline(holder.stdout, 60) == "held\n"
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=60)
    assert b"build-node-7" in marker.read_bytes()
    (cache_dir / "locks" / f"{key}.owner").write_text(
        "pid 4242 on build-node-7, building for /home/x/s.py\n"
    )
    result = run_runner("run", str(script), env=env, timeout=60)
    _ok(result)
    assert result.stdout == "alpha ok\n"
    assert "waiting for another build" in result.stderr
    assert "pid 4242 on build-node-7" in result.stderr


def test_empty_soft_marker_of_a_killed_creator_is_removed(
    tmp_path: Path, cache_dir: Path, offline_wheels: Path
) -> None:
    env = {"RUNNER_LOCK": "soft", "RUNNER_LOCK_LEASE": "1"}
    script = write_script(tmp_path / "s.py", "import alpha; print('alpha ok')\n", ["alpha"])
    _ok(run_runner("run", str(script), env=env))
    key = _key_of(cache_dir)
    _clean(cache_dir)
    # Killed between creating its marker and writing pid and host into it.
    marker = cache_dir / "locks" / f"{key}.marker"
    marker.write_bytes(b"")
    os.utime(marker, (1, 1))
    result = run_runner("run", str(script), env=env, timeout=60)
    _ok(result)
    assert result.stdout == "alpha ok\n"


def test_lock_owner_file_records_host_and_pid(cache_dir: Path) -> None:
    from runner.cache import Cache

    cache = Cache(cache_dir)
    cache.ensure()
    with cache.build_lock(
        "k" * 8, label="x.py", on_wait=lambda _: None, on_unlockable=lambda _: None
    ):
        owner = (cache.locks / ("k" * 8 + ".owner")).read_text()
    assert owner == f"pid {os.getpid()} on {socket.gethostname()}, building for x.py\n"


# Holds the build lock of key `k` in the cache at argv[1] (the quiet stdlib flock, or
# filelock's with "filelock"), says "held", and keeps it until stdin closes.
_HOLD_BUILD_LOCK = """
import sys
from runner.cache import Cache, _make_lock
cache = Cache(sys.argv[1])
cache.ensure()
if sys.argv[2] == "filelock":
    lock = _make_lock(cache.locks / "k.lock", cache.config)
    lock.acquire(timeout=10)
    print("held", flush=True)
    sys.stdin.read()
else:
    with cache.build_lock("k", label="x.py", on_wait=print, on_unlockable=print):
        print("held", "filelock" in sys.modules, flush=True)
        sys.stdin.read()
"""


@pytest.mark.parametrize("holder", ["quiet", "filelock"])
def test_quiet_build_lock_and_filelock_exclude_each_other(cache_dir: Path, holder: str) -> None:
    """An uncontended build lock is a stdlib flock (no filelock import); a builder holding
    it must keep out one that takes it with filelock, and the other way round."""
    import filelock

    from runner.cache import Cache, _make_lock

    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD_BUILD_LOCK, str(cache_dir), holder],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        line = proc.stdout.readline()  # the child exits (EOF) if it fails: no hang
        assert line.startswith("held"), line
        if holder == "quiet":
            assert line.split()[1] == "False"  # taken without importing filelock
        cache = Cache(cache_dir)
        with pytest.raises(filelock.Timeout):
            _make_lock(cache.locks / "k.lock", cache.config).acquire(timeout=0.2)
        waits: list[str] = []
        with cache.try_build_lock("k") as free:
            assert not free
    finally:
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
    # Released: both ways of taking it succeed now.
    with cache.build_lock("k", label="y.py", on_wait=waits.append, on_unlockable=waits.append):
        pass
    assert waits == []
    lock = _make_lock(cache.locks / "k.lock", cache.config)
    lock.acquire(timeout=1)
    lock.release()


# --------------------------------------------------------------------------- security


def test_cache_root_is_created_private(tmp_path: Path, cache_dir: Path) -> None:
    script = write_script(tmp_path / "s.py", "print('hi')\n", [])
    _ok(run_runner("run", str(script)))
    assert (cache_dir.stat().st_mode & 0o777) == 0o700


@pytest.mark.parametrize("how", ["other-owner", "world-writable"])
def test_foreign_or_shared_cache_root_is_refused(tmp_path: Path, cache_dir: Path, how: str) -> None:
    script = write_script(tmp_path / "s.py", "print('hi')\n", [])
    cache_dir.mkdir(mode=0o700)
    if how == "other-owner":
        if not IS_ROOT:
            pytest.skip("chown to another user needs root")
        import pwd

        os.chown(cache_dir, pwd.getpwnam("nobody").pw_uid, -1)
        why = "belongs to another user"
    else:
        os.chmod(cache_dir, 0o777)
        why = "writable by other users"
    result = run_runner("run", str(script))
    assert result.returncode == 106, result.stderr
    assert why in result.stderr and str(cache_dir) in result.stderr
    assert "RUNNER_ALLOW_SHARED_CACHE=1" in result.stderr
    assert not (cache_dir / "store").exists()  # refused before writing anything
    allowed = run_runner("run", str(script), env={"RUNNER_ALLOW_SHARED_CACHE": "1"})
    _ok(allowed)
    assert allowed.stdout == "hi\n"


def _outside_tree(base: Path) -> list[Path]:
    base.mkdir(parents=True)
    files = [base / "precious.txt", base / "sub" / "more.txt"]
    for f in files:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("keep me")
    return files


@pytest.mark.parametrize("command", ["clean", "prune"])
def test_cleanup_never_follows_planted_symlinks(
    tmp_path: Path, cache_dir: Path, offline_wheels: Path, command: str
) -> None:
    script = write_script(tmp_path / "s.py", "import alpha\n", ["alpha"])
    _ok(run_runner("run", str(script)))
    key = _key_of(cache_dir)
    env_dir = _only_env(cache_dir)
    keep = []
    # A link inside a published environment, inside a leftover build, and a store entry
    # that is itself a link to a directory outside the cache.
    keep += _outside_tree(tmp_path / "outside1")
    (env_dir / "evil").symlink_to(tmp_path / "outside1")
    leftover = cache_dir / "store" / f"{key}-deadbeef0000"
    leftover.mkdir()
    keep += _outside_tree(tmp_path / "outside2")
    (leftover / "evil").symlink_to(tmp_path / "outside2")
    (leftover / "evil-file").symlink_to(tmp_path / "outside2" / "precious.txt")
    keep += _outside_tree(tmp_path / "outside3")
    (cache_dir / "store" / f"{key}-cafebabe0000").symlink_to(tmp_path / "outside3")
    args = ["cache", command] + (["--older-than", "0s"] if command == "prune" else [])
    _ok(run_runner(*args, env={"RUNNER_PRUNE_GRACE": "0"}))
    assert not leftover.exists()
    assert not os.path.lexists(cache_dir / "store" / f"{key}-cafebabe0000")
    if command == "clean":
        assert not env_dir.exists()
    for f in keep:
        assert f.read_text() == "keep me", f


def test_remove_tree_never_follows_links(tmp_path: Path) -> None:
    keep = _outside_tree(tmp_path / "outside")
    tree = tmp_path / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "a" / "b" / "dirlink").symlink_to(tmp_path / "outside")
    (tree / "filelink").symlink_to(keep[0])
    os.chmod(tree / "a", 0o500)  # read-only directories inside are still removed
    remove_tree(tree)
    assert not tree.exists()
    top_link = tmp_path / "toplink"
    top_link.symlink_to(tmp_path / "outside")
    remove_tree(top_link)  # a link given as the tree: only the link goes
    assert not os.path.lexists(top_link)
    for f in keep:
        assert f.read_text() == "keep me"
