"""The cache: look-up, build locks, atomic publish and warm-path aliases.

The layout and its names are `runner.layout`'s; the trust rule is `runner.trust`'s.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from runner import alias, layout, records, trust
from runner.config import SOFT_LEASE_SECONDS, Config
from runner.errors import CacheError
from runner.fsutil import atomic_write_text, fsync_dir, new_directory, replace_retrying
from runner.layout import CACHEDIR_TAG, SUBDIRS

_NO_LOCKING = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS}
if hasattr(errno, "ENOTSUP"):
    _NO_LOCKING.add(errno.ENOTSUP)
_NO_SPACE = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
# RUNNER_LOCK=soft: marker-file leases for caches shared between hosts. Every host must use
# the same duration (RUNNER_LOCK_LEASE; filelock refuses a contender that disagrees); a holder
# refreshes its marker every third of it, so a killed holder's marker is taken over after
# this long.


def cache_error(path: Path, exc: OSError, doing: str) -> CacheError:
    """The CacheError an OSError met while `doing` something in the cache is, naming the path
    the error was about (the OS knows it better than the caller: `File exists` names the
    entry in the way, not the cache root)."""
    if isinstance(exc.filename, str) and exc.filename:
        path = Path(exc.filename)
    if exc.errno in _NO_SPACE:
        return CacheError(
            f"no space left in the runner cache at {path} while {doing}",
            hint="Free some space (`runner cache prune`), or point RUNNER_CACHE_DIR at a "
            "filesystem with room.",
        )
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return CacheError(
            f"cannot write to the runner cache at {path} ({exc.strerror}) while {doing}",
            hint="Make it writable, or choose another cache with RUNNER_CACHE_DIR=/some/dir.",
        )
    if exc.errno == errno.EEXIST or isinstance(exc, (IsADirectoryError, NotADirectoryError)):
        return CacheError(
            f"{path} is in the way in the runner cache ({exc.strerror}) while {doing}",
            hint=f"runner did not make {path}: move it away if nothing of yours is in it, or "
            "choose another cache with RUNNER_CACHE_DIR=/some/dir.",
        )
    return CacheError(
        f"runner cache error at {path} while {doing}: {exc.strerror or exc}",
        hint="Fix the path, or choose another cache with RUNNER_CACHE_DIR=/some/dir.",
    )


def _lease_mismatch() -> tuple[type[Exception], ...]:
    """filelock's error for a soft-lock contender whose lease duration differs from the
    holder's (filelock >= 3.30); an empty tuple, which catches nothing, before that."""
    import filelock

    kind = getattr(filelock, "LeaseSettingsMismatch", None)
    return (kind,) if isinstance(kind, type) and issubclass(kind, Exception) else ()


def process_start_time(pid: int | None = None) -> float | None:
    """When a process (default: this one) was started, wall clock seconds; None if unknown.

    Linux gives it to clock-tick precision (/proc/<pid>/stat, in seconds since boot). For
    this process elsewhere, the time this module was first imported stands in (a little
    later): it is what `--refresh` was asked at.
    """
    try:
        with open(f"/proc/{pid or 'self'}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rpartition(")")[2].split()
        ticks = int(fields[19])  # field 22 of the whole line: starttime
        since_boot = time.clock_gettime(time.CLOCK_BOOTTIME)
        return time.time() - (since_boot - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError, AttributeError):
        return _IMPORTED_AT if pid is None else None


_IMPORTED_AT = time.time()


def _hostname() -> str:
    """This host's name, as waiters are told who holds a lock (`socket` only where there
    is no uname: the module costs a cold run an import)."""
    if hasattr(os, "uname"):
        return os.uname().nodename
    import socket

    return socket.gethostname()


def _flock_if_free(path: Path) -> int | None:
    """The build lock taken quietly with the stdlib, when nobody holds it (the usual case):
    the same flock(2) on the same file as filelock's `FileLock`, so the two exclude each
    other, without filelock's import (20-30 ms of a cold run). None (then filelock takes
    it, waits and reports, or says why it cannot) if it is held, or on any error."""
    try:
        import fcntl
    except ImportError:
        return None
    flags = os.O_RDWR | os.O_CREAT | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_NOFOLLOW", 0), 0o666)  # as filelock
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


# A waiter says again what it waits for this often (seconds).
WAIT_REPORT_INTERVAL = 30.0


def _make_lock(path: Path, config: Config) -> Any:
    """The build lock `locks/<key>.lock`: flock, or with RUNNER_LOCK=soft a marker-file
    lease `locks/<key>.marker` that records pid and host and that a waiter takes over once
    its holder is gone (same host: at once when the pid is dead; other hosts: when the
    marker has not been refreshed for the lease duration).

    The two never share a path: flock leaves its (empty) lock files in place, and a soft
    lock would take such a file for the marker of a holder that never goes away. For the
    same reason filelock's own switch to marker files where flock is missing (ENOSYS) is
    turned off: runner then builds without the lock, which is still correct.
    """
    import filelock

    if config.soft_locks:
        marker = str(path.with_suffix(".marker"))
        lease = getattr(filelock, "SoftFileLease", None)  # filelock >= 3.30
        if lease is not None:
            return lease(marker, lease_duration=config.lock_lease)
        return filelock.SoftFileLock(marker)
    try:
        return filelock.FileLock(str(path), fallback_to_soft=False)
    except TypeError:  # filelock < 4 has no soft fallback to turn off
        return filelock.FileLock(str(path))


class Cache:
    """One cache root and the operations on it. Paths are absolute."""

    def __init__(self, root: Path | str | None = None, *, config: Config | None = None):
        # Production code passes the settings value built at the edge; tests may leave it out.
        self.config = config if config is not None else Config.from_environ()
        self.root = Path(root if root is not None else self.config.cache_root)
        self.envs = self.root / "envs"
        self.store = self.root / "store"
        self.locks = self.root / "locks"
        self.scripts = self.root / "scripts"
        self.interpreters = self.root / "interpreters"
        self.logs = self.root / "logs"
        self._locked_at: dict[str, float] = {}  # key -> when this process took its build lock

    # ------------------------------------------------------------------ setup

    def ensure(self) -> None:
        """Create the layout (mode 0700) and check that the root is safe to use."""
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise cache_error(self.root, exc, "creating the cache") from None
        self.check_ownership()
        try:
            for name in SUBDIRS:
                (self.root / name).mkdir(mode=0o755, exist_ok=True)
            tag = self.root / layout.CACHEDIR_TAG_NAME
            if not tag.exists():
                atomic_write_text(tag, CACHEDIR_TAG)
        except OSError as exc:
            if not self._layout_present():
                raise cache_error(self.root, exc, "creating the cache layout") from None
            # A read-only cache that already has its layout still serves what it holds.

    def _layout_present(self) -> bool:
        return all((self.root / name).is_dir() for name in SUBDIRS)

    def check_ownership(self) -> None:
        """Apply the trust rule (`runner.trust`) to the root and the directories runner
        follows in it: refuse what another user could have planted."""
        allow = self.config.allow_shared_cache
        problem = trust.root_problem(str(self.root), allow_shared=allow)
        if problem is None:
            for name in ("envs", "store", "scripts"):
                if (self.root / name).exists() or (self.root / name).is_symlink():
                    problem = trust.subdir_problem(str(self.root), name, allow_shared=allow)
                    if problem is not None:
                        break
        if problem is not None:
            raise CacheError(
                problem,
                hint="Another user's environments could run code as you. Choose your own "
                "cache with RUNNER_CACHE_DIR (or fix the owner and mode: `chmod go-w`), or "
                "set RUNNER_ALLOW_SHARED_CACHE=1 if the sharing is intended.",
            )

    # ------------------------------------------------------------------ look-up

    def pointer_target(self, key: str) -> Path | None:
        """The store directory `envs/<key>` points to, without validating it."""
        pointer = self.envs / key
        try:
            target = os.readlink(pointer)
        except FileNotFoundError:
            return None
        except OSError:
            # Not a symlink (EINVAL on POSIX, WinError 4390 on Windows): a pointer file,
            # written where symlinks are not available.
            try:
                target = pointer.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError):
                return None
            if not target:
                return None
        path = Path(target)
        if not path.is_absolute():
            path = self.envs / path
        return Path(os.path.normpath(path))

    def lookup(self, key: str) -> Path | None:
        """The published, intact environment for `key`, or None."""
        env_dir = self.pointer_target(key)
        if env_dir is None or env_dir.parent != self.store:
            return None
        real = Path(os.path.realpath(self.root)) / "store" / env_dir.name
        if not trust.env_dir_ok(
            str(self.root), str(real), allow_shared=self.config.allow_shared_cache
        ):
            return None
        if not is_intact(env_dir):
            return None
        manifest = self.read_manifest(env_dir)  # the cold path can afford to read it
        if manifest is None or manifest.get("key") != key:
            return None
        if records.first_missing_file(env_dir) is not None:
            return None  # files were deleted: build it again rather than fail confusingly
        return env_dir

    # ------------------------------------------------------------------ building

    def new_build_dir(self, key: str) -> Path:
        """A fresh private directory at its final location, never reused."""
        try:
            return new_directory(
                self.store, f"{key}-", mode=0o755, token_bytes=layout.TOKEN_LENGTH // 2
            )
        except OSError as exc:
            raise cache_error(self.store, exc, "creating a build directory") from None

    @contextlib.contextmanager
    def build_lock(
        self,
        key: str,
        *,
        label: str,
        on_wait: Callable[[str], None],
        on_unlockable: Callable[[str], None],
    ) -> Iterator[None]:
        """Hold the key's build lock; say who holds it if we have to wait.

        Correctness never depends on this lock: where the filesystem cannot lock, two
        builders may both build and one pointer swap wins.
        """
        self.check_pointer(key)
        path = self.locks / f"{key}.lock"
        owner = self.locks / f"{key}.owner"
        free = None if self.config.soft_locks else _flock_if_free(path)
        if free is not None:
            try:
                yield from self._holding(key, owner, label)
            finally:
                os.close(free)  # releases the lock
            return
        import warnings

        import filelock

        lock = _make_lock(path, self.config)
        asked = time.monotonic()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # filelock's warnings are not the user's business
                try:
                    lock.acquire(timeout=min(1.0, self.config.lock_timeout or 1.0))
                except filelock.Timeout:
                    self._wait_for(lock, path, owner, on_wait, asked)
        except _lease_mismatch() as exc:
            raise CacheError(
                f"machines sharing this cache disagree about the soft lock's lease: {exc} "
                f"(here RUNNER_LOCK_LEASE gives {self.config.lock_lease:g} s)",
                hint="Every machine sharing this cache must use the same RUNNER_LOCK_LEASE "
                f"(default {SOFT_LEASE_SECONDS:g}): set it to the same value everywhere.",
            ) from None
        except (OSError, NotImplementedError) as exc:
            if isinstance(exc, OSError) and exc.errno not in _NO_LOCKING:
                raise cache_error(self.locks, exc, "taking the build lock") from None
            on_unlockable(
                f"the cache filesystem cannot lock {path} ({exc}); building without the lock"
            )
            yield
            return
        try:
            yield from self._holding(key, owner, label)
        finally:
            lock.release()

    def _holding(self, key: str, owner: Path, label: str) -> Iterator[None]:
        """The build lock's body, once held: a note for waiters, then the build."""
        self._locked_at[key] = time.time()
        try:
            with contextlib.suppress(OSError):
                atomic_write_text(  # a note for waiters: not worth a journal commit
                    owner,
                    f"pid {os.getpid()} on {_hostname()}, building for {label}\n",
                    sync=False,
                )
            yield
        finally:
            self._locked_at.pop(key, None)

    def check_pointer(self, key: str) -> None:
        """Refuse to build around an `envs/<key>` that is not a pointer runner made (a
        directory, a device...): publishing could never replace it, and every run would
        build and leave behind another store directory."""
        pointer = self.envs / key
        try:
            st = os.lstat(pointer)
        except OSError:
            return
        if not (stat.S_ISLNK(st.st_mode) or stat.S_ISREG(st.st_mode)):
            what = "a directory" if stat.S_ISDIR(st.st_mode) else "not a file"
            raise CacheError(
                f"{pointer} is {what}, not a pointer runner made; not building an environment "
                "that could never be published there",
                hint=f"runner did not make it: move it away (mv {pointer} ~/) if nothing of "
                "yours is in it, and run again.",
            )

    @contextlib.contextmanager
    def try_build_lock(self, key: str) -> Iterator[bool]:
        """Take the key's build lock without waiting; yield whether it is held.

        For cleanup: a busy lock means a build of this key is in progress. Where the
        filesystem cannot lock, yields True (correctness never depends on this lock).
        """
        import warnings

        import filelock

        lock = _make_lock(self.locks / f"{key}.lock", self.config)
        busy: tuple[type[Exception], ...] = (filelock.Timeout, *_lease_mismatch())
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                lock.acquire(blocking=False)
        except busy:
            # A holder that disagrees about the lease duration is still a holder: busy.
            yield False
            return
        except (OSError, NotImplementedError):
            yield True
            return
        try:
            yield True
        finally:
            lock.release()

    def _wait_for(
        self, lock: Any, path: Path, owner: Path, on_wait: Callable[[str], None], asked: float
    ) -> None:
        """Wait for the build lock, saying what we wait for now and every
        WAIT_REPORT_INTERVAL seconds, and giving up after RUNNER_LOCK_TIMEOUT seconds.

        A soft marker that is still empty a whole lease after it was made belongs to a
        holder killed between creating and filling it; filelock would wait for it forever,
        so it is removed."""
        import filelock

        soft = self.config.soft_locks
        lease = self.config.lock_lease
        limit = self.config.lock_timeout
        started = asked  # the lock was first tried quietly for a second
        next_report = time.monotonic()
        first = True
        while True:
            now = time.monotonic()
            if now >= next_report:
                text = self._owner_text(owner)
                on_wait(text if first else f"{text}; {now - started:.0f} s so far")
                first = False
                next_report = now + WAIT_REPORT_INTERVAL
            slice_ = next_report - now
            if soft:
                slice_ = min(slice_, lease)
            if limit is not None:
                left = started + limit - now
                if left <= 0:
                    raise CacheError(
                        f"gave up after {limit:g} s waiting for {path}, held by "
                        f"{self._owner_text(owner)}",
                        hint="That build may be stuck or stopped (kill -CONT it, or end it); "
                        "raise RUNNER_LOCK_TIMEOUT to wait longer, or unset it to wait as "
                        "long as it takes.",
                    )
                slice_ = min(slice_, left)
            try:
                lock.acquire(timeout=max(slice_, 0.01))
                return
            except filelock.Timeout:
                if soft:
                    with contextlib.suppress(OSError):
                        st = os.stat(lock.lock_file)
                        if st.st_size == 0 and time.time() - st.st_mtime > lease:
                            os.unlink(lock.lock_file)

    @staticmethod
    def _owner_text(owner: Path) -> str:
        try:
            return owner.read_text(encoding="utf-8").strip()
        except OSError:
            return "another process"

    def publish(self, key: str, env_dir: Path) -> None:
        """Atomically point `envs/<key>` at `env_dir` (replacing any older pointer).

        A build done under the key's lock also records when it started (`locks/<key>.built`),
        so `--refresh` runs that waited for it can use it instead of building again."""
        self.check_pointer(key)
        pointer = self.envs / key
        tmp = self.envs / f".{key}.{os.urandom(6).hex()}.tmp"
        relative = os.path.relpath(env_dir, self.envs)
        try:
            try:
                os.symlink(relative, tmp)
            except (OSError, NotImplementedError):
                atomic_write_text(tmp, relative + "\n")
            replace_retrying(tmp, pointer)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            exc.filename, exc.filename2 = str(pointer), None
            raise cache_error(self.envs, exc, "publishing an environment") from None
        fsync_dir(self.envs)
        started = self._locked_at.get(key)
        if started is not None:
            with contextlib.suppress(OSError):
                # Not synced: a lost or cut record only means a later --refresh builds anew.
                atomic_write_text(
                    self.locks / f"{key}.built", f"{started!r}\t{env_dir}\n", sync=False
                )

    def refreshed_since(self, key: str, since: float) -> Path | None:
        """The published environment of `key` if a build that started after `since` made it
        (read under the key's build lock: `--refresh` runs that waited for another refresh
        of the same environment use its result)."""
        try:
            text = (self.locks / f"{key}.built").read_text(encoding="utf-8")
            started_text, _, env_text = text.rstrip("\n").partition("\t")
            started = float(started_text)
        except (OSError, ValueError):
            return None
        if started <= since or self.pointer_target(key) != Path(env_text):
            return None
        return self.lookup(key)

    def build_failure(self, exc: BaseException) -> CacheError | None:
        """The cache error a failed build really is (a full disk, a read-only cache), if any.

        An installer's own report of a full disk is recognised where it runs (`installers`);
        the builder passes it on here as the OSError it stands for.
        """
        if isinstance(exc, OSError) and exc.errno in (*_NO_SPACE, errno.EROFS):
            return cache_error(self.root, exc, "building an environment")
        return None

    # ------------------------------------------------------------------ aliases

    def write_alias(
        self,
        digest: str,
        env_dir: Path,
        *,
        stat_paths: tuple[str, ...],
        var_names: tuple[str, ...] = (),
        script: str | None = None,
        expires: int | None = None,
    ) -> None:
        """Record, for the warm path, which environment a selection digest maps to."""
        text = alias.render(
            str(env_dir),
            stat_paths=stat_paths,
            var_names=var_names,
            environ=os.environ,
            script=script,
            expires=expires,
        )
        if text is None:
            return
        # Not synced: after a power cut a lost alias means a cold run, and a cut one (no
        # closing `end` line) is never trusted. Its environment was flushed before.
        with contextlib.suppress(OSError):  # a read-only cache still runs, only colder
            atomic_write_text(self.scripts / digest, text, sync=False)

    # ------------------------------------------------------------------ manifests

    @staticmethod
    def read_manifest(env_dir: Path) -> dict[str, Any] | None:
        try:
            data = json.loads((env_dir / layout.MANIFEST_NAME).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def log_path(self, key: str) -> Path:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        return self.logs / f"{key}-{stamp}-{os.getpid()}.log"


def is_intact(env_dir: Path) -> bool:
    """Cheap check that an environment is complete and its interpreter still exists."""
    try:
        os.stat(env_dir / layout.MANIFEST_NAME)
        os.stat(env_dir / layout.LEASE_NAME)
        os.stat(layout.env_python(str(env_dir)))  # follows the link to the base Python
    except OSError:
        return False
    return True
