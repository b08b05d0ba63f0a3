"""Cache lifecycle: list, prune, clean and verify environments without breaking running scripts.

Boundaries: cleanup works only in a cache root that belongs to the caller (`check_cache`:
the ownership rule of the run path, runner's own CACHEDIR.TAG, and `store/`, `envs/`,
`scripts/`, ... real directories, never symbolic links), and removes only entries whose names
runner makes (`store/<32 hex>-<12 hex>`, `store/.trash-<12 hex>`, `envs/<32 hex>`,
`scripts/<64 hex>`, their temporary files, logs and stored stdin scripts). Anything else is
reported as "not made by runner" and left alone.

Safety protocol for removing store directories (DESIGN principles 2 and 4), a batch at a time:

1. try the exclusive lock on each one's lease file without waiting; if a running script
   holds the shared lease, the environment is in use: skip it and say so. A complete
   environment without a lease file is skipped too: nothing can tell whether it is in use;
2. try the key's build lock without waiting; if a build of the key is in progress, skip;
3. holding those locks, look for living processes that use the environments even without
   the descriptor lease (a script that closed its descriptors, a detached child): on Linux
   `processes_using` reads /proc; whatever names an environment keeps it;
4. unpublish first: remove `envs/<key>` only if it still names this directory, and every
   alias naming it;
5. rename the directory to `store/.trash-<random>` so its manifest disappears atomically;
6. release the locks, then delete the trash with `fsutil.remove_tree` (never follows
   symlinks out of the cache).

A launcher that took its lease in between finds no manifest and falls back to the cold path.
Directories nothing names (a killed build's leftovers) are removed only after a grace period,
so a build in progress is never touched, even where locks do not work; prune and clean report
the ones they keep and when they become removable.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from runner import alias as alias_format
from runner import filestore, layout, proc, pycindex, records
from runner.cache import Cache, cache_error, process_start_time
from runner.errors import CacheError
from runner.fsutil import (
    atomic_write_text,
    dir_size,
    fsync_dir,
    is_sharing_violation,
    remove_tree,
)
from runner.layout import AUTO_PRUNE_INTERVAL, AUTO_PRUNE_STAMP, CACHEDIR_TAG, SUBDIRS
from runner.redact import redact_text
from runner.report import Reporter

DEFAULT_OLDER_THAN = 30 * 86400.0
DEFAULT_GRACE = 3600.0
AUTO_PRUNE_BUDGET = 2.0
TRASH_PREFIX = ".trash-"

# Names runner gives to what it puts in the cache (with `layout.store_key`, `layout.is_key`
# and `layout.is_digest`); nothing else is ever removed.
_TRASH_NAME = re.compile(r"^\.trash-[0-9a-f]{12}$")
_TEMP_NAME = re.compile(r"^\.+[0-9a-f]{32}(?:[0-9a-f]{32})?\.[A-Za-z0-9_.]+\.tmp$")
_LOG_NAME = re.compile(r"^[0-9a-z]+-\d{8}T\d{6}-\d+\.log$")
_STDIN_NAME = re.compile(r"^[0-9a-f]{64}\.py$")
_URL_NAME = re.compile(r"^[0-9a-f]{64}\.(?:py|url)$")  # urlstore: copies and URL records
# How a store directory's name appears in a process's command line or environment.
_STORE_TOKEN = re.compile(rb"[0-9a-f]{32}-[0-9a-f]{12}")
# Leases and build locks are held for this many environments at a time (file descriptors).
_BATCH = 64


def parse_duration(text: str, option: str = "--older-than") -> float:
    """Seconds in `30d`, `12h`, `90m`, `45s`, `2w` (a bare number is days); UsageError if not."""
    from runner.validate import duration

    return duration(text, option)


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class EnvInfo:
    """One store directory as `runner cache list` shows it.

    state: "published" (envs/<key> names it), "aliased" (only warm-path aliases name it:
    a superseded build scripts still start in), "unpublished" (nothing names it) or
    "incomplete" (no manifest: a killed or running build).
    in_use: True if a running script holds its lease, None if the filesystem cannot tell.
    """

    key: str
    path: str
    state: str
    requirements: tuple[str, ...]
    installed: tuple[tuple[str, str], ...]
    interpreter: str
    size: int
    created: float | None
    last_used: float | None
    in_use: bool | None
    scripts: tuple[str, ...]
    # Bytes only this environment holds (freed by removing it); `size` is its apparent size,
    # files shared with other environments through the file store included.
    own_size: int = 0

    @property
    def short_key(self) -> str:
        return self.key[:12]


@dataclass(frozen=True)
class Removal:
    """Something prune/clean removed (or would remove, in a dry run)."""

    kind: str  # "environment", "unpublished", "trash", "alias", "pointer", "temp", "log",
    # "stdin script", "stray" (a link or file under an environment's name in store/),
    # "stored files" (one entry for all the file store's freed files), "index entries" (one
    # for all the bytecode index's removed entries)
    path: str
    key: str | None
    size: int
    reason: str


@dataclass(frozen=True)
class Kept:
    """Something prune/clean left alone, and why.

    reason: "in use", "build in progress", "cannot lock", "lease file missing" (nothing can
    tell whether it is in use), "incomplete build" / "recently unpublished" (removable after
    `removable_after`), "not made by runner" (a name runner never gives: never touched).
    detail: what uses it ("process 123 (python3)"), where known.
    """

    key: str
    path: str
    reason: str
    detail: str | None = None
    removable_after: float | None = None


@dataclass(frozen=True)
class CleanupResult:
    removed: tuple[Removal, ...]
    kept: tuple[Kept, ...]
    dry_run: bool
    complete: bool  # False when a time budget stopped it early

    @property
    def bytes_freed(self) -> int:
        return sum(r.size for r in self.removed)


@dataclass(frozen=True)
class EnvCheck:
    """The result of verifying one environment."""

    key: str
    path: str
    state: str
    problems: tuple[str, ...]
    action: str | None  # "unpublished", "removed", or why nothing was done: "in use", ...

    @property
    def ok(self) -> bool:
        return not self.problems


# --------------------------------------------------------------------------- scanning


@dataclass(frozen=True)
class _Alias:
    path: Path
    env_dir: str
    scripts: tuple[str, ...]
    mtime: float


@dataclass(frozen=True)
class _Scan:
    pointers: dict[str, Path | None]  # key -> target (None: unreadable)
    aliases: tuple[_Alias, ...]
    store_dirs: tuple[Path, ...]
    trash: tuple[Path, ...]
    stray: tuple[Path, ...] = ()  # links and files under an environment's name in store/
    foreign: tuple[Path, ...] = ()  # names runner never gives: reported, never touched

    def named_by_pointer(self, env_dir: Path) -> bool:
        key = key_of(env_dir)
        return key is not None and self.pointers.get(key) == env_dir

    def aliases_for(self, env_dir: Path) -> list[_Alias]:
        text = str(env_dir)
        return [a for a in self.aliases if a.env_dir == text]

    def state_of(self, env_dir: Path, has_manifest: bool) -> str:
        if not has_manifest:
            return "incomplete"
        if self.named_by_pointer(env_dir):
            return "published"
        if self.aliases_for(env_dir):
            return "aliased"
        return "unpublished"


def key_of(env_dir: Path) -> str | None:
    """The key of a store directory named as runner names them (`<key>-<token>`), else None."""
    return layout.store_key(env_dir.name)


def _listdir(path: Path) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def _lstat_mode(path: Path) -> int | None:
    try:
        return os.lstat(path).st_mode
    except OSError:
        return None


def _read_alias(path: Path) -> _Alias | None:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
            mtime = os.fstat(f.fileno()).st_mtime
    except (OSError, UnicodeDecodeError):
        return None
    parsed = alias_format.parse(text)
    if parsed is None:  # foreign, old or truncated: names nothing
        return _Alias(path=path, env_dir="", scripts=(), mtime=mtime)
    return _Alias(path=path, env_dir=parsed.env_dir, scripts=tuple(parsed.scripts), mtime=mtime)


def _scan(cache: Cache) -> _Scan:
    pointers: dict[str, Path | None] = {}
    foreign: list[Path] = []
    for name in sorted(_listdir(cache.envs)):
        path = cache.envs / name
        mode = _lstat_mode(path)
        if _TEMP_NAME.match(name) or mode is None:
            continue
        if layout.is_key(name) and (stat.S_ISLNK(mode) or stat.S_ISREG(mode)):
            pointers[name] = cache.pointer_target(name)
        else:
            foreign.append(path)  # e.g. a directory where a pointer belongs
    aliases = []
    for name in sorted(_listdir(cache.scripts)):
        path = cache.scripts / name
        if _TEMP_NAME.match(name):
            continue
        mode = _lstat_mode(path)
        alias = _read_alias(path) if mode is not None and stat.S_ISREG(mode) else None
        if layout.is_digest(name) and alias is not None:
            aliases.append(alias)
        elif mode is not None:
            foreign.append(path)
    store_dirs: list[Path] = []
    trash: list[Path] = []
    stray: list[Path] = []
    for name in sorted(_listdir(cache.store)):
        path = cache.store / name
        mode = _lstat_mode(path)
        if mode is None:
            continue
        if _TRASH_NAME.match(name):
            trash.append(path)
        elif layout.store_key(name) is not None:
            (store_dirs if stat.S_ISDIR(mode) else stray).append(path)
        else:
            foreign.append(path)
    return _Scan(
        pointers, tuple(aliases), tuple(store_dirs), tuple(trash), tuple(stray), tuple(foreign)
    )


def check_cache(cache: Cache, *, removing: bool) -> bool:
    """Refuse to work in a cache root that is not the caller's runner cache; False if there
    is no cache at all yet (nothing to do).

    The root must pass the run path's ownership rule. Before anything is removed it must
    also carry runner's CACHEDIR.TAG, and the directories cleanup works in must be real
    directories inside it: a symbolic link there could take cleanup anywhere.
    """
    if not os.path.lexists(cache.root):
        return False
    cache.check_ownership()
    if not removing:
        return True
    tag = cache.root / layout.CACHEDIR_TAG_NAME
    try:
        if stat.S_ISLNK(os.lstat(tag).st_mode):
            raise OSError("a symbolic link")
        text = tag.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
        if not os.path.lexists(tag) and not _listdir(cache.store):
            return False  # a cache being created (the tag comes next) or none: nothing to do
    if text != CACHEDIR_TAG:
        raise CacheError(
            f"{cache.root} does not look like a runner cache (no CACHEDIR.TAG written by "
            "runner in it); nothing was removed",
            hint="runner only cleans directories it created itself. Check RUNNER_CACHE_DIR "
            "(`runner cache dir` shows the root in use); if it is your runner cache and the "
            "tag was deleted, any `runner run` writes it again.",
        )
    index = os.path.join(layout.FILES_DIR, layout.PYC_INDEX_DIR)
    for name in (*SUBDIRS, "stdin", "urls", layout.FILES_DIR, index):
        path = cache.root / name
        mode = _lstat_mode(path)
        if mode is None or stat.S_ISDIR(mode):
            continue
        what = "a symbolic link" if stat.S_ISLNK(mode) else "not a directory"
        raise CacheError(
            f"{path} is {what}; runner does not clean through it (nothing was removed)",
            hint=f"runner makes {name}/ a plain directory inside the cache. Move {path} away "
            "(the next run recreates it), or point RUNNER_CACHE_DIR at the real cache.",
        )
    return True


def _mtime(path: Path) -> float | None:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None


def _age_stamp(env_dir: Path) -> float:
    """Newest sign of activity of a directory (its own mtime, its lease's)."""
    return max(_mtime(env_dir) or 0.0, _mtime(env_dir / layout.LEASE_NAME) or 0.0)


def _last_used(env_dir: Path, manifest: dict[str, object] | None) -> float | None:
    lease = _mtime(env_dir / layout.LEASE_NAME)
    if lease is not None:
        return lease
    created = manifest.get("created") if manifest else None
    return float(created) if isinstance(created, (int, float)) else _mtime(env_dir)


# --------------------------------------------------------------------------- leases


def probe_in_use(env_dir: Path) -> bool | None:
    """True if a running script holds the lease; never waits. None: cannot tell."""
    with _exclusive_lease(env_dir) as why:
        if why is None:
            return False
        return True if why == "in use" else None


@contextlib.contextmanager
def _exclusive_lease(env_dir: Path) -> Iterator[str | None]:
    """Hold the lease exclusively if nobody uses the env: yields None; otherwise why not:
    "in use", "cannot lock" (the filesystem cannot lock), "lease file missing" (a complete
    environment whose lease file is gone: a script may still hold a lock on the deleted
    file, so nothing can tell it is free). A directory without a manifest and without a
    lease file is a killed build's leftover that nothing ever ran in: free."""
    try:
        fd = os.open(env_dir / layout.LEASE_NAME, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        has_manifest = os.path.lexists(env_dir / layout.MANIFEST_NAME)
        yield "lease file missing" if has_manifest else None
        return
    except OSError:
        yield "cannot lock"
        return
    try:
        try:
            import fcntl
        except ImportError:  # Windows: open files cannot be deleted anyway
            yield None
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            busy = exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)
            yield "in use" if busy else "cannot lock"
            return
        yield None
    finally:
        os.close(fd)


@contextlib.contextmanager
def _shared_lease(env_dir: Path) -> Iterator[bool]:
    """Hold a shared lease (as a running script does) while verify reads an environment;
    False if a cleanup holds it exclusively: the environment is being removed."""
    try:
        fd = os.open(env_dir / layout.LEASE_NAME, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        yield True  # nothing to hold; verify checks afterwards that it is still there
        return
    try:
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except ImportError:
            pass
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                yield False
                return
        yield True
    finally:
        os.close(fd)


def processes_using(
    env_dirs: Iterable[Path], *, shared: bool, proc_root: str = "/proc"
) -> dict[Path, str]:
    """Living processes that use each environment although they may not hold its lease
    (a script that closed its descriptors, a child left running after its parent ended).

    Linux only (elsewhere: {}): a process uses an environment if its command line,
    environment variables (VIRTUAL_ENV and PATH, which runner sets and children inherit),
    executable or working directory name the environment's directory. Store directory names
    carry a random token, so the name alone identifies the environment, whatever path
    (symlinks, bind mounts) led the process to it.

    In a private cache only the caller's own processes can use it. In a shared one
    (`shared`) every process counts, and one whose environment cannot be read counts as a
    user of every environment it could have come from: all those published after it
    started. (A process started earlier did not inherit an environment from them, and had
    it exec'd one of their interpreters since, its command line, always readable, would
    name it. This keeps an uninspectable init process from pinning every environment.)
    Returns, for each environment in use, a description of one user.
    """
    names = {os.fsencode(d.name): d for d in env_dirs}
    if not names or not os.path.isdir(os.path.join(proc_root, "self")):
        return {}
    try:
        pids = [p for p in os.listdir(proc_root) if p.isdigit()]
    except OSError:
        return {}
    me, uid = os.getpid(), os.geteuid()
    found: dict[Path, str] = {}
    published_at: dict[Path, float] = {}
    for env_dir in names.values():
        try:
            published_at[env_dir] = os.stat(env_dir / layout.MANIFEST_NAME).st_mtime
        except OSError:
            published_at[env_dir] = 0.0  # unknown: anything may have come from it
    for pid in pids:
        if int(pid) == me:
            continue
        base = os.path.join(proc_root, pid)
        try:
            owner = os.stat(base).st_uid
        except OSError:
            continue  # ended meanwhile
        if owner != uid and not shared:
            continue
        texts = _process_texts(base)
        if texts is None:
            if not shared:
                continue  # private cache: a process we cannot inspect is not ours to worry
            started = process_start_time(int(pid))
            for env_dir in names.values():
                if started is None or started >= published_at[env_dir] - 1.0:
                    found.setdefault(env_dir, f"process {pid} of uid {owner} (cannot inspect it)")
        else:
            named = {m for text in texts for m in _STORE_TOKEN.findall(text)}
            for name in named & names.keys():
                found.setdefault(names[name], f"process {pid} ({_process_name(base)})")
        if len(found) == len(names):
            break
    return found


def _process_texts(base: str) -> list[bytes] | None:
    """Command line, environment, executable and cwd of one process; None if hidden."""
    texts: list[bytes] = []
    for name in ("cmdline", "environ"):
        try:
            with open(os.path.join(base, name), "rb") as f:
                texts.append(f.read())
        except PermissionError:
            return None
        except OSError:
            return []  # ended meanwhile
        if name == "cmdline" and not texts[0]:
            return []  # a kernel thread or a zombie: runs nothing from anywhere
    for name in ("exe", "cwd"):
        # Unreadable or absent: the command line and environment said enough.
        with contextlib.suppress(OSError):
            texts.append(os.fsencode(os.readlink(os.path.join(base, name))))
    return texts


def _process_name(base: str) -> str:
    try:
        with open(os.path.join(base, "comm"), encoding="utf-8", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return "?"


# --------------------------------------------------------------------------- list


def _interpreter_text(manifest: dict[str, object] | None) -> str:
    interp = manifest.get("interpreter") if manifest else None
    if isinstance(interp, dict):
        return f"{interp.get('implementation', '?')} {interp.get('version', '?')}"
    return "?"


def _info(
    scan: _Scan,
    env_dir: Path,
    *,
    sizes: bool = True,
    stored: dict[tuple[int, int], int] | None = None,
) -> EnvInfo:
    manifest = Cache.read_manifest(env_dir)
    requirements = manifest.get("requirements") if manifest else None
    installed = manifest.get("installed") if manifest else None
    pairs = tuple(
        (str(d.get("name")), str(d.get("version")))
        for d in (installed if isinstance(installed, list) else [])
        if isinstance(d, dict)
    )
    created = manifest.get("created") if manifest else None
    scripts: list[str] = []
    for alias in sorted(scan.aliases_for(env_dir), key=lambda a: -a.mtime):
        scripts.extend(s for s in alias.scripts if s not in scripts)
    usage = filestore.usage(env_dir, stored or {}) if sizes else filestore.Usage(0, 0)
    return EnvInfo(
        key=key_of(env_dir) or env_dir.name,
        path=str(env_dir),
        state=scan.state_of(env_dir, manifest is not None),
        # Redacted again: a manifest written by an older runner may hold credentials.
        requirements=tuple(redact_text(str(r)) for r in requirements)
        if isinstance(requirements, list)
        else (),
        installed=pairs,
        interpreter=_interpreter_text(manifest),
        size=usage.apparent,
        created=float(created) if isinstance(created, (int, float)) else None,
        last_used=_last_used(env_dir, manifest),
        in_use=probe_in_use(env_dir),
        scripts=tuple(scripts),
        own_size=usage.own,
    )


@dataclass(frozen=True)
class CacheUsage:
    disk: int  # environments and file store together, every file counted once
    file_store: int


def cache_usage(cache: Cache) -> CacheUsage:
    """The real disk use of the environments and of the shared file store."""
    root = filestore.store_root(cache.root)
    return CacheUsage(
        disk=filestore.disk_usage([cache.store, root]), file_store=filestore.disk_usage([root])
    )


def list_environments(cache: Cache, *, sizes: bool = True) -> tuple[EnvInfo, ...]:
    """Every store directory, published first, then by last use (newest first)."""
    scan = _scan(cache)
    stored = filestore.stored_inodes(cache.root) if sizes else {}
    infos = [_info(scan, d, sizes=sizes, stored=stored) for d in scan.store_dirs]
    # Processes that use an environment without holding its lease count as in use too.
    users = processes_using(
        [Path(i.path) for i in infos if i.in_use is False],
        shared=cache.config.allow_shared_cache,
    )
    infos = [replace(i, in_use=True) if Path(i.path) in users else i for i in infos]
    order = {"published": 0, "aliased": 1, "unpublished": 2, "incomplete": 3}
    infos.sort(key=lambda i: (order.get(i.state, 9), -(i.last_used or 0.0), i.key))
    return tuple(infos)


# --------------------------------------------------------------------------- removal


class _Sweep:
    """Accumulates what one prune/clean did; enforces an optional time budget."""

    def __init__(self, cache: Cache, *, dry_run: bool, budget: float | None):
        self.cache = cache
        self.dry_run = dry_run
        self.deadline = None if budget is None else time.monotonic() + budget
        self.removed: list[Removal] = []
        self.kept: list[Kept] = []
        self.complete = True
        self.shared = cache.config.allow_shared_cache

    def out_of_time(self) -> bool:
        if self.deadline is not None and time.monotonic() > self.deadline:
            self.complete = False
            return True
        return False

    def result(self) -> CleanupResult:
        return CleanupResult(tuple(self.removed), tuple(self.kept), self.dry_run, self.complete)

    def keep(self, path: Path, reason: str, **extra: Any) -> None:
        self.kept.append(Kept(key_of(path) or "", str(path), reason, **extra))

    def report_foreign(self, scan: _Scan) -> None:
        for path in scan.foreign:
            self.kept.append(Kept("", str(path), "not made by runner"))

    def remove_env(self, scan: _Scan, env_dir: Path, kind: str, reason: str) -> None:
        """Remove one store directory following the safety protocol."""
        self.remove_envs(scan, [(env_dir, kind, reason)])

    def remove_envs(self, scan: _Scan, items: list[tuple[Path, str, str]]) -> None:
        """Remove store directories following the safety protocol, a batch at a time."""
        for start in range(0, len(items), _BATCH):
            if self.out_of_time():
                return
            self._remove_batch(scan, items[start : start + _BATCH])

    def _remove_batch(self, scan: _Scan, items: list[tuple[Path, str, str]]) -> None:
        trash_dirs: list[Path] = []
        with contextlib.ExitStack() as stack:
            held: list[tuple[Path, str, str, str]] = []
            build_locks: dict[str, bool] = {}  # one per key: a second flock would conflict
            for env_dir, kind, reason in items:
                key = key_of(env_dir)
                if key is None or env_dir.parent != self.cache.store:
                    self.keep(env_dir, "not made by runner")
                    continue
                why = stack.enter_context(_exclusive_lease(env_dir))
                if why is not None:
                    self.keep(env_dir, why)
                    continue
                if key not in build_locks:
                    build_locks[key] = stack.enter_context(self.cache.try_build_lock(key))
                if not build_locks[key]:
                    self.keep(env_dir, "build in progress")
                    continue
                held.append((env_dir, key, kind, reason))
            # Only now, holding every lease, can no new user appear unseen.
            users = processes_using([h[0] for h in held], shared=self.shared)
            for env_dir, key, kind, reason in held:
                if env_dir in users:
                    self.keep(env_dir, "in use", detail=users[env_dir])
                    continue
                size = filestore.private_size(env_dir)  # shared files: see collect_stored_files
                if self.dry_run:
                    self.removed.append(Removal(kind, str(env_dir), key, size, reason))
                    continue
                trash = self.cache.store / f"{TRASH_PREFIX}{secrets.token_hex(6)}"
                try:
                    if not stat.S_ISDIR(os.lstat(env_dir).st_mode):
                        continue
                    self._unpublish(scan, env_dir)
                    os.rename(env_dir, trash)
                except FileNotFoundError:
                    continue  # another cleanup got here first
                except OSError as exc:
                    if is_sharing_violation(exc):  # Windows: a running Python holds it
                        self.keep(env_dir, "in use", detail="a running program holds its files")
                        continue
                    raise cache_error(env_dir, exc, "removing an environment") from None
                trash_dirs.append(trash)
                self.removed.append(Removal(kind, str(env_dir), key, size, reason))
            if trash_dirs:
                fsync_dir(self.cache.store)
        for trash in trash_dirs:
            self._remove_tree(trash)

    def _remove_tree(self, path: Path) -> None:
        try:
            remove_tree(path)
        except OSError as exc:
            raise cache_error(path, exc, "removing an environment") from None

    def _unpublish(self, scan: _Scan, env_dir: Path) -> None:
        key = key_of(env_dir)
        if key is not None and self.cache.pointer_target(key) == env_dir:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.cache.envs / key)
            fsync_dir(self.cache.envs)
        for alias in scan.aliases_for(env_dir):
            current = _read_alias(alias.path)
            if current is not None and current.env_dir == str(env_dir):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(alias.path)

    def unpublish_only(self, scan: _Scan, env_dir: Path) -> str:
        """For verify --repair: unpublish, then delete if nobody uses it."""
        key = key_of(env_dir) or ""
        with self.cache.try_build_lock(key) as building_free:
            if not building_free:
                return "build in progress"
            try:
                self._unpublish(scan, env_dir)
            except OSError as exc:
                raise cache_error(env_dir, exc, "unpublishing a damaged environment") from None
        before = len(self.removed)
        self.remove_env(scan, env_dir, "environment", "damaged")
        return "removed" if len(self.removed) > before else "unpublished"

    def remove_file(self, path: Path, kind: str, reason: str, key: str | None = None) -> None:
        if not self.dry_run:
            try:
                os.unlink(path)
            except FileNotFoundError:
                return
            except OSError as exc:
                raise cache_error(path, exc, f"removing a {kind}") from None
        self.removed.append(Removal(kind, str(path), key, 0, reason))

    def sweep_debris(self, scan: _Scan, grace: float) -> None:
        """Trash of interrupted cleanups, stray links, stale aliases and pointers, temp files."""
        now = time.time()
        for trash in scan.trash:
            if self.out_of_time():
                return
            size = dir_size(trash)
            if not self.dry_run:
                self._remove_tree(trash)
            self.removed.append(Removal("trash", str(trash), None, size, "interrupted cleanup"))
        for path in scan.stray:
            # Under an environment's name but not a directory: only the link itself goes.
            self.remove_file(path, "stray", "not an environment", key_of(path))
        for alias in scan.aliases:
            if alias.env_dir and not os.path.isdir(alias.env_dir):
                current = _read_alias(alias.path)
                if current is not None and current.env_dir == alias.env_dir:
                    self.remove_file(alias.path, "alias", "names a missing environment")
        for key, target in scan.pointers.items():
            if target is not None and target.is_dir():
                continue
            with self.cache.try_build_lock(key) as free:
                target = self.cache.pointer_target(key)
                if free and (target is None or not target.is_dir()):
                    self.remove_file(
                        self.cache.envs / key, "pointer", "names a missing environment", key
                    )
        for directory in (self.cache.envs, self.cache.scripts):
            for name in _listdir(directory):
                if _TEMP_NAME.match(name):
                    path = directory / name
                    mtime = _mtime(path)
                    if mtime is not None and now - mtime > grace:
                        self.remove_file(path, "temp", "left by an interrupted write")

    def sweep_old_files(
        self, directory: Path, older_than: float, kind: str, names: re.Pattern[str]
    ) -> None:
        """Files unused (by mtime) for `older_than`: build logs, stored stdin scripts."""
        now = time.time()
        for name in sorted(_listdir(directory)):
            if self.out_of_time():
                return
            path = directory / name
            temp = _TEMP_NAME.match(name) is not None  # an interrupted atomic write
            if not names.match(name) and not temp:
                self.kept.append(Kept("", str(path), "not made by runner"))
                continue
            mode = _lstat_mode(path)
            mtime = _mtime(path)
            if mode is None or not stat.S_ISREG(mode) or mtime is None:
                continue
            if now - mtime > older_than:
                age = f"unused for {(now - mtime) / 86400:.0f} days"
                self.remove_file(path, "temp" if temp else kind, age)

    def orphans(
        self, scan: _Scan, grace: float, now: float, *, everything: bool = False
    ) -> tuple[list[tuple[Path, str, str]], set[Path]]:
        """Directories nothing names that are due for removal; report the rest as kept,
        with when they become removable. Returns the due ones and every orphan seen.

        With `everything` (clean), complete ones are due at once: only unfinished builds get
        the grace period (they may still be running where locks do not work)."""
        due: list[tuple[Path, str, str]] = []
        seen: set[Path] = set()
        for env_dir in scan.store_dirs:
            has_manifest = os.path.lexists(env_dir / layout.MANIFEST_NAME)
            state = scan.state_of(env_dir, has_manifest)
            if state not in ("unpublished", "incomplete"):
                continue
            seen.add(env_dir)
            incomplete = state == "incomplete"
            ready_at = _age_stamp(env_dir) + grace
            if now > ready_at:
                reason = "unfinished build" if incomplete else "no longer published"
                due.append((env_dir, "unpublished", reason))
                continue
            if everything and not incomplete:
                due.append((env_dir, "environment", "clean"))
                continue
            if incomplete:
                with self.cache.try_build_lock(key_of(env_dir) or "") as free:
                    why = "incomplete build" if free else "build in progress"
            else:
                why = "recently unpublished"
            self.keep(env_dir, why, removable_after=ready_at)
        return due, seen


def prune(
    cache: Cache,
    *,
    older_than: float = DEFAULT_OLDER_THAN,
    dry_run: bool = False,
    grace: float | None = None,
    budget: float | None = None,
) -> CleanupResult:
    """Remove environments unused for `older_than` seconds, leftovers and stale entries."""
    grace = cache.config.prune_grace if grace is None else grace
    sweep = _Sweep(cache, dry_run=dry_run, budget=budget)
    if not check_cache(cache, removing=True):
        return sweep.result()
    scan = _scan(cache)
    now = time.time()
    sweep.report_foreign(scan)
    sweep.sweep_debris(scan, grace)
    sweep.sweep_old_files(cache.logs, older_than, "log", _LOG_NAME)
    sweep.sweep_old_files(cache.root / "stdin", older_than, "stdin script", _STDIN_NAME)
    # Downloaded scripts and their URL records; installed commands' copies (installed/) stay.
    sweep.sweep_old_files(cache.root / "urls", older_than, "downloaded script", _URL_NAME)
    due, orphans = sweep.orphans(scan, grace, now)
    for env_dir in scan.store_dirs:
        if env_dir in orphans:
            continue
        last = _last_used(env_dir, Cache.read_manifest(env_dir))
        if last is not None and now - last > older_than:
            days = (now - last) / 86400
            due.append((env_dir, "environment", f"unused for {days:.0f} days"))
    sweep.remove_envs(scan, due)
    collect_stored_files(sweep, grace)
    return sweep.result()


def environments_for_scripts(
    cache: Cache, scripts: Iterable[str], key_for: Callable[[str], str | None]
) -> tuple[set[Path], list[str]]:
    """Store directories serving the given scripts, and the scripts none was found for.

    `key_for(script)` is the key `runner run` would use (default options; None if it cannot
    tell); aliases whose `script` line names the file add the environments other option
    sets chose.
    """
    scan = _scan(cache)
    found: set[Path] = set()
    missing: list[str] = []
    for script in scripts:
        hits: set[Path] = set()
        absolute = os.path.abspath(script)
        for alias in scan.aliases:
            if absolute in alias.scripts and alias.env_dir:
                hits.add(Path(alias.env_dir))
        key = key_for(script)
        if key is not None:
            target = cache.pointer_target(key)
            if target is not None:
                hits.add(target)
        hits = {h for h in hits if h.parent == cache.store and key_of(h) is not None}
        if not hits:
            missing.append(script)
        found |= hits
    return found, missing


def clean(
    cache: Cache,
    *,
    scripts: Iterable[str] = (),
    key_for: Callable[[str], str | None] = lambda script: None,
    dry_run: bool = False,
    grace: float | None = None,
) -> tuple[CleanupResult, list[str]]:
    """Remove every environment not in use (or only those serving `scripts`, whose keys
    `key_for` computes).

    Returns the result and the scripts no environment was found for.
    """
    grace = cache.config.prune_grace if grace is None else grace
    chosen = list(scripts)
    sweep = _Sweep(cache, dry_run=dry_run, budget=None)
    if not check_cache(cache, removing=True):
        return sweep.result(), chosen
    scan = _scan(cache)
    missing: list[str] = []
    if chosen:
        targets, missing = environments_for_scripts(cache, chosen, key_for)
        sweep.remove_envs(scan, [(d, "environment", "clean") for d in sorted(targets)])
        collect_stored_files(sweep, grace)
        return sweep.result(), missing
    now = time.time()
    sweep.report_foreign(scan)
    sweep.sweep_debris(scan, grace)
    due, orphans = sweep.orphans(scan, grace, now, everything=True)
    due += [(d, "environment", "clean") for d in scan.store_dirs if d not in orphans]
    sweep.remove_envs(scan, due)
    collect_stored_files(sweep, grace)
    return sweep.result(), missing


# --------------------------------------------------------------------------- automatic


def maybe_auto_prune(cache: Cache, reporter: Reporter) -> CleanupResult | None:
    """Prune unused environments at most once a day, within a small time budget.

    RUNNER_NO_AUTO_PRUNE=1 disables it; RUNNER_AUTO_PRUNE_AFTER (a duration, default 30d)
    sets what counts as unused. Never raises: automatic housekeeping must not fail a run.
    """
    if not cache.config.auto_prune:
        return None
    stamp = cache.root / AUTO_PRUNE_STAMP
    try:
        last = _mtime(stamp)
        if last is not None and time.time() - last < AUTO_PRUNE_INTERVAL:
            return None
        # Stamp first, so concurrent cold runs do not all prune at once.
        atomic_write_text(stamp, f"{time.time()}\n")
        older = parse_duration(cache.config.auto_prune_after, "RUNNER_AUTO_PRUNE_AFTER")
        result = prune(cache, older_than=older, budget=AUTO_PRUNE_BUDGET)
    except Exception as exc:  # housekeeping never breaks a run
        reporter.detail(f"automatic cache pruning skipped: {exc}")
        return None
    if result.removed:
        reporter.detail(
            f"pruned {len(result.removed)} unused cache entries ({format_size(result.bytes_freed)})"
        )
    return result


# --------------------------------------------------------------------------- verify


def check_environment(env_dir: Path) -> list[str]:
    """Every problem found in one environment: manifest, lease, interpreter, RECORDs."""
    problems: list[str] = []
    manifest = Cache.read_manifest(env_dir)
    if manifest is None:
        problems.append("the manifest is missing or unreadable")
    if not (env_dir / layout.LEASE_NAME).is_file():
        problems.append("the lease file is missing")
    python = layout.env_python(str(env_dir))
    try:
        os.stat(python)
    except OSError:
        problems.append(f"its interpreter {python} is broken (the base Python may be gone)")
    sites = records.site_packages(env_dir)
    if not sites:
        problems.append("no site-packages directory")
    present: set[str] = set()
    for site in sites:
        for dist_info in sorted(site.glob("*.dist-info")):
            name = dist_info.name[: -len(".dist-info")].rpartition("-")[0]
            present.add(re.sub(r"[-_.]+", "-", name).lower())
            problems.extend(records.record_problems(site, dist_info, hashes=True))
    installed = manifest.get("installed") if manifest else None
    for entry in installed if isinstance(installed, list) else []:
        listed = entry.get("name") if isinstance(entry, dict) else None
        if isinstance(listed, str) and re.sub(r"[-_.]+", "-", listed).lower() not in present:
            problems.append(f"{listed} is in the manifest but not installed")
    return problems


def verify(cache: Cache, *, repair: bool = False) -> tuple[EnvCheck, ...]:
    """Check every environment that can be started; with `repair`, unpublish broken ones.

    Each one is read holding a shared lease, as a running script would, so a concurrent
    cleanup cannot remove it halfway through the check; one that a cleanup is removing
    (it holds the lease exclusively, or the directory is gone) is skipped, not reported.
    """
    if not check_cache(cache, removing=repair):
        return ()
    scan = _scan(cache)
    sweep = _Sweep(cache, dry_run=False, budget=None)
    checks: list[EnvCheck] = []
    for env_dir in scan.store_dirs:
        has_manifest = (env_dir / layout.MANIFEST_NAME).exists()
        state = scan.state_of(env_dir, has_manifest)
        if state in ("unpublished", "incomplete") and not (
            state == "incomplete" and (scan.named_by_pointer(env_dir) or scan.aliases_for(env_dir))
        ):
            continue  # nothing starts it: prune's business, not verify's
        with _shared_lease(env_dir) as free:
            if not free or not os.path.isdir(env_dir):
                continue  # being removed
            problems = tuple(check_environment(env_dir))
        if not os.path.isdir(env_dir):
            continue  # removed while we looked (it had no lease file to hold)
        action = None
        if problems and repair:
            action = sweep.unpublish_only(scan, env_dir)
        elif repair and _finish_bytecode(cache, env_dir):
            action = "compiled its bytecode"
        checks.append(EnvCheck(key_of(env_dir) or "", str(env_dir), state, problems, action))
    return tuple(checks)


def _finish_bytecode(cache: Cache, env_dir: Path) -> bool:
    """Compile the bytecode a killed background job left pending (`runner.bgcompile`)."""
    from runner import start

    if not start.bytecode_unattended(str(env_dir)):
        return False
    from runner import bgcompile

    return bgcompile.finish(env_dir, cache, Reporter(quiet=True))


# --------------------------------------------------------------------------- file store


def collect_stored_files(sweep: _Sweep, grace: float) -> None:
    """Remove stored files no environment links any more, and killed builds' copies.

    Runs after the environments were removed. A stored file is removed only when its link
    count is 1 (the store's own name); `filestore.remove_if_unlinked` closes the race with
    a build linking it at that moment. A stored .pyc the bytecode index links as well loses
    its index entries first when nothing else links it (`pycindex.remove_entries_if_unused`
    closes the same race). A dry run counts the files that only the environments it would
    remove link.
    """
    cache_root = sweep.cache.root
    now = time.time()
    for tmp in (*filestore.temp_files(cache_root), *pycindex.temp_entries(cache_root)):
        mtime = _mtime(tmp)
        if mtime is not None and now - mtime > grace:
            sweep.remove_file(tmp, "temp", "left by an interrupted build")
    links_in_removed: dict[tuple[int, int], int] = {}
    if sweep.dry_run:
        for removal in sweep.removed:
            if removal.kind in ("environment", "unpublished"):
                for path in _regular_files(Path(removal.path)):
                    with contextlib.suppress(OSError):
                        st = os.lstat(path)
                        ident = (st.st_dev, st.st_ino)
                        links_in_removed[ident] = links_in_removed.get(ident, 0) + 1
    index = pycindex.entries_by_inode(cache_root)
    count = freed = entries = 0
    complete = True
    for stored in filestore.stored_files(cache_root):
        if sweep.out_of_time():
            complete = False
            break
        ident = (stored.st.st_dev, stored.st.st_ino)
        held = index.pop(ident, [])  # the index's names for it, besides the store's
        if sweep.dry_run:
            others = stored.st.st_nlink - 1 - len(held) - links_in_removed.get(ident, 0)
            size: int | None = filestore.disk_bytes(stored.st) if others <= 0 else None
            entries += len(held) if others <= 0 else 0
        else:
            if held and stored.st.st_nlink <= 1 + len(held):
                entries += pycindex.remove_entries_if_unused(held, 1 + len(held))
            size = filestore.remove_if_unlinked(stored.path)
        if size is not None:
            count += 1
            freed += size
    if complete:
        # Entries linking no stored file are never used (`cache verify --repair` took a
        # damaged file out of the store, or files/ was changed by hand): they go too.
        for paths in index.values():
            entries += len(paths) if sweep.dry_run else sum(map(pycindex.remove_entry, paths))
    if count:
        sweep.removed.append(
            Removal(
                "stored files",
                str(filestore.store_root(cache_root)),
                None,
                freed,
                f"{count} file{'s' if count != 1 else ''} no environment links any more",
            )
        )
    if entries:
        sweep.removed.append(
            Removal(
                "index entries",
                str(pycindex.index_root(cache_root)),
                None,
                0,
                f"{entries} bytecode index entr{'ies' if entries != 1 else 'y'} for bytecode "
                "no environment uses",
            )
        )


def _regular_files(directory: Path) -> Iterator[str]:
    for dirpath, _dirnames, filenames in os.walk(directory):
        for name in filenames:
            yield os.path.join(dirpath, name)


@dataclass(frozen=True)
class StoredFileCheck:
    """A damaged stored file and the environments that link it."""

    path: str
    problem: str
    environments: tuple[str, ...]
    action: str | None  # with repair: what was done


def verify_stored_files(cache: Cache, *, repair: bool = False) -> tuple[StoredFileCheck, ...]:
    """Check every stored file against its sha256 name (and that it is read-only).

    With `repair`, a damaged file leaves the store (new builds store a good copy) and every
    environment linking it is unpublished, and removed unless a script is using it, so the
    next run rebuilds it; a writable stored file is made read-only again.
    """
    found: list[tuple[filestore.StoredFile, str]] = []
    for stored in filestore.stored_files(cache.root):
        named = filestore.digest_of_stored(stored.path)
        assert named is not None  # stored_files yields named files only
        try:
            actual = filestore.hash_file(stored.path)
        except OSError as exc:
            found.append((stored, f"it cannot be read ({exc.strerror})"))
            continue
        if actual != named[0]:
            found.append((stored, "its content does not match its sha256 name"))
        elif stored.st.st_mode & 0o222:
            found.append((stored, "it is writable (stored files must be read-only)"))
    if not found:
        return ()
    scan = _scan(cache)
    users: dict[tuple[int, int], list[str]] = {(f.st.st_dev, f.st.st_ino): [] for f, _ in found}
    for env_dir in scan.store_dirs:
        for path in _regular_files(env_dir):
            with contextlib.suppress(OSError):
                st = os.lstat(path)
                ident = (st.st_dev, st.st_ino)
                if ident in users and str(env_dir) not in users[ident]:
                    users[ident].append(str(env_dir))
    sweep = _Sweep(cache, dry_run=False, budget=None)
    index = pycindex.entries_by_inode(cache.root) if repair else {}
    checks: list[StoredFileCheck] = []
    for stored, problem in found:
        envs = tuple(users[(stored.st.st_dev, stored.st.st_ino)])
        action = None
        if repair and problem.startswith("it is writable"):
            os.chmod(stored.path, stat.S_IMODE(stored.st.st_mode) & ~0o222)
            action = "made read-only"
        elif repair:
            # The index's entries first: no build may link the damaged bytes through them.
            for entry in index.get((stored.st.st_dev, stored.st.st_ino), []):
                pycindex.remove_entry(entry)
            filestore.discard(stored.path)
            outcomes = [sweep.unpublish_only(scan, Path(env)) for env in envs]
            parts = [f"{outcomes.count(o)} {o}" for o in dict.fromkeys(outcomes)]
            action = "removed from the store" + (
                f"; environments using it: {', '.join(parts)}" if parts else ""
            )
        checks.append(StoredFileCheck(str(stored.path), problem, envs, action))
    return tuple(checks)


# --------------------------------------------------------------------------- formatting


def format_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def format_age(stamp: float | None, now: float | None = None) -> str:
    if stamp is None:
        return "-"
    seconds = max(0.0, (now if now is not None else time.time()) - stamp)
    for unit, length in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= length:
            return f"{int(seconds // length)}{unit} ago"
    return "just now"


def _auto_prune_main(argv: list[str]) -> int:
    """`python -m runner.lifecycle ROOT`: the detached daily prune `api.start_auto_prune`
    starts."""
    from runner.config import Config

    proc.yield_processor(10)  # beside the script that was about to start
    maybe_auto_prune(Cache(argv[0], config=Config.from_environ()), Reporter(quiet=True))
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(_auto_prune_main(sys.argv[1:]))
