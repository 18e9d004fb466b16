"""Opaque ids and cursors of the API, and the query parameters that page through lists.

A conversation's id in a URL is its key (``tenant:channel:account/chat``) in base64url: opaque
to clients, and the key never needs escaping. A cursor is the sort position of the last item
returned (time and ``_id``, so equal times still have one order), so a page never repeats or
skips an item that was there when the first page was read, whatever is inserted meanwhile.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from shared.dataclass import dataclass
from shared.errors import InvalidParameter, NotFound

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


def conversation_id(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def conversation_key(conversation: str) -> str:
    """The key behind an id; an id that decodes to nothing sensible is simply not found."""
    try:
        key = _unb64(conversation).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise NotFound("no such conversation", code="not_found") from exc
    if key.count(":") < 2:
        raise NotFound("no such conversation", code="not_found")
    return key


@dataclass(frozen=True)
class Position:
    at: datetime
    id: str


def encode_cursor(at: datetime, item_id: str) -> str:
    stamp = at.astimezone(UTC).isoformat() if at.tzinfo else at.replace(tzinfo=UTC).isoformat()
    raw = json.dumps([stamp, item_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, parameter: str = "cursor") -> Position:
    try:
        stamp, item_id = json.loads(_unb64(cursor))
        return Position(_utc(datetime.fromisoformat(stamp)), str(item_id))
    except (ValueError, TypeError, OverflowError, binascii.Error) as exc:
        raise InvalidParameter(parameter, "not a cursor this API returned") from exc


def limit(query: Mapping[str, str]) -> int:
    raw = query.get("limit")
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    # ASCII digits only, and short: str.isdigit() also takes "²" (which int() refuses), and
    # int() refuses strings of over 4300 digits; either would have been a 500.
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9) or not 1 <= int(raw) <= MAX_LIMIT:
        raise InvalidParameter("limit", f"must be an integer from 1 to {MAX_LIMIT}")
    return int(raw)


def since(query: Mapping[str, str], parameter: str) -> datetime | None:
    raw = query.get(parameter)
    if not raw:
        return None
    try:
        return _utc(datetime.fromisoformat(raw.replace("Z", "+00:00")))
    except (ValueError, OverflowError) as exc:
        raise InvalidParameter(parameter, "must be an RFC 3339 date-time") from exc


def _utc(value: datetime) -> datetime:
    """In UTC (naive: taken as UTC). OverflowError for a time that is beyond year 9999 (or
    before year 1) in UTC, e.g. ``9999-12-31T23:59:59-01:00``: no BSON date holds it, and
    pymongo would fail encoding the query."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC)


def day(query: Mapping[str, str], parameter: str) -> date:
    """A required calendar day (``YYYY-MM-DD``)."""
    raw = query.get(parameter) or ""
    try:
        if len(raw) == 10:  # fromisoformat also takes 20260301 and week dates: not here
            return date.fromisoformat(raw)
    except ValueError:
        pass
    raise InvalidParameter(parameter, "a day YYYY-MM-DD is required")


def one_of(query: Mapping[str, str], parameter: str, allowed: tuple[str, ...]) -> str | None:
    value = query.get(parameter)
    if value is None or value == "":
        return None
    if value not in allowed:
        raise InvalidParameter(parameter, f"must be one of {', '.join(allowed)}")
    return value


def rfc3339(value: Any) -> str | None:
    if not isinstance(value, datetime):
        return None
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _unb64(text: str) -> bytes:
    if not text or len(text) > 1024:
        raise ValueError("empty or too long")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
