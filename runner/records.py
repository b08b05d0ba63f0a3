"""What an environment's installed distributions say: their RECORD files, and the few METADATA
headers runner needs (read here rather than through importlib.metadata, whose import alone
costs a cold run more than reading every header of an environment)."""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator
from pathlib import Path

from runner.fsutil import atomic_write_bytes

# The warm path re-checks at most this many directories of an environment.
MAX_FINGERPRINT_DIRS = 200
# Linux reads at most 127 bytes of a shebang line before kernel 5.1 (255 after).
SHEBANG_MAX = 127  # `#!` and the interpreter, without the newline
# What `repoint_scripts` reads of a script to find its header (sh's form included).
_HEAD = 8192


class Distribution:
    """An installed distribution's name, version, Requires-Dist lines and Requires-Python
    (its METADATA)."""

    __slots__ = ("name", "requires", "requires_python", "version")

    def __init__(
        self, name: str, version: str, requires: list[str], requires_python: str = ""
    ) -> None:
        self.name = name
        self.version = version
        self.requires = requires
        self.requires_python = requires_python


def read_metadata(path: str) -> Distribution | None:
    """Name, Version and Requires-Dist from a METADATA file (RFC 822 headers up to the first
    blank line; a line starting with white space continues the previous header)."""
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            text = f.read()
    except OSError:
        return None
    headers: list[list[str]] = []
    for line in text.split("\n"):
        line = line.rstrip("\r")
        if not line:
            break
        if line[0] in " \t" and headers:
            headers[-1][1] += " " + line.strip()
            continue
        name, colon, value = line.partition(":")
        if colon:
            headers.append([name.strip().lower(), value.strip()])
    fields: dict[str, str] = {}
    requires: list[str] = []
    for name, value in headers:
        if name == "requires-dist":
            requires.append(value)
        else:
            fields.setdefault(name, value)
    if not fields.get("name"):
        return None
    return Distribution(
        fields["name"], fields.get("version", ""), requires, fields.get("requires-python", "")
    )


def _canonical(name: str) -> str:
    """A project name as PEP 503 compares them (`Zope.Interface` -> `zope-interface`)."""
    parts = name.lower().replace("_", "-").replace(".", "-").split("-")
    return "-".join(part for part in parts if part)


def find_distribution(site: str, name: str) -> Distribution | None:
    """The distribution `name` installed in one site-packages directory, from its
    `*.dist-info` METADATA; None if it is not there."""
    wanted = _canonical(name)
    try:
        entries = sorted(os.listdir(site))
    except OSError:
        return None
    for entry in entries:
        if entry.endswith(".dist-info") and _canonical(entry).startswith(wanted + "-"):
            dist = read_metadata(os.path.join(site, entry, "METADATA"))
            if dist is not None and _canonical(dist.name) == wanted:
                return dist
    return None


def installed_distributions(site_dirs: tuple[str, ...] | list[str]) -> list[Distribution]:
    """Every `*.dist-info` distribution in the given site-packages directories, in order."""
    found: list[Distribution] = []
    for site in site_dirs:
        try:
            entries = sorted(os.listdir(site))
        except OSError:
            continue
        for entry in entries:
            if entry.endswith(".dist-info"):
                dist = read_metadata(os.path.join(site, entry, "METADATA"))
                if dist is not None:
                    found.append(dist)
    return found


def site_packages(env_dir: Path) -> list[Path]:
    """The environment's site-packages directories (POSIX and Windows layouts)."""
    found = sorted(env_dir.glob("lib/python*/site-packages"))
    found += sorted(env_dir.glob("lib64/python*/site-packages"))
    if (env_dir / "Lib" / "site-packages").is_dir():
        found.append(env_dir / "Lib" / "site-packages")
    unique: list[Path] = []
    for path in found:
        if path.is_dir() and not any(os.path.samefile(path, u) for u in unique):
            unique.append(path)
    return unique


def _hash_file(path: Path, algorithm: str) -> str:
    import hashlib

    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return _record_digest(digest.digest())


def _record_digest(digest: bytes) -> str:
    """A digest as RECORD writes it: urlsafe base64 without padding."""
    import base64

    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def record_problems(site: Path, dist_info: Path, *, hashes: bool) -> list[str]:
    """Files of one distribution that are missing, of the wrong size or (with `hashes`)
    of the wrong content, according to its RECORD."""
    import csv  # RECORD files are read by look-ups and `cache verify`, not by a build

    record = dist_info / "RECORD"
    try:
        with open(record, encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f))
    except FileNotFoundError:
        return [f"{dist_info.name}: RECORD is missing"]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        return [f"{dist_info.name}: RECORD is unreadable ({exc})"]
    problems: list[str] = []
    for row in rows:
        if not row or not row[0]:
            continue
        if len(row) != 3:
            problems.append(f"{dist_info.name}: malformed RECORD line {','.join(row)!r}")
            continue
        rel, hash_text, size_text = row
        path = Path(os.path.normpath(site / rel))
        try:
            st = os.stat(path)
        except OSError:
            problems.append(f"{dist_info.name}: {rel} is missing")
            continue
        if size_text.isdigit() and int(size_text) != st.st_size:
            problems.append(f"{dist_info.name}: {rel} has the wrong size")
            continue
        if hashes and hash_text:
            algorithm, _, expected = hash_text.partition("=")
            try:
                actual = _hash_file(path, algorithm)
            except (ValueError, OSError):
                problems.append(f"{dist_info.name}: cannot check {rel} ({hash_text})")
                continue
            if actual != expected:
                problems.append(f"{dist_info.name}: {rel} does not match its RECORD hash")
    return problems


def first_missing_file(env_dir: Path) -> str | None:
    """A cheap completeness check (stat only, no hashing): the first problem, or None."""
    for site in site_packages(env_dir):
        for dist_info in sorted(site.glob("*.dist-info")):
            problems = record_problems(site, dist_info, hashes=False)
            if problems:
                return problems[0]
    return None


def fingerprint_dirs(env_dir: Path) -> tuple[str, ...]:
    """Directories whose mtime changes when installed files are deleted or added: each
    site-packages and the packages directly inside it. The warm-path alias records them."""
    dirs: list[str] = []
    for site in site_packages(env_dir):
        dirs.append(str(site))
        try:
            entries = sorted(os.scandir(site), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            if entry.name == "__pycache__" or entry.name.endswith((".dist-info", ".data")):
                continue
            if entry.is_dir(follow_symlinks=False):
                dirs.append(entry.path)
    return tuple(dirs[:MAX_FINGERPRINT_DIRS])


def rows_in(
    site: Path, rows: list[list[str]], directories: Collection[str]
) -> Iterator[tuple[list[str], str]]:
    """The rows of a RECORD in `site` that name a file directly in one of `directories`
    (normalized paths outside site-packages: an environment's bin/), each with the path."""
    for row in rows:
        if not row or not row[0].startswith(".."):
            continue
        path = os.path.normpath(os.path.join(site, row[0]))
        if os.path.dirname(path) in directories:
            yield row, path


def shebang(python: str) -> bytes:
    """The header of a script that `python` runs, as installers write it: `#!PYTHON`, or
    where the kernel would not read that line (too long, or a space in the path) sh
    starting `python` on the same file."""
    line = f"#!{python}".encode()
    if len(line) <= SHEBANG_MAX and not any(c.isspace() for c in python):
        return line + b"\n"
    import shlex

    return f"#!/bin/sh\n'''exec' {shlex.quote(python)} \"$0\" \"$@\"\n' '''\n".encode()


def _header(data: bytes) -> tuple[str, int] | None:
    """The interpreter a script's header names and where the rest begins, for the two
    headers `shebang` (and pip, uv and distlib) write; None for any other file."""
    if data.startswith(b"#!/bin/sh\n'''exec' "):
        import shlex

        lines = data.split(b"\n", 3)
        if len(lines) < 4 or lines[2] != b"' '''":
            return None
        try:
            words = shlex.split(lines[1].decode())
        except (ValueError, UnicodeDecodeError):
            return None
        if len(words) != 4 or words[0] != "exec" or words[2:] != ["$0", "$@"]:
            return None
        return words[1], sum(len(line) + 1 for line in lines[:3])
    end = data.find(b"\n")
    if not data.startswith(b"#!/") or end < 0:
        return None
    try:
        path = data[2:end].decode()
    except UnicodeDecodeError:
        return None
    if any(c.isspace() for c in path):  # arguments: not a header an installer wrote
        return None
    return path, end + 1


def repoint_scripts(env_dir: Path, base: str, python: str) -> list[str]:
    """Point the scripts written for the interpreter `base` at the environment's `python`.

    `uv pip install --prefix ENV --python BASE` (runner.installers) lays files out as in
    an environment at ENV, but its scripts start BASE, which would run without the
    environment's packages. Only files in ENV/bin that a RECORD lists and whose header
    names BASE (that path or another to the same file, but not one in ENV/bin: a venv's
    python links to BASE too) change; their RECORD rows get the new hash and size, so the
    completeness check and `cache verify` still agree. A script that names another
    interpreter (`#!/usr/bin/env python3`, `#!/bin/bash`) is left as the wheel shipped it.
    Returns the scripts changed.
    """
    import csv
    import hashlib
    import io

    bin_dir = os.path.normpath(os.path.join(env_dir, "bin"))
    target = os.path.realpath(base)
    header = shebang(python)
    changed: list[str] = []
    for site in site_packages(env_dir):
        for record in sorted(site.glob("*.dist-info/RECORD")):
            raw = record.read_bytes()
            if b"/bin/" not in raw:  # most distributions have no scripts (numpy + pandas:
                continue  # 10 ms to parse every RECORD, on the way to the first run)
            rows = list(csv.reader(io.StringIO(raw.decode("utf-8"), newline="")))
            edited = False
            for row, path in rows_in(site, rows, (bin_dir,)):
                if len(row) != 3 or os.path.islink(path):
                    continue
                try:
                    with open(path, "rb") as f:
                        head = f.read(_HEAD)  # a wheel's scripts may be large programs
                        found = _header(head)
                        if (
                            found is None
                            or os.path.dirname(found[0]) == bin_dir  # the environment's
                            or os.path.realpath(found[0]) != target
                        ):
                            continue
                        data = header + head[found[1] :] + f.read()
                except OSError:
                    continue
                mode = os.stat(path).st_mode & 0o7777
                atomic_write_bytes(Path(path), data, mode=mode, sync=False)
                digest = hashlib.sha256(data).digest()
                row[1] = "sha256=" + _record_digest(digest)
                row[2] = str(len(data))
                edited = True
                changed.append(path)
            if edited:
                mode = os.stat(record).st_mode & 0o7777
                atomic_write_bytes(record, _csv_text(rows).encode("utf-8"), mode=mode, sync=False)
    return changed


def _csv_text(rows: list[list[str]]) -> str:
    import csv
    import io

    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()
