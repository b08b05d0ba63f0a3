"""Requirements in their everyday form, read without `packaging`.

Most scripts depend on `name`, `name[extra]` or `name>=1.2,<2`. Reading those here keeps
`packaging.requirements` (about 25 ms of imports: its tokenizer's regexes, markers, tags,
logging, dataclasses) off a cold run's path before the installer starts; the build imports
it while the installer runs, to check the result. A string in any other form (a marker, a
URL, a pre-release, local or epoch version, `===`, parentheses) gives None here and the
caller asks `packaging`, which also words the errors.

Whatever this accepts, `packaging` accepts with the same name, extras and specifiers
(`str(Specifier)` is operator + version as written): tests/test_simplereq.py compares the
two on generated strings. Names and extras are returned canonical (PEP 503).
"""

from __future__ import annotations

import re

from runner.values import dataclass

_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_RELEASE = r"[0-9]+(?:\.[0-9]+)*"
# `.*` only after == and != (packaging refuses it elsewhere); ~= needs two release parts.
_ONE_SPEC = (
    rf"(?:(?:==|!=)[ \t]*{_RELEASE}(?:\.\*)?"
    rf"|(?:<=|>=|<|>)[ \t]*{_RELEASE}"
    rf"|~=[ \t]*[0-9]+(?:\.[0-9]+)+)"
)
_PATTERN = (
    rf"[ \t]*(?P<name>{_NAME})[ \t]*"
    rf"(?:\[[ \t]*(?P<extras>{_NAME}(?:[ \t]*,[ \t]*{_NAME})*)[ \t]*\][ \t]*)?"
    rf"(?P<specs>{_ONE_SPEC}(?:[ \t]*,[ \t]*{_ONE_SPEC})*)?[ \t]*"
)
_SPEC = r"(==|!=|<=|>=|~=|<|>)[ \t]*([0-9.*]+)"
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
    match = _regex(_PATTERN).fullmatch(text)
    if match is None:
        return None
    extras = match.group("extras")
    specs = match.group("specs")
    return SimpleRequirement(
        name=canonical_name(match.group("name")),
        extras=frozenset(canonical_name(e.strip()) for e in extras.split(","))
        if extras
        else frozenset(),
        specifiers=frozenset(op + version for op, version in _regex(_SPEC).findall(specs))
        if specs
        else frozenset(),
    )
