"""The everyday-requirement reader agrees with packaging wherever it answers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier
from packaging.utils import canonicalize_name

from runner import simplereq
from runner.spec import normalize_requirements

_ws = st.sampled_from(["", " ", "  ", "\t"])
_name = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,6}[A-Za-z0-9])?", fullmatch=True)
_release = st.from_regex(r"[0-9]{1,3}(\.[0-9]{1,3}){0,3}", fullmatch=True)
_version = st.one_of(
    _release,
    st.from_regex(
        r"[0-9]{1,2}(\.[0-9]{1,2}){0,2}(\.\*|a1|rc2|\.post1|\.dev0|\+local|)", fullmatch=True
    ),
    st.sampled_from(["1!2.0", "1.0.*.1", "1..0", "", "x", "1.0-1", "1.*", "01.0"]),
)
_op = st.sampled_from(["==", "!=", "<=", ">=", "~=", "<", ">", "===", "=", "=>", "~"])


@st.composite
def _requirements(draw: st.DrawFn) -> str:
    text = draw(_ws) + draw(_name) + draw(_ws)
    if draw(st.booleans()):
        extras = draw(st.lists(_name, max_size=3))
        text += "[" + draw(_ws) + (draw(_ws) + "," + draw(_ws)).join(extras) + draw(_ws) + "]"
        text += draw(_ws)
    specs = draw(st.lists(st.tuples(_op, _ws, _version), max_size=3))
    if specs:
        sep = draw(st.sampled_from([",", " ,", ", ", ",,"]))
        text += sep.join(op + ws + v for op, ws, v in specs)
    text += draw(st.sampled_from(["", " ", "\t", "\n", " ; python_version>'3'", ",", "\u00a0"]))
    return text


@given(_requirements())
@settings(max_examples=3000, deadline=None)
def test_whatever_it_reads_packaging_reads_the_same(text: str) -> None:
    simple = simplereq.parse(text)
    if simple is None:
        return
    req = Requirement(text)  # must not raise
    assert simple.name == canonicalize_name(req.name)
    assert simple.extras == {canonicalize_name(e) for e in req.extras}
    assert simple.specifiers == {str(s) for s in req.specifier}
    assert req.marker is None and req.url is None


@given(st.lists(_requirements(), min_size=1, max_size=4))
@settings(max_examples=500, deadline=None)
def test_keys_are_what_packaging_alone_gives(texts: list[str]) -> None:
    valid = []
    for text in texts:
        try:  # (packaging 26.0 parses some invalid specifiers only when they are used)
            normalize_requirements([text], everyday=False)
        except (InvalidRequirement, InvalidSpecifier):
            continue
        valid.append(text)
    assert normalize_requirements(valid) == normalize_requirements(valid, everyday=False)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rich", ("rich", (), ())),
        ("requests<3", ("requests", (), ("<3",))),
        ("rich>=13.0,<14", ("rich", (), ("<14", ">=13.0"))),
        ("pandas[performance]==2.2.*", ("pandas", ("performance",), ("==2.2.*",))),
        ("Requests < 3", ("requests", (), ("<3",))),
        (
            "Foo_Bar.baz[Extra_One, two]>=1.0,!=1.1.*",
            ("foo-bar-baz", ("extra-one", "two"), ("!=1.1.*", ">=1.0")),
        ),
        ("numpy ~= 1.26", ("numpy", (), ("~=1.26",))),
    ],
)
def test_everyday_forms(text: str, expected: tuple[str, tuple[str, ...], tuple[str, ...]]) -> None:
    got = simplereq.parse(text)
    assert got is not None
    assert (got.name, tuple(sorted(got.extras)), tuple(sorted(got.specifiers))) == expected


@pytest.mark.parametrize(
    "text",
    [
        "pkg; python_version < '3.12'",  # a marker
        "pkg @ https://example.invalid/pkg-1.0-py3-none-any.whl",  # a URL
        "pkg>=1.0rc1",  # a pre-release
        "pkg==1.0+local",
        "pkg===1.0",
        "pkg (>=1.0)",
        "pkg>=1.*",  # invalid: packaging words the error
        "pkg~=1",  # invalid
        "-pkg",  # invalid
        "pkg\u00a0",
        "pkg==1.0,==1.00",  # one operator twice: packaging 26.0 merges, 26.4 keeps both
    ],
)
def test_other_forms_are_left_to_packaging(text: str) -> None:
    assert simplereq.parse(text) is None
