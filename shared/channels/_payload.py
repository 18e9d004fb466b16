"""Helpers the channel parsers share: strict JSON, named missing fields, HMAC, timestamps."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

from shared.errors import BadRequest, MethodNotAllowed


def parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"body is not valid JSON: {exc}", code="malformed_json") from exc
    if not isinstance(document, dict):
        raise BadRequest("body must be a JSON object", code="malformed_json")
    return document


def field(obj: Any, key: str, path: str, kind: type | tuple[type, ...] = str) -> Any:
    """``obj[key]``, or a 400 that names the missing or mistyped field by its full path."""
    where = f"{path}.{key}" if path else key
    if not isinstance(obj, dict) or key not in obj or obj[key] is None:
        raise BadRequest(f"missing field '{where}'", code="missing_field")
    value = obj[key]
    if isinstance(value, bool) and kind in (int, (int, str), (str, int)):
        raise BadRequest(f"field '{where}' has the wrong type", code="invalid_field")
    if not isinstance(value, kind):
        raise BadRequest(f"field '{where}' has the wrong type", code="invalid_field")
    if kind is str and value == "":
        raise BadRequest(f"field '{where}' is empty", code="missing_field")
    return value


def optional(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else None


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
        raise BadRequest(f"field '{path}.{key}' is not a Unix time", code="invalid_field") from exc


def allow(method: str, *allowed: str) -> None:
    if method not in allowed:
        raise MethodNotAllowed(f"method {method} is not allowed here", allowed=allowed)
