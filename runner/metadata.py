"""Find, decode, parse and validate a script's `# /// script` block (inline script metadata)."""

from __future__ import annotations

import io
import re
import tomllib
from collections.abc import Mapping
from typing import Any

from runner import simplereq
from runner.blocks import block_content, find_blocks, split_lines, unclosed_openers
from runner.errors import MetadataError, ScriptError
from runner.redact import redact_text
from runner.values import dataclass, field, replace


@dataclass(frozen=True)
class ScriptMetadata:
    """The validated content of a script's metadata block (empty when it has none)."""

    dependencies: tuple[str, ...] = ()
    requires_python: str | None = None
    tool: Mapping[str, Any] = field(default_factory=dict)
    # The block's embedded text exactly as the fast path hashes it; None without a block.
    block: str | None = None
    # 1-based line numbers of the `# /// script` opener and of the `# ///` that closes it.
    block_line: int | None = None
    block_end_line: int | None = None
    # 1-based lines of `# /// script` openers that no `# ///` closes (ignored, as the
    # specification says; the CLI warns about them).
    unclosed: tuple[int, ...] = ()

    @property
    def runner_settings(self) -> Mapping[str, Any]:
        value = self.tool.get("runner", {})
        return value if isinstance(value, Mapping) else {}


def decode_source(data: bytes, path: str) -> str:
    """Decode script bytes as Python does: a UTF-8 BOM or a PEP 263 declaration, else UTF-8."""
    try:
        encoding = _encoding(data)
    except SyntaxError as exc:
        # detect_encoding also fails when line 1 or 2 is not UTF-8: say where, if so.
        message = f"{path}: {exc.msg}"
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as bad:
            message = f"{path}: cannot decode the file as utf-8{_position(data, bad.start)}"
        raise ScriptError(
            message,
            hint="Fix the encoding declaration on the first two lines, or save the file as UTF-8.",
        ) from None
    try:
        # A BOM is dropped by the utf-8-sig codec; parse() drops one more, as the fast path
        # does, so both agree even on a (malformed) file that starts with two.
        return data.decode(encoding)
    except (UnicodeError, LookupError) as exc:  # some codecs raise plain UnicodeError
        where = _position(data, exc.start) if isinstance(exc, UnicodeDecodeError) else ""
        raise ScriptError(
            f"{path}: cannot decode the file as {encoding}{where}",
            hint="Save the script as UTF-8, or declare its encoding with a "
            "'# -*- coding: NAME -*-' line at the top.",
        ) from None


def _encoding(data: bytes) -> str:
    """`tokenize.detect_encoding`'s answer; without importing tokenize (its regular
    expressions cost a millisecond) for the usual script: no BOM, and no `coding` on its
    first two lines, which are UTF-8. (An environment made in-process imports it anyway:
    stdlib `venv` imports logging, which imports it through traceback and linecache.)"""
    head = b"\n".join(data.split(b"\n", 2)[:2])
    if not head.startswith(b"\xef\xbb\xbf") and b"coding" not in head:
        try:
            head.decode("utf-8")
            return "utf-8"
        except UnicodeDecodeError:
            pass  # detect_encoding says so
    import tokenize

    return tokenize.detect_encoding(io.BytesIO(data).readline)[0]


def _position(data: bytes, offset: int) -> str:
    """' (line N, byte offset M)', counting \\r\\n, \\r and \\n as line ends like split_lines."""
    line = data[:offset].replace(b"\r\n", b"\n").replace(b"\r", b"\n").count(b"\n") + 1
    return f" (line {line}, byte offset {offset})"


_TOML_POSITION = r"\(at line (\d+), column (\d+)\)"  # compiled when a block is invalid


def parse(text: str, path: str = "<script>") -> ScriptMetadata:
    """Parse and validate the `script` block of already-decoded source text."""
    lines = split_lines(text.removeprefix("\ufeff"))
    blocks = [b for b in find_blocks(lines) if b[0] == "script"]
    unclosed = tuple(i + 1 for kind, i in unclosed_openers(lines) if kind == "script")
    if not blocks:
        return ScriptMetadata(unclosed=unclosed)
    if len(blocks) > 1:
        where = ", ".join(str(b[1] + 1) for b in blocks)
        raise MetadataError(
            f"{path}: more than one '# /// script' block (lines {where})",
            hint="Merge them into one block; the specification allows only one.",
        )
    _, start, end = blocks[0]
    content = block_content(lines, start, end)
    try:
        data = tomllib.loads(content)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)

        # tomllib counts lines from the block's first content line; that is file line
        # (opener's 1-based line = start + 1) + N, and the `# ` prefix shifts columns by 2.
        def to_file_position(match: re.Match[str]) -> str:
            return f"(at line {int(match.group(1)) + start + 1}, column {int(match.group(2)) + 2})"

        shifted = re.sub(_TOML_POSITION, to_file_position, message)
        shifted = shifted.replace("(at end of document)", "(at the end of the block)")
        line_match = re.search(_TOML_POSITION, shifted)
        # Without a position the problem is at the end: name the last content line.
        line = f":{line_match.group(1)}" if line_match else f":{max(end, start + 1)}"
        raise MetadataError(
            f"{path}{line}: invalid TOML in the script metadata block: {shifted}",
            hint="Each line of the block is '# ' followed by TOML; fix the line named above.",
        ) from None
    except (ValueError, RecursionError) as exc:
        # tomllib lets these through: an integer longer than Python's int-string limit,
        # arrays or inline tables nested deeper than the recursion limit.
        reason = "values nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise MetadataError(
            f"{path}:{start + 1}: cannot read the script metadata block: {reason}",
            hint="Simplify the block: it should hold short TOML values.",
        ) from None
    meta = _validate(data, content, start, path, lines, end)
    return replace(meta, block_end_line=end + 1, unclosed=unclosed)


def _line_of(lines: list[str], start: int, end: int, needle: str) -> int:
    """Best-effort file line (1-based) of the first block line containing `needle`."""
    for i in range(start + 1, end):
        if needle in lines[i]:
            return i + 1
    return start + 1


def _validate(
    data: dict[str, Any], content: str, start: int, path: str, lines: list[str], end: int
) -> ScriptMetadata:
    deps_value = data.get("dependencies", [])
    if not isinstance(deps_value, list):
        line = _line_of(lines, start, end, "dependencies")
        raise MetadataError(
            f"{path}:{line}: 'dependencies' must be a list of requirement strings, "
            f"not {type(deps_value).__name__}",
            hint='Write it as dependencies = ["requests<3", "rich"].',
        )
    problems = []
    for entry in deps_value:
        if not isinstance(entry, str):
            problems.append(f"{entry!r} is not a string")
            continue
        if simplereq.parse(entry) is not None:
            continue  # valid: `packaging` is not imported for the everyday forms
        from packaging.requirements import InvalidRequirement, Requirement
        from packaging.specifiers import InvalidSpecifier  # what packaging 26.0 may raise

        try:
            Requirement(entry)
        except (InvalidRequirement, InvalidSpecifier) as exc:
            first = str(exc).splitlines()[0]
            problems.append(redact_text(f"{entry!r}: {first}"))
    if problems:
        line = _line_of(lines, start, end, "dependencies")
        raise MetadataError(
            f"{path}:{line}: invalid dependencies: " + "; ".join(problems),
            hint="Each dependency must be a PEP 508 requirement such as 'requests>=2.31' "
            "or 'rich[jupyter]'.",
        )
    requires_python = data.get("requires-python")
    if requires_python is not None:
        line = _line_of(lines, start, end, "requires-python")
        if not isinstance(requires_python, str):
            raise MetadataError(
                f"{path}:{line}: 'requires-python' must be a string, "
                f"not {type(requires_python).__name__}",
                hint='Write it as requires-python = ">=3.11".',
            )
        from packaging.specifiers import InvalidSpecifier, SpecifierSet

        try:
            # contains() parses each version in it (one may overflow int()) before use.
            SpecifierSet(requires_python).contains("3", prereleases=True)
        except (InvalidSpecifier, ValueError):
            raise MetadataError(
                f"{path}:{line}: 'requires-python' is not a valid version specifier: "
                f"{requires_python!r}",
                hint='Use a specifier such as ">=3.11" or ">=3.10,<3.14".',
            ) from None
    tool = data.get("tool", {})
    if not isinstance(tool, dict):
        line = _line_of(lines, start, end, "tool")
        raise MetadataError(
            f"{path}:{line}: 'tool' must be a table", hint="Write it as [tool.NAME] tables."
        )
    return ScriptMetadata(
        dependencies=tuple(deps_value),
        requires_python=requires_python,
        tool=tool,
        block=content,
        block_line=start + 1,
    )
