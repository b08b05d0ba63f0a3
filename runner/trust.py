"""The cache trust rule, one function for the warm path, the cold path and the cache commands.

runner executes what the cache holds, so it must hold only what the caller (or root) put
there: the cache root, the directories runner follows inside it and every directory above it
belong to the caller or root and are not writable by others (a sticky directory such as /tmp
is fine as an ancestor), unless the cache is shared on purpose (RUNNER_ALLOW_SHARED_CACHE).
An alias or pointer may only name `store/<key>-<token>` inside the real cache root, whatever
the sharing. Stdlib only: the launcher checks this on every warm run (a few stat calls).
"""

import os
import stat

from runner import layout


def _owner_ok(st: os.stat_result, uid: int) -> bool:
    return st.st_uid == uid or st.st_uid == 0


def _writable_by_others(st: os.stat_result) -> bool:
    return bool(st.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def root_problem(root: str, *, allow_shared: bool) -> str | None:
    """Why the cache at `root` cannot be trusted (a sentence), or None. The root must exist."""
    if os.name != "posix" or allow_shared:
        return None
    uid = os.geteuid()
    real = os.path.realpath(root)
    try:
        st = os.stat(real)
    except OSError as exc:
        return f"the runner cache {root} cannot be checked ({exc.strerror})"
    if not _owner_ok(st, uid):
        return f"the runner cache {root} belongs to another user (uid {st.st_uid})"
    if _writable_by_others(st):
        return (
            f"the runner cache {root} is writable by other users "
            f"(mode {stat.S_IMODE(st.st_mode):o})"
        )
    parent = os.path.dirname(real)
    while True:
        try:
            st = os.stat(parent)
        except OSError as exc:
            return f"{parent}, above the runner cache, cannot be checked ({exc.strerror})"
        if not _owner_ok(st, uid) or (_writable_by_others(st) and not st.st_mode & stat.S_ISVTX):
            return (
                f"{parent}, above the runner cache {root}, can be changed by another user "
                f"(owner uid {st.st_uid}, mode {stat.S_IMODE(st.st_mode):o}): they could "
                "replace the cache"
            )
        up = os.path.dirname(parent)
        if up == parent:
            return None
        parent = up


def subdir_problem(root: str, name: str, *, allow_shared: bool) -> str | None:
    """Why `root/name` (store, scripts, envs, ...) cannot be followed, or None: it must be a
    real directory (not a symlink) and, in a private cache, the caller's or root's and not
    writable by others."""
    path = os.path.join(root, name)
    try:
        st = os.lstat(path)
    except OSError as exc:
        return f"{path} cannot be checked ({exc.strerror})"
    if not stat.S_ISDIR(st.st_mode):
        return f"{path} is not a directory of the cache (a symlink or a file)"
    if os.name == "posix" and not allow_shared:
        if not _owner_ok(st, os.geteuid()):
            return f"{path} belongs to another user (uid {st.st_uid})"
        if _writable_by_others(st):
            return f"{path} is writable by other users (mode {stat.S_IMODE(st.st_mode):o})"
    return None


def env_dir_ok(root: str, env_dir: str, *, allow_shared: bool) -> bool:
    """Whether an alias or pointer target is a store directory runner made in this cache:
    exactly `<real root>/store/<key>-<token>`, a real directory, and (private cache) the
    caller's or root's, not writable by others."""
    real_root = os.path.realpath(root)
    parent, name = os.path.split(env_dir)
    if parent != os.path.join(real_root, "store") or layout.store_key(name) is None:
        return False
    if subdir_problem(real_root, "store", allow_shared=allow_shared) is not None:
        return False
    try:
        st = os.lstat(env_dir)
    except OSError:
        return False
    if not stat.S_ISDIR(st.st_mode):
        return False
    if os.name == "posix" and not allow_shared:
        return _owner_ok(st, os.geteuid()) and not _writable_by_others(st)
    return True
