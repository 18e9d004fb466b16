"""The ``delivery`` sub-document of an outbound ``messages`` document (docs/data-model.md).

``delivery.state``: ``pending → sending → sent`` (then ``delivered → read`` by the status
tracker), or ``failed``. ``sending`` is a *lease*: the attempt that set it owns the send until
``lease_until``; ``attempts`` counts claims and doubles as the lease's fencing token, so an
attempt whose lease was taken over cannot clobber its successor's state. Every transition is
one conditional update on ``(_id, tenant_id, state…)``: two deliveries of the same event
cannot both claim it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.errors import BadRequest
from shared.models import OutboundMessage
from shared.store.messages import outbound_document

PENDING, SENDING, SENT, FAILED = "pending", "sending", "sent", "failed"
# Done as far as sending goes: a redelivery of the event is a no-op.
FINISHED = ("sent", "delivered", "read", "failed")


def channel_message_id(channel: str, chat_id: str, provider_id: str) -> str:
    """The provider id as stored in ``channel_message_id`` (unique per tenant and channel).

    A WhatsApp wamid is globally unique, but a Slack ``ts`` is only unique within its channel
    and a Telegram ``message_id`` within its chat: a channel declaring
    ``ids_unique_per_chat`` has its ids qualified with the chat.
    """
    from shared.channels.registry import spec

    if spec(channel).outbound.ids_unique_per_chat:
        return f"{chat_id}/{provider_id}"
    return provider_id


@dataclass(frozen=True)
class Claim:
    granted: bool
    state: str | None  # the state found when not granted (None: the document is gone)
    attempts: int = 0
    lease_until: datetime | None = None


class Deliveries:
    def __init__(self, db: Any) -> None:
        self._messages = db["messages"]

    def ensure(self, message: OutboundMessage, now: datetime) -> None:
        """The outbound document, created if the publisher did not store one (e.g. an agent's
        reply). Never overwritten: it may already be further along."""
        from pymongo.errors import DuplicateKeyError

        document = outbound_document(message, now)
        key = {"_id": document.pop("_id"), "tenant_id": document.pop("tenant_id")}
        try:
            self._messages.update_one(key, {"$setOnInsert": document}, upsert=True)
        except DuplicateKeyError as exc:  # the id exists under another tenant
            raise BadRequest(
                f"message id {message.message_id} is not {message.tenant_id}'s",
                code="message_id_conflict",
            ) from exc

    def claim(self, message: OutboundMessage, now: datetime, lease_s: float) -> Claim:
        """Take the send: a pending message, or one whose previous attempt's lease ran out."""
        from pymongo import ReturnDocument

        lease_until = now + timedelta(seconds=lease_s)
        claimed = self._messages.find_one_and_update(
            {
                **_key(message),
                "$or": [
                    {"delivery.state": {"$in": [PENDING, None]}},
                    {"delivery.state": SENDING, "delivery.lease_until": {"$lte": now}},
                ],
            },
            {
                "$set": {
                    "delivery.state": SENDING,
                    "delivery.lease_until": lease_until,
                    "delivery.updated_at": now,
                },
                "$inc": {"delivery.attempts": 1},
            },
            projection={"delivery": 1},
            return_document=ReturnDocument.AFTER,
        )
        if claimed is not None:
            return Claim(True, SENDING, int(claimed["delivery"]["attempts"]), lease_until)
        found = self._messages.find_one(_key(message), {"delivery": 1})
        delivery = (found or {}).get("delivery") or {}
        return Claim(
            False,
            delivery.get("state") if found else None,
            int(delivery.get("attempts") or 0),
            delivery.get("lease_until"),
        )

    def release(
        self, message: OutboundMessage, claim: Claim, error: dict[str, Any], now: datetime
    ) -> bool:
        """Back to ``pending`` after a transient failure, for the retry to claim."""
        return self._finish(message, claim, PENDING, {"delivery.error": error}, now)

    def fail(
        self, message: OutboundMessage, claim: Claim, error: dict[str, Any], now: datetime
    ) -> bool:
        return self._finish(message, claim, FAILED, {"delivery.error": error}, now)

    def sent(self, message: OutboundMessage, provider_id: str, now: datetime) -> bool:
        """Record the send. Not fenced on the lease: whichever attempt got an answer first is
        recorded; False means another attempt already recorded its own (a duplicate send)."""
        from pymongo.errors import DuplicateKeyError

        fields: dict[str, Any] = {
            "delivery.state": SENT,
            "delivery.provider_message_id": provider_id,
            "delivery.error": None,
            "delivery.lease_until": None,
            "delivery.updated_at": now,
            "channel_message_id": channel_message_id(message.channel, message.chat_id, provider_id),
        }
        query = {**_key(message), "delivery.state": {"$in": [PENDING, SENDING]}}
        try:
            result = self._messages.update_one(query, {"$set": fields})
        except DuplicateKeyError:
            # Another document holds this provider id (a provider that reused an id). The send
            # happened; record it without the lookup key rather than lose the outcome.
            del fields["channel_message_id"]
            result = self._messages.update_one(query, {"$set": fields})
        return bool(result.modified_count)

    def _finish(
        self,
        message: OutboundMessage,
        claim: Claim,
        state: str,
        fields: dict[str, Any],
        now: datetime,
    ) -> bool:
        result = self._messages.update_one(
            {**_key(message), "delivery.state": SENDING, "delivery.attempts": claim.attempts},
            {
                "$set": {
                    "delivery.state": state,
                    "delivery.lease_until": None,
                    "delivery.updated_at": now,
                    **fields,
                }
            },
        )
        return bool(result.modified_count)


def _key(message: OutboundMessage) -> dict[str, Any]:
    return {"_id": message.message_id, "tenant_id": message.tenant_id, "direction": "outbound"}
