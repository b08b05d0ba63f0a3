"""runner.values behaves as the stdlib's frozen dataclasses for what runner uses of them."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import pytest

from runner import values


def _pair() -> tuple[Any, Any]:
    """The same class body, decorated by the stdlib and by runner.values."""

    made = []
    for module in (dataclasses, values):

        @module.dataclass(frozen=True)
        class Point:
            """A point."""

            x: int
            y: str = "y"
            tags: dict[str, str] = module.field(default_factory=dict)
            kind: ClassVar[str] = "point"

            @property
            def double(self) -> int:
                return self.x * 2

        made.append(Point)
    return made[0], made[1]


STD, OURS = _pair()


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((1,), {}), ((1, "b"), {}), ((), {"x": 1, "tags": {"a": "b"}}), ((1,), {"y": "z"})],
)
def test_construction_equality_and_repr_match_the_stdlib(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    std, ours = STD(*args, **kwargs), OURS(*args, **kwargs)
    assert [(f.name, getattr(ours, f.name)) for f in values.fields(ours)] == [
        (f.name, getattr(std, f.name)) for f in dataclasses.fields(std)
    ]
    assert repr(ours) == repr(std)
    assert ours == OURS(*args, **kwargs) and ours != OURS(99)
    assert ours != std  # another class: never equal, as between two dataclasses
    assert ours.double == std.double and OURS.kind == "point"


def test_hash_equality_and_frozenness() -> None:
    @values.dataclass(frozen=True)
    class Key:
        name: str
        version: str = ""

    a, b = Key("a", "1"), Key("a", "1")
    assert a == b and hash(a) == hash(b) and {a: 1}[b] == 1
    assert hash(a) == hash(
        dataclasses.make_dataclass("K", ["name", "version"], frozen=True)("a", "1")
    )
    with pytest.raises(TypeError):
        hash(OURS(1))  # an unhashable field (a dict), as with dataclasses
    with pytest.raises(values.FrozenInstanceError):
        a.name = "b"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del a.version
    assert a.name == "a" and a.version == "1"


def test_defaults_factories_and_errors() -> None:
    first, second = OURS(1), OURS(1)
    assert first.tags == {} and first.tags is not second.tags  # a new dict each time
    assert "tags" not in OURS.__dict__ and OURS.y == "y"  # as dataclasses leave them
    bad: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
        ((), {}),
        ((1, "y", {}, 4), {}),
        ((1,), {"x": 1}),
        ((1,), {"q": 1}),
    ]
    for bad_args, bad_kwargs in bad:
        with pytest.raises(TypeError):
            OURS(*bad_args, **bad_kwargs)
        with pytest.raises(TypeError):
            STD(*bad_args, **bad_kwargs)


def test_replace_and_fields() -> None:
    a = OURS(1, "b", {"k": "v"})
    changed = values.replace(a, y="c")
    assert changed == OURS(1, "c", {"k": "v"}) and a.y == "b"
    assert [f.name for f in values.fields(OURS)] == ["x", "y", "tags"]
    with pytest.raises(TypeError):
        values.replace(a, nope=1)
    with pytest.raises(TypeError):
        values.fields(object())


def test_a_required_field_after_a_default_is_refused_like_the_stdlib() -> None:
    for module in (dataclasses, values):
        with pytest.raises(TypeError):

            @module.dataclass(frozen=True)
            class Bad:
                x: int = 0
                y: int
