"""One CloudEvent → one fact row, without personal data (pure: no I/O).

- ``com.chatbot.message.received.v1`` → a ``message_facts`` row: inbound, author ``user``, the
  message's kind, the user's and the conversation's keyed hashes, the platform's time.
- ``com.chatbot.message.outbound.v1`` → a ``message_facts`` row: outbound, author ``bot``,
  ``fallback`` or ``agent``, whether it hands the conversation to a human, its creation time
  and ``in_reply_to_at`` (the platform's time of the message answered: response times are
  measured between the two, docs/data-model.md).
- ``com.chatbot.message.status.v1`` → a ``status_facts`` row: the status, the keyed hash of
  the platform's message id (a message's statuses are counted once each), the first error
  code of a failure.

Never stored: text, names, attachments, platform ids (only their keyed hashes). Any other event
type, or data that is not the model its type says, is poison (400). A platform time that
cannot be read does not make a fact unstorable: the time it is recorded stands in for it, as
the message store does.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from shared.analytics.hashing import Hasher
from shared.dataclass import dataclass
from shared.errors import BadRequest
from shared.eventfn import decode
from shared.events import MESSAGE_OUTBOUND, MESSAGE_RECEIVED, MESSAGE_STATUS
from shared.models import (
    InboundMessage,
    OutboundMessage,
    StatusUpdate,
    inbound_from_dict,
    status_from_dict,
)

MAX_EVENT_ID = 200  # our ids are uuids (36); a longer one is not an event of ours


@dataclass(frozen=True)
class MessageFact:
    event_id: str
    tenant_id: str
    channel: str
    direction: str  # inbound | outbound
    kind: str  # inbound: the message kind; outbound: text | template
    author: str  # user | bot | fallback | agent
    handoff: bool
    conversation_hash: str
    user_hash: str | None  # the sender of an inbound message; None on replies
    occurred_at: datetime
    in_reply_to_at: datetime | None

    table = "message_facts"


@dataclass(frozen=True)
class StatusFact:
    event_id: str
    tenant_id: str
    channel: str
    status: str  # sent | delivered | read | failed
    conversation_hash: str
    message_hash: str
    cumulative: bool  # a receipt for every message up to a time (Messenger's watermark)
    error_code: str | None
    occurred_at: datetime

    table = "status_facts"


Fact = MessageFact | StatusFact


def fact_of(event: Any, hasher: Hasher, now: datetime) -> Fact:
    """The fact an event records, or :class:`BadRequest` (poison) saying why there is none."""
    event_id = event.get("id")
    if not isinstance(event_id, str) or not event_id or len(event_id) > MAX_EVENT_ID:
        raise BadRequest("the event has no usable id", code="malformed_event")
    event_type = event.get("type")
    parse = _PARSERS.get(str(event_type))
    if parse is None:
        raise BadRequest(
            f"{event_type!r} is not an event the analytics store records",
            code="unexpected_event_type",
        )
    return parse(event, event_id, hasher, now)


def _inbound(event: Any, event_id: str, hasher: Hasher, now: datetime) -> MessageFact:
    message: InboundMessage = decode(
        event, inbound_from_dict, expected_type=MESSAGE_RECEIVED, what="a message"
    )
    _require(message.tenant_id and message.sender.id, "the message has no tenant or no sender")
    tenant, channel = message.tenant_id, str(message.channel)
    return MessageFact(
        event_id=event_id,
        tenant_id=tenant,
        channel=channel,
        direction="inbound",
        kind=str(message.kind),
        author="user",
        handoff=False,
        conversation_hash=hasher.conversation(tenant, channel, message.conversation_id),
        user_hash=hasher.user(tenant, channel, message.sender.id),
        occurred_at=parse_time(message.timestamp) or now,
        in_reply_to_at=None,
    )


def _outbound(event: Any, event_id: str, hasher: Hasher, now: datetime) -> MessageFact:
    message: OutboundMessage = decode(
        event, OutboundMessage.from_dict, expected_type=MESSAGE_OUTBOUND, what="a reply"
    )
    _require(message.tenant_id, "the reply has no tenant")
    tenant, channel = message.tenant_id, str(message.channel)
    return MessageFact(
        event_id=event_id,
        tenant_id=tenant,
        channel=channel,
        direction="outbound",
        kind="template" if message.template else "text",
        author=str(message.author),
        handoff=message.handoff,
        conversation_hash=hasher.conversation(tenant, channel, message.conversation_id),
        user_hash=None,
        occurred_at=parse_time(message.created_at) or now,
        in_reply_to_at=parse_time(message.in_reply_to_at),
    )


def _status(event: Any, event_id: str, hasher: Hasher, now: datetime) -> StatusFact:
    update: StatusUpdate = decode(
        event, status_from_dict, expected_type=MESSAGE_STATUS, what="a status"
    )
    _require(update.tenant_id, "the status has no tenant")
    tenant, channel = update.tenant_id, str(update.channel)
    first_error = update.errors[0] if update.errors else {}
    code = first_error.get("code") if isinstance(first_error, dict) else None
    return StatusFact(
        event_id=event_id,
        tenant_id=tenant,
        channel=channel,
        status=str(update.status),
        conversation_hash=hasher.conversation(tenant, channel, update.conversation_id),
        message_hash=hasher.message(tenant, channel, update.platform_message_id),
        cumulative=update.up_to is not None,
        # A platform's error code (131047, "ratelimited"): no personal data, bounded length.
        error_code=str(code)[:64] if code not in (None, "") else None,
        occurred_at=parse_time(update.timestamp) or now,
    )


def _require(condition: object, message: str) -> None:
    if not condition:
        raise BadRequest(message, code="malformed_event")


_PARSERS: dict[str, Callable[[Any, str, Hasher, datetime], Fact]] = {
    MESSAGE_RECEIVED: _inbound,
    MESSAGE_OUTBOUND: _outbound,
    MESSAGE_STATUS: _status,
}


def parse_time(value: str | None) -> datetime | None:
    """An RFC 3339 time as an aware datetime (UTC when it names no offset); None if unreadable."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
