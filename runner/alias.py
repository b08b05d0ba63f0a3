"""The warm-path alias `scripts/<digest>`: its digest, and the one writer and reader of its
format (stdlib only: the launcher reads aliases on every run).

An alias maps a selection digest (the raw `script` block, the options that select the
environment, RUNNER_PYTHON, the lock file's bytes, the script's directory where relative
paths can matter) to a store directory, with the checks that must still hold to trust it:

    runner-alias 2
    env\t/cache/store/<key>-<token>
    stat\t<path>\t<mtime_ns>:<size>      (interpreters, discovery dirs, site-packages...)
    var\t<NAME>\t<value>                  (PATH and other variables discovery read)
    expires\t<epoch seconds>              (a relative upload cutoff moves at midnight)
    script\t<absolute path>               (informs `runner cache list` only)
    end                                   (a truncated alias is never trusted)
"""

import os

from runner.hashing import sha256_hex

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

# Bump when the format or the digest inputs change: old aliases then simply miss.
FORMAT = "2"
_HEADER = "runner-alias " + FORMAT


def selection_digest(
    content: str | None,
    pairs: "Sequence[tuple[str, str]]",
    lock_bytes: bytes | None,
    script_dir: str,
    runner_python: str | None,
) -> str:
    """Digest of every input that selects a script's environment.

    `content` is the raw `script` block (None without one); `pairs` the canonical selecting
    options (`options.selection_pairs`); `runner_python` the RUNNER_PYTHON setting. The
    script's directory matters only where relative paths in the block or a lock can.
    """
    from runner.options import canonical

    parts = ["runner-alias", FORMAT]
    parts.append("block" if content is not None else "noblock")
    parts.append(content or "")
    for name, value in sorted(pairs):
        parts.append(f"opt:{name}={value}")
    if runner_python:
        parts.append("env:RUNNER_PYTHON=" + canonical("python", runner_python))
    if lock_bytes is not None:
        parts.append("lock:" + sha256_hex(lock_bytes))
    if lock_bytes is not None or (content is not None and "find-links" in content):
        parts.append("dir:" + script_dir)
    # Length-prefixed parts: no two different input lists can encode alike.
    encoded = "".join(f"{len(part)}:{part}," for part in parts)
    return sha256_hex(encoded.encode("utf-8", "surrogateescape"))


class Alias:
    """An alias file's content."""

    __slots__ = ("env_dir", "expires", "scripts", "stats", "vars")

    def __init__(self) -> None:
        self.env_dir = ""
        self.stats: list[tuple[str, str]] = []  # (path, "mtime_ns:size")
        self.vars: list[tuple[str, str]] = []
        self.expires: int | None = None
        self.scripts: list[str] = []


def parse(text: str) -> Alias | None:
    """The alias in `text`, or None if it is foreign, of another format, truncated or bad."""
    lines = text.split("\n")
    if lines[0] != _HEADER or lines[-2:] != ["end", ""]:
        return None
    alias = Alias()
    for line in lines[1:-2]:
        kind, _, rest = line.partition("\t")
        if kind == "env":
            alias.env_dir = rest
        elif kind == "stat":
            path, _, stamp = rest.rpartition("\t")
            alias.stats.append((path, stamp))
        elif kind == "var":
            name, _, value = rest.partition("\t")
            alias.vars.append((name, value))
        elif kind == "expires":
            if not rest.isdigit():
                return None
            alias.expires = int(rest)
        elif kind == "script":
            alias.scripts.append(rest)
        else:
            return None
    return alias if alias.env_dir else None


def _stamp(st: os.stat_result) -> str:
    return f"{st.st_mtime_ns}:{st.st_size}"


def read(path: str, environ: "Mapping[str, str]", now_s: int) -> str | None:
    """The store directory the alias at `path` names, if every recorded check still holds."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError):
        return None
    alias = parse(text)
    if alias is None:
        return None
    for stat_path, expect in alias.stats:
        try:
            st = os.stat(stat_path)
        except OSError:
            return None
        if expect != _stamp(st):
            return None
    for name, expect in alias.vars:
        if environ.get(name, "") != expect:
            return None
    if alias.expires is not None and now_s >= alias.expires:
        return None
    return alias.env_dir


def render(
    env_dir: str,
    *,
    stat_paths: "Sequence[str]",
    var_names: "Sequence[str]",
    environ: "Mapping[str, str]",
    script: str | None = None,
    expires: int | None = None,
) -> str | None:
    """The text of an alias for `env_dir`; None where the choice cannot be described (a path
    that cannot be stat'ed or that has a tab or newline in it): then no alias is written and
    the cold path stays correct."""
    if any("\n" in part or "\t" in part for part in (env_dir, *stat_paths)):
        return None
    lines = [_HEADER, f"env\t{env_dir}"]
    for stat_path in stat_paths:
        try:
            st = os.stat(stat_path)
        except OSError:
            return None
        lines.append(f"stat\t{stat_path}\t{_stamp(st)}")
    for name in var_names:
        value = environ.get(name, "")
        if "\n" in value:
            return None
        lines.append(f"var\t{name}\t{value}")
    if expires is not None:
        lines.append(f"expires\t{expires}")
    if script is not None and "\n" not in script:
        lines.append(f"script\t{script}")
    lines.append("end")
    return "\n".join(lines) + "\n"
