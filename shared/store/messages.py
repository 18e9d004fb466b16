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

from shared.errors import BadRequest
from shared.models import InboundMessage, OutboundMessage
from shared.store.bulk import Update, update_all
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


def outbound_document(
    message: OutboundMessage, now: datetime, *, inbound_id: str | None = None
) -> dict[str, Any]:
    """A reply as stored; ``inbound_id``: the inbound document it answers (a bot reply), which
    the dispatcher marks ``replied`` when it records the send (an agent's reply has none)."""
    data = message.to_dict()
    inbound = {"inbound_id": inbound_id} if inbound_id else {}
    return {
        "_id": message.message_id,
        **data,
        **inbound,
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
        self._db = db
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

    def reply(
        self,
        message: InboundMessage,
        event_id: str,
        *,
        from_states: Iterable[str],
        fields: dict[str, Any],
        replies: Sequence[OutboundMessage],
        handoff: bool,
        now: datetime,
    ) -> bool:
        """The turn's answer, before it is published, in one ``bulkWrite`` command
        (:mod:`shared.store.bulk`): the checkpoint to ``replying`` with the replies (``replied``
        when there are none), the replies as outbound documents (insert-if-absent, each naming
        its inbound document), and on the conversation their count and, when the engine asked
        for it, the handoff. False when another delivery moved the checkpoint first: then
        nothing is written (the checkpoint's update is a guard, see the module of
        :func:`~shared.store.bulk.update_all`)."""
        from shared.store import conversations as conv  # it imports this module

        tenant_id, key, states = message.tenant_id, message.conversation_key, from_states
        state = REPLYING if replies else REPLIED
        checkpoint = {"processing.state": state, "processing.updated_at": now, **fields}
        updates = [
            Update(
                "messages",
                {"_id": event_id, "tenant_id": tenant_id, "processing.state": {"$in": [*states]}},
                {"$set": checkpoint},
                upsert=True,  # the guard: collides with our _id unless the filter matched
            ),
            *(_insert_if_absent(reply, now, inbound_id=event_id) for reply in replies),
        ]
        if replies:
            conversation = {"_id": key, "tenant_id": tenant_id}
            updates.append(
                Update("conversations", conversation, conv.outbound_update(len(replies), now))
            )
            if handoff:
                # After the replies are stored, so the "connecting you to a human" part is sent.
                updates.append(
                    Update(
                        "conversations",
                        {**conversation, "state": conv.OPEN},
                        {"$set": {"state": conv.HANDOFF, "updated_at": now}},
                    )
                )
        outcome = update_all(self._db, updates)
        if outcome.stopped_at == 0:
            return False
        if outcome.stopped_at is not None:
            raise RuntimeError(f"the answer's write stopped at update {outcome.stopped_at}")
        if outcome.applied[0].upserted:
            # The inbound document was gone (erased under us): take back what was just written.
            ids = [event_id, *(reply.message_id for reply in replies)]
            with unavailable_as_503():
                self._messages.delete_many({"_id": {"$in": ids}, "tenant_id": tenant_id})
            return False
        return True

    def insert_outbound(self, messages: Sequence[OutboundMessage], now: datetime) -> int:
        """Insert the replies that are not stored yet; returns how many were new.

        Insert-if-absent: on a resumed turn the documents may exist already, and the
        dispatcher may have moved their delivery state on; they are never overwritten.
        """
        outcome = update_all(self._db, [_insert_if_absent(message, now) for message in messages])
        if outcome.stopped_at is not None:  # the id is another tenant's
            raise BadRequest(
                f"message id {messages[outcome.stopped_at].message_id} is taken",
                code="message_id_conflict",
            )
        return sum(applied.upserted for applied in outcome.applied)


def _insert_if_absent(
    message: OutboundMessage, now: datetime, inbound_id: str | None = None
) -> Update:
    document = outbound_document(message, now, inbound_id=inbound_id)
    return Update(
        "messages",
        {"_id": message.message_id, "tenant_id": message.tenant_id},
        {"$setOnInsert": _without_id(document, "tenant_id")},
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
