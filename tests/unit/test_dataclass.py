"""``shared.dataclass.dataclass`` behaves as ``dataclasses.dataclass``: the same class declared
with each, side by side, gives the same answers."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, ClassVar

import pytest

from shared.dataclass import dataclass, field


def pair(**options: Any) -> tuple[type, type]:
    """One declaration, made by the standard decorator and by ours."""

    def declare(decorator: Any) -> type:
        class Point:
            """A point."""

            unit: ClassVar[str] = "px"
            x: int
            y: int = 0
            tags: list[str] = field(default_factory=list)
            secret: str = field(default="s3cret", repr=False)
            note: str = field(default="", compare=False)

            def norm(self) -> int:
                return abs(self.x) + abs(self.y)

        Point.__qualname__ = "Point"
        return decorator(**options)(Point)

    return declare(dataclasses.dataclass), declare(dataclass)


@pytest.mark.parametrize(
    "options",
    [{}, {"frozen": True}, {"frozen": True, "order": True}, {"repr": False}, {"eq": False}],
    ids=["plain", "frozen", "frozen-order", "no-repr", "no-eq"],
)
def test_the_same_class_behaves_the_same(options: dict[str, Any]) -> None:
    standard, ours = pair(**options)
    a, b = standard(1, 2, ["t"], note="n"), ours(1, 2, ["t"], note="n")
    assert [f.name for f in dataclasses.fields(ours)] == ["x", "y", "tags", "secret", "note"]
    assert repr(ours.__dataclass_params__) == repr(standard.__dataclass_params__)  # type: ignore[attr-defined]
    assert ours.__match_args__ == standard.__match_args__  # type: ignore[attr-defined]
    assert dataclasses.asdict(b) == dataclasses.asdict(a)
    assert b.norm() == 3 and b.unit == "px" and "unit" not in vars(b)
    if options.get("repr", True):
        assert repr(b) == repr(a) == "Point(x=1, y=2, tags=['t'], note='n')"
    if options.get("eq", True):
        assert b == ours(1, 2, ["t"], note="other")  # compare=False is left out
        assert b != ours(1, 3, ["t"]) and b != a  # another class is never equal
    else:
        assert b != ours(1, 2, ["t"], note="n")  # identity, as object's
    assert (ours.__hash__ is None) == (standard.__hash__ is None)
    if options.get("frozen"):
        assert hash(ours(1, 2, ())) == hash(ours(1, 2, (), note="x"))
        with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'x'"):
            b.x = 5
        with pytest.raises(dataclasses.FrozenInstanceError, match="cannot delete field 'y'"):
            del b.y
        assert dataclasses.replace(b, y=7).y == 7 and b.y == 2
    else:
        b.x = 5
        assert b.x == 5
    if options.get("order"):
        assert ours(1, 2) < ours(1, 3) <= ours(2, 0) and ours(2, 0) > ours(1, 9) >= ours(1, 9)
    duplicate = copy.deepcopy(b)
    assert duplicate.tags == ["t"] and duplicate.tags is not b.tags
    assert (duplicate == b) is options.get("eq", True)


def test_defaults_and_factories_are_those_of_the_standard_decorator() -> None:
    standard, ours = pair(frozen=True)
    one, two = ours(1), ours(1)
    assert one.tags == [] and one.tags is not two.tags  # a fresh list each time
    assert one.secret == "s3cret" and ours.__dict__["y"] == 0  # the default stays a class attribute
    assert ours(x=4, y=5).norm() == standard(x=4, y=5).norm() == 9
    with pytest.raises(TypeError):
        ours()  # x has no default
    with pytest.raises(TypeError):
        ours(1, 2, [], "s", "n", "one too many")


def test_keyword_only_init_false_and_post_init() -> None:
    @dataclass(frozen=True)
    class Window:
        size: int
        label: str = field(default="w", kw_only=True)
        area: int = field(init=False, default=0)
        seen: list[int] = field(init=False, default_factory=list)

        def __post_init__(self) -> None:
            object.__setattr__(self, "area", self.size * self.size)

    window = Window(3, label="big")
    assert (window.size, window.label, window.area, window.seen) == (3, "big", 9, [])
    with pytest.raises(TypeError):
        Window(3, "positional")  # type: ignore[call-arg]
    assert repr(window).endswith("Window(size=3, label='big', area=9, seen=[])")


def test_a_method_the_class_writes_is_kept() -> None:
    @dataclass(frozen=True)
    class Token:
        value: str

        def __repr__(self) -> str:
            return "Token(***)"

    assert repr(Token("abc")) == "Token(***)" and Token("a") == Token("a")


def test_what_it_does_not_support_is_refused() -> None:
    @dataclasses.dataclass
    class Base:
        a: int

    with pytest.raises(TypeError, match="dataclass bases"):

        @dataclass
        class Child(Base):
            b: int

    with pytest.raises(ValueError, match="eq must be true"):

        @dataclass(eq=False, order=True)  # type: ignore[misc]
        class Ordered:
            a: int

    with pytest.raises(TypeError, match="non-default argument"):

        @dataclass
        class Misordered:
            a: int = 0
            b: int  # type: ignore[misc]


def test_hashing_follows_the_standard_rules() -> None:
    def both(body: Any) -> list[type]:
        return [decorator(frozen=True)(body()) for decorator in (dataclasses.dataclass, dataclass)]

    def explicit() -> type:
        class Explicit:
            a: int

            def __hash__(self) -> int:
                return 7

        return Explicit

    def unhashed_field() -> type:
        class Partial:
            a: int
            b: int = field(default=0, hash=False)

        return Partial

    for cls in both(explicit):
        assert hash(cls(1)) == 7  # the class's own __hash__ is kept
    standard, ours = both(unhashed_field)
    assert hash(ours(1, 2)) == hash(ours(1, 3)) == hash(standard(1, 5))  # b is not hashed
    assert ours(1, 2) != ours(1, 3)  # but it is compared


def test_a_field_named_self() -> None:
    @dataclass(frozen=True)
    class Odd:
        self: str
        other: int = 1

    odd = Odd("me")
    assert (odd.self, odd.other) == ("me", 1) and odd == Odd(self="me", other=1)
