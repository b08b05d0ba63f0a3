"""The launcher's pure pieces under the names the tests use (helpers, not tests)."""

from __future__ import annotations

import os
import time

from runner import alias, config, launcher, options
from runner.blocks import block_content, find_blocks, script_block, split_lines
from runner.layout import LEASE_NAME, MANIFEST_NAME, env_python, lock_path_for

__all__ = [
    "LEASE_NAME",
    "MANIFEST_NAME",
    "block_content",
    "canonical_option",
    "default_cache_root",
    "digest_for_bytes",
    "env_python",
    "find_blocks",
    "lock_path_for",
    "parse_run_argv",
    "read_alias",
    "script_block",
    "selection_digest",
    "split_lines",
]

canonical_option = options.canonical


def default_cache_root() -> str:
    return config.default_cache_root(os.environ)


def read_alias(root: str, digest: str) -> str | None:
    """What the launcher's alias check answers (without the trust rule)."""
    return alias.read(os.path.join(root, "scripts", digest), os.environ, int(time.time()))


def selection_digest(
    content: str | None, pairs: list[tuple[str, str]], lock: bytes | None, script_dir: str
) -> str:
    return alias.selection_digest(content, pairs, lock, script_dir, os.environ.get("RUNNER_PYTHON"))


def digest_for_bytes(
    data: bytes, pairs: list[tuple[str, str]], lock: bytes | None, script_dir: str
) -> str | None:
    return launcher.digest_for_bytes(data, pairs, lock, script_dir, os.environ.get("RUNNER_PYTHON"))


def parse_run_argv(
    argv: list[str],
) -> tuple[list[tuple[str, str]], str, list[str]] | None:
    """(selecting pairs, script, args) of `run ...`; None where the launcher does not run it
    (another command, help, a usage error)."""
    if not argv or argv[0] != "run":
        return None
    parsed = options.parse_run(argv[1:])
    if not isinstance(parsed, options.ParsedRun):
        return None
    return options.selection_pairs(parsed.values), parsed.script, list(parsed.args)
