"""The cache layout and the names runner gives files: one place for both (stdlib only).

CACHEDIR.TAG            marks the tree as a cache for backup tools
envs/<key>              pointer (symlink, or a small file) to a published store dir
store/<key>-<token>/    an immutable environment, runner-env.json manifest inside
  runner-bytecode-pending  its bytecode is still to be compiled (a background job holds it)
locks/<key>.lock        build lock (never deleted: that would break mutual exclusion)
locks/alias-<digest>.lock  serializes cold starts of one script (launcher waiters)
locks/<key>.built       when the build that published envs/<key> started (--refresh reuse)
locks/edit-<digest>.lock   serializes add/remove/init of one script file (its real path)
scripts/<digest>        warm-path alias: selection digest -> store dir
interpreters/           cached interpreter probes
logs/                   installer output of builds
files/<ab>/<62 hex>[.x] shared files, named by sha256 (read-only; `.x`: executable)
files/pyc/<64 hex>      bytecode index: hard links to stored .pyc files, by key (runner.pycindex)
last-auto-prune         when the daily automatic prune last ran (its mtime)
"""

import os
import sys

MANIFEST_NAME = "runner-env.json"
LEASE_NAME = "runner-lease"
# Written before the manifest of an environment published without its bytecode; a background
# compile holds it locked (flock) while it works and removes it when done (runner.bgcompile).
BYTECODE_PENDING = "runner-bytecode-pending"
CACHEDIR_TAG_NAME = "CACHEDIR.TAG"
CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by runner.\n"
    "# For information about cache directory tags see https://bford.info/cachedir/\n"
)
SUBDIRS = ("envs", "store", "locks", "scripts", "interpreters", "logs")
AUTO_PRUNE_STAMP = "last-auto-prune"
AUTO_PRUNE_INTERVAL = 86400.0  # seconds between automatic prunes
FILES_DIR = "files"  # the file store (runner.filestore); made by the first build that shares
PYC_INDEX_DIR = "pyc"  # inside FILES_DIR: the bytecode index (runner.pycindex)
# An environment key is 32 lowercase hex characters; a store directory adds a 12-character
# random hex token: `store/<key>-<token>`.
KEY_LENGTH = 32
TOKEN_LENGTH = 12
_HEX = frozenset("0123456789abcdef")


def _is_hex(text: str, length: int) -> bool:
    return len(text) == length and all(c in _HEX for c in text)


def is_key(name: str) -> bool:
    return _is_hex(name, KEY_LENGTH)


def store_key(name: str) -> str | None:
    """The key of a store directory name `<key>-<token>`, or None for any other name."""
    key, dash, token = name.partition("-")
    if dash and is_key(key) and _is_hex(token, TOKEN_LENGTH):
        return key
    return None


def is_digest(name: str) -> bool:
    """An alias name: a full sha256 in hex."""
    return _is_hex(name, 64)


def env_python(env_dir: str) -> str:
    """The interpreter of an environment."""
    if sys.platform == "win32":
        return os.path.join(env_dir, "Scripts", "python.exe")
    return os.path.join(env_dir, "bin", "python")


def lock_path_for(script: str) -> str:
    """The PEP 751 lock file that belongs to a script: `pylock.<name>.toml` beside it.

    <name> is the file name without a trailing `.py`, with any other dots turned into `-`
    (PEP 751 names cannot contain dots): `tool.py` -> `pylock.tool.toml`,
    `my.tool.py` -> `pylock.my-tool.toml`, `tool` -> `pylock.tool.toml`.
    """
    directory, name = os.path.split(script)
    if name.endswith(".py"):
        name = name[:-3]
    name = name.replace(".", "-") or "script"
    return os.path.join(directory, f"pylock.{name}.toml")
