"""``@dataclass`` as the standard library's, with one method compiled instead of six.

Python 3.11's :func:`dataclasses.dataclass` compiles each method it writes (``__init__``,
``__repr__``, ``__eq__``, ``__hash__``, and a frozen class's ``__setattr__`` and
``__delattr__``) on its own: ~0.9 ms per frozen class, 20 to 36 ms of the 47 to 70 ms a
function's ``create_app`` took before it could answer (the launch the cold-start benchmark
measures, docs/performance.md). This decorator lets the standard library collect the fields
(defaults, ``field()``, ``__dataclass_fields__``, ``__match_args__``: everything
:func:`dataclasses.fields`, :func:`~dataclasses.replace` and :func:`~dataclasses.asdict` read)
with method generation off, compiles ``__init__`` (the one method whose signature is the
class's own), and makes the others as closures over the field names, with the same behaviour:
0.13 to 0.2 ms a class. ``==``, ``hash()`` and ``repr()`` cost a fraction of a microsecond
more per call than the compiled ones.

Supported: ``frozen``, ``repr``, ``eq``, ``order``; fields with defaults, default factories,
``repr=False``, ``compare=False``, ``init=False``, ``kw_only``; ``__post_init__`` without
``InitVar``. Anything else (``slots``, ``unsafe_hash``, ``InitVar``, dataclass base classes) is
refused with a ``TypeError`` at import: use :mod:`dataclasses` there. Type checkers see the
standard decorator (the ``TYPE_CHECKING`` import below), so they check these classes as
dataclasses (and do not see that refusal).
"""

from __future__ import annotations

import dataclasses
import operator
import reprlib
from collections.abc import Callable
from dataclasses import MISSING, Field, FrozenInstanceError, field
from typing import TYPE_CHECKING, Any

__all__ = ["dataclass", "field"]

if TYPE_CHECKING:
    from dataclasses import dataclass as dataclass
else:

    def dataclass(
        cls: type | None = None,
        /,
        *,
        frozen: bool = False,
        repr: bool = True,
        eq: bool = True,
        order: bool = False,
    ) -> Any:
        def wrap(cls: type) -> type:
            return _process(cls, frozen=frozen, repr=repr, eq=eq, order=order)

        return wrap if cls is None else wrap(cls)


_NO_ARGUMENT = object()  # a parameter left to its default factory


def _process(cls: type, *, frozen: bool, repr: bool, eq: bool, order: bool) -> type:
    if order and not eq:
        raise ValueError("eq must be true if order is true")
    if any(dataclasses.is_dataclass(base) for base in cls.__mro__[1:]):
        raise TypeError(f"{cls.__qualname__}: dataclass bases need dataclasses.dataclass")
    documented = bool(cls.__dict__.get("__doc__"))
    class_hash = cls.__dict__.get("__hash__", MISSING)
    explicit_hash = not (class_hash is MISSING or (class_hash is None and "__eq__" in cls.__dict__))
    if not documented:
        cls.__doc__ = cls.__name__  # else the standard pass computes a signature for it
    # The standard library collects the fields and writes nothing (nothing to compile).
    dataclasses.dataclass(cls, init=False, repr=False, eq=False, frozen=False)
    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    # What the class is, for whoever reads it (init, repr, eq, order, unsafe_hash, frozen).
    cls.__dataclass_params__ = type(params)(True, repr, eq, order, False, frozen)  # type: ignore[attr-defined]
    fields = list(dataclasses.fields(cls))  # the real fields: no ClassVar, no InitVar
    if any("InitVar" in str(f.type) for f in cls.__dataclass_fields__.values()):  # type: ignore[attr-defined]
        raise TypeError(f"{cls.__qualname__}: InitVar needs dataclasses.dataclass")

    methods: dict[str, Callable[..., Any]] = {"__init__": _init(cls, fields, frozen)}
    if repr:
        methods["__repr__"] = _repr([f.name for f in fields if f.repr])
    compared = _values([f.name for f in fields if f.compare])
    if eq:
        methods["__eq__"] = _equality(compared)
    if order:
        for name, op in _ORDER.items():
            if name in cls.__dict__:
                raise TypeError(f"Cannot overwrite attribute {name} in class {cls.__name__}")
            methods[name] = _comparison(compared, op)
    if frozen:
        for function in _frozen(cls, frozenset(f.name for f in fields)):
            if function.__name__ in cls.__dict__:
                raise TypeError(
                    f"Cannot overwrite attribute {function.__name__} in class {cls.__name__}"
                )
            methods[function.__name__] = function
    for name, function in methods.items():
        if name not in cls.__dict__:  # the class's own method wins, as with the standard one
            function.__qualname__ = f"{cls.__qualname__}.{name}"
            setattr(cls, name, function)
    if eq and not explicit_hash:
        # Frozen and compared: hashed by the compared fields; mutable and compared: unhashable.
        hashed = _values([f.name for f in fields if (f.compare if f.hash is None else f.hash)])
        cls.__hash__ = _hash(hashed) if frozen else None  # type: ignore[assignment]
        if frozen:
            cls.__hash__.__qualname__ = f"{cls.__qualname__}.__hash__"
    if not documented:
        cls.__doc__ = f"{cls.__name__}({', '.join(f.name for f in fields)})"
    return cls


# The methods besides __init__ are closures over the field names: made, not compiled.
_ORDER = {
    "__lt__": operator.lt,
    "__le__": operator.le,
    "__gt__": operator.gt,
    "__ge__": operator.ge,
}


def _values(names: list[str]) -> Callable[[Any], tuple[Any, ...]]:
    """An instance's values of ``names``, as a tuple (what is compared and hashed)."""
    if len(names) > 1:
        return operator.attrgetter(*names)
    if names:
        one = operator.attrgetter(names[0])
        return lambda instance: (one(instance),)
    return lambda _instance: ()


def _equality(values: Callable[[Any], tuple[Any, ...]]) -> Callable[[Any, Any], Any]:
    def __eq__(self: Any, other: Any) -> Any:
        if other.__class__ is self.__class__:
            return values(self) == values(other)
        return NotImplemented

    return __eq__


def _comparison(values: Callable[[Any], tuple[Any, ...]], op: Callable[[Any, Any], Any]) -> Any:
    def compare(self: Any, other: Any) -> Any:
        if other.__class__ is self.__class__:
            return op(values(self), values(other))
        return NotImplemented

    return compare


def _hash(values: Callable[[Any], tuple[Any, ...]]) -> Callable[[Any], int]:
    def __hash__(self: Any) -> int:
        return hash(values(self))

    return __hash__


def _repr(names: list[str]) -> Callable[[Any], str]:
    @reprlib.recursive_repr()
    def __repr__(self: Any) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        return f"{self.__class__.__qualname__}({shown})"

    return __repr__


def _frozen(
    cls: type[Any], names: frozenset[str]
) -> tuple[Callable[..., None], Callable[..., None]]:
    def __setattr__(self: Any, name: str, value: Any) -> None:
        if self.__class__ is cls or name in names:
            raise FrozenInstanceError(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)

    def __delattr__(self: Any, name: str) -> None:
        if self.__class__ is cls or name in names:
            raise FrozenInstanceError(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)

    return __setattr__, __delattr__


def _init(cls: type, fields: list[Field[Any]], frozen: bool) -> Callable[..., None]:
    """``__init__``, compiled: the one method whose signature is the class's own."""
    names: dict[str, Any] = {"_object_setattr": object.__setattr__, "_NO_ARGUMENT": _NO_ARGUMENT}
    self = "__dataclass_self__" if any(f.name == "self" for f in fields) else "self"
    positional: list[str] = []
    keyword: list[str] = []
    body: list[str] = []
    seen_default = False
    for f in fields:
        value = f.name
        if f.default_factory is not MISSING:
            names[f"_factory_{f.name}"] = f.default_factory
            value = (
                f"_factory_{f.name}() if {f.name} is _NO_ARGUMENT else {f.name}"
                if f.init
                else f"_factory_{f.name}()"
            )
            default = "=_NO_ARGUMENT"
        elif f.default is not MISSING:
            names[f"_default_{f.name}"] = f.default
            default = f"=_default_{f.name}"
        else:
            default = ""
        if f.init:
            if f.kw_only is True:
                keyword.append(f"{f.name}{default}")
            else:
                if default:
                    seen_default = True
                elif seen_default:
                    raise TypeError(f"non-default argument {f.name!r} follows default argument")
                positional.append(f"{f.name}{default}")
        elif f.default_factory is MISSING:
            continue  # not initialised here: the class attribute holds its default
        body.append(
            f"_object_setattr({self}, {f.name!r}, {value})"
            if frozen
            else f"{self}.{f.name} = {value}"
        )
    if hasattr(cls, "__post_init__"):
        body.append(f"{self}.__post_init__()")
    parameters = ", ".join([self, *positional, *(["*", *keyword] if keyword else [])])
    lines = "".join(f" {line}\n" for line in body or ["pass"])
    made: dict[str, Any] = {}
    source = f"def __init__({parameters}):\n{lines}"
    exec(compile(source, f"<dataclass {cls.__qualname__}>", "exec"), names, made)  # noqa: S102
    init: Callable[..., None] = made["__init__"]
    init.__module__ = cls.__module__
    return init
