"""The widget's read side: a conversation's messages, oldest first, by cursor.

``GET /messages?after=<cursor>&limit=<n>`` with the visitor's token lists both directions of
the token's conversation — the visitor's own messages (with their ``client_message_id``; the
text is null while it is not stored: not screened yet, blocked or rate-limited) and the
replies of the bot and of agents — as ``{"messages": [...], "next_cursor", "has_more"}``.
It is what the widget polls when the live stream (:mod:`.stream`) is not available, and the
stream replays from the same query.

A cursor is an opaque string: the position of a message in the order ``(created_at, _id)``,
base64url of ``1:<created_at in ms>:<_id>``. Paging is by key, not by offset, so messages
stored meanwhile never shift a page: the next request continues after the last message seen.
``created_at`` is when the message was made (the visitor's send, the reply's creation), so a
visitor's message stored after the reply to their previous one sorts before that reply and is
not listed again by ``after=``; the widget shows it already (it sent it), and a reload (no
cursor) lists everything in order. Milliseconds, because that is what a BSON date keeps: a
live message's cursor (from its RFC 3339 time) and the stored one's are then the same.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from shared import metrics
from shared.caching import per_process
from shared.channels.webchat.access import conversation_key_of, visitor
from shared.channels.webchat.account import CHANNEL
from shared.dataclass import dataclass, field
from shared.errors import InvalidParameter
from shared.ingress import Ingress
from shared.settings import get_settings
from shared.store.mongo import database, unavailable_as_503
from shared.web import WebRequest, WebResponse, json_response

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
VISITOR = "visitor"  # the author of the visitor's own messages
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_VERSION = "1"
_FIELDS = ("_id", "direction", "author", "text", "quick_replies", "created_at", "raw")


@dataclass(frozen=True, order=True)
class Cursor:
    """A message's position: compared as ``(created_ms, message_id)``, as MongoDB sorts."""

    created_ms: int
    message_id: str

    def encode(self) -> str:
        text = f"{_VERSION}:{self.created_ms}:{self.message_id}"
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str, parameter: str = "after") -> Cursor:
        try:
            text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
            raise InvalidParameter(parameter, "not a cursor of this API") from exc
        version, _, rest = text.partition(":")
        created, _, message_id = rest.partition(":")
        # 14 digits: until the year 5138, within what a datetime holds.
        if version != _VERSION or not _digits(created, 14) or not message_id:
            raise InvalidParameter(parameter, "not a cursor of this API")
        return cls(int(created), message_id)

    @property
    def created_at(self) -> datetime:
        return _EPOCH + timedelta(milliseconds=self.created_ms)


def _digits(value: str, most: int) -> bool:
    """ASCII digits only (``str.isdigit`` takes "²", which ``int`` refuses), at most ``most``."""
    return value.isascii() and value.isdigit() and len(value) <= most


def optional_cursor(value: str | None, parameter: str = "after") -> Cursor | None:
    return Cursor.decode(value, parameter) if value else None


def milliseconds(moment: datetime) -> int:
    """``moment`` in whole milliseconds since the epoch, rounded down as BSON stores it."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return (aware - _EPOCH) // timedelta(milliseconds=1)


def rfc3339_ms(created_ms: int) -> str:
    moment = _EPOCH + timedelta(milliseconds=created_ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{created_ms % 1000:03d}Z"


@dataclass(frozen=True)
class Message:
    """One message as the widget sees it, with its position."""

    cursor: Cursor
    body: dict[str, Any] = field(compare=False)

    @property
    def id(self) -> str:
        return self.cursor.message_id


def _item(
    cursor: Cursor, direction: str, author: str, text: Any, quick_replies: Any
) -> dict[str, Any]:
    return {
        "id": cursor.message_id,
        "cursor": cursor.encode(),
        "direction": direction,
        "author": author,
        "text": text if isinstance(text, str) else None,
        "quick_replies": [
            {"id": str(q["id"]), "title": str(q["title"])}
            for q in quick_replies or ()
            if isinstance(q, Mapping) and "id" in q and "title" in q
        ],
        "created_at": rfc3339_ms(cursor.created_ms),
    }


def from_document(document: Mapping[str, Any]) -> Message:
    """A stored ``messages`` document (either direction) as the widget's item."""
    cursor = Cursor(milliseconds(document["created_at"]), str(document["_id"]))
    if document.get("direction") == "inbound":
        # No text while the content is not stored: not screened yet, blocked or rate-limited.
        body = _item(cursor, "inbound", VISITOR, document.get("text"), ())
        raw = document.get("raw")
        body["client_message_id"] = raw.get("client_message_id") if isinstance(raw, dict) else None
        return Message(cursor, body)
    author = str(document.get("author") or "bot")
    quick_replies = document.get("quick_replies")
    return Message(cursor, _item(cursor, "outbound", author, document.get("text"), quick_replies))


def from_reply(data: Mapping[str, Any], conversation_key: str) -> Message | None:
    """A reply as published live (``OutboundMessage.to_dict()``), or None when it is not one of
    this conversation's or has no readable time (the stored copy is replayed instead)."""
    if data.get("conversation_key") != conversation_key or not data.get("message_id"):
        return None
    try:
        moment = datetime.fromisoformat(str(data.get("created_at")))
    except ValueError:
        return None
    cursor = Cursor(milliseconds(moment), str(data["message_id"]))
    author = str(data.get("author") or "bot")
    body = _item(cursor, "outbound", author, data.get("text"), data.get("quick_replies"))
    return Message(cursor, body)


@dataclass(frozen=True)
class Page:
    messages: tuple[Message, ...]
    has_more: bool

    def next_cursor(self, after: Cursor | None) -> str | None:
        """Where the next request continues: after the last message, else where this one did."""
        if self.messages:
            return self.messages[-1].cursor.encode()
        return after.encode() if after else None


class History:
    """A conversation's stored messages, in cursor order; every query names the tenant and the
    conversation, which come from the visitor's token."""

    def __init__(self, db: Any) -> None:
        self._messages = db["messages"]

    def page(self, tenant_id: str, conversation_key: str, after: Cursor | None, limit: int) -> Page:
        query: dict[str, Any] = {"tenant_id": tenant_id, "conversation_key": conversation_key}
        if after is not None:
            query["$or"] = [
                {"created_at": {"$gt": after.created_at}},
                {"created_at": after.created_at, "_id": {"$gt": after.message_id}},
            ]
        with unavailable_as_503():
            documents = list(
                self._messages.find(query, dict.fromkeys(_FIELDS, 1))
                .sort([("created_at", 1), ("_id", 1)])
                .limit(limit + 1)
            )
        messages = tuple(from_document(d) for d in documents[:limit])
        return Page(messages, has_more=len(documents) > limit)


@per_process
def get_history() -> History:
    """The process's history reader; MongoDB is connected on first use, in the worker."""
    return History(database(get_settings()))


def parse_limit(value: str | None) -> int:
    if value is None or value == "":
        return DEFAULT_LIMIT
    if not _digits(value, 3) or not 1 <= int(value) <= MAX_LIMIT:
        raise InvalidParameter("limit", f"must be a whole number from 1 to {MAX_LIMIT}")
    return int(value)


def list_messages(request: WebRequest, ingress: Ingress) -> WebResponse:
    claims, cors = visitor(request, ingress)
    after = optional_cursor(request.query.get("after"))
    limit = parse_limit(request.query.get("limit"))
    page = get_history().page(claims.tenant_id, conversation_key_of(claims), after, limit)
    metrics.ingress_requests.labels(CHANNEL, "history").inc()
    body = {
        "messages": [message.body for message in page.messages],
        "next_cursor": page.next_cursor(after),
        "has_more": page.has_more,
    }
    return json_response(200, body, {**cors, "Cache-Control": "no-store"})
