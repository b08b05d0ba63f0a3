"""Edit a script's `# /// script` block in place: pure functions from bytes to bytes.

Every byte outside the lines an edit touches is kept as it was: the byte-order mark, the
encoding, each line's own line ending, comments and key order. The block is located with
the same scanner the parser and the fast path use, and every result is parsed again and
compared with the intended metadata before it is returned, so an edit can never write a
block that means something else.
"""

from __future__ import annotations

import io
import re
import tokenize
import tomllib
from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from runner.blocks import find_blocks, split_lines
from runner.errors import MetadataError, ScriptError, UsageError
from runner.metadata import ScriptMetadata, decode_source, parse
from runner.redact import redact_text

SHEBANG = "#!/usr/bin/env -S runner run"
# New one-line arrays longer than this are written one entry per line instead.
MAX_LINE = 88
BOM = b"\xef\xbb\xbf"
_CODING = re.compile(r"^[ \t\f]*#.*?coding[:=][ \t]*[-\w.]+")
_SEP = re.compile(rb"(\r\n|\r|\n)")
_VERSION = re.compile(r"^\d+(\.\d+)*$")


@dataclass
class _Line:
    text: str
    sep: str
    raw: bytes | None  # the original bytes of the line (without its ending); None once edited


class _Source:
    """A decoded script as lines, able to give back its exact bytes with edits applied."""

    def __init__(self, data: bytes, path: str):
        decode_source(data, path)  # the same errors as `runner run` for undecodable files
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        self.bom = BOM if data.startswith(BOM) else b""
        self.encoding = "utf-8" if encoding == "utf-8-sig" else encoding
        body = data[len(self.bom) :]
        parts = _SEP.split(body)
        self.lines: list[_Line] = []
        for i in range(0, len(parts), 2):
            raw = parts[i]
            sep = parts[i + 1].decode("ascii") if i + 1 < len(parts) else ""
            self.lines.append(_Line(raw.decode(self.encoding), sep, raw))
        if [line.text for line in self.lines] != split_lines(decode_source(data, path)):
            raise ScriptError(
                f"{path}: cannot edit a file in the {encoding} encoding line by line",
                hint="Save the script as UTF-8 and try again.",
            )
        seps = [line.sep for line in self.lines if line.sep]
        self.newline = max(set(seps), key=seps.count) if seps else "\n"
        self.path = path

    @property
    def texts(self) -> list[str]:
        return [line.text for line in self.lines]

    def set(self, index: int, text: str) -> None:
        if self.lines[index].text != text:
            self.lines[index].text = text
            self.lines[index].raw = None

    def insert(self, index: int, texts: list[str]) -> None:
        if index == len(self.lines) and self.lines and not self.lines[-1].sep:
            self.lines[-1].sep = self.newline  # the old last line had no ending
        new = [_Line(t, self.newline, None) for t in texts]
        if index == len(self.lines):
            new[-1].sep = ""
        self.lines[index:index] = new

    def delete(self, index: int) -> None:
        removed = self.lines.pop(index)
        if index == len(self.lines) and self.lines:
            self.lines[-1].sep = removed.sep

    def to_bytes(self) -> bytes:
        out = [self.bom]
        for line in self.lines:
            if line.raw is not None:
                out.append(line.raw)
            else:
                try:
                    out.append(line.text.encode(self.encoding))
                except UnicodeEncodeError:
                    raise ScriptError(
                        f"{self.path}: {line.text!r} cannot be written in the file's "
                        f"encoding ({self.encoding})",
                        hint="Save the script as UTF-8 and try again.",
                    ) from None
            out.append(line.sep.encode("ascii"))
        return b"".join(out)


# --------------------------------------------------------------------------- values


def validate_requirements(requirements: list[str]) -> list[Requirement]:
    """Parse every requirement; one UsageError naming all invalid ones."""
    parsed, problems = [], []
    for text in requirements:
        try:
            parsed.append(Requirement(text))
        except (InvalidRequirement, InvalidSpecifier) as exc:  # 26.0 may raise the latter
            problems.append(redact_text(f"{text!r}: {str(exc).splitlines()[0]}"))
    if problems:
        raise UsageError(
            "invalid requirement: " + "; ".join(problems),
            hint="Use PEP 508 requirements such as 'requests>=2.31' or 'rich[jupyter]'.",
        )
    return parsed


def python_specifier(spec: str) -> str:
    """`3.12` means `>=3.12`; anything else must be a version specifier set."""
    spec = spec.strip()
    if _VERSION.match(spec):
        return f">={spec}"
    try:
        SpecifierSet(spec)
    except InvalidSpecifier:
        raise UsageError(
            f"not a Python version specifier: {spec!r}",
            hint="Use a version like 3.12 (meaning >=3.12) or a specifier like '>=3.11,<3.14'.",
        ) from None
    return spec


def toml_string(value: str) -> str:
    """A TOML string literal for `value`: double quotes unless the value has some."""
    if '"' not in value and "\\" not in value and value.isprintable():
        return f'"{value}"'
    if "'" not in value and value.isprintable():
        return f"'{value}'"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(c if c.isprintable() else _toml_escape(c) for c in escaped) + '"'


def _toml_escape(c: str) -> str:
    # TOML's \u takes exactly four hex digits; characters beyond U+FFFF need \U and eight.
    return f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}"


def _array_one_line(items: list[str]) -> str:
    return "[" + ", ".join(toml_string(i) for i in items) + "]"


def _dependencies_lines(items: list[str]) -> list[str]:
    one = "dependencies = " + _array_one_line(items)
    if len(one) + 2 <= MAX_LINE:
        return [one]
    return ["dependencies = ["] + [f"    {toml_string(i)}," for i in items] + ["]"]


def _block_lines(requires_python: str | None, dependencies: list[str]) -> list[str]:
    content = []
    if requires_python is not None:
        content.append(f"requires-python = {toml_string(requires_python)}")
    content += _dependencies_lines(dependencies)
    return ["# /// script", *(f"# {c}" for c in content), "# ///"]


def new_script(
    *,
    requires_python: str | None = None,
    dependencies: list[str] | None = None,
    shebang: bool = False,
    newline: str = "\n",
) -> bytes:
    """The text of a new script with a valid block and a small main()."""
    deps = [str(r) for r in validate_requirements(list(dependencies or []))]
    python = python_specifier(requires_python) if requires_python else None
    lines = [SHEBANG] if shebang else []
    lines += _block_lines(python, deps)
    lines += [
        '"""Describe what this script does."""',
        "",
        "",
        "def main() -> None:",
        '    print("Hello from a runner script!")',
        "",
        "",
        'if __name__ == "__main__":',
        "    main()",
        "",
    ]
    data = newline.join(lines).encode("utf-8")
    meta = parse(data.decode("utf-8"))
    assert list(meta.dependencies) == deps and meta.requires_python == python
    return data


# --------------------------------------------------------------------------- the block's TOML


def _content(line: str) -> str:
    return line[2:]


def _key_line(texts: list[str], start: int, end: int, key: str) -> tuple[int, re.Match[str]] | None:
    """The first top-level `key = ...` line of the block (before any table header)."""
    pattern = re.compile(
        rf"^(\s*)(?:{re.escape(key)}|\"{re.escape(key)}\"|'{re.escape(key)}')\s*=\s*"
    )
    for i in range(start + 1, end):
        content = _content(texts[i])
        if content.lstrip().startswith("["):
            return None  # a table header: everything below is inside a table
        m = pattern.match(content)
        if m:
            return i, m
    return None


@dataclass
class _Item:
    value: str
    line: int
    start: int  # column range of the string literal in the content (after "# ")
    end: int
    comma: tuple[int, int] | None = None  # (line, column) of the comma that follows


class _Unsupported(Exception):
    pass


def _read_string(content: str, col: int) -> int:
    """Column just past the TOML string literal starting at `col` (single-line strings)."""
    quote = content[col]
    if content.startswith(quote * 3, col):
        raise _Unsupported("multi-line string")
    j = col + 1
    while j < len(content):
        c = content[j]
        if c == "\\" and quote == '"':
            j += 2
            continue
        if c == quote:
            return j + 1
        j += 1
    raise _Unsupported("unterminated string")


def _scan_array(texts: list[str], line: int, col: int, end: int) -> tuple[list[_Item], int, int]:
    """Items of the array whose `[` is at (line, col); returns (items, closer line, column)."""
    items: list[_Item] = []
    i, j = line, col + 1
    while i < end:
        content = _content(texts[i])
        while j < len(content):
            c = content[j]
            if c in " \t":
                j += 1
            elif c == "#":
                break
            elif c in "\"'":
                k = _read_string(content, j)
                value = tomllib.loads("v = " + content[j:k])["v"]
                items.append(_Item(value, i, j, k))
                j = k
            elif c == ",":
                if not items or items[-1].comma is not None:
                    raise _Unsupported("stray comma")
                items[-1].comma = (i, j)
                j += 1
            elif c == "]":
                return items, i, j
            else:
                raise _Unsupported(f"unexpected {c!r}")
        i, j = i + 1, 0
    raise _Unsupported("unclosed array")


def _alone_on_line(content: str, item: _Item) -> bool:
    """The item (with its comma and a trailing comment) is the only thing on its line."""
    if content[: item.start].strip():
        return False
    rest_start = item.comma[1] + 1 if item.comma and item.comma[0] == item.line else item.end
    rest = content[rest_start:].strip()
    return not rest or rest.startswith("#")


def _edit_dependencies(src: _Source, start: int, end: int, target: list[str]) -> int:
    """Rewrite the block's dependency array to `target`; returns the change in line count."""
    texts = src.texts
    found = _key_line(texts, start, end, "dependencies")
    if found is None:
        at = start + 1
        rp = _key_line(texts, start, end, "requires-python")
        if rp is not None:
            at = rp[0] + 1
        new = [f"# {c}" for c in _dependencies_lines(target)]
        src.insert(at, new)
        return len(new)
    index, m = found
    content = _content(texts[index])
    col = m.end()
    if content[col : col + 1] != "[":
        raise _Unsupported("dependencies is not an array")
    items, close_line, close_col = _scan_array(texts, index, col, end)
    current = [item.value for item in items]
    if close_line == index:
        # One line: write the whole array again, keep what follows it (a comment).
        src.set(index, "# " + content[:col] + _array_one_line(target) + content[close_col + 1 :])
        return 0
    # Several lines: edit entry by entry so comments and layout between them survive.
    keys = [canonicalize_name(Requirement(v).name) for v in current]
    target_keys = [canonicalize_name(Requirement(v).name) for v in target]
    keep, seen = [], set()
    for key in keys:  # the first entry of a name stays in place; later ones go
        keep.append(key in target_keys and key not in seen)
        seen.add(key)
    kept = [k for k, kp in zip(keys, keep, strict=True) if kp]
    if kept != [k for k in target_keys if k in kept]:
        raise _Unsupported("reordered entries")
    deleted: list[int] = []
    for item, key, kp in reversed(list(zip(items, keys, keep, strict=True))):
        line_content = _content(src.texts[item.line])
        if kp:
            wanted = target[target_keys.index(key)]
            if item.value != wanted:
                src.set(
                    item.line,
                    "# "
                    + line_content[: item.start]
                    + toml_string(wanted)
                    + line_content[item.end :],
                )
            continue
        if item.comma and item.comma[0] != item.line:
            raise _Unsupported("comma on another line")
        if _alone_on_line(line_content, item):
            src.delete(item.line)
            deleted.append(item.line)
            continue
        cut_end = item.comma[1] + 1 if item.comma else item.end
        while cut_end < len(line_content) and line_content[cut_end] == " ":
            cut_end += 1
        src.set(item.line, "# " + (line_content[: item.start] + line_content[cut_end:]).rstrip())
    delta = -len(deleted)
    added = [t for t, k in zip(target, target_keys, strict=True) if k not in keys]
    if not added:
        return delta
    survivors = [it for it, kp in zip(items, keep, strict=True) if kp]
    if not survivors:
        if any(it.line == close_line for it in items):
            raise _Unsupported("entries on the closing line")
        src.insert(close_line + delta, [f"#     {toml_string(a)}," for a in added])
        return delta + len(added)
    last = survivors[-1]
    line_i = last.line - sum(1 for d in deleted if d < last.line)
    line_content = _content(src.texts[line_i])
    if _alone_on_line(line_content, last):
        indent = line_content[: last.start]
        if last.comma is None:
            src.set(line_i, "# " + line_content[: last.end] + "," + line_content[last.end :])
        src.insert(line_i + 1, [f"# {indent}{toml_string(a)}," for a in added])
        return delta + len(added)
    extra = "".join(f", {toml_string(a)}" for a in added)
    src.set(line_i, "# " + line_content[: last.end] + extra + line_content[last.end :])
    return delta


def _edit_requires_python(src: _Source, start: int, end: int, value: str) -> None:
    texts = src.texts
    found = _key_line(texts, start, end, "requires-python")
    if found is None:
        src.insert(start + 1, [f"# requires-python = {toml_string(value)}"])
        return
    index, m = found
    content = _content(texts[index])
    col = m.end()
    if content[col : col + 1] not in ("'", '"'):
        raise _Unsupported("requires-python is not a string")
    stop = _read_string(content, col)
    src.set(index, "# " + content[:col] + toml_string(value) + content[stop:])


# --------------------------------------------------------------------------- edits


def _insert_position(texts: list[str]) -> int:
    """Where a new block goes: after a shebang line and a PEP 263 encoding line."""
    at = 0
    if texts and texts[0].startswith("#!"):
        at = 1
    for i in (0, 1):
        if i < len(texts) and i >= at and _CODING.match(texts[i]):
            at = i + 1
        elif i < len(texts) and texts[i].strip() and not texts[i].lstrip().startswith("#"):
            break
    return at


def _edit(
    data: bytes,
    path: str,
    target_deps: list[str] | None,
    target_python: str | None,
) -> bytes:
    src = _Source(data, path)
    before = parse(decode_source(data, path), path)
    deps = list(before.dependencies) if target_deps is None else target_deps
    python = target_python if target_python is not None else before.requires_python
    blocks = [b for b in find_blocks(src.texts) if b[0] == "script"]
    if not blocks and before.unclosed:
        # A new block above it would leave the user's own block (and its dependencies)
        # silently ignored: the user meant that one.
        line = before.unclosed[0]
        raise MetadataError(
            f"{path}:{line}: the '# /// script' block opened here is not closed, so runner "
            "cannot tell where it ends; nothing was written",
            hint="End the block with a line '# ///' right after its last '# ' line, then "
            "run the command again.",
        )
    if not blocks:
        at = _insert_position(src.texts)
        new = _block_lines(python, deps)
        following = src.texts[at] if at < len(src.texts) else ""
        if at < len(src.texts) and (following.strip() or at < len(src.texts) - 1):
            # A comment line right below would extend the block and leave it unclosed.
            new.append("")
        src.insert(at, new)
    else:
        _, start, end = blocks[0]
        try:
            if target_deps is not None:
                end += _edit_dependencies(src, start, end, deps)
            if target_python is not None:
                _edit_requires_python(src, start, end, target_python)
        except (_Unsupported, tomllib.TOMLDecodeError, InvalidRequirement, InvalidSpecifier) as exc:
            raise MetadataError(
                f"{path}:{start + 1}: cannot edit this metadata block automatically ({exc})",
                hint="Edit the dependencies by hand; write them as "
                'dependencies = ["a", "b"] to let runner edit them.',
            ) from None
    out = src.to_bytes()
    after = parse(decode_source(out, path), path)
    _check(after, before, deps, python, path)
    return out


def _check(
    after: ScriptMetadata, before: ScriptMetadata, deps: list[str], python: str | None, path: str
) -> None:
    if (
        list(after.dependencies) != deps
        or after.requires_python != python
        or dict(after.tool) != dict(before.tool)
    ):
        raise MetadataError(
            f"{path}: editing the metadata block would not give the intended result; "
            "nothing was written",
            hint="Edit the block by hand. Please report this as a bug in runner.",
        )


def add_requirements(data: bytes, requirements: list[str], path: str = "<script>") -> bytes:
    """Add requirements; one whose name is already present replaces that entry in place."""
    new = validate_requirements(requirements)
    meta = parse(decode_source(data, path), path)
    deps = list(meta.dependencies)
    for req in new:
        key = canonicalize_name(req.name)
        same = [i for i, d in enumerate(deps) if canonicalize_name(Requirement(d).name) == key]
        text = _original_text(req, requirements)
        if same:
            deps[same[0]] = text
            for i in reversed(same[1:]):
                del deps[i]
        else:
            deps.append(text)
    return _edit(data, path, deps, None)


def _original_text(req: Requirement, given: list[str]) -> str:
    """Keep the user's spelling of a requirement (stripped), not packaging's normal form."""
    for text in given:
        try:
            if Requirement(text) == req:
                return text.strip()
        except (InvalidRequirement, InvalidSpecifier):
            continue
    return str(req)


def remove_requirements(data: bytes, names: list[str], path: str = "<script>") -> bytes:
    """Remove every entry with one of these (canonical) names; an absent name is an error."""
    keys = [canonicalize_name(r.name) for r in validate_requirements(names)]
    meta = parse(decode_source(data, path), path)
    present = {canonicalize_name(Requirement(d).name) for d in meta.dependencies}
    missing = [n for n, k in zip(names, keys, strict=True) if k not in present]
    if missing:
        have = ", ".join(sorted(present)) or "none"
        raise UsageError(
            f"{path} does not depend on {', '.join(missing)} (its dependencies: {have})",
            hint="Check the name; `runner remove` takes distribution names such as 'requests'.",
        )
    deps = [d for d in meta.dependencies if canonicalize_name(Requirement(d).name) not in keys]
    return _edit(data, path, deps, None)


def set_requires_python(data: bytes, spec: str, path: str = "<script>") -> bytes:
    """Set `requires-python` (a bare version X.Y means >=X.Y)."""
    return _edit(data, path, None, python_specifier(spec))
