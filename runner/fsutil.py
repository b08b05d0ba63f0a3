"""Small filesystem helpers: atomic writes, safe removal, directory fsync."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

# Windows: another process (an antivirus scanner, an indexer) holds the file briefly.
# ERROR_ACCESS_DENIED, ERROR_SHARING_VIOLATION, ERROR_LOCK_VIOLATION.
_SHARING_WINERRORS = frozenset({5, 32, 33})
RETRY_DELAYS = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)
_sleep = time.sleep  # tests replace it to count the waits


def is_sharing_violation(exc: BaseException) -> bool:
    return isinstance(exc, PermissionError) and getattr(exc, "winerror", None) in _SHARING_WINERRORS


def retrying(func: Callable[..., T], *args: object) -> T:
    """Call `func(*args)`, retrying with backoff while Windows reports a sharing violation."""
    for delay in RETRY_DELAYS:
        try:
            return func(*args)
        except PermissionError as exc:
            if not is_sharing_violation(exc):
                raise
        _sleep(delay)
    return func(*args)


def replace_retrying(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """`os.replace`, riding out a scanner that holds either file for a moment (Windows)."""
    retrying(os.replace, src, dst)


def new_directory(parent: Path, prefix: str, *, mode: int, token_bytes: int = 6) -> Path:
    """A new directory `<prefix><random hex>` in `parent`, never one that existed (what
    tempfile.mkdtemp makes, with `mode`). The names come from os.urandom, which is what
    secrets.token_hex reads: a cold run imports neither tempfile nor secrets (which imports
    hashlib's OpenSSL). Errors other than a name taken propagate."""
    while True:
        path = parent / f"{prefix}{os.urandom(token_bytes).hex()}"
        try:
            path.mkdir(mode=mode)
        except FileExistsError:
            continue
        return path


def _new_file(directory: Path, prefix: str) -> tuple[int, str]:
    """A new file `<prefix><random>.tmp` in `directory`, mode 0600, open for writing: what
    tempfile.mkstemp makes, without importing tempfile (and random) on every cold run."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    flags |= getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    while True:
        name = os.path.join(directory, f"{prefix}{os.urandom(6).hex()}.tmp")
        try:
            return os.open(name, flags, 0o600), name
        except FileExistsError:
            continue


def write_temp(path: Path, data: bytes, *, mode: int, sync: bool = True) -> str:
    """Write `data` to a new temporary file beside `path`, with `mode`; its name. Synced to
    disk unless `sync` is False."""
    fd, tmp = _new_file(path.parent, f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, mode)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp


def atomic_write_bytes(path: Path, data: bytes, *, mode: int = 0o644, sync: bool = True) -> None:
    """Write `data` to `path` so readers see the old content or the new, never a mix.

    `sync=False` skips the fsync (a journal commit, milliseconds on a busy disk) for files
    whose loss or truncation in a power cut is harmless: their readers refuse a truncated
    file and the next run writes them again (aliases, probe results, lock notes)."""
    tmp = write_temp(path, data, mode=mode, sync=sync)
    try:
        replace_retrying(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str, *, mode: int = 0o644, sync: bool = True) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), mode=mode, sync=sync)


def fsync_path(path: str | os.PathLike[str]) -> None:
    """Flush a file's data, or a directory's entries (a rename, a new name), to disk; a
    no-op where unsupported."""
    # Windows flushes only handles opened for writing, and cannot open directories.
    flags = os.O_RDWR if sys.platform == "win32" else os.O_RDONLY
    try:
        fd = os.open(path, flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make a rename or new entry in `path` durable (a no-op where unsupported)."""
    fsync_path(path)


def remove_tree(path: Path) -> None:
    """Delete a directory tree without following symlinks out of it; tolerate races."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        with contextlib.suppress(FileNotFoundError):
            retrying(os.unlink, path)
        return

    def onexc(func: object, failed: str, exc: BaseException) -> None:
        if isinstance(exc, FileNotFoundError):
            return
        if is_sharing_violation(exc) and func in (os.unlink, os.remove, os.rmdir):
            try:
                retrying(func, failed)  # type: ignore[operator,unused-ignore]
                return
            except FileNotFoundError:
                return
            except OSError as again:
                exc = again
        if isinstance(exc, PermissionError):
            # A read-only directory inside (some wheels ship them): make it writable, retry.
            with contextlib.suppress(OSError):
                os.chmod(os.path.dirname(failed), 0o700)
                if os.path.isdir(failed) and not os.path.islink(failed):
                    shutil.rmtree(failed, ignore_errors=True)
                else:
                    os.unlink(failed)
                return
        raise exc

    # rmtree never follows symlinks inside the tree (it unlinks the link itself).
    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=onexc)
    else:
        shutil.rmtree(path, onerror=lambda func, failed, info: onexc(func, failed, info[1]))


def dir_size(path: Path) -> int:
    """Bytes used by the files under `path` (links counted once, never followed)."""
    total = 0
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(path):
        for name in filenames + dirnames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += getattr(st, "st_blocks", 0) * 512 or st.st_size
    return total
