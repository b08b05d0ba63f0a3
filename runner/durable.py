"""Make a finished build durable without flushing every filesystem of the machine.

`os.sync()` waits for every dirty page of every filesystem, so one build waited for
whatever else the machine was writing. On Linux, `syncfs(2)` flushes only the filesystem
that holds the cache (one journal commit for all the build's files, however many); where
it is unavailable, every file and directory the build wrote is fsynced, in parallel.
Stdlib only.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from runner.fsutil import fsync_path

_FSYNC_THREADS = 8


def flush(path: Path) -> str:
    """Flush everything written under `path` to stable storage; say how ("syncfs"/"fsync").

    Best effort, as `os.sync()` was: a filesystem that cannot sync is not an error.
    """
    if sys.platform.startswith("linux") and syncfs(path):
        return "syncfs"
    fsync_tree(path)
    return "fsync"


def syncfs(path: Path) -> bool:
    """`syncfs(2)` on the filesystem holding `path`; False where that is not available."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        call = libc.syncfs
    except (ImportError, OSError, AttributeError):
        return False
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return False
    try:
        return bool(call(fd) == 0)
    finally:
        os.close(fd)


def fsync_tree(path: Path) -> None:
    """fsync every regular file and directory under `path` (links are not followed)."""
    todo: list[str] = []
    for dirpath, _dirnames, filenames in os.walk(path):
        todo.append(dirpath)
        for name in filenames:
            full = os.path.join(dirpath, name)
            try:
                if stat.S_ISREG(os.lstat(full).st_mode):
                    todo.append(full)
            except OSError:
                continue
    from concurrent.futures import ThreadPoolExecutor  # not for syncfs: Linux never needs it

    with ThreadPoolExecutor(_FSYNC_THREADS) as pool:  # fsync releases the GIL
        list(pool.map(fsync_path, todo))
