"""The environment spec: everything that decides what an environment contains, and its key."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from runner import simplereq
from runner.hashing import sha256_hex
from runner.interpreters import Interpreter
from runner.redact import redact_text, redact_url
from runner.values import dataclass, field

# Bump when the meaning of any key input changes; every existing environment then misses.
KEY_FORMAT = 1


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def normalize_requirements(
    requirements: Iterable[str], *, everyday: bool = True
) -> tuple[str, ...]:
    """Canonical requirement strings: names canonicalized, duplicates merged, sorted.

    Entries for the same project, URL and marker are merged (extras united, specifiers
    intersected), so `Rich>=13`, `rich[jupyter]` become `rich[jupyter]>=13`. When every
    entry is of the everyday form (`runner.simplereq`), `packaging` is not imported
    (`everyday=False`: always ask it; tests compare the two).
    """
    texts = list(requirements)
    merged: dict[tuple[str, str, str], tuple[set[str], set[str]]] = {}
    simple = [simplereq.parse(text) for text in texts] if everyday else [None]
    if None not in simple:
        for req in simple:
            assert req is not None
            extras, specs = merged.setdefault((req.name, "", ""), (set(), set()))
            extras |= req.extras
            specs |= req.specifiers
    else:
        from packaging.requirements import Requirement
        from packaging.utils import canonicalize_name

        for text in texts:
            full = Requirement(text)
            group = (canonicalize_name(full.name), full.url or "", str(full.marker or ""))
            extras, specs = merged.setdefault(group, (set(), set()))
            extras |= {canonicalize_name(e) for e in full.extras}
            specs |= {str(s) for s in full.specifier}
    out = []
    for (name, url, marker), (extras, specs) in merged.items():
        text = name
        if extras:
            text += "[" + ",".join(sorted(extras)) + "]"
        if url:
            text += f" @ {url}"
        else:
            text += ",".join(sorted(specs))
        if marker:
            text += f" ; {marker}"
        out.append(text)
    return tuple(sorted(set(out)))


@dataclass(frozen=True)
class IndexSettings:
    """Index options the user chose explicitly (flags or the script's [tool.runner] table)."""

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    no_index: bool = False

    def key_data(self) -> dict[str, Any]:
        return {
            "index_url": redact_url(self.index_url) if self.index_url else None,
            "extra_index_urls": [redact_url(u) for u in self.extra_index_urls],
            "find_links": [redact_url(u) for u in self.find_links],
            "no_index": self.no_index,
        }


@dataclass(frozen=True)
class EnvSpec:
    """What an environment must contain, on which interpreter, from where."""

    requirements: tuple[str, ...]
    interpreter: Interpreter
    index: IndexSettings = field(default_factory=IndexSettings)
    lock_digest: str | None = None
    exclude_newer: str | None = None

    def key_data(self) -> dict[str, Any]:
        return {
            "format": KEY_FORMAT,
            "requirements": list(self.requirements),
            "interpreter": self.interpreter.identity(),
            "index": self.index.key_data(),
            "lock": self.lock_digest,
            "exclude_newer": self.exclude_newer,
        }

    def shown_requirements(self) -> tuple[str, ...]:
        """The requirements as they may be shown or stored: URL credentials masked."""
        return tuple(redact_text(r) for r in self.requirements)

    def stored_key_data(self) -> dict[str, Any]:
        """`key_data` as the manifest records it: without credentials. The key itself is
        hashed from `key_data`, so requirements that differ only in credentials still get
        different keys."""
        return {**self.key_data(), "requirements": list(self.shown_requirements())}

    @property
    def key(self) -> str:
        # 32 hex characters (128 bits) keep paths short and collisions out of reach.
        return sha256_hex(canonical_json(self.key_data()))[:32]


def make_spec(
    dependencies: Iterable[str],
    interpreter: Interpreter,
    *,
    index: IndexSettings | None = None,
    lock_digest: str | None = None,
    exclude_newer: str | None = None,
) -> EnvSpec:
    return EnvSpec(
        requirements=normalize_requirements(dependencies),
        interpreter=interpreter,
        index=index or IndexSettings(),
        lock_digest=lock_digest,
        exclude_newer=exclude_newer,
    )
