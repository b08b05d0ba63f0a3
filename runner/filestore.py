"""The cache's content-addressed file store: identical files of environments are one file.

Layout: `files/<2 hex>/<62 hex>` holds a file whose sha256 is the 64 hex digits (`.x` after
the name: the same content with its executable bits, since a hard link shares the mode too).
Stored files are read-only. Environments share them through hard links made before their
manifest is written, so a published environment never changes.

Invariants this module keeps:

- An environment file is only ever swapped for a link to stored content of the same bytes,
  with `os.replace` of a link made under a temporary name in the same directory: a build
  killed at any moment leaves each file either its own copy or the stored one, never
  missing. (It is unpublished then anyway; prune removes it.)
- A file appears at its stored name only complete and read-only: an environment's own file
  (link count 1) is made read-only and linked in.
- A file an installer linked from its own cache (uv's default: several links before we
  look) is left as it is: it is already shared, with every environment that installer
  linked it into, and it is not ours to make read-only. Copying it in instead cost a
  heavy build seconds (numpy + pandas: 1.8 s of 5) and the disk of a second copy.
- Concurrent builds may add the same content: `os.link` to the stored name fails for all but
  one, and the others link to the winner.
- A stored file is removed only when nothing else links it (link count 1), after renaming it
  out of the way first so a build cannot link it in the meantime (`collect`).
- Where hard links cannot be made (another filesystem, no permission, a filesystem without
  them) environments keep their own copies: sharing is an optimisation, never a failure.

Whether to share at all is the settings value's `link_mode` (RUNNER_LINK_MODE); the builder
decides, this module only shares.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import stat
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from runner import layout
from runner.values import dataclass, field

if TYPE_CHECKING:
    from io import BufferedReader

EXECUTABLE_SUFFIX = ".x"
TEMP_PREFIX = ".tmp-"  # copies being added, inside files/<2 hex>/
LINK_SUFFIX = ".runner-link"  # a link being swapped into an environment
SHARE_THREADS = 4  # enough to overlap the waits (measured: 16 only adds system time)
_READ_ONLY = 0o444
_EXECUTABLE = 0o111

# errno values meaning "this filesystem or this user cannot hard link here": stop trying.
_CANNOT_LINK = {errno.EXDEV, errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS}
if hasattr(errno, "ENOTSUP"):
    _CANNOT_LINK.add(errno.ENOTSUP)
_NO_SPACE = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}

_link = os.link  # tests replace it to simulate filesystems without hard links


def store_root(cache_root: Path) -> Path:
    return cache_root / layout.FILES_DIR


def stored_path(root: Path, digest: str, executable: bool) -> Path:
    suffix = EXECUTABLE_SUFFIX if executable else ""
    return root / digest[:2] / f"{digest[2:]}{suffix}"


def digest_of_stored(path: Path) -> tuple[str, bool] | None:
    """(sha256 hex, executable) that a stored file's path names, or None if not one."""
    name, prefix = path.name, path.parent.name
    executable = name.endswith(EXECUTABLE_SUFFIX)
    if executable:
        name = name[: -len(EXECUTABLE_SUFFIX)]
    digest = prefix + name
    if len(prefix) != 2 or len(digest) != 64 or not _is_hex(digest):
        return None
    return digest, executable


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


def hash_file(path: Path | str) -> str:
    with open(path, "rb") as f:
        return _hash_open(f)


def _hash_open(f: BufferedReader) -> str:
    return hashlib.file_digest(f, "sha256").hexdigest()


def _open_nofollow(path: str, flags: int) -> int:
    return os.open(path, flags | _NOFOLLOW | _CLOEXEC)


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # not on Windows, where links are not shared
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


# --------------------------------------------------------------------------- what is shared


def _site_packages(env_dir: Path) -> list[Path]:
    from runner import records

    return records.site_packages(env_dir)


def _installed_scripts(env_dir: Path, sites: list[Path]) -> list[Path]:
    """Files in the environment's bin/ (Scripts/) that an installer wrote: RECORD lists them."""
    import csv

    from runner import records

    bins = {os.path.normpath(env_dir / name) for name in ("bin", "Scripts")}
    found: list[Path] = []
    for site in sites:
        for record in site.glob("*.dist-info/RECORD"):
            try:
                with open(record, encoding="utf-8", newline="") as f:
                    rows = list(csv.reader(f))
            except (OSError, UnicodeDecodeError, csv.Error):
                continue
            found.extend(Path(path) for _row, path in records.rows_in(site, rows, bins))
    return found


def candidates(env_dir: Path, *, bytecode_only: bool = False) -> Iterator[str]:
    """Files of an environment that may be shared: everything in site-packages and the
    bin/ scripts installers wrote (never pyvenv.cfg, the lease or the manifest). With
    `bytecode_only`, only the compiled `.pyc` files in site-packages."""
    sites = _site_packages(env_dir)
    for site in sites:
        for dirpath, dirnames, filenames in os.walk(site):
            dirnames.sort()
            if bytecode_only and not dirpath.endswith("__pycache__"):
                continue
            for name in sorted(filenames):
                if bytecode_only and not name.endswith(".pyc"):
                    continue
                if not name.endswith(LINK_SUFFIX):
                    yield os.path.join(dirpath, name)
    if not bytecode_only:
        yield from map(str, _installed_scripts(env_dir, sites))


# --------------------------------------------------------------------------- sharing


@dataclass(frozen=True)
class ShareResult:
    """What one `share` call did."""

    files: int  # regular files looked at
    linked: int  # replaced by a link to content already stored
    added: int  # added to the store
    private: int  # left as the environment's own copy (links impossible, or copy mode)
    bytes_linked: int  # bytes the environment now shares instead of holding its own
    fallback: str | None = None  # why hard links could not be made, when they could not
    already_shared: int = 0  # linked elsewhere before (an installer's cache): left as is
    # {path: sha256} of the files this call hashed that now hold stored content (linked or
    # added): the bytecode index keys sources by it, and records the .pyc files by it.
    digests: Mapping[str, str] = field(default_factory=dict)


class _CannotLink(Exception):
    pass


def replace_with_link(stored: Path | str, path: Path, tmp: Path | None = None) -> None:
    """Swap `path` for a hard link to `stored` atomically (readers see one or the other).

    The link is made first under `tmp` (default: a hidden name beside `path` that
    `candidates` skips), in the same directory."""
    if tmp is None:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{LINK_SUFFIX}")
    _link(stored, tmp)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _add(fd: int, path: Path, st: os.stat_result, target: Path) -> None:
    """Make the environment's own file (link count 1), open at `fd` and listed as `path`,
    the stored copy at `target`, read-only; it stays the environment's file through the link.

    Raises FileExistsError if another build stored the same content first, _Replaced if
    `path` no longer names the file that was opened (so its bytes are not the ones hashed).
    """
    mode = (_READ_ONLY | _EXECUTABLE) if st.st_mode & _EXECUTABLE else _READ_ONLY
    target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    os.fchmod(fd, mode)
    try:
        _link_opened(fd, path, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.fchmod(fd, stat.S_IMODE(st.st_mode))
        raise


class _Replaced(Exception):
    """The file that was hashed is no longer the one at its path."""


def _link_opened(fd: int, path: Path, target: Path) -> None:
    """Hard link the very file open at `fd` (hashed through it) as `target`.

    A name is not enough: a script running in a published environment replaces a `.pyc`
    it finds missing or stale by rename (the background compile shares bytecode while
    copies of the script may import), and linking the name after that would store other
    bytes under this digest. On Linux the link is made through /proc/self/fd (linkat
    follows that link to the open file; it fails for a file no name holds any more);
    elsewhere the name is checked to still hold the open file just before it is linked.
    """
    if _PROC_FD:
        directory = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            _link(f"/proc/self/fd/{fd}", target.name, dst_dir_fd=directory)
        except FileNotFoundError:
            if os.fstat(fd).st_nlink == 0:
                raise _Replaced from None
            raise
        finally:
            os.close(directory)
        return
    now, opened = os.lstat(path), os.fstat(fd)
    if (now.st_dev, now.st_ino) != (opened.st_dev, opened.st_ino):
        raise _Replaced
    _link(path, target)


# Whether linkat can link an open file through /proc (Linux with /proc mounted).
_PROC_FD = sys.platform.startswith("linux") and os.path.isdir("/proc/self/fd")


def _share_one(
    path: Path, root: Path, st: os.stat_result | None = None
) -> tuple[str, int, str | None]:
    """Share one file (`st`: its lstat, if taken): ("linked" | "added" | "private" |
    "shared" | "skip", bytes, sha256 when the file now holds stored content)."""
    try:
        if st is None:
            st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode):
            return "skip", 0, None
        if st.st_nlink > 1:
            # Linked from elsewhere already: the installer's cache (only unpublished
            # environments are shared, so nothing else of ours links into them), the
            # store (sharing run twice) or the bytecode index (`runner.pycindex`). Shared
            # either way; neither read nor changed.
            return "shared", 0, None
        # Empty files too: they hold no data, but a shared `__init__.py` gives every
        # environment the same mtime for it, hence the same bytecode.
        with open(path, "rb", opener=_open_nofollow) as f:
            opened = os.fstat(f.fileno())
            if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino):
                return "private", 0, None  # replaced since it was listed: look no further
            digest = _hash_open(f)
            target = stored_path(root, digest, bool(st.st_mode & _EXECUTABLE))
            for _attempt in range(4):
                try:
                    tst = os.stat(target)
                except FileNotFoundError:
                    tst = None
                try:
                    if tst is None:
                        _add(f.fileno(), path, st, target)
                        return "added", 0, digest
                    if (tst.st_dev, tst.st_ino) == (st.st_dev, st.st_ino):
                        return "skip", 0, None  # already the stored file
                    if tst.st_size != st.st_size:
                        # A damaged stored file: `cache verify` reports it.
                        return "private", 0, None
                    # Whatever the name holds now (the file hashed, or bytecode a script
                    # wrote for the same source since), the stored copy of the bytes
                    # hashed can take its place.
                    replace_with_link(target, path)
                    return "linked", st.st_size, digest
                except _Replaced:
                    return "private", 0, None  # the name holds a newer file: leave it be
                except FileExistsError:
                    continue  # another build stored it first: link to theirs
                except FileNotFoundError:
                    continue  # collected in between: add it again
        return "private", 0, None
    except OSError as exc:
        if exc.errno in _CANNOT_LINK:
            raise _CannotLink(f"{exc.strerror} ({path})") from None
        if exc.errno in _NO_SPACE:
            raise  # the build fails as it would have anyway, saying the disk is full
        # This file only (too many links to one inode, a read-only directory, an unreadable
        # file): it stays the environment's own copy.
        return "private", 0, None


def share(env_dir: Path, cache_root: Path, *, bytecode_only: bool = False) -> ShareResult:
    """Replace the environment's files by links to identical stored files; store new ones.

    Call it on an unpublished environment only (before its manifest is written). Never
    fails for want of hard links: the files then stay the environment's own copies and
    `fallback` says why. Other errors (a full disk) propagate; the build fails as usual.
    """
    root = store_root(cache_root)
    counts = {"linked": 0, "added": 0, "private": 0, "shared": 0, "skip": 0}
    linked_bytes = 0
    fallback: str | None = None
    stop = threading.Event()
    digests: dict[str, str] = {}

    def one(work: tuple[Path, os.stat_result | None]) -> tuple[str, int, str | None]:
        path, st = work
        if stop.is_set():
            return "private", 0, None
        try:
            outcome = _share_one(path, root, st)
        except _CannotLink as exc:
            nonlocal fallback
            if not stop.is_set():
                fallback = str(exc)
                stop.set()
            return "private", 0, None
        if outcome[2] is not None:
            digests[str(path)] = outcome[2]
        return outcome

    def work() -> Iterator[tuple[Path, os.stat_result | None]]:
        """The files a thread must look at: those linked elsewhere already (all of uv's,
        from its cache) and all but regular files are counted here, without one."""
        for name in candidates(env_dir, bytecode_only=bytecode_only):
            try:
                st = os.lstat(name)
            except OSError:
                yield Path(name), None  # the thread says what is wrong with it
                continue
            if not stat.S_ISREG(st.st_mode):
                counts["skip"] += 1
            elif st.st_nlink > 1:  # see _share_one
                counts["shared"] += 1
            else:
                yield Path(name), st

    # Threads: most of the time goes to waiting on the filesystem (freeing the replaced
    # copies' blocks takes milliseconds on some disks) and to hashing, which releases the GIL.
    from concurrent.futures import ThreadPoolExecutor  # after the installer starts

    with ThreadPoolExecutor(max_workers=SHARE_THREADS) as pool:
        for outcome, size, _digest in pool.map(one, work()):
            counts[outcome] += 1
            linked_bytes += size
    looked_at = counts["linked"] + counts["added"] + counts["private"]
    return ShareResult(
        looked_at,
        counts["linked"],
        counts["added"],
        counts["private"],
        linked_bytes,
        fallback,
        already_shared=counts["shared"],
        digests=digests,
    )


# --------------------------------------------------------------------------- disk use


def _walk_files(path: Path) -> Iterator[os.stat_result]:
    for dirpath, dirnames, filenames in os.walk(path):
        for name in filenames + dirnames:
            try:
                yield os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue


def disk_bytes(st: os.stat_result) -> int:
    return getattr(st, "st_blocks", 0) * 512 or st.st_size


def stored_inodes(cache_root: Path) -> dict[tuple[int, int], int]:
    """How many names the file store gives each (device, inode) it holds: its stored name,
    and the bytecode index's entries (`runner.pycindex`) for a .pyc."""
    counts: dict[tuple[int, int], int] = {}
    for st in _walk_files(store_root(cache_root)):
        if stat.S_ISREG(st.st_mode):
            ident = (st.st_dev, st.st_ino)
            counts[ident] = counts.get(ident, 0) + 1
    return counts


@dataclass(frozen=True)
class Usage:
    apparent: int  # bytes the directory shows (its files counted once each, shared or not)
    own: int  # bytes only this directory holds: what removing it frees, store included


def usage(env_dir: Path, stored: Mapping[tuple[int, int], int]) -> Usage:
    """Apparent size of an environment, and what it alone holds (links from elsewhere,
    other than the store's own names, mean a file is shared)."""
    seen: dict[tuple[int, int], list[int]] = {}  # inode -> [links here, st_nlink, bytes]
    apparent = 0
    for st in _walk_files(env_dir):
        ident = (st.st_dev, st.st_ino)
        entry = seen.get(ident)
        if entry is not None:
            entry[0] += 1
            continue
        size = disk_bytes(st)
        apparent += size
        seen[ident] = [1, st.st_nlink, size]
    own = 0
    for ident, (here, nlink, size) in seen.items():
        if nlink - here - stored.get(ident, 0) <= 0:
            own += size
    return Usage(apparent, own)


def private_size(env_dir: Path) -> int:
    """Bytes that deleting this directory frees by itself (files linked nowhere else)."""
    return usage(env_dir, {}).own


def disk_usage(paths: Iterable[Path]) -> int:
    """Bytes really used under `paths` together, each file counted once however linked."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for path in paths:
        for st in _walk_files(path):
            ident = (st.st_dev, st.st_ino)
            if ident not in seen:
                seen.add(ident)
                total += disk_bytes(st)
    return total


# --------------------------------------------------------------------------- removal


@dataclass(frozen=True)
class StoredFile:
    path: Path
    st: os.stat_result


def stored_files(cache_root: Path) -> Iterator[StoredFile]:
    """Every stored file (not the temporary copies being added)."""
    root = store_root(cache_root)
    for prefix in sorted(_listdir(root)):
        directory = root / prefix
        for name in sorted(_listdir(directory)):
            path = directory / name
            if digest_of_stored(path) is None:
                continue
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                yield StoredFile(path, st)


def temp_files(cache_root: Path) -> Iterator[Path]:
    root = store_root(cache_root)
    for prefix in _listdir(root):
        for name in _listdir(root / prefix):
            if name.startswith(TEMP_PREFIX):
                yield root / prefix / name


def _listdir(path: Path) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def remove_if_unlinked(path: Path) -> int | None:
    """Remove a stored file if nothing but the store links it; the bytes freed, or None.

    The file is renamed away first, so no build can link it between the check and the
    removal; a link made before the rename is seen in the count and the file goes back.
    """
    try:
        if os.lstat(path).st_nlink != 1:
            return None
    except OSError:
        return None
    aside = path.with_name(f"{TEMP_PREFIX}{secrets.token_hex(8)}")
    try:
        os.rename(path, aside)
    except OSError:
        return None
    try:
        st = os.lstat(aside)
        if st.st_nlink == 1:
            os.unlink(aside)
            return disk_bytes(st)
        with contextlib.suppress(FileExistsError):
            _link(aside, path)  # linked in the meantime: keep it stored
        return None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(aside)


def discard(path: Path) -> None:
    """Take a (damaged) stored file out of the store; environments keep their links."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
