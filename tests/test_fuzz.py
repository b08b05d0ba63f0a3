"""Property tests of the metadata parser and the fast path's block scanner (hypothesis).

Properties, for any input:
- `metadata.parse` returns ScriptMetadata or raises MetadataError, never anything else;
  `metadata.decode_source` returns text or raises ScriptError.
- The fast path's scanner agrees with the parser, and both agree with the specification's
  reference regular expression (copied verbatim), so a bug shared by parser and scanner
  (they share code) still shows.
- The warm path's own bytes -> digest step gives the cold path's digest whenever it does
  not defer to the cold path.
"""

from __future__ import annotations

import encodings.aliases
import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from runner.api import RunOptions, load_script, prepare
from runner.cache import Cache
from runner.errors import MetadataError, ScriptError
from runner.metadata import ScriptMetadata, decode_source, parse
from tests import warmpath

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------- reference implementation

# The specification's reference implementation, its regular expression copied verbatim
# (packaging.python.org, "Inline script metadata"). The greedy content group backtracks to
# the last `# ///` line of the run of comment lines, so ordinary comments may follow a block.
REGEX = r"(?m)^# /// (?P<type>[a-zA-Z0-9-]+)$\s(?P<content>(^#(| .*)$\s)+)^# ///$"


def reference_blocks(text: str) -> list[tuple[str, str, int]]:
    """(type, content, 0-based opener line) of every block, as the specification finds them.

    Line endings are normalized first, as Python's tokenizer reads them.
    """
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    out = []
    for m in re.finditer(REGEX, text):
        # The specification's sample splits with str.splitlines, which also breaks at form
        # feeds and other separators inside a line; Python source lines end at newlines.
        content = "".join(
            (line[2:] if line.startswith("# ") else line[1:]) + "\n"
            for line in m.group("content").split("\n")[:-1]
        )
        out.append((m.group("type"), content, text.count("\n", 0, m.start())))
    return out


def _normalized(text: str) -> str:
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def reference_spans(text: str, kind: str | None = None) -> list[tuple[int, int]]:
    """0-based (opener line, closer line) of every block the regular expression finds."""
    text = _normalized(text)
    spans = []
    for m in re.finditer(REGEX, text):
        if kind is None or m.group("type") == kind:
            first = text.count("\n", 0, m.start())
            spans.append((first, first + m.group(0).count("\n")))
    return spans


def reference_unclosed(text: str, kind: str) -> tuple[int, ...]:
    """1-based lines that look like an opener (the regex's first line) but open no block."""
    inside = {i for a, b in reference_spans(text) for i in range(a, b + 1)}
    opener = re.compile(r"# /// (?P<type>[a-zA-Z0-9-]+)")
    return tuple(
        i + 1
        for i, line in enumerate(_normalized(text).split("\n"))
        if (m := opener.fullmatch(line)) and m.group("type") == kind and i not in inside
    )


def reference_script(text: str) -> str | bool | None:
    found = [b for b in reference_blocks(text) if b[0] == "script"]
    if len(found) > 1:
        return False
    return found[0][1] if found else None


def test_reference_matches_known_cases() -> None:
    # The reference must itself get the spec's tricky cases right, or agreeing with it
    # proves nothing.
    assert reference_script("# /// script\n# a = 1\n# ///\n") == "a = 1\n"
    # A block followed directly by ordinary comments is read (it ends at the last closer).
    assert reference_script("# /// script\n# a = 1\n# ///\n# more\n") == "a = 1\n"
    assert reference_script("# /// script\n# a = 1\n# ///\n# x\n# ///\nimport x") == (
        "a = 1\n///\nx\n"
    )
    # One content line at least: an opener directly followed by its closer is no block.
    assert reference_script("# /// script\n# ///\n") is None
    assert reference_script("# /// script\n# ///\n# x\n# ///") == "///\nx\n"
    assert reference_script("# /// script\r\n#\r\n# ///\r\n\r\n# /// script\r\n#\r\n# ///") is False
    assert reference_script("# /// script \n# a\n# ///\n") is None
    assert reference_script("# /// script\n# a = 1\n") is None


# --------------------------------------------------------------------- strategies

LINE_ENDINGS = st.sampled_from(["\n", "\r\n", "\r"])

INTERESTING_LINES = [
    "# /// script",
    "# /// script",
    "# ///",
    "# ///",
    "# /// pyproject",
    "# /// script ",
    "# /// ",
    "#///",
    "#",
    "# ",
    "#\t",
    '# dependencies = ["a", "b>=1"]',
    '# requires-python = ">=3.8"',
    "# [tool.runner]",
    '# x = """',
    "# /// <summary>",
    "",
    "x = 1",
    '"""',
    "    # /// script",
    "\ufeff# /// script",
]

requirement_text = st.lists(
    st.sampled_from([*"abcAB-_.[],;<>=!~ @'\"()/:*0123", "python_version", "extra", "===", "; "]),
    max_size=20,
).map("".join)

toml_line = st.one_of(
    st.builds(lambda r: f"# dependencies = [{r!r}]".replace("'", '"'), requirement_text),
    st.builds(lambda r: f"# requires-python = {r!r}".replace("'", '"'), requirement_text),
    st.sampled_from(
        [
            "# a = = 1",
            "# dependencies = 3",
            "# dependencies = [1]",
            '# dependencies = ["a"',
            "# [tool",
            "# tool = 1",
            "# [dependencies]",
            "# requires-python = 3",
            '# "unterminated',
            "# a = 1\x00",
            "# a = '\x7f'",
            "# a = 1" + "0" * 5000,
            "# a = " + "[" * 3000,
            "# b = " + "{c = " * 2000,
        ]
    ),
)

any_line = st.one_of(
    st.sampled_from(INTERESTING_LINES),
    st.text(max_size=40),
    st.builds(lambda s: "# " + s, st.text(max_size=40)),
    toml_line,
)


@st.composite
def line_texts(draw: st.DrawFn) -> str:
    lines = draw(st.lists(any_line, max_size=14))
    endings = draw(st.lists(LINE_ENDINGS, min_size=len(lines), max_size=len(lines)))
    return "".join(line + end for line, end in zip(lines, endings, strict=True)) + draw(
        st.sampled_from(["", "tail", "# ///"])
    )


VALID_BLOCK = [
    "#!/usr/bin/env python3",
    '"""Example."""',
    "# /// script",
    '# requires-python = ">=3.8"',
    "# dependencies = [",
    '#   "requests<3",',
    "#   \"rich[jupyter]; python_version >= '3.8'\",",
    "# ]",
    "#",
    "# [tool.runner]",
    '# index-url = "https://example.invalid/simple"',
    "# ///",
    "",
    "import requests",
]


@st.composite
def mutated_blocks(draw: st.DrawFn) -> str:
    """A valid script with a few mutations of the kinds users and editors produce."""
    lines = list(VALID_BLOCK)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(
            st.sampled_from(
                ["truncate", "stray", "insert", "delete", "duplicate", "control", "long", "replace"]
            )
        )
        i = draw(st.integers(0, max(len(lines) - 1, 0)))
        if not lines:
            lines.append("")
        if kind == "truncate":
            lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))]
        elif kind == "stray":
            lines.insert(i, draw(st.sampled_from(["# ///", "# /// script", "# ///  ", "#///"])))
        elif kind == "insert":
            lines.insert(i, draw(toml_line))
        elif kind == "delete":
            del lines[i]
        elif kind == "duplicate":
            lines.insert(i, lines[i])
        elif kind == "control":
            ch = draw(
                st.sampled_from(["\x00", "\x0b", "\x0c", "\x1b", "\x7f", "\u2028", "\ufeff", "\t"])
            )
            at = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:at] + ch + lines[i][at:]
        elif kind == "long":
            lines.insert(i, '# x = "' + "a" * draw(st.integers(1000, 50_000)) + '"')
        else:
            lines[i] = draw(any_line)
    ending = draw(LINE_ENDINGS)
    return ending.join(lines) + draw(st.sampled_from(["", ending]))


toml_value = st.one_of(
    requirement_text,
    st.text(max_size=20),
    st.integers(-5, 5),
    st.lists(st.one_of(requirement_text, st.integers(0, 3)), max_size=4),
)


def toml_literal(value: object) -> str:
    # JSON strings, integers and arrays are TOML too (json escapes control characters).
    return json.dumps(value, ensure_ascii=False)


@st.composite
def generated_blocks(draw: st.DrawFn) -> str:
    """A closed block of valid TOML whose values are often invalid metadata."""
    lines = ["# /// script"]
    deps = draw(st.one_of(st.lists(requirement_text, max_size=4), toml_value))
    lines.append("# dependencies = " + toml_literal(deps))
    if draw(st.booleans()):
        lines.append(
            "# requires-python = " + toml_literal(draw(st.one_of(requirement_text, toml_value)))
        )
    if draw(st.booleans()):
        lines.append("# tool = " + toml_literal(draw(toml_value)))
    lines.append("# ///")
    before = draw(
        st.lists(st.sampled_from(["x = 1", "", "# c", "# /// other", "# ///"]), max_size=3)
    )
    return "\n".join([*before, *lines]) + "\n"


all_texts = st.one_of(st.text(), line_texts(), mutated_blocks(), generated_blocks())

# --------------------------------------------------------------------- properties


def parse_or_error(text: str) -> ScriptMetadata | MetadataError:
    try:
        return parse(text, "fuzz.py")
    except MetadataError as exc:
        assert exc.message.startswith("fuzz.py:"), exc.message
        return exc


@FUZZ
@given(all_texts)
@example("# /// script\n# a = " + "[" * 5000 + "\n# ///\n")
@example("# /// script\n# a = " + "9" * 5000 + "\n# ///\n")
@example('# /// script\n# requires-python = ">=3.' + "1" * 5000 + '"\n# ///\n')
@example("\ufeff\ufeff# /// script\n# ///\n")
def test_parse_returns_metadata_or_metadata_error(text: str) -> None:
    result = parse_or_error(text)
    found = warmpath.script_block(text)
    expected = reference_script(text)
    # The scanner agrees with the specification's text.
    if expected is False:
        assert found is False
    else:
        assert (found[0] if found else None) == expected  # type: ignore[index]
    # The parser agrees with the specification too (not only with the scanner, with which
    # it shares code): the same block at the same lines, or a duplicate error.
    if isinstance(result, ScriptMetadata):
        assert expected is not False
        assert result.block == expected
        spans = reference_spans(text, "script")
        if expected is not None:
            assert (result.block_line, result.block_end_line) == (
                spans[0][0] + 1,
                spans[0][1] + 1,
            )
        assert result.unclosed == reference_unclosed(text, "script")
    elif expected is False:
        assert "more than one '# /// script' block" in result.message
    else:
        assert expected is not None, "an error without a block"


@FUZZ
@given(
    st.lists(st.sampled_from(["#", " ", "/", "\n", "\r", "script", "x", "a = 1", "\t"])).map(
        "".join
    )
)
def test_scanner_agrees_with_reference_on_dense_input(text: str) -> None:
    lines = warmpath.split_lines(text)
    got = [
        (kind, warmpath.block_content(lines, start, end), start)
        for kind, start, end in warmpath.find_blocks(lines)
    ]
    assert got == reference_blocks(text)


@st.composite
def script_bytes(draw: st.DrawFn) -> bytes:
    text = draw(st.one_of(mutated_blocks(), line_texts()))
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1-declared", "declared", "raw"]))
    if encoding == "latin-1-declared":
        data = ("# -*- coding: latin-1 -*-\n" + text).encode("latin-1", "replace")
    elif encoding == "declared":  # any codec name Python knows, text or not
        name = draw(st.sampled_from(sorted(set(encodings.aliases.aliases.values()))))
        data = f"# coding: {name}\n{text}".encode("utf-8", "surrogatepass")
    elif encoding == "raw":
        return draw(st.binary(max_size=200))
    else:
        data = text.encode(encoding, "surrogatepass")
    for _ in range(draw(st.integers(0, 2))):  # invalid UTF-8: stray or truncated sequences
        at = draw(st.integers(0, len(data)))
        junk = draw(st.sampled_from([b"\xff", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\x80"]))
        data = data[:at] + junk + data[at:]
    return data


@FUZZ
@given(script_bytes())
@example(b"x = '\xff'\n")
@example(b"\xef\xbb\xbf\xef\xbb\xbf# /// script\n# ///\n")
@example(b"# /// script\r# ///\r# coding: latin-1\r\xe9")
def test_bytes_decode_then_parse_and_fast_path_digest(data: bytes) -> None:
    try:
        text = decode_source(data, "fuzz.py")
    except ScriptError as exc:
        assert exc.message.startswith("fuzz.py: ")
        cold = None
    else:
        cold = parse_or_error(text)
    warm = warmpath.digest_for_bytes(data, [], None, "/scripts")
    if warm is None:
        return  # deferred to the cold path: always allowed
    # When the fast path decodes a file, the cold path must decode it the same way.
    assert cold is not None, "fast path accepted bytes the cold path cannot decode"
    if isinstance(cold, ScriptMetadata):
        assert warm == warmpath.selection_digest(cold.block, [], None, "/scripts")


# --------------------------------------------------------------------- end to end on files

# (id, file bytes, whether the fast path computes a digest itself)
FILES = [
    ("plain", b"# /// script\n# dependencies = []\n# ///\nprint(1)\n", True),
    ("no-block", b"print(1)\n", True),
    ("bom", b"\xef\xbb\xbf# /// script\n# ///\n", True),
    ("bom-block", b"\xef\xbb\xbf# /// script\n#\n# ///\n", True),
    ("crlf", b"# /// script\r\n# requires-python = '>=3'\r\n# ///\r\n", True),
    ("followed-by-comments", b"# /// script\n# x = 1\n# ///\n# comment\n", True),
    ("unclosed", b"# /// script\n# x = 1\nx = 1\n", True),
    (
        "latin1-declared",
        "# coding: latin-1\n# /// script\n# [tool.x]\n# a = 'é'\n# ///\n".encode("latin-1"),
        False,
    ),
    (
        "coding-word-on-line-2",
        b"#!/usr/bin/env python\n# decoding helpers\n# /// script\n# ///\n",
        False,
    ),
    ("non-ascii-utf8-block", "# /// script\n# [tool.x]\n# a = 'ünï'\n# ///\n".encode(), True),
]


@pytest.mark.parametrize(("data", "handled"), [c[1:] for c in FILES], ids=[c[0] for c in FILES])
def test_fast_path_digest_equals_prepare_digest(tmp_path: Path, data: bytes, handled: bool) -> None:
    script = tmp_path / "s.py"
    script.write_bytes(data)
    options = RunOptions()
    prepared = prepare(load_script(str(script)), options, Cache())
    warm = warmpath.digest_for_bytes(data, options.selection_pairs(), None, str(tmp_path))
    if prepared.script.metadata.unclosed:
        # No alias: every run goes cold and warns about the unclosed opener again.
        assert prepared.digest is None
    elif handled:
        assert warm == prepared.digest
    else:
        assert warm is None


# --------------------------------------------------------------------- layouts people write

comment_line = st.sampled_from(
    ["# a comment", "#", "# ///", "# /// script", "# /// other", "# x = 1", "# ---"]
)
code_line = st.sampled_from(["import sys", "", "x = 1", "    # indented", "#!shebang", '"""'])


@st.composite
def block_lines(draw: st.DrawFn) -> list[str]:
    """A block (often `script`, sometimes another type) whose content may hold `# ///`."""
    kind = draw(st.sampled_from(["script", "script", "pyproject", "x-y"]))
    content = draw(
        st.lists(
            st.sampled_from(
                [
                    '# dependencies = ["alpha", "beta>=1"]',
                    '# requires-python = ">=3.8"',
                    "#",
                    "# ///",  # a closer candidate inside the content
                    "# /// script",
                    "# [tool.runner]",
                ]
            ),
            min_size=draw(st.sampled_from([0, 1])),
            max_size=4,
        )
    )
    closed = draw(st.integers(0, 9)) > 0
    after = draw(st.lists(comment_line, max_size=3))  # ordinary comments after the closer
    return [f"# /// {kind}", *content, *(["# ///"] if closed else []), *after]


@st.composite
def layouts(draw: st.DrawFn) -> str:
    """Code, comments and zero to three blocks, with one line ending style or mixed ones."""
    lines: list[str] = []
    for _ in range(draw(st.integers(0, 3))):
        lines += draw(st.lists(st.one_of(code_line, comment_line), max_size=3))
        lines += draw(block_lines())
    lines += draw(st.lists(st.one_of(code_line, comment_line), max_size=3))
    if draw(st.booleans()):
        ending = draw(LINE_ENDINGS)
        endings = [ending] * len(lines)
    else:
        endings = draw(st.lists(LINE_ENDINGS, min_size=len(lines), max_size=len(lines)))
    bom = draw(st.sampled_from(["", "\ufeff"]))
    return bom + "".join(line + end for line, end in zip(lines, endings, strict=True))


@FUZZ
@given(layouts())
@example("# /// script\n# a = 1\n# ///\n# Prints a table\nimport rich\n")
@example("# /// script\r\n# a = 1\r\n# ///\r\n# ///\r\n# b\r\n")
@example("# /// script\n# a = 1\n# ///\n# /// script\n# b = 2\nx\n")
def test_layouts_scanner_and_parser_agree_with_the_specification(text: str) -> None:
    lines = warmpath.split_lines(text.removeprefix("\ufeff"))
    got = [
        (kind, warmpath.block_content(lines, start, end), start)
        for kind, start, end in warmpath.find_blocks(lines)
    ]
    assert got == reference_blocks(text)
    result = parse_or_error(text)
    expected = reference_script(text)
    if isinstance(result, ScriptMetadata):
        assert result.block == expected
        assert result.unclosed == reference_unclosed(text, "script")
    else:
        assert expected is not None


requirement_names = st.lists(
    st.sampled_from(["alpha", "beta", "Gamma_x", "delta.e", "zeta"]), unique=True, max_size=3
)


@st.composite
def editable_scripts(draw: st.DrawFn) -> tuple[bytes, list[str]]:
    """A script with one closed `script` block in runner's own one-line style, followed by
    comments and other blocks as people write them; returns (bytes, its dependencies)."""
    deps = draw(requirement_names)
    block = ["# /// script"]
    if draw(st.booleans()):
        block.append('# requires-python = ">=3.8"')
    block += ["# dependencies = [" + ", ".join(f'"{d}"' for d in deps) + "]", "# ///"]
    before = draw(st.lists(st.sampled_from(["import os", "", "# note"]), max_size=2))
    if before and before[-1].startswith("#"):
        before.append("")  # a comment right above would not change the block, but keep it plain
    after = draw(st.lists(st.sampled_from(["# Prints a table", "#", "# see below"]), max_size=2))
    other = draw(
        st.sampled_from([[], ["", "# /// other", "# x = 1", "# ///"], ["", "# /// script-x"]])
    )
    tail = ["import sys", *other, ""]
    ending = draw(LINE_ENDINGS)
    text = ending.join([*before, *block, *after, *tail])
    return (draw(st.sampled_from(["", "\ufeff"])) + text).encode(), deps


@FUZZ
@given(editable_scripts(), st.sampled_from(["omega", "alpha>=2", "new-pkg[x]"]))
def test_add_then_remove_edits_the_one_block_and_round_trips(
    script: tuple[bytes, list[str]], requirement: str
) -> None:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    from runner import edit

    data, deps = script
    name = Requirement(requirement).name
    added = edit.add_requirements(data, [requirement])
    meta = parse(decode_source(added, "s.py"), "s.py")
    keys = [canonicalize_name(Requirement(d).name) for d in meta.dependencies]
    assert canonicalize_name(name) in keys
    assert len(keys) == len(set(keys))
    # Exactly one block, the same one: nothing was prepended.
    lines = warmpath.split_lines(decode_source(added, "s.py").removeprefix("\ufeff"))
    starts = [b[1] + 1 for b in warmpath.find_blocks(lines) if b[0] == "script"]
    assert starts == [meta.block_line]
    assert len([line for line in lines if line == "# /// script"]) == 1
    removed = edit.remove_requirements(added, [name])
    after = parse(decode_source(removed, "s.py"), "s.py")
    expected = [d for d in deps if canonicalize_name(d) != canonicalize_name(name)]
    assert list(after.dependencies) == expected
    if canonicalize_name(name) not in {canonicalize_name(d) for d in deps}:
        assert removed == data  # byte for byte


@FUZZ
@given(layouts())
def test_edits_never_add_a_second_block_or_skip_an_unclosed_one(text: str) -> None:
    from runner import edit

    data = text.encode()
    try:
        before = parse(text, "s.py")
    except MetadataError:
        return
    try:
        out = edit.add_requirements(data, ["omega"], "s.py")
    except MetadataError as exc:
        # Refused: the file has an unclosed block (named by its line), or one it cannot edit.
        assert exc.message.startswith("s.py:"), exc.message
        return
    assert before.unclosed == () or before.block is not None
    after = parse(decode_source(out, "s.py"), "s.py")
    assert "omega" in after.dependencies
    assert list(after.dependencies)[:-1] == list(before.dependencies)
