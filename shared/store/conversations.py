"""The ``conversations`` collection (docs/data-model.md): one document per conversation key.

The processor counts a message here only when it stored the message document for the first
time, so a redelivery never counts twice. Times only move forward (``$max``): events of one
conversation arrive in order, but a retried event may be older than one already handled.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.models import InboundMessage
from shared.store.messages import parse_time
from shared.store.mongo import unavailable_as_503

OPEN, HANDOFF, CLOSED = "open", "handoff", "closed"


def outbound_update(count: int, now: datetime) -> dict[str, Any]:
    """``count`` replies more in a conversation (the bot's go with its turn's write,
    :meth:`shared.store.messages.MessageStore.reply`)."""
    return {
        "$inc": {"message_count": count},
        "$max": {"last_message_at": now},
        "$set": {"updated_at": now},
    }


class ConversationStore:
    def __init__(self, db: Any) -> None:
        self._conversations = db["conversations"]

    def record_inbound(self, message: InboundMessage, now: datetime) -> dict[str, Any]:
        """Create the conversation (state ``open``) or count one more user message in it."""
        sent_at = parse_time(message.timestamp, default=now)
        participant = {"participant.id": message.sender.id}
        if message.sender.name:  # a platform that omits the name keeps the one we know
            participant["participant.name"] = message.sender.name
        update = {
            "$setOnInsert": {
                "channel": str(message.channel),
                "account_id": message.account_id,
                "chat_id": message.chat_id,
                "conversation_id": message.conversation_id,
                "state": OPEN,
                "created_at": now,
            },
            "$set": {**participant, "updated_at": now},
            "$max": {"last_message_at": sent_at, "last_inbound_at": sent_at},
            "$inc": {"message_count": 1},
        }
        return self._upsert(message.tenant_id, message.conversation_key, update)

    def ensure(self, message: InboundMessage, now: datetime) -> dict[str, Any]:
        """The conversation of a redelivered message; created (and counted) if a crash came
        between storing the message and recording it here."""
        existing = self.get(message.tenant_id, message.conversation_key)
        return existing if existing is not None else self.record_inbound(message, now)

    def record_outbound(self, tenant_id: str, key: str, count: int, now: datetime) -> None:
        """Count replies stored outside a bot turn (an agent's, by its writer)."""
        if count <= 0:
            return
        with unavailable_as_503():
            self._conversations.update_one(
                {"_id": key, "tenant_id": tenant_id}, outbound_update(count, now)
            )

    def get(self, tenant_id: str, key: str) -> dict[str, Any] | None:
        with unavailable_as_503():
            found: dict[str, Any] | None = self._conversations.find_one(
                {"_id": key, "tenant_id": tenant_id}
            )
        return found

    def change_state(
        self, tenant_id: str, key: str, *, from_state: str, to_state: str, now: datetime
    ) -> bool:
        """``from_state → to_state`` if the conversation is still in ``from_state`` (an agent
        may have changed it meanwhile; their change wins)."""
        with unavailable_as_503():
            result = self._conversations.update_one(
                {"_id": key, "tenant_id": tenant_id, "state": from_state},
                {"$set": {"state": to_state, "updated_at": now}},
            )
        return bool(result.modified_count)

    def _upsert(self, tenant_id: str, key: str, update: dict[str, Any]) -> dict[str, Any]:
        from pymongo import ReturnDocument
        from pymongo.errors import DuplicateKeyError

        def upsert() -> dict[str, Any]:
            document: dict[str, Any] = self._conversations.find_one_and_update(
                {"_id": key, "tenant_id": tenant_id},
                update,
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
            return document

        with unavailable_as_503():
            try:
                return upsert()
            except DuplicateKeyError:
                # Two first messages of one conversation raced to insert it; the retry finds
                # the winner's document and updates it (MongoDB's documented upsert pattern).
                return upsert()
