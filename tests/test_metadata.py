"""Table-driven tests of the `# /// script` block: scanning, decoding and validation.

The reference is the text of the inline script metadata specification (packaging.python.org,
"Inline script metadata"); where its text and its reference regex differ, the text wins.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runner.errors import EXIT_METADATA, MetadataError, ScriptError
from runner.metadata import ScriptMetadata, decode_source, parse
from tests import warmpath
from tests.conftest import run_runner


def src(*lines: str, nl: str = "\n", final: bool = True) -> str:
    """Join source lines; `final` adds the line end after the last line."""
    return nl.join(lines) + (nl if final else "")


DEPS_A = '# dependencies = ["a"]'

# The specification's own example: embedded C# whose `/// <summary>` lines, and even a bare
# `# ///` line, sit inside the block because each is followed by a valid content line.
SPEC_EXAMPLE = src(
    "# /// script",
    '# embedded-csharp = """',
    "# /// <summary>",
    "# /// text",
    "# ///",
    "# /// </summary>",
    "# public class MyClass { }",
    '# """',
    "# ///",
)

# (id, source text, expected block content or None when the script has no block)
FOUND = [
    ("minimal", src("# /// script", DEPS_A, "# ///"), 'dependencies = ["a"]\n'),
    # The reference regex wants one content line at least: an empty block is no block.
    ("empty-block-is-no-block", src("# /// script", "# ///"), None),
    ("lone-hash-block", src("# /// script", "#", "# ///"), "\n"),
    (
        "no-final-newline",
        src("# /// script", DEPS_A, "# ///", final=False),
        'dependencies = ["a"]\n',
    ),
    (
        "lone-hash-lines",
        src("# /// script", "#", DEPS_A, "#", "# ///"),
        '\ndependencies = ["a"]\n\n',
    ),
    (
        "spec-example-embedded-csharp",
        SPEC_EXAMPLE,
        'embedded-csharp = """\n/// <summary>\n/// text\n///\n/// </summary>\n'
        'public class MyClass { }\n"""\n',
    ),
    # As the specification's regex reads it: the block ends at the last `# ///` line of the
    # run of comment lines, so ordinary comments may follow the closer.
    (
        "closer-then-comment",
        src("# /// script", DEPS_A, "# ///", "# Says hi."),
        'dependencies = ["a"]\n',
    ),
    ("closer-then-lone-hash", src("# /// script", DEPS_A, "# ///", "#"), 'dependencies = ["a"]\n'),
    (
        "closer-then-blank",
        src("# /// script", DEPS_A, "# ///", "", "# Says hi."),
        'dependencies = ["a"]\n',
    ),
    (
        "closer-then-code",
        src("# /// script", DEPS_A, "# ///", "print(1)"),
        'dependencies = ["a"]\n',
    ),
    ("unclosed-at-eof", src("# /// script", DEPS_A), None),
    ("opener-only", src("# /// script", final=False), None),
    ("unclosed-run-then-code", src("# /// script", DEPS_A, "import a", "# ///"), None),
    ("opener-trailing-space", src("# /// script ", DEPS_A, "# ///"), None),
    ("opener-trailing-tab", src("# /// script\t", DEPS_A, "# ///"), None),
    ("closer-trailing-space", src("# /// script", DEPS_A, "# /// "), None),
    ("opener-no-space-after-hash", src("#/// script", DEPS_A, "# ///"), None),
    ("opener-two-spaces", src("#  /// script", DEPS_A, "# ///"), None),
    ("opener-no-space-before-type", src("# ///script", DEPS_A, "# ///"), None),
    ("opener-double-hash", src("## /// script", DEPS_A, "# ///"), None),
    ("closer-no-space", src("# /// script", DEPS_A, "#///"), None),
    ("opener-tab-after-hash", src("#\t/// script", DEPS_A, "# ///"), None),
    (
        "content-tab-after-hash-breaks-run",
        src("# /// script", "#\tdependencies = []", "# ///"),
        None,
    ),
    ("content-no-space-breaks-run", src("# /// script", '#dependencies = ["a"]', "# ///"), None),
    ("indented-opener-not-top-level", src("    # /// script", "    " + DEPS_A, "    # ///"), None),
    ("type-is-case-sensitive", src("# /// Script", DEPS_A, "# ///"), None),
    ("type-non-ascii-letter", src("# /// scrípt", DEPS_A, "# ///"), None),
    ("type-with-dot-not-an-opener", src("# /// script.v2", DEPS_A, "# ///"), None),
    (
        "block-not-at-top",
        src(
            "#!/usr/bin/env python3", "import sys", "", "# /// script", DEPS_A, "# ///", "print(1)"
        ),
        'dependencies = ["a"]\n',
    ),
    # The specification does not special-case strings: the scanner is line based, so a
    # block inside a docstring is read like any other (uv and pipx do the same).
    (
        "inside-docstring-is-read",
        src('"""Doc.', "", "# /// script", DEPS_A, "# ///", '"""'),
        'dependencies = ["a"]\n',
    ),
    (
        "other-type-before",
        src("# /// pyproject", "# [project]", "# ///", "", "# /// script", DEPS_A, "# ///"),
        'dependencies = ["a"]\n',
    ),
    (
        "other-type-after",
        src("# /// script", DEPS_A, "# ///", "", "# /// my-tool", "# x = 1", "# ///"),
        'dependencies = ["a"]\n',
    ),
    ("only-other-type", src("# /// pyproject", DEPS_A, "# ///"), None),
    # A `# /// script` line inside another block is that block's content, not an opener
    # (the spec says a start line MUST NOT appear there and tools MAY error; we ignore it).
    (
        "script-nested-in-other-block",
        src("# /// pyproject", "# /// script", DEPS_A, "# ///"),
        None,
    ),
    # An unclosed block does not hide a later valid one.
    (
        "unclosed-then-valid",
        src("# /// script", "# a = 1", "print(1)", "# /// script", DEPS_A, "# ///"),
        'dependencies = ["a"]\n',
    ),
    (
        "unclosed-other-type-then-script",
        src("# /// x", "code()", "# /// script", DEPS_A, "# ///"),
        'dependencies = ["a"]\n',
    ),
    ("crlf", src("# /// script", DEPS_A, "# ///", nl="\r\n"), 'dependencies = ["a"]\n'),
    ("lone-cr", src("# /// script", DEPS_A, "# ///", nl="\r"), 'dependencies = ["a"]\n'),
    ("mixed-endings", "# /// script\r\n" + DEPS_A + "\r# ///\n", 'dependencies = ["a"]\n'),
    (
        "crlf-after-closer-comment",
        src("# /// script", DEPS_A, "# ///", "# x", nl="\r\n"),
        'dependencies = ["a"]\n',
    ),
    ("bom-in-text", "\ufeff" + src("# /// script", DEPS_A, "# ///"), 'dependencies = ["a"]\n'),
    # Only \r\n, \r and \n end lines (as in Python's tokenizer), not \f, \v or U+2028.
    ("form-feed-is-not-a-line-end", src("# /// script", DEPS_A + "\f# ///"), None),
    ("u2028-is-not-a-line-end", src("# /// script", DEPS_A, "# ///\u2028"), None),
    ("no-block", src("print('hello')"), None),
    ("empty-file", "", None),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in FOUND], ids=[c[0] for c in FOUND])
def test_block_found(text: str, expected: str | None) -> None:
    meta = parse(text)
    assert meta.block == expected
    # The fast path's scanner must agree on every case (it hashes this exact text).
    found = warmpath.script_block(text)
    assert (found[0] if found else None) == expected  # type: ignore[index]
    if expected is None:
        assert meta == ScriptMetadata(unclosed=meta.unclosed)
        # Only a `# /// script` line that opens nothing is reported (and named by its line).
        lines = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
        assert all(lines.split("\n")[n - 1] == "# /// script" for n in meta.unclosed)


def test_block_line_and_fields() -> None:
    text = src(
        "import os",
        "# /// script",
        '# requires-python = ">=3.8"',
        '# dependencies = ["Requests>=2", "rich[jupyter]; python_version >= \'3.8\'"]',
        "# unknown-key = 1",
        "# [tool.runner]",
        '# index-url = "https://example.invalid/simple"',
        "# [tool.other]",
        "# x = [1, 2]",
        "# ///",
    )
    meta = parse(text)
    assert meta.block_line == 2
    assert meta.requires_python == ">=3.8"
    assert meta.dependencies == ("Requests>=2", "rich[jupyter]; python_version >= '3.8'")
    assert meta.tool == {
        "runner": {"index-url": "https://example.invalid/simple"},
        "other": {"x": [1, 2]},
    }
    assert meta.runner_settings == {"index-url": "https://example.invalid/simple"}


# (id, lines, expected (type, opener index, closer index) triples) for the scanner itself
SCANNED = [
    ("closer-trailing-space-is-content", ["# /// script", "# /// ", "# ///"], [("script", 0, 2)]),
    ("bare-closer-inside-is-content", ["# /// a", "# ///", "# x", "# ///", ""], [("a", 0, 3)]),
    (
        "two-types",
        ["# /// a", "#", "# ///", "", "# /// b-2", "#", "# ///"],
        [("a", 0, 2), ("b-2", 4, 6)],
    ),
    ("closer-alone-is-not-a-block", ["# ///", "# ///"], []),
    ("opener-as-closer-of-nothing", ["# /// a", "x", "# ///"], []),
    # Openers inside an unclosed run can never close either: their run ends at the same line.
    ("many-unclosed-openers", ["# /// a"] * 5 + ["x"], []),
    (
        "unclosed-run-then-block",
        ["# /// a", "# /// b", "x", "# /// c", "#", "# ///"],
        [("c", 3, 5)],
    ),
    ("closer-right-after-opener-is-no-block", ["# /// a", "# ///", "x"], []),
    ("comment-after-closer", ["# /// a", "# x", "# ///", "# y", "z"], [("a", 0, 2)]),
    (
        "last-closer-of-the-run",
        ["# /// a", "# x", "# ///", "# y", "# ///", "# z", "w"],
        [("a", 0, 4)],
    ),
]


@pytest.mark.parametrize(("lines", "blocks"), [c[1:] for c in SCANNED], ids=[c[0] for c in SCANNED])
def test_scanner(lines: list[str], blocks: list[tuple[str, int, int]]) -> None:
    assert warmpath.find_blocks(lines) == blocks


@pytest.mark.timeout(20)
def test_scanner_is_linear_on_many_unclosed_openers() -> None:
    # 100k opener lines with no closer: a scan that rescans each run takes minutes.
    lines = ["# /// a"] * 100_000
    assert warmpath.find_blocks(lines) == []
    assert warmpath.find_blocks([*lines, "# ///"]) == [("a", 0, 100_000)]


def test_crlf_and_lf_parse_identically() -> None:
    lines = ("x = 1", "# /// script", '# requires-python = ">=3"', DEPS_A, "# ///")
    assert parse(src(*lines, nl="\r\n")) == parse(src(*lines)) == parse(src(*lines, nl="\r"))


# (id, source text, regex the MetadataError message must match)
ERRORS = [
    (
        "two-script-blocks",
        src("# /// script", DEPS_A, "# ///", "", "x = 1", "# /// script", "#", "# ///"),
        r"^s\.py: more than one '# /// script' block \(lines 1, 6\)$",
    ),
    (
        "two-script-blocks-around-other",
        src(
            "# /// script",
            "#",
            "# ///",
            "# /// pyproject",
            "#",
            "# ///",
            "",
            "# /// script",
            "#",
            "# ///",
        ),
        # The run goes on to its last `# ///`: lines 1-6 are one block, line 8 opens another.
        r"lines 1, 8\)",
    ),
    # Two blocks with no blank line between them form one run: the first `# ///` is
    # followed by a content line, so it is content (`///`), which is not TOML.
    (
        "adjacent-blocks-are-one-run",
        src("# /// script", DEPS_A, "# ///", "# /// pyproject", "# x = 1", "# ///"),
        r"^s\.py:3: invalid TOML",
    ),
    # tomllib counts from the first content line: file line = opener line + N.
    (
        "toml-error-line-in-file",
        src("import os", "", "# /// script", "# a = 1", "# b = = 2", "# ///"),
        r"^s\.py:5: invalid TOML in the script metadata block: .*\(at line 5, column 7\)",
    ),
    (
        "toml-error-first-content-line",
        src("# /// script", "# a = ", "# ///"),
        r"^s\.py:2: invalid TOML .*\(at line 2, ",
    ),
    (
        "toml-error-crlf",
        src("#!/usr/bin/env python", "# /// script", "# a = 1", "# a = 2", "# ///", nl="\r\n"),
        r"^s\.py:4: invalid TOML",
    ),
    (
        "toml-error-after-lone-hash",
        src("# /// script", "#", "#", "# [tool", "# ///"),
        r"^s\.py:4: invalid TOML",
    ),
    (
        "toml-error-at-end-of-block",
        src("x", "# /// script", "# dependencies = [", "#", "# ///"),
        r"^s\.py:4: invalid TOML .*end of the block",
    ),
    (
        "toml-control-character",
        src("# /// script", '# a = "\x01"', "# ///"),
        r"^s\.py:2: invalid TOML",
    ),
    (
        "toml-integer-too-long",
        src("# /// script", "# a = " + "1" * 5000, "# ///"),
        r"^s\.py:1: cannot read the script metadata block: Exceeds the limit",
    ),
    (
        "toml-nested-too-deeply",
        src("# /// script", "# a = " + "[" * 5000, "# ///"),
        r"^s\.py:1: cannot read the script metadata block: values nested too deeply",
    ),
    (
        "dependencies-not-a-list",
        src("# /// script", '# requires-python = ">=3"', '# dependencies = "requests"', "# ///"),
        r"^s\.py:3: 'dependencies' must be a list of requirement strings, not str$",
    ),
    (
        "dependencies-table",
        src("# /// script", "# [dependencies]", "# a = 1", "# ///"),
        r"^s\.py:2: 'dependencies' must be a list .* not dict$",
    ),
    (
        "dependencies-invalid-entries-each-named",
        src(
            "# /// script",
            "# dependencies = [",
            '#   "requests",',
            '#   "not a requirement!",',
            '#   "rich>=13",',
            '#   "bad ~= 1",',
            "#   \"ok[extra]; python_version < '4'\",",
            "# ]",
            "# ///",
        ),
        r"^s\.py:2: invalid dependencies: 'not a requirement!': .*; 'bad ~= 1': ",
    ),
    (
        "dependencies-non-string-entry",
        src("# /// script", '# dependencies = ["a", 1, {b = 2}]', "# ///"),
        r"^s\.py:2: invalid dependencies: 1 is not a string; \{'b': 2\} is not a string$",
    ),
    (
        # packaging 26.0 raises InvalidSpecifier, not InvalidRequirement, for this one
        "dependencies-arbitrary-equality-then-bad-version",
        src("# /// script", '# dependencies = ["x===0,==1.0.*.1"]', "# ///"),
        r"^s\.py:2: invalid dependencies: 'x===0,==1\.0\.\*\.1': ",
    ),
    (
        "dependencies-bad-marker",
        src("# /// script", '# dependencies = ["a; nonsense == 1"]', "# ///"),
        r"invalid dependencies: 'a; nonsense == 1'",
    ),
    (
        "requires-python-invalid",
        src("# /// script", '# requires-python = ">=3.x"', "# ///"),
        r"^s\.py:2: 'requires-python' is not a valid version specifier: '>=3\.x'$",
    ),
    (
        "requires-python-bare-version",
        src("# /// script", '# requires-python = "3.11"', "# ///"),
        r"not a valid version specifier: '3\.11'",
    ),
    (
        "requires-python-not-a-string",
        src("# /// script", "# requires-python = 3.11", "# ///"),
        r"^s\.py:2: 'requires-python' must be a string, not float$",
    ),
    (
        "requires-python-version-too-long",
        src("# /// script", '# requires-python = ">=3.' + "1" * 5000 + '"', "# ///"),
        r"'requires-python' is not a valid version specifier",
    ),
    (
        "tool-not-a-table",
        src("# /// script", "# tool = 1", "# ///"),
        r"^s\.py:2: 'tool' must be a table$",
    ),
]


@pytest.mark.parametrize(("text", "pattern"), [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_metadata_errors(text: str, pattern: str) -> None:
    with pytest.raises(MetadataError) as info:
        parse(text, "s.py")
    assert re.search(pattern, info.value.message, re.DOTALL), info.value.message
    assert info.value.hint
    assert info.value.exit_code == EXIT_METADATA


def test_valid_entries_are_not_named_among_invalid_ones() -> None:
    text = src("# /// script", '# dependencies = ["requests", "bad ~= 1"]', "# ///")
    with pytest.raises(MetadataError) as info:
        parse(text, "s.py")
    assert "'bad ~= 1'" in info.value.message
    assert "requests" not in info.value.message


def test_two_blocks_also_refused_by_fast_path() -> None:
    text = src("# /// script", "#", "# ///", "", "# /// script", "#", "# ///")
    assert warmpath.script_block(text) is False


# ---------------------------------------------------------------------------- decoding

LATIN1_SCRIPT = (
    "#!/usr/bin/env python3\n"
    "# -*- coding: latin-1 -*-\n"
    "# Café, naïve, façade\n"
    "# /// script\n"
    "# [tool.runner]\n"
    '# note = "déjà vu"\n'
    "# ///\n"
    "print('é')\n"
)

# (id, file bytes, expected decoded text)
DECODED = [
    ("utf8", "x = 'é'\n".encode(), "x = 'é'\n"),
    ("bom-dropped", b"\xef\xbb\xbf# /// script\n# ///\n", "# /// script\n# ///\n"),
    ("latin1-declared-line2", LATIN1_SCRIPT.encode("latin-1"), LATIN1_SCRIPT),
    (
        "latin1-declared-line1",
        "# coding=latin-1\n# é\n".encode("latin-1"),
        "# coding=latin-1\n# é\n",
    ),
    ("utf8-declared", "# coding: utf-8\nx = 'é'\n".encode(), "# coding: utf-8\nx = 'é'\n"),
    ("crlf-kept-for-the-scanner", b"# a\r\n# b\r\n", "# a\r\n# b\r\n"),
    ("empty", b"", ""),
]


@pytest.mark.parametrize(("data", "text"), [c[1:] for c in DECODED], ids=[c[0] for c in DECODED])
def test_decode_source(data: bytes, text: str) -> None:
    assert decode_source(data, "s.py") == text


def test_latin1_declared_block_is_read() -> None:
    meta = parse(decode_source(LATIN1_SCRIPT.encode("latin-1"), "s.py"), "s.py")
    assert meta.block_line == 4
    assert meta.tool == {"runner": {"note": "déjà vu"}}


def test_bom_file_block_found_by_both_paths() -> None:
    data = b"\xef\xbb\xbf# /// script\n" + DEPS_A.encode() + b"\n# ///\n"
    assert parse(decode_source(data, "s.py")).dependencies == ("a",)
    assert warmpath.digest_for_bytes(data, [], None, "/d") == warmpath.selection_digest(
        'dependencies = ["a"]\n', [], None, "/d"
    )


# (id, file bytes, regex the ScriptError message must match)
UNDECODABLE = [
    (
        "bad-byte-line-1",
        b"x = '\xff'\n",
        r"^s\.py: cannot decode the file as utf-8 \(line 1, byte offset 5\)$",
    ),
    ("bad-byte-line-2", b"# hi\nx = '\xff'\n", r"\(line 2, byte offset 10\)$"),
    (
        "bad-byte-line-5",
        b"a\nb\nc\nd\n\xc3\x28\n",
        r"^s\.py: cannot decode the file as utf-8 \(line 5, ",
    ),
    ("bad-byte-after-crlf", b"a\r\nb\r\n\xff", r"\(line 3, byte offset 6\)$"),
    ("bad-byte-after-lone-cr", b"a\rb\rc\r\xff", r"\(line 4, byte offset 6\)$"),
    ("truncated-sequence-at-eof", b"x = 1\n# \xe2\x82", r"\(line 2, byte offset 8\)$"),
    (
        "cookie-on-line-3-ignored",
        b"a\nb\n# coding: latin-1\n\xe9\n",
        r"cannot decode the file as utf-8 \(line 4,",
    ),
    (
        "latin1-cookie-bad-ascii-codec",
        b"# coding: ascii\nx = '\xe9'\n",
        r"cannot decode the file as ascii \(line 2,",
    ),
    (
        "codec-raising-unicode-error",
        b"# coding: undefined\nx = 1\n",
        r"^s\.py: cannot decode the file as undefined$",
    ),
    (
        "punycode-declared",
        b"# coding: punycode\nx = 1\n",
        r"^s\.py: cannot decode the file as punycode$",
    ),
    ("not-a-text-codec", b"# coding: rot13\nx = 1\n", r"^s\.py: cannot decode the file as rot13$"),
    (
        "unknown-encoding",
        b"# -*- coding: no-such-codec -*-\n",
        r"^s\.py: unknown encoding: no-such-codec$",
    ),
    ("bom-with-latin1-cookie", b"\xef\xbb\xbf# coding: latin-1\n", r"^s\.py: encoding problem"),
]


@pytest.mark.parametrize(
    ("data", "pattern"), [c[1:] for c in UNDECODABLE], ids=[c[0] for c in UNDECODABLE]
)
def test_undecodable(data: bytes, pattern: str) -> None:
    with pytest.raises(ScriptError) as info:
        decode_source(data, "s.py")
    assert re.search(pattern, info.value.message), info.value.message
    assert info.value.hint


# ---------------------------------------------------------------------------- real process


@pytest.mark.timeout(60)
def test_invalid_metadata_never_runs_the_script(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    script = tmp_path / "bad.py"
    script.write_text(
        src(
            "import pathlib",
            "# /// script",
            '# dependencies = ["alpha"]',
            '# requires-python = ">=3" oops',
            "# ///",
            f"pathlib.Path({str(marker)!r}).write_text('ran')",
        )
    )
    result = run_runner("run", str(script), cwd=tmp_path)
    assert result.returncode == EXIT_METADATA, result.stderr
    assert f"{script}:4:" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert not marker.exists()
    # Nothing was built for it either.
    assert not (tmp_path / "cache" / "store").exists() or not any(
        (tmp_path / "cache" / "store").iterdir()
    )


_LINES = [
    b"",
    b"#!/usr/bin/env python3",
    b"# -*- coding: latin-1 -*-",
    b"# vim: set fileencoding=utf-8 :",
    b"# coding=ascii",
    b"# coding: no-such-codec",
    b"print('caf\xc3\xa9')",
    b"print('caf\xe9')",
    b"# a comment about decoding",
    b"\xef\xbb\xbf# with a BOM",
    b"x = 1\r",
]


def test_encoding_is_what_tokenize_says() -> None:
    """The cheap answer for the usual script is tokenize.detect_encoding's, errors included,
    on every three-line arrangement of lines that matter to it."""
    import io
    import itertools
    import tokenize

    from runner.metadata import _encoding

    for lines in itertools.product(_LINES, repeat=3):
        data = b"\n".join(lines)
        try:
            expected: str | type[SyntaxError] = tokenize.detect_encoding(io.BytesIO(data).readline)[
                0
            ]
        except SyntaxError:
            expected = SyntaxError
        try:
            got: str | type[SyntaxError] = _encoding(data)
        except SyntaxError:
            got = SyntaxError
        assert got == expected, data
