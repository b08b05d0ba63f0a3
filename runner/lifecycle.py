"""Cache lifecycle: list, prune, clean and verify environments without breaking running scripts.

Safety protocol for removing one store directory (DESIGN principles 2 and 4):

1. try the exclusive lock on its lease file without waiting; if a running script holds the
   shared lease, the environment is in use: skip it and say so;
2. try the key's build lock without waiting; if a build of the key is in progress, skip;
3. unpublish first: remove `envs/<key>` only if it still names this directory, and every
   alias naming it;
4. rename the directory to `store/.trash-<random>` so its manifest disappears atomically;
5. release both locks, then delete the trash with `fsutil.remove_tree` (never follows
   symlinks out of the cache).

A launcher that took its lease in between finds no manifest and falls back to the cold path.
Directories nothing names (a killed build's leftovers) are removed only after a grace period,
so a build in progress is never touched, even where locks do not work.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from runner import alias as alias_format
from runner import layout, records
from runner.cache import Cache
from runner.errors import UsageError
from runner.fsutil import atomic_write_text, dir_size, fsync_dir, remove_tree
from runner.report import Reporter

DEFAULT_OLDER_THAN = 30 * 86400.0
AUTO_PRUNE_INTERVAL = 86400.0
AUTO_PRUNE_BUDGET = 2.0
AUTO_PRUNE_STAMP = "last-auto-prune"
TRASH_PREFIX = ".trash-"

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")


def parse_duration(text: str) -> float:
    """Seconds in `30d`, `12h`, `90m`, `45s`, `2w` (a bare number is days)."""
    match = _DURATION.match(text.lower())
    if not match:
        raise UsageError(
            f"not a duration: {text!r}",
            hint="Use a number with a unit: 30d (days), 12h (hours), 90m (minutes), 2w, 45s.",
        )
    return float(match.group(1)) * _UNITS[match.group(2) or "d"]


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

    @property
    def short_key(self) -> str:
        return self.key[:12]


@dataclass(frozen=True)
class Removal:
    """Something prune/clean removed (or would remove, in a dry run)."""

    kind: str  # "environment", "unpublished", "trash", "alias", "pointer", "temp", "log",
    # "stdin script"
    path: str
    key: str | None
    size: int
    reason: str


@dataclass(frozen=True)
class Kept:
    """An environment prune/clean wanted to remove but left alone, and why."""

    key: str
    path: str
    reason: str  # "in use", "build in progress", "cannot lock"


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
    key, dash, rest = env_dir.name.rpartition("-")
    return key if dash and key and rest and not env_dir.name.startswith(".") else None


def _listdir(path: Path) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


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
    for name in _listdir(cache.envs):
        if not name.startswith("."):
            pointers[name] = cache.pointer_target(name)
    aliases = []
    for name in _listdir(cache.scripts):
        if name.startswith("."):
            continue
        alias = _read_alias(cache.scripts / name)
        if alias is not None:
            aliases.append(alias)
    store_dirs: list[Path] = []
    trash: list[Path] = []
    for name in sorted(_listdir(cache.store)):
        path = cache.store / name
        if name.startswith(TRASH_PREFIX):
            trash.append(path)
        elif not name.startswith(".") and key_of(path) is not None:
            store_dirs.append(path)
    return _Scan(pointers, tuple(aliases), tuple(store_dirs), tuple(trash))


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
    with _exclusive_lease(env_dir) as got:
        return None if got is None else not got


@contextlib.contextmanager
def _exclusive_lease(env_dir: Path) -> Iterator[bool | None]:
    """Hold the lease exclusively if nobody uses the env: True; False if in use; None if the
    filesystem cannot lock. A directory without a lease file was never leasable: True."""
    try:
        fd = os.open(env_dir / layout.LEASE_NAME, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        yield True
        return
    except OSError:
        yield None
        return
    try:
        try:
            import fcntl
        except ImportError:  # Windows: open files cannot be deleted anyway
            yield True
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            yield False if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES) else None
            return
        yield True
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- list


def _interpreter_text(manifest: dict[str, object] | None) -> str:
    interp = manifest.get("interpreter") if manifest else None
    if isinstance(interp, dict):
        return f"{interp.get('implementation', '?')} {interp.get('version', '?')}"
    return "?"


def _info(scan: _Scan, env_dir: Path, *, sizes: bool = True) -> EnvInfo:
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
    return EnvInfo(
        key=key_of(env_dir) or env_dir.name,
        path=str(env_dir),
        state=scan.state_of(env_dir, manifest is not None),
        requirements=tuple(str(r) for r in requirements) if isinstance(requirements, list) else (),
        installed=pairs,
        interpreter=_interpreter_text(manifest),
        size=dir_size(env_dir) if sizes else 0,
        created=float(created) if isinstance(created, (int, float)) else None,
        last_used=_last_used(env_dir, manifest),
        in_use=probe_in_use(env_dir),
        scripts=tuple(scripts),
    )


def list_environments(cache: Cache, *, sizes: bool = True) -> tuple[EnvInfo, ...]:
    """Every store directory, published first, then by last use (newest first)."""
    scan = _scan(cache)
    infos = [_info(scan, d, sizes=sizes) for d in scan.store_dirs]
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

    def out_of_time(self) -> bool:
        if self.deadline is not None and time.monotonic() > self.deadline:
            self.complete = False
            return True
        return False

    def result(self) -> CleanupResult:
        return CleanupResult(tuple(self.removed), tuple(self.kept), self.dry_run, self.complete)

    def remove_env(self, scan: _Scan, env_dir: Path, kind: str, reason: str) -> None:
        """Remove one store directory following the safety protocol."""
        key = key_of(env_dir) or ""
        with _exclusive_lease(env_dir) as lease:
            if lease is not True:
                why = "in use" if lease is False else "cannot lock"
                self.kept.append(Kept(key, str(env_dir), why))
                return
            with self.cache.try_build_lock(key) as building_free:
                if not building_free:
                    self.kept.append(Kept(key, str(env_dir), "build in progress"))
                    return
                size = dir_size(env_dir)
                if self.dry_run:
                    self.removed.append(Removal(kind, str(env_dir), key, size, reason))
                    return
                if not env_dir.exists():
                    return  # another cleanup got here first
                self._unpublish(scan, env_dir)
                trash = self.cache.store / f"{TRASH_PREFIX}{secrets.token_hex(6)}"
                try:
                    os.rename(env_dir, trash)
                except FileNotFoundError:
                    return
                fsync_dir(self.cache.store)
        remove_tree(trash)
        self.removed.append(Removal(kind, str(env_dir), key, size, reason))

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
            self._unpublish(scan, env_dir)
        before = len(self.removed)
        self.remove_env(scan, env_dir, "environment", "damaged")
        return "removed" if len(self.removed) > before else "unpublished"

    def remove_file(self, path: Path, kind: str, reason: str, key: str | None = None) -> None:
        if not self.dry_run:
            try:
                os.unlink(path)
            except FileNotFoundError:
                return
            except OSError:
                return
        self.removed.append(Removal(kind, str(path), key, 0, reason))

    def sweep_debris(self, scan: _Scan, grace: float) -> None:
        """Trash of interrupted cleanups, stale aliases and pointers, old temp files."""
        now = time.time()
        for trash in scan.trash:
            if self.out_of_time():
                return
            size = dir_size(trash)
            if not self.dry_run:
                remove_tree(trash)
            self.removed.append(Removal("trash", str(trash), None, size, "interrupted cleanup"))
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
                if name.startswith(".") and name.endswith(".tmp"):
                    path = directory / name
                    mtime = _mtime(path)
                    if mtime is not None and now - mtime > grace:
                        self.remove_file(path, "temp", "left by an interrupted write")

    def sweep_old_files(self, directory: Path, older_than: float, kind: str) -> None:
        """Files unused (by mtime) for `older_than`: build logs, stored stdin scripts."""
        now = time.time()
        for name in _listdir(directory):
            if self.out_of_time():
                return
            path = directory / name
            mtime = _mtime(path)
            if mtime is not None and now - mtime > older_than and path.is_file():
                self.remove_file(path, kind, f"unused for {(now - mtime) / 86400:.0f} days")


def _orphan_due(scan: _Scan, env_dir: Path, grace: float, now: float) -> str | None:
    """Reason to remove a directory nothing names, once it is older than the grace period."""
    has_manifest = (env_dir / layout.MANIFEST_NAME).exists()
    state = scan.state_of(env_dir, has_manifest)
    if state not in ("unpublished", "incomplete"):
        return None
    if now - _age_stamp(env_dir) <= grace:
        return None
    return "unfinished build" if state == "incomplete" else "no longer published"


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
    scan = _scan(cache)
    now = time.time()
    sweep.sweep_debris(scan, grace)
    sweep.sweep_old_files(cache.logs, older_than, "log")
    sweep.sweep_old_files(cache.root / "stdin", older_than, "stdin script")
    # Downloaded scripts and their URL records; installed commands' copies (installed/) stay.
    sweep.sweep_old_files(cache.root / "urls", older_than, "downloaded script")
    for env_dir in scan.store_dirs:
        if sweep.out_of_time():
            break
        orphan = _orphan_due(scan, env_dir, grace, now)
        if orphan is not None:
            sweep.remove_env(scan, env_dir, "unpublished", orphan)
            continue
        if scan.state_of(env_dir, True) in ("published", "aliased"):
            last = _last_used(env_dir, Cache.read_manifest(env_dir))
            if last is not None and now - last > older_than:
                days = (now - last) / 86400
                sweep.remove_env(scan, env_dir, "environment", f"unused for {days:.0f} days")
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
        hits = {h for h in hits if h.parent == cache.store}
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
    scan = _scan(cache)
    missing: list[str] = []
    if chosen:
        targets, missing = environments_for_scripts(cache, chosen, key_for)
        for env_dir in sorted(targets):
            sweep.remove_env(scan, env_dir, "environment", "clean")
        return sweep.result(), missing
    now = time.time()
    sweep.sweep_debris(scan, grace)
    for env_dir in scan.store_dirs:
        orphan = _orphan_due(scan, env_dir, grace, now)
        if orphan is not None:
            sweep.remove_env(scan, env_dir, "unpublished", orphan)
        elif scan.state_of(env_dir, (env_dir / layout.MANIFEST_NAME).exists()) != "incomplete":
            sweep.remove_env(scan, env_dir, "environment", "clean")
    return sweep.result(), missing


# --------------------------------------------------------------------------- automatic


def _auto_prune_due(cache: Cache) -> bool:
    if not cache.config.auto_prune:
        return False
    last = _mtime(cache.root / AUTO_PRUNE_STAMP)
    return last is None or time.time() - last >= AUTO_PRUNE_INTERVAL


def start_auto_prune(cache: Cache) -> bool:
    """Start the daily automatic prune in a detached process, if it is due; whether it was.

    Called on the cold path after a build: the script starts at once, the prune runs beside
    it (`python -m runner.lifecycle ROOT`, which builds its settings from the same
    environment). Never raises.
    """
    if not _auto_prune_due(cache):
        return False
    import subprocess
    import sys

    try:
        subprocess.Popen(
            [sys.executable, "-m", "runner.lifecycle", str(cache.root)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )
    except OSError:
        return False
    return True


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
        older = parse_duration(cache.config.auto_prune_after)
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
    """Check every environment that can be started; with `repair`, unpublish broken ones."""
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
        problems = tuple(check_environment(env_dir))
        action = None
        if problems and repair:
            action = sweep.unpublish_only(scan, env_dir)
        checks.append(EnvCheck(key_of(env_dir) or "", str(env_dir), state, problems, action))
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
    """`python -m runner.lifecycle ROOT`: the detached daily prune `start_auto_prune` runs."""
    from runner.config import Config

    maybe_auto_prune(Cache(argv[0], config=Config.from_environ()), Reporter(quiet=True))
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(_auto_prune_main(sys.argv[1:]))
