"""The ``messages`` collection: one document per message, both directions (docs/data-model.md).

The inbound document is the processor's checkpoint. Its ``_id`` is the inbound event id, so a
redelivered event finds the work already done (or half done) instead of doing it twice, and
``processing.state`` moves forward only through conditional updates
(``stored → screened → replying → replied``, or ``skipped``), so two deliveries racing each
other cannot both advance it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.models import InboundMessage, OutboundMessage
from shared.store.mongo import unavailable_as_503

STORED, SCREENED, REPLYING, REPLIED, SKIPPED = (
    "stored",
    "screened",
    "replying",
    "replied",
    "skipped",
)
FINAL_STATES = frozenset({REPLIED, SKIPPED})


@dataclass(frozen=True)
class InsertResult:
    """What storing an inbound message found: a new document, or the one already there."""

    document: dict[str, Any] | None  # None when another event already stored this platform id
    created: bool
    duplicate_of: str | None = None  # the _id holding the same platform id


def inbound_document(event_id: str, message: InboundMessage, now: datetime) -> dict[str, Any]:
    data = message.to_dict()
    platform_id = data.pop("platform_message_id")
    timestamp = data.pop("timestamp")
    return {
        "_id": event_id,
        **data,
        "direction": "inbound",
        "channel_message_id": platform_id,
        # When the user sent it, which is what history is ordered by (see sent_at).
        "created_at": sent_at(parse_time(timestamp, default=now), now),
        "received_at": now,
        "processing": {
            "state": STORED,
            "reply_ids": [],
            "screening": None,
            "content": "withheld",  # until screened (shared.store.content)
            "updated_at": now,
        },
    }


def outbound_document(message: OutboundMessage, now: datetime) -> dict[str, Any]:
    data = message.to_dict()
    return {
        "_id": message.message_id,
        **data,
        "direction": "outbound",
        "created_at": parse_time(message.created_at, default=now),
        # No channel_message_id until the dispatcher has the provider's id: the unique
        # backstop index only covers documents where it is a string.
        "delivery": {
            "state": "pending",
            "attempts": 0,
            "provider_message_id": None,
            "error": None,
            "lease_until": None,
            "updated_at": now,
        },
    }


def sent_at(platform_time: datetime, received_at: datetime) -> datetime:
    """The platform's time, refined by our receipt within its second: Telegram, WhatsApp and
    Messenger stamp whole seconds, and a user's answer to a reply we sent earlier in the same
    second must not sort before that reply. Never before the platform's time, never later than
    the end of its second (a message redelivered hours later keeps its own time)."""
    end_of_second = platform_time + timedelta(milliseconds=999)
    return max(platform_time, min(received_at, end_of_second))


def parse_time(value: str, *, default: datetime) -> datetime:
    """An RFC 3339 time as an aware datetime; ``default`` when it is missing or unreadable
    (a bad platform timestamp must not make the message unprocessable)."""
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return default
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class MessageStore:
    def __init__(self, db: Any) -> None:
        self._messages = db["messages"]

    def insert_inbound(self, event_id: str, message: InboundMessage, now: datetime) -> InsertResult:
        """Store the message if it is new; on a redelivery return the stored document."""
        from pymongo import ReturnDocument
        from pymongo.errors import DuplicateKeyError

        document = inbound_document(event_id, message, now)
        with unavailable_as_503():
            try:
                # Insert-if-absent in one round trip: the document found (a redelivery), or
                # None when ours was inserted.
                existing = self._messages.find_one_and_update(
                    {"_id": event_id, "tenant_id": message.tenant_id},
                    {"$setOnInsert": _without_id(document, "tenant_id")},
                    upsert=True,
                    return_document=ReturnDocument.BEFORE,
                )
                if existing is None:
                    return InsertResult(document, created=True)
                return InsertResult(existing, created=False)
            except DuplicateKeyError:
                pass
            existing = self.get(message.tenant_id, event_id)
            if existing is not None:
                return InsertResult(existing, created=False)
            # Not our _id: the unique (tenant, channel, platform id) backstop fired, so another
            # event id carries the same platform message. It is handled (or being handled) there.
            other = self._messages.find_one(
                {
                    "tenant_id": message.tenant_id,
                    "channel": str(message.channel),
                    "channel_message_id": message.platform_message_id,
                },
                {"_id": 1},
            )
        return InsertResult(None, created=False, duplicate_of=other["_id"] if other else None)

    def get(self, tenant_id: str, message_id: str) -> dict[str, Any] | None:
        with unavailable_as_503():
            found: dict[str, Any] | None = self._messages.find_one(
                {"_id": message_id, "tenant_id": tenant_id}
            )
        return found

    def advance(
        self,
        tenant_id: str,
        message_id: str,
        *,
        from_states: Iterable[str],
        to_state: str,
        now: datetime,
        fields: dict[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """Move ``processing.state`` forward if it is still in ``from_states``.

        Returns the updated document, or None when another delivery moved it first (the caller
        re-reads and continues from there).
        """
        from pymongo import ReturnDocument

        update = {"processing.state": to_state, "processing.updated_at": now, **(fields or {})}
        with unavailable_as_503():
            updated: dict[str, Any] | None = self._messages.find_one_and_update(
                {
                    "_id": message_id,
                    "tenant_id": tenant_id,
                    "processing.state": {"$in": list(from_states)},
                },
                {"$set": update},
                return_document=ReturnDocument.AFTER,
            )
        return updated

    def mark(self, tenant_id: str, message_id: str, fields: dict[str, Any]) -> None:
        """Record steps done outside the state machine (``processing.recorded``, …)."""
        with unavailable_as_503():
            self._messages.update_one({"_id": message_id, "tenant_id": tenant_id}, {"$set": fields})

    def replied(
        self,
        tenant_id: str,
        message_id: str,
        replies: Sequence[OutboundMessage],
        now: datetime,
    ) -> bool:
        """``replying → replied``, and the replies stored as outbound documents where they are
        not yet (insert-if-absent, as :meth:`insert_outbound`), in one ``update`` command.
        True when this call moved the state (another delivery may have moved it first)."""
        from pymongo import UpdateOne

        operations = [
            UpdateOne(
                {"_id": message_id, "tenant_id": tenant_id, "processing.state": REPLYING},
                {"$set": {"processing.state": REPLIED, "processing.updated_at": now}},
            ),
            *(_insert_if_absent(message, now) for message in replies),
        ]
        with unavailable_as_503():
            result = self._messages.bulk_write(operations, ordered=True)
        # An outbound document already there is matched, not upserted: what is left of the
        # matched count is the inbound document's.
        found_outbound = len(replies) - len(result.upserted_ids)
        return bool(result.matched_count - found_outbound)

    def insert_outbound(self, messages: Sequence[OutboundMessage], now: datetime) -> int:
        """Insert the replies that are not stored yet; returns how many were new.

        Insert-if-absent: on a resumed turn the documents may exist already, and the
        dispatcher may have moved their delivery state on; they are never overwritten.
        """
        if not messages:
            return 0
        with unavailable_as_503():
            result = self._messages.bulk_write(
                [_insert_if_absent(message, now) for message in messages], ordered=True
            )
        return len(result.upserted_ids)


def _insert_if_absent(message: OutboundMessage, now: datetime) -> Any:
    from pymongo import UpdateOne

    return UpdateOne(
        {"_id": message.message_id, "tenant_id": message.tenant_id},
        {"$setOnInsert": _without_id(outbound_document(message, now), "tenant_id")},
        upsert=True,
    )


def _without_id(document: dict[str, Any], *also: str) -> dict[str, Any]:
    """The document without the fields an upsert's filter already sets."""
    return {key: value for key, value in document.items() if key not in ("_id", *also)}


def with_text(message: InboundMessage, text: str | None) -> InboundMessage:
    """The message with its text (and a caption repeating it) replaced: the redacted view."""
    if text == message.text:
        return message
    attachments = tuple(
        dataclasses.replace(a, caption=text) if a.caption and a.caption == message.text else a
        for a in message.attachments
    )
    return dataclasses.replace(message, text=text, attachments=attachments)
