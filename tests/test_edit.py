"""runner.edit: block edits keep every other byte, and the result parses to what was intended."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner import edit
from runner.errors import MetadataError, UsageError
from runner.metadata import ScriptMetadata, decode_source, parse

BOM = b"\xef\xbb\xbf"


def meta(data: bytes) -> ScriptMetadata:
    return parse(decode_source(data, "t.py"), "t.py")


def lines(data: bytes) -> list[bytes]:
    """Lines with their own endings."""
    return re.findall(rb"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$", data)


def changed_region(before: bytes, after: bytes) -> tuple[int, int, int]:
    """(common prefix lines, common suffix lines, total lines before) of two files."""
    a, b = lines(before), lines(after)
    head = 0
    while head < min(len(a), len(b)) and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < min(len(a), len(b)) - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    return head, tail, len(a)


def assert_only_block_changed(before: bytes, after: bytes) -> None:
    """Every line outside the metadata block is byte-for-byte the same."""
    head, tail, total = changed_region(before, after)
    opener = next(
        (
            i
            for i, line in enumerate(lines(after))
            if line.removeprefix(BOM).startswith(b"# /// script")
        ),
        None,
    )
    assert opener is not None
    closer = next(
        i for i, line in enumerate(lines(after)) if i > opener and line.rstrip(b"\r\n") == b"# ///"
    )
    after_lines = lines(after)
    # Lines that differ all lie between the block's opener and closer (inclusive).
    assert head >= min(opener, total), (before, after)
    assert len(after_lines) - tail <= closer + 1, (before, after)


ONE_LINE = (
    b"# /// script\n"
    b'# requires-python = ">=3.11"\n'
    b'# dependencies = ["alpha", "beta>=1"]\n'
    b"# ///\n"
    b"print(1)\n"
)
MULTI = (
    b"#!/usr/bin/env -S runner run\n"
    b"# /// script\n"
    b"# requires-python = '>=3.10'  # keep quotes\n"
    b"# dependencies = [\n"
    b"#     # the core\n"
    b'#     "alpha>=1.0",  # why alpha\n'
    b"#\n"
    b'#     "beta",\n'
    b"# ]\n"
    b"#\n"
    b"# [tool.runner]\n"
    b'# index-url = "https://example.invalid/simple"\n'
    b"# ///\n"
    b"import alpha\n"
)
CRLF = (
    BOM
    + b'# /// script\r\n# dependencies = ["alpha"]  # trailing\r\n# ///\r\nprint("\xc3\xa9")\r\n'
)
LATIN1 = (
    b'#!/usr/bin/env python3\n# -*- coding: latin-1 -*-\n# caf\xe9 comment\nprint("\xe9t\xe9")\n'
)


@pytest.mark.parametrize(
    "data",
    [ONE_LINE, MULTI, CRLF, MULTI.replace(b"\n", b"\r\n"), ONE_LINE.replace(b"\n", b"\r")],
    ids=["one-line", "multi-line", "crlf-bom", "multi-crlf", "cr"],
)
def test_add_replace_remove_keep_everything_else(data: bytes) -> None:
    before = list(meta(data).dependencies)
    added = edit.add_requirements(data, ["gamma>=2", "ALPHA<3"], "t.py")
    expected = [("ALPHA<3" if d.startswith("alpha") else d) for d in before] + ["gamma>=2"]
    assert list(meta(added).dependencies) == expected
    assert meta(added).tool == meta(data).tool
    assert meta(added).requires_python == meta(data).requires_python
    assert_only_block_changed(data, added)
    removed = edit.remove_requirements(added, ["Gamma"], "t.py")
    assert list(meta(removed).dependencies) == expected[:-1]
    assert_only_block_changed(data, removed)
    # Line endings: no new style appears.
    for sep in (b"\r\n", b"\r", b"\n"):
        if sep not in data.replace(b"\r\n", b"") and sep != b"\r\n":
            assert sep not in removed.replace(b"\r\n", b"")
    assert removed.startswith(BOM) == data.startswith(BOM)


def test_multi_line_style_and_comments_survive() -> None:
    out = edit.add_requirements(MULTI, ["gamma"], "t.py")
    text = out.decode()
    assert '#     "beta",\n#     "gamma",\n# ]\n' in text
    assert "#     # the core\n" in text and "# why alpha" in text
    assert "# requires-python = '>=3.10'  # keep quotes\n" in text
    out = edit.remove_requirements(out, ["alpha"], "t.py")
    assert "alpha" not in out.decode().split("# ]")[0].split("dependencies")[1]
    assert "why alpha" not in out.decode()  # the entry's own comment goes with it
    assert "#     # the core\n" in out.decode()
    assert list(meta(out).dependencies) == ["beta", "gamma"]


def test_one_line_style_stays_one_line_with_its_comment() -> None:
    out = edit.add_requirements(CRLF, ["beta"], "t.py")
    assert b'# dependencies = ["alpha", "beta"]  # trailing\r\n' in out
    assert out.endswith(b'print("\xc3\xa9")\r\n')


def test_round_trip_restores_the_original_bytes() -> None:
    assert (
        edit.remove_requirements(edit.add_requirements(ONE_LINE, ["gamma"]), ["gamma"]) == ONE_LINE
    )
    trailing = MULTI.replace(b'"beta",\n', b'"beta",\n')
    assert (
        edit.remove_requirements(edit.add_requirements(trailing, ["gamma"]), ["gamma"]) == trailing
    )


def test_no_block_goes_after_shebang_and_encoding_line_in_that_encoding() -> None:
    out = edit.add_requirements(LATIN1, ["alpha"], "t.py")
    assert out.startswith(b"#!/usr/bin/env python3\n# -*- coding: latin-1 -*-\n# /// script\n")
    assert out.endswith(b"# ///\n\n# caf\xe9 comment\n" + b'print("\xe9t\xe9")\n')
    assert list(meta(out).dependencies) == ["alpha"]
    assert meta(out).block_line == 3
    again = edit.add_requirements(out, ["beta"], "t.py")
    assert again.endswith(b"# ///\n\n# caf\xe9 comment\n" + b'print("\xe9t\xe9")\n')
    assert list(meta(again).dependencies) == ["alpha", "beta"]


@pytest.mark.parametrize(
    ("data", "prefix"),
    [
        (b"", b""),
        (b"print(1)", b""),
        (b"#!/usr/bin/env python3", b"#!/usr/bin/env python3\n"),
        (b"\r\n\r\nprint(1)\r\n", b""),
        (BOM + b'"""doc"""\n', BOM),
    ],
)
def test_no_block_edge_cases(data: bytes, prefix: bytes) -> None:
    out = edit.add_requirements(data, ["alpha"], "t.py")
    assert out.startswith(prefix + b"# /// script")
    assert list(meta(out).dependencies) == ["alpha"]
    body = data[len(prefix) :] if data.startswith(prefix) else data
    if prefix.startswith(b"#!"):
        body = data[len(prefix.rstrip(b"\n")) :]
    assert out.endswith(body)


def test_requires_python_set_and_replaced() -> None:
    out = edit.set_requires_python(MULTI, "3.12", "t.py")
    assert b'# requires-python = ">=3.12"  # keep quotes\n' in out
    assert meta(out).requires_python == ">=3.12"
    assert_only_block_changed(MULTI, out)
    no_key = b'# /// script\n# dependencies = ["alpha"]\n# ///\n'
    out = edit.set_requires_python(no_key, ">=3.10,<3.14", "t.py")
    assert meta(out).requires_python == ">=3.10,<3.14"
    assert list(meta(out).dependencies) == ["alpha"]
    with pytest.raises(UsageError, match="not a Python version"):
        edit.set_requires_python(no_key, "three", "t.py")


def test_adding_a_present_name_replaces_every_entry_of_it() -> None:
    data = (
        b"# /// script\n# dependencies = [\n"
        b'#   "alpha>1",\n#   "beta",\n#   "Alpha<3; python_version<\'4\'",\n'
        b"# ]\n# ///\n"
    )
    out = edit.add_requirements(data, ["alpha==2"], "t.py")
    assert list(meta(out).dependencies) == ["alpha==2", "beta"]


def test_errors_name_the_problem_and_change_nothing() -> None:
    with pytest.raises(UsageError, match="does not depend on nothere"):
        edit.remove_requirements(ONE_LINE, ["alpha", "nothere"], "t.py")
    with pytest.raises(UsageError, match="invalid requirement: 'not valid!!'"):
        edit.add_requirements(ONE_LINE, ["gamma", "not valid!!"], "t.py")


def test_a_layout_it_cannot_edit_is_refused_not_mangled() -> None:
    data = b'# /// script\n# dependencies = [\n#   "alpha"\n#   , "beta"]\n# ///\n'
    assert list(meta(data).dependencies) == ["alpha", "beta"]
    with pytest.raises(MetadataError, match="cannot edit"):
        edit.remove_requirements(data, ["alpha"], "t.py")


def test_markers_with_quotes_are_written_as_valid_toml() -> None:
    req = 'alpha; python_version < "3.14"'
    out = edit.add_requirements(ONE_LINE, [req], "t.py")
    assert list(meta(out).dependencies) == [req, "beta>=1"]


def test_new_script_is_valid() -> None:
    data = edit.new_script(requires_python="3.11", dependencies=["alpha", "beta>=1"], shebang=True)
    assert data.startswith(b"#!/usr/bin/env -S runner run\n# /// script\n")
    m = meta(data)
    assert m.requires_python == ">=3.11" and list(m.dependencies) == ["alpha", "beta>=1"]


NAMES = st.sampled_from(["alpha", "beta", "gamma", "delta", "Eps_Ilon", "zeta"])
OPS = st.lists(
    st.tuples(st.booleans(), NAMES, st.sampled_from(["", ">=1", "<3", "[x]"])), max_size=8
)


@settings(max_examples=150, deadline=None)
@given(
    start=st.lists(NAMES, unique_by=lambda n: n.lower().replace("_", "-"), max_size=4),
    ops=OPS,
    multi=st.booleans(),
    newline=st.sampled_from(["\n", "\r\n"]),
    trailing_comment=st.booleans(),
)
def test_any_sequence_of_edits_matches_a_model(
    start: list[str],
    ops: list[tuple[bool, str, str]],
    multi: bool,
    newline: str,
    trailing_comment: bool,
) -> None:
    from packaging.utils import canonicalize_name

    if multi:
        body = (
            ["dependencies = ["]
            + [f'    "{n}",' + ("  # c" if trailing_comment else "") for n in start]
            + ["]"]
        )
    else:
        body = [
            "dependencies = ["
            + ", ".join(f'"{n}"' for n in start)
            + "]"
            + ("  # c" if trailing_comment else "")
        ]
    text = newline.join(["# /// script", *("# " + b for b in body), "# ///", "import sys", ""])
    data = text.encode()
    model = list(start)
    for is_add, name, spec in ops:
        key = canonicalize_name(name)
        present = [
            i for i, d in enumerate(model) if canonicalize_name(re.split(r"[\[<>=]", d)[0]) == key
        ]
        if is_add:
            req = name + spec
            data = edit.add_requirements(data, [req], "t.py")
            if present:
                model[present[0]] = req
            else:
                model.append(req)
        elif present:
            data = edit.remove_requirements(data, [name], "t.py")
            model = [d for i, d in enumerate(model) if i not in present]
        else:
            with pytest.raises(UsageError):
                edit.remove_requirements(data, [name], "t.py")
        assert list(meta(data).dependencies) == model
        assert data.endswith(f"# ///{newline}import sys{newline}".encode())
        if newline == "\r\n":
            assert b"\n" not in data.replace(b"\r\n", b"")


def test_an_unclosed_block_is_refused_naming_its_line_not_prepended_to() -> None:
    data = b'#!/usr/bin/env python3\n# /// script\n# dependencies = ["alpha"]\nimport alpha\n'
    for change in (
        lambda: edit.add_requirements(data, ["beta"], "t.py"),
        lambda: edit.set_requires_python(data, "3.11", "t.py"),
    ):
        with pytest.raises(MetadataError, match=r"^t\.py:2: .*not closed") as info:
            change()
        assert "# ///" in (info.value.hint or "")
    with pytest.raises(UsageError, match="does not depend on alpha"):
        # The unclosed block is ignored (as the specification says): nothing to remove.
        edit.remove_requirements(data, ["alpha"], "t.py")


def test_a_block_followed_by_comments_is_the_one_edited() -> None:
    data = b'# /// script\n# dependencies = ["alpha"]\n# ///\n# Prints a table.\nimport alpha\n'
    out = edit.add_requirements(data, ["beta"], "t.py")
    assert out == data.replace(b'["alpha"]', b'["alpha", "beta"]')
    assert edit.remove_requirements(out, ["beta"], "t.py") == data
    assert edit.remove_requirements(data, ["alpha"], "t.py") == data.replace(b'["alpha"]', b"[]")


def test_characters_beyond_the_basic_plane_are_escaped_as_toml_requires() -> None:
    import tomllib

    for value in ["0 @ \U00012544", "a\x01\U0001f600\u2028b"]:
        assert tomllib.loads("v = " + edit.toml_string(value))["v"] == value
