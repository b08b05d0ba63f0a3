"""Requirements in their everyday form, read without `packaging`.

Most scripts depend on `name`, `name[extra]` or `name>=1.2,<2`. Reading those here keeps
`packaging.requirements` (about 25 ms of imports: its tokenizer's regexes, markers, tags,
logging, dataclasses) off a cold run's path before the installer starts; the build imports
it while the installer runs, to check the result. A string in any other form (a marker, a
URL, a pre-release, local or epoch version, `===`, parentheses, one operator twice) gives
None here and the caller asks `packaging`, which also words the errors.

Whatever this accepts, `packaging` accepts with the same name, extras and specifiers
(`str(Specifier)` is operator + version as written): tests/test_simplereq.py compares the
two on generated strings. Names and extras are returned canonical (PEP 503).
"""

from __future__ import annotations

import re

from runner.values import dataclass

_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
# The name, extras (checked one by one), and the rest: specifiers, checked one by one.
# Small expressions: compiling them is part of every cold run.
_SHAPE = rf"[ \t]*({_NAME})[ \t]*(?:\[([^\]]*)\])?([^\[\]]*)"
_SPEC = r"(==|!=|<=|>=|~=|<|>)[ \t]*([0-9]+(?:\.[0-9]+)*)(\.\*)?"
_compiled: dict[str, re.Pattern[str]] = {}


def _regex(pattern: str) -> re.Pattern[str]:
    found = _compiled.get(pattern)
    if found is None:  # compiled on first use: a warm run never reads a requirement
        found = _compiled[pattern] = re.compile(pattern)
    return found


def canonical_name(name: str) -> str:
    """PEP 503's normalized form, as `packaging.utils.canonicalize_name` gives it."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class SimpleRequirement:
    name: str  # canonical
    extras: frozenset[str]  # canonical
    specifiers: frozenset[str]  # operator + version, e.g. ">=1.2"


def parse(text: str) -> SimpleRequirement | None:
    """`text` read as a requirement of the everyday form; None if it is in another form
    (which may still be valid: ask `packaging`)."""
    shape = _regex(_SHAPE).fullmatch(text)
    if shape is None:
        return None
    name, extras_text, rest = shape.groups()
    names = _regex(_NAME)
    extras = set()
    if extras_text is not None:
        for extra in extras_text.split(","):
            extra = extra.strip(" \t")
            if not names.fullmatch(extra):
                return None  # `[]`, `[a,]`... : packaging's to judge
            extras.add(canonical_name(extra))
    specifiers = set()
    operators: list[str] = []
    rest = rest.strip(" \t")
    for piece in rest.split(",") if rest else ():
        spec = _regex(_SPEC).fullmatch(piece.strip(" \t"))
        if spec is None:
            return None
        operator, release, wildcard = spec.groups()
        if wildcard and operator not in ("==", "!="):
            return None  # `>=1.*` is invalid
        if operator == "~=" and "." not in release:
            return None  # `~=1` is invalid
        if operator in operators:
            # `==1.0,==1.00`: equal versions written two ways, which packaging 26.0 merges
            # into one specifier and 26.4 keeps as two (only specifiers with the same
            # operator can be equal).
            return None
        operators.append(operator)
        specifiers.add(operator + release + (wildcard or ""))
    return SimpleRequirement(canonical_name(name), frozenset(extras), frozenset(specifiers))
