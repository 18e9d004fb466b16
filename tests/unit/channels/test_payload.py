"""The helpers every channel parser reads payloads through: types, paths, the safety net."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.channels._payload import (
    field,
    optional,
    optional_list,
    parse_json_object,
    shape_errors_as_400,
    typed,
)
from shared.errors import BadRequest, Forbidden


def test_badrequest_is_not_an_exception_the_safety_net_catches() -> None:
    assert not issubclass(BadRequest, (TypeError, ValueError, KeyError, AttributeError))


@pytest.mark.parametrize(
    ("obj", "kind", "expected"),
    [
        ({"k": "v"}, str, "v"),
        ({"k": 3}, int, 3),
        ({"k": 3}, (int, float), 3),
        ({"k": True}, bool, True),
        ({"k": [1]}, list, [1]),
        ({"k": None}, str, None),
        ({}, dict, None),
        ("not a dict", str, None),
        (None, str, None),
        ({"k": ""}, str, ""),  # an empty optional string is the caller's to judge
    ],
)
def test_optional_returns_present_values_of_the_right_type(
    obj: Any, kind: type | tuple[type, ...], expected: Any
) -> None:
    assert optional(obj, "k", kind, "a.b") == expected


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ({"name": "x"}, str),
        (["x"], str),
        (5, str),
        ("5", int),
        (True, int),  # JSON true is not a number
        (False, (int, float)),
        (1.5, int),
        ("x", list),
        ({}, list),
        ([], dict),
        ("true", bool),
        (float("inf"), (int, float)),
        (float("nan"), float),
    ],
)
def test_optional_names_a_wrongly_typed_value(value: Any, kind: type | tuple[type, ...]) -> None:
    with pytest.raises(BadRequest) as info:
        optional({"k": value}, "k", kind, "a.b")
    assert (info.value.code, info.value.message) == (
        "invalid_field",
        "field 'a.b.k' has the wrong type",
    )


def test_optional_without_a_path_names_the_bare_key() -> None:
    with pytest.raises(BadRequest) as info:
        optional({"k": 1}, "k", str)
    assert info.value.message == "field 'k' has the wrong type"


def test_optional_without_a_kind_checks_nothing() -> None:
    assert optional({"k": {"a": 1}}, "k") == {"a": 1}


def test_optional_list() -> None:
    assert optional_list({}, "k", "p") == []
    assert optional_list({"k": None}, "k", "p") == []
    assert optional_list({"k": [1, "a"]}, "k", "p") == [1, "a"]
    assert optional_list({"k": [{"a": 1}]}, "k", "p", dict) == [{"a": 1}]
    with pytest.raises(BadRequest, match=r"field 'p\.k' has the wrong type"):
        optional_list({"k": 5}, "k", "p")
    with pytest.raises(BadRequest, match=r"field 'p\.k\[1\]' has the wrong type"):
        optional_list({"k": [{}, "x"]}, "k", "p", dict)


@pytest.mark.parametrize("value", [True, float("inf"), "1.5"])
def test_field_numbers_are_finite_numbers(value: Any) -> None:
    with pytest.raises(BadRequest) as info:
        field({"lat": value}, "lat", "loc", (int, float))
    assert (info.value.code, info.value.message) == (
        "invalid_field",
        "field 'loc.lat' has the wrong type",
    )


def test_typed_names_a_list_element() -> None:
    assert typed({"a": 1}, "xs[0]", dict) == {"a": 1}
    with pytest.raises(BadRequest, match=r"field 'xs\[0\]' has the wrong type"):
        typed("a", "xs[0]", dict)


@pytest.mark.parametrize(
    "error",
    [TypeError("unhashable"), ValueError("x"), KeyError("k"), AttributeError("a"), IndexError()],
)
def test_safety_net_turns_shape_errors_into_a_400(error: Exception) -> None:
    with pytest.raises(BadRequest) as info, shape_errors_as_400():
        raise error
    assert info.value.code == "invalid_payload"
    assert info.value.message == f"payload has an unexpected shape: {type(error).__name__}"
    assert info.value.__cause__ is error


@pytest.mark.parametrize(
    "error", [BadRequest("field 'x' has the wrong type", code="invalid_field"), Forbidden("no")]
)
def test_safety_net_lets_named_errors_through_unchanged(error: Exception) -> None:
    with pytest.raises(type(error)) as info, shape_errors_as_400():
        raise error
    assert info.value is error


def test_safety_net_leaves_other_failures_alone() -> None:
    with pytest.raises(RuntimeError), shape_errors_as_400():
        raise RuntimeError("a bug is a 500, not the caller's 400")


@pytest.mark.parametrize(
    "body",
    [
        b'{"lat": NaN}',
        b'{"lat": Infinity}',
        b'{"lat": -Infinity}',
        b'{"n": ' + b"1" * 5000 + b"}",  # past Python's int-from-string digit limit
        b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",  # deeper than the parser recurses
        # A lone UTF-16 surrogate is no Unicode text: it could not even be encoded for Kafka.
        b'{"text": "\\ud800"}',
        b'{"name": "x\\udfff"}',
        b'{"\\ud83d": 1}',
    ],
)
def test_parse_json_object_refuses_what_is_not_json_as_a_400(body: bytes) -> None:
    with pytest.raises(BadRequest) as info:
        parse_json_object(body)
    assert info.value.code == "malformed_json"


def test_a_surrogate_pair_is_one_character_and_fine() -> None:
    assert parse_json_object(b'{"text": "\\ud83d\\ude00"}') == {"text": "\U0001f600"}


@pytest.mark.parametrize("depth", [65, 500, 900])
def test_parse_json_object_refuses_a_body_nested_deeper_than_any_platform_sends(
    depth: int,
) -> None:
    # Found by fuzzing: 500 levels parse, but a kept platform field that deep made encoding
    # the event (dataclasses.asdict recurses) fail with RecursionError, a 500 after the
    # signature was checked. The deepest saved payload has 12 levels.
    body = b'{"a": ' + b"[" * depth + b"]" * depth + b"}"
    with pytest.raises(BadRequest) as info:
        parse_json_object(body)
    assert info.value.code == "malformed_json"


def test_parse_json_object_takes_nesting_up_to_the_limit() -> None:
    body = b'{"a": ' + b"[" * 63 + b"]" * 63 + b"}"  # 64 levels with the object
    assert parse_json_object(body)["a"] == json.loads(b"[" * 63 + b"]" * 63)
