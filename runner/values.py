"""Frozen dataclasses for the cold path, without the cost of `dataclasses` (stdlib only).

`dataclasses.dataclass` writes each class's `__init__`, `__repr__`, `__eq__`, `__hash__` and
`__setattr__` as source text and compiles it (about 0.5 ms a class here), and importing the
module pulls in `inspect`, `ast` and `dis`: with the twenty-odd value classes a cold run
defines, some 15 ms of it. Here the decorator only records the fields; the methods are
shared functions that read them. Same use as the stdlib's for what runner needs:

    @dataclass(frozen=True)
    class Created:
        python: str
        fallbacks: tuple[str, ...] = ()
        env: dict[str, str] = field(default_factory=dict)

gives keyword or positional construction with defaults, `==` and `hash` over the fields
(instances of the same class only), a `repr` that names them, and `FrozenInstanceError` on
assignment; `fields()` and `replace()` work as in `dataclasses`. Not supported: mutable
classes, inheritance between value classes, `InitVar`, `__post_init__`, ordering.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeVar, dataclass_transform

_T = TypeVar("_T")
_MISSING: Any = object()


class FrozenInstanceError(AttributeError):
    """Assignment to a field of a frozen value (as `dataclasses.FrozenInstanceError`)."""


class Field:
    """One field of a value class: its name and default (or factory of defaults)."""

    __slots__ = ("default", "default_factory", "name")

    def __init__(self, name: str, default: Any, default_factory: Any) -> None:
        self.name = name
        self.default = default
        self.default_factory = default_factory

    def __repr__(self) -> str:
        return f"Field({self.name!r})"


class _Spec:
    """What `field(...)` leaves in the class body until the decorator reads it."""

    __slots__ = ("default", "default_factory")

    def __init__(self, default: Any, default_factory: Any) -> None:
        self.default = default
        self.default_factory = default_factory


def field(*, default: Any = _MISSING, default_factory: Callable[[], Any] = _MISSING) -> Any:
    """A field's default, or a factory called for each new instance (`dict`, `list`...)."""
    if default is not _MISSING and default_factory is not _MISSING:
        raise ValueError("cannot specify both default and default_factory")
    return _Spec(default, default_factory)


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def dataclass(*, frozen: Literal[True]) -> Callable[[type[_T]], type[_T]]:
    """`@dataclass(frozen=True)`: make the class a frozen value class (see the module)."""
    del frozen  # the only kind there is; spelled out so the classes read as the stdlib's

    def wrap(cls: type[_T]) -> type[_T]:
        return _process(cls)

    return wrap


def _process(cls: type[_T]) -> type[_T]:
    found: list[Field] = []
    # The class's own annotations (inspect.get_annotations: the import this module avoids).
    own = cls.__dict__.get("__annotations__", {})  # noqa: RUF063
    for name, annotation in own.items():
        if "ClassVar" in str(annotation):
            continue
        value = cls.__dict__.get(name, _MISSING)
        if isinstance(value, _Spec):
            default, factory = value.default, value.default_factory
            if default is _MISSING:
                delattr(cls, name)  # as dataclasses: no class attribute for a factory
            else:
                setattr(cls, name, default)
        else:
            default, factory = value, _MISSING
        if default is _MISSING and factory is _MISSING and found:
            last = found[-1]
            if last.default is not _MISSING or last.default_factory is not _MISSING:
                raise TypeError(f"non-default argument {name!r} follows default argument")
        found.append(Field(name, default, factory))
    for attribute in ("__init__", "__repr__", "__eq__", "__setattr__", "__delattr__"):
        if attribute in cls.__dict__:
            raise TypeError(f"{cls.__qualname__} defines {attribute}: not a plain value class")
    methods: dict[str, object] = {
        "__value_fields__": tuple(found),
        "__init__": _init,
        "__repr__": _repr,
        "__eq__": _eq,
        "__hash__": _hash,
        "__setattr__": _frozen_setattr,
        "__delattr__": _frozen_delattr,
    }
    for attribute, method in methods.items():
        setattr(cls, attribute, method)
    return cls


def _init(self: Any, *args: Any, **kwargs: Any) -> None:
    known = type(self).__value_fields__
    if len(args) > len(known):
        raise TypeError(
            f"{type(self).__qualname__}() takes {len(known)} arguments but {len(args)} were given"
        )
    for i, f in enumerate(known):
        if i < len(args):
            if f.name in kwargs:
                raise TypeError(f"{type(self).__qualname__}() got multiple values for {f.name!r}")
            value = args[i]
        elif f.name in kwargs:
            value = kwargs.pop(f.name)
        elif f.default_factory is not _MISSING:
            value = f.default_factory()
        elif f.default is not _MISSING:
            value = f.default
        else:
            raise TypeError(f"{type(self).__qualname__}() missing argument {f.name!r}")
        object.__setattr__(self, f.name, value)
    if kwargs:
        raise TypeError(f"{type(self).__qualname__}() got unexpected arguments {sorted(kwargs)}")


def _values(self: Any) -> tuple[Any, ...]:
    return tuple(getattr(self, f.name) for f in type(self).__value_fields__)


def _repr(self: Any) -> str:
    shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in type(self).__value_fields__)
    return f"{type(self).__qualname__}({shown})"


def _eq(self: Any, other: object) -> object:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return _values(self) == _values(other)


def _hash(self: Any) -> int:
    return hash(_values(self))


def _frozen_setattr(self: Any, name: str, value: object) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: Any, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")


def fields(value: Any) -> tuple[Field, ...]:
    """The fields of a value class or instance, in order (as `dataclasses.fields`)."""
    found: tuple[Field, ...] = getattr(value, "__value_fields__", ())
    if not found and not hasattr(value, "__value_fields__"):
        raise TypeError(f"{value!r} is not a value class or instance")
    return found


def replace(value: _T, /, **changes: Any) -> _T:
    """A copy of a value with some fields changed (as `dataclasses.replace`)."""
    current = {f.name: getattr(value, f.name) for f in fields(value)}
    unknown = set(changes) - set(current)
    if unknown:
        raise TypeError(f"{type(value).__qualname__} has no fields {sorted(unknown)}")
    return type(value)(**{**current, **changes})
