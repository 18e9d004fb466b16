"""The ``messages`` collection: one document per message, both directions (docs/data-model.md).

The inbound document is the processor's checkpoint. Its ``_id`` is the inbound event id, so a
redelivered event finds the work already done (or half done) instead of doing it twice, and
``processing.state`` moves forward only through conditional updates
(``stored → screened → replying → replied``, or ``skipped``), so two deliveries racing each
other cannot both advance it.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.dataclass import dataclass
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
    message: OutboundMessage,
    now: datetime,
    *,
    inbound_id: str | None = None,
    turn: Sequence[str] = (),
) -> dict[str, Any]:
    """A reply as stored. A bot reply names the inbound document it answers (``inbound_id``)
    and the ids of every reply of that turn (``turn_reply_ids``): the dispatcher marks the
    inbound ``replied`` once each of them is sent or failed. An agent's reply has neither."""
    data = message.to_dict()
    inbound = {"inbound_id": inbound_id, "turn_reply_ids": list(turn)} if inbound_id else {}
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
        when there are none) and this call's mark (``processing.answer``), the replies as
        outbound documents (insert-if-absent, each naming its inbound document and its turn's
        reply ids), on the conversation their count and, when the engine asked for it, the
        handoff. The checkpoint's update is a guard (see :mod:`shared.store.bulk`): False, and
        nothing written, when another delivery moved the checkpoint or stored an answer first,
        or when the message was erased meanwhile."""
        token = uuid.uuid4().hex
        updates = _answer_updates(
            message,
            event_id,
            from_states,
            {**fields, "processing.answer": token},
            replies,
            handoff,
            now,
        )
        outcome = update_all(self._db, updates)
        if outcome.stopped_at == 0:
            # Refused by the guard — unless the server applied it and answered a duplicate key
            # all the same (seen on the embedded server under load): then the mark is ours.
            stored = self.get(message.tenant_id, event_id) or {}
            if (stored.get("processing") or {}).get("answer") != token:
                return False
            self._finish_answer(message, replies, updates[1:])
            return True
        if outcome.stopped_at is not None:
            raise self._conflict(message, replies[outcome.stopped_at - 1])
        if outcome.applied[0].upserted:
            counted = bool(replies) and outcome.matched(1 + len(replies)) > 0
            self._take_back(message, event_id, replies, uncount=counted)
            return False
        return True

    def _finish_answer(
        self, message: InboundMessage, replies: Sequence[OutboundMessage], rest: list[Update]
    ) -> None:
        """The answer's updates after the guard, when the guard's own answer was lost: the
        replies (insert-if-absent), then the conversation's — only if a reply was still
        missing, since a command that got that far had counted them already."""
        inserted = update_all(self._db, rest[: len(replies)])
        if inserted.stopped_at is not None:
            raise self._conflict(message, replies[inserted.stopped_at])
        if not replies or any(applied.upserted for applied in inserted.applied):
            update_all(self._db, rest[len(replies) :])

    def _conflict(self, message: InboundMessage, reply: OutboundMessage) -> Exception:
        """A reply's insert-if-absent collided with its ``_id``: poison if the document is
        another tenant's (retrying cannot change that), else a fault to retry."""
        with unavailable_as_503():
            owner = self._messages.find_one({"_id": reply.message_id}, {"tenant_id": 1})
        if owner is not None and owner.get("tenant_id") != message.tenant_id:
            return BadRequest(
                f"message id {reply.message_id} is another tenant's", code="message_id_conflict"
            )
        return RuntimeError(f"storing reply {reply.message_id} collided; retry")

    def _take_back(
        self,
        message: InboundMessage,
        event_id: str,
        replies: Sequence[OutboundMessage],
        *,
        uncount: bool,
    ) -> None:
        """The inbound document was gone (erased under the turn), so the guard inserted one:
        remove it and the replies, and uncount them if the count was applied (a handoff the
        answer asked for stays)."""
        with unavailable_as_503():
            ids = [event_id, *(reply.message_id for reply in replies)]
            self._messages.delete_many({"_id": {"$in": ids}, "tenant_id": message.tenant_id})
            if uncount:
                self._db["conversations"].update_one(
                    {"_id": message.conversation_key, "tenant_id": message.tenant_id},
                    {"$inc": {"message_count": -len(replies)}},
                )

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


def _answer_updates(
    message: InboundMessage,
    event_id: str,
    from_states: Iterable[str],
    fields: dict[str, Any],
    replies: Sequence[OutboundMessage],
    handoff: bool,
    now: datetime,
) -> list[Update]:
    from shared.store import conversations as conv  # it imports this module

    tenant_id = message.tenant_id
    checkpoint = {
        "processing.state": REPLYING if replies else REPLIED,
        "processing.updated_at": now,
        **fields,
    }
    guard = Update(
        "messages",
        {
            "_id": event_id,
            "tenant_id": tenant_id,
            "processing.state": {"$in": [*from_states]},
            "processing.answer": {"$exists": False},
        },
        {
            "$set": checkpoint,
            # Only if the message was erased meanwhile (the guard then inserts): what an
            # erase looks it up by, should taking it back fail.
            "$setOnInsert": {
                "direction": "inbound",
                "channel": str(message.channel),
                "conversation_key": message.conversation_key,
                "sender.id": message.sender.id,
            },
        },
        upsert=True,  # the guard: collides with our _id unless the filter matched
    )
    turn = [reply.message_id for reply in replies]
    updates = [guard, *(_insert_if_absent(r, now, inbound_id=event_id, turn=turn) for r in replies)]
    conversation = {"_id": message.conversation_key, "tenant_id": tenant_id}
    if replies:
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
    return updates


def _insert_if_absent(
    message: OutboundMessage,
    now: datetime,
    inbound_id: str | None = None,
    turn: Sequence[str] = (),
) -> Update:
    document = outbound_document(message, now, inbound_id=inbound_id, turn=turn)
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
