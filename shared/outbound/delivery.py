"""The ``delivery`` sub-document of an outbound ``messages`` document (docs/data-model.md).

``delivery.state``: ``pending → sending → sent`` (then ``delivered → read`` by the status
tracker), or ``failed``. ``sending`` is a *lease*: the attempt that set it owns the send until
``lease_until``; ``attempts`` counts claims and doubles as the lease's fencing token, so an
attempt whose lease was taken over cannot clobber its successor's state. Every transition is
one conditional update on ``(_id, tenant_id, state…)``: two deliveries of the same event
cannot both claim it.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from shared.dataclass import dataclass
from shared.errors import BadRequest
from shared.models import OutboundMessage
from shared.store.bulk import Update, update_all
from shared.store.messages import REPLIED, REPLYING, outbound_document

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
    inbound_id: str | None = None  # the inbound document a bot reply answers
    turn_reply_ids: tuple[str, ...] = ()  # every reply of that turn


@dataclass(frozen=True)
class Recorded:
    """What recording a send found."""

    sent: bool  # False: another attempt had recorded its own send (a duplicate send)
    held: int  # statuses held for the provider id (shared.status): to apply now


class Deliveries:
    def __init__(self, db: Any) -> None:
        self._db = db
        self._messages = db["messages"]

    def claim(self, message: OutboundMessage, now: datetime, lease_s: float) -> Claim:
        """Take the send, in one round trip: a pending message, one whose previous attempt's
        lease ran out, or one not stored yet — created here, claimed (a bot reply of an earlier
        version's processor, which wrote the document after publishing). A document that is
        there but not claimable makes the upsert collide with its ``_id``: then it is read to
        say why (sent, failed, a live lease; or another tenant's id, which is poison)."""
        from pymongo import ReturnDocument
        from pymongo.errors import DuplicateKeyError

        lease_until = now + timedelta(seconds=lease_s)
        # This attempt's mark on the lease: an error from a claim the server did apply (seen
        # on the embedded server under load: a duplicate key reported for a matched upsert)
        # is told from another attempt's live lease by it.
        token = uuid.uuid4().hex

        def take() -> dict[str, Any] | None:
            try:
                found: dict[str, Any] | None = self._messages.find_one_and_update(
                    {
                        **_key(message),
                        # Pending (no lease: release and sent clear it) or a lease that ran
                        # out, said without a top-level $or: a server that plans by field (the
                        # embedded one) then finds the document by _id instead of scanning.
                        "delivery.state": {"$in": [PENDING, None, SENDING]},
                        "delivery.lease_until": {"$not": {"$gt": now}},
                    },
                    {
                        "$set": {
                            "delivery.state": SENDING,
                            "delivery.lease_until": lease_until,
                            "delivery.updated_at": now,
                            "delivery.claim": token,
                        },
                        "$inc": {"delivery.attempts": 1},
                        "$setOnInsert": _created(message, now),
                    },
                    upsert=True,
                    projection={"delivery": 1, "inbound_id": 1, "turn_reply_ids": 1},
                    return_document=ReturnDocument.AFTER,
                )
                return found
            except DuplicateKeyError:
                return None

        def granted(document: dict[str, Any]) -> Claim:
            attempts = int(document["delivery"].get("attempts") or 1)
            turn = tuple(document.get("turn_reply_ids") or ())
            return Claim(True, SENDING, attempts, lease_until, document.get("inbound_id"), turn)

        claimed = take()
        if claimed is not None:
            return granted(claimed)
        found = self._found(message)
        delivery = (found or {}).get("delivery") or {}
        if found is not None and delivery.get("claim") == token:  # ours after all
            return granted(found)
        if found is not None and _claimable(delivery, now):
            # The upsert collided with a document written at the same moment (an earlier
            # version's processor wrote it after its publish), which is claimable: take it now.
            claimed = take()
            if claimed is not None:
                return granted(claimed)
            found = self._found(message)
            delivery = (found or {}).get("delivery") or {}
            if found is not None and delivery.get("claim") == token:
                return granted(found)
        return Claim(
            False,
            delivery.get("state") if found else None,
            int(delivery.get("attempts") or 0),
            delivery.get("lease_until"),
        )

    def _found(self, message: OutboundMessage) -> dict[str, Any] | None:
        """The stored outbound document of ``message``; another tenant's id is poison."""
        found: dict[str, Any] | None = self._messages.find_one(
            {"_id": message.message_id},
            {"tenant_id": 1, "direction": 1, "delivery": 1, "inbound_id": 1, "turn_reply_ids": 1},
        )
        if found is not None and found.get("tenant_id") != message.tenant_id:
            raise BadRequest(
                f"message id {message.message_id} is not {message.tenant_id}'s",
                code="message_id_conflict",
            )
        if found is not None and found.get("direction") != "outbound":
            return None
        return found

    def release(
        self, message: OutboundMessage, claim: Claim, error: dict[str, Any], now: datetime
    ) -> bool:
        """Back to ``pending`` after a transient failure, for the retry to claim."""
        return self._finish(message, claim, PENDING, {"delivery.error": error}, now)

    def fail(
        self, message: OutboundMessage, claim: Claim, error: dict[str, Any], now: datetime
    ) -> bool:
        """The reply cannot be sent: done with all the same, as a sent one (:func:`_turn_done`)."""
        return self._finish(message, claim, FAILED, {"delivery.error": error}, now)

    def sent(
        self, message: OutboundMessage, claim: Claim, provider_id: str, now: datetime
    ) -> Recorded:
        """Record the send, in one ``bulkWrite`` command (:mod:`shared.store.bulk`) with the
        reply noted done on its inbound document (a bot reply: :func:`_turn_done`) and a look
        for statuses held for the provider id — after the send's own write, so a status the
        tracker holds later finds the provider id recorded (shared.status). Not fenced on the
        lease: whichever attempt got an answer first is recorded."""
        from shared.status import HOLDING

        key = channel_message_id(message.channel, message.chat_id, provider_id)
        fields: dict[str, Any] = {
            "delivery.state": SENT,
            "delivery.provider_message_id": provider_id,
            "delivery.error": None,
            "delivery.lease_until": None,
            "delivery.updated_at": now,
            "channel_message_id": key,
        }
        query = {**_key(message), "delivery.state": {"$in": [PENDING, SENDING]}}
        held = Update(
            HOLDING,
            {"tenant_id": message.tenant_id, "channel": message.channel, "channel_message_id": key},
            {"$set": {"send_recorded_at": now}},
            # One is enough to know (release_held finds them all); and a multi-document
            # update would make the whole command a write pymongo does not retry.
        )
        updates = [Update("messages", query, {"$set": fields}), *_turn_done(message, claim, now)]
        outcome = update_all(self._db, [*updates, held])
        if outcome.stopped_at == 0:
            # Another document holds this provider id (a provider that reused an id). The send
            # happened; record it without the lookup key rather than lose the outcome.
            del fields["channel_message_id"]
            updates[0] = Update("messages", query, {"$set": fields})
            outcome = update_all(self._db, [*updates, held])
        return Recorded(sent=outcome.matched(0) > 0, held=outcome.matched(len(updates)))

    def _finish(
        self,
        message: OutboundMessage,
        claim: Claim,
        state: str,
        fields: dict[str, Any],
        now: datetime,
    ) -> bool:
        finish = Update(
            "messages",
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
        done = _turn_done(message, claim, now) if state == FAILED else []
        return update_all(self._db, [finish, *done]).matched(0) > 0


def _turn_done(message: OutboundMessage, claim: Claim, now: datetime) -> list[Update]:
    """A bot reply is done with (sent or failed): noted on the inbound document it answers,
    which is ``replied`` once every reply of its turn is — a turn's replies are published
    together, but a publish that failed half way may have delivered only some of them, and
    a redelivery republishes the rest only while the turn is ``replying``."""
    if not claim.inbound_id:
        return []
    inbound = {"_id": claim.inbound_id, "tenant_id": message.tenant_id}
    replying = {**inbound, "processing.state": REPLYING}
    all_done = {**replying, "processing.done_ids": {"$all": list(claim.turn_reply_ids)}}
    return [
        Update("messages", replying, {"$addToSet": {"processing.done_ids": message.message_id}}),
        Update(
            "messages",
            all_done if claim.turn_reply_ids else replying,
            {"$set": {"processing.state": REPLIED, "processing.updated_at": now}},
        ),
    ]


def _key(message: OutboundMessage) -> dict[str, Any]:
    return {"_id": message.message_id, "tenant_id": message.tenant_id, "direction": "outbound"}


def _created(message: OutboundMessage, now: datetime) -> dict[str, Any]:
    """What a claim that creates the document sets besides the claim itself: the publisher's
    document (:func:`outbound_document`) without the filter's fields and the claimed ones."""
    document = outbound_document(message, now)
    delivery = document.pop("delivery")
    fields = {k: v for k, v in document.items() if k not in _key(message)}
    claimed = ("state", "lease_until", "updated_at", "attempts")
    return fields | {f"delivery.{k}": v for k, v in delivery.items() if k not in claimed}


def _claimable(delivery: dict[str, Any], now: datetime) -> bool:
    """What :meth:`Deliveries.claim`'s filter takes: pending or sending, without a lease that
    is still running."""
    if delivery.get("state") not in (PENDING, None, SENDING):
        return False
    lease_until = delivery.get("lease_until")
    if not isinstance(lease_until, datetime):
        return True
    if lease_until.tzinfo is None:
        lease_until = lease_until.replace(tzinfo=now.tzinfo)
    return lease_until <= now
