"""Helpers the channel parsers share: strict JSON, named missing fields, HMAC, timestamps.

Every value a parser reads from a payload goes through :func:`field` (required) or
:func:`optional` / :func:`optional_list` (may be absent) with the type the canonical model
expects, so a wrongly typed field is a 400 naming it, never a 500 and never an event with a
dict where downstream code expects a string. :func:`shape_errors_as_400` is the safety net
around each channel's ``parse`` for a shape nobody anticipated.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from shared.errors import BadRequest, MethodNotAllowed

log = logging.getLogger(__name__)

Kind = type | tuple[type, ...]

# How deep a webhook body may nest (objects and arrays). The platforms' payloads have a dozen
# levels; a parser keeps unmodelled fields as they are (``raw``), and everything that later
# walks them recursively (dataclasses.asdict, the JSON encoder, BSON) has its own limit.
MAX_DEPTH = 64


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        # NaN and Infinity are not JSON (RFC 8259); Python accepts them unless told not to.
        document = json.loads(body, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError, the constants above and over-long integers;
        # RecursionError a body nested deeper than the parser goes.
        raise BadRequest(f"body is not valid JSON: {exc}", code="malformed_json") from exc
    if not isinstance(document, dict):
        raise BadRequest("body must be a JSON object", code="malformed_json")
    if _deeper_than(document, MAX_DEPTH):
        raise BadRequest(f"body nests deeper than {MAX_DEPTH} levels", code="malformed_json")
    if b"\\u" in body and _has_lone_surrogate(document):
        raise BadRequest("body holds a lone UTF-16 surrogate: not text", code="malformed_json")
    return document


def _deeper_than(document: Any, limit: int) -> bool:
    """Whether objects and arrays nest more than ``limit`` levels (walked without recursion)."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _has_lone_surrogate(document: Any) -> bool:
    """Whether a ``\\udXXX`` escape left half a character anywhere (keys included): JSON lets
    it through (RFC 8259 §8.2), but it is no Unicode text, and encoding it fails later. Only
    bodies with a ``\\u`` escape are walked."""
    try:
        json.dumps(document, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _where(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _is_kind(value: Any, kind: Kind) -> bool:
    """``isinstance``, except that a JSON ``true`` is never a number unless bool is asked for."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        return False
    if isinstance(value, float) and not math.isfinite(value):
        return False  # 1e400 parses as inf: not a number any platform sends
    return isinstance(value, kinds)


def typed(value: Any, where: str, kind: Kind) -> Any:
    """``value`` when it is of ``kind``; else a 400 naming ``where`` (e.g. a list element)."""
    if not _is_kind(value, kind):
        raise BadRequest(f"field '{where}' has the wrong type", code="invalid_field")
    return value


def field(obj: Any, key: str, path: str, kind: Kind = str) -> Any:
    """``obj[key]``, or a 400 that names the missing or mistyped field by its full path."""
    where = _where(path, key)
    if not isinstance(obj, dict) or key not in obj or obj[key] is None:
        raise BadRequest(f"missing field '{where}'", code="missing_field")
    value = typed(obj[key], where, kind)
    if kind is str and value == "":
        raise BadRequest(f"field '{where}' is empty", code="missing_field")
    return value


def coordinate(obj: Any, key: str, path: str, bound: float) -> float:
    """A latitude (``bound`` 90) or longitude (180) in degrees; a 400 for anything else,
    including a number too large to be a float (JSON has no limit on digits)."""
    value = field(obj, key, path, (int, float))
    try:
        degrees = float(value)
    except OverflowError:
        degrees = math.inf
    if not math.isfinite(degrees) or abs(degrees) > bound:
        raise BadRequest(
            f"field '{_where(path, key)}' must be between -{bound:g} and {bound:g}",
            code="invalid_field",
        )
    return degrees


def optional(obj: Any, key: str, kind: Kind | None = None, path: str = "") -> Any:
    """``obj[key]``, or None when it (or ``obj`` itself) is absent.

    With ``kind``, a value that is present but not of that type is a 400 naming
    ``path.key``. Without it the value is returned as it is: only for comparisons and logs,
    never for anything that reaches the canonical model.
    """
    value = obj.get(key) if isinstance(obj, dict) else None
    if kind is None or value is None:
        return value
    return typed(value, _where(path, key), kind)


def optional_list(obj: Any, key: str, path: str, item: Kind | None = None) -> list[Any]:
    """``obj[key]`` as a list (empty when absent); with ``item``, every element is checked."""
    values: list[Any] = optional(obj, key, list, path) or []
    if item is not None:
        where = _where(path, key)
        for i, value in enumerate(values):
            typed(value, f"{where}[{i}]", item)
    return values


@contextmanager
def shape_errors_as_400() -> Iterator[None]:
    """Turn the errors a payload of an unforeseen shape causes in a parser into a 400.

    Meant to wrap a channel's ``parse`` call only, never verification or publishing: there
    the same exceptions are our bugs or a dependency's failure, not the caller's. A
    :class:`BadRequest` (not a ValueError) passes through unchanged.
    """
    try:
        yield
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:
        log.warning("payload has an unexpected shape", exc_info=True)
        raise BadRequest(
            f"payload has an unexpected shape: {type(exc).__name__}", code="invalid_payload"
        ) from exc


def hmac_sha256_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def rfc3339(unix_seconds: float) -> str:
    return datetime.fromtimestamp(unix_seconds, UTC).isoformat().replace("+00:00", "Z")


def unix_field(obj: Any, key: str, path: str) -> str:
    """A platform's Unix timestamp (int, or digits in a string) as RFC 3339."""
    raw = field(obj, key, path, (str, int))
    try:
        return rfc3339(float(raw))
    except (TypeError, ValueError, OverflowError, OSError) as exc:
        raise BadRequest(
            f"field '{_where(path, key)}' is not a Unix time", code="invalid_field"
        ) from exc


def allow(method: str, *allowed: str) -> None:
    if method not in allowed:
        raise MethodNotAllowed(f"method {method} is not allowed here", allowed=allowed)
