"""Delivery statuses of the replies we sent: a forward-only state machine.

    pending → sending → sent → delivered → read
                  ╲       ╲
                   failed ←┘   (delivered / read move on from failed too)

Platforms report statuses out of order and more than once (WhatsApp may skip ``delivered``
when delivery and read come together, and retries webhooks for days), so a status is applied
only if it moves the message forward: one conditional update whose filter lists the states it
may come from. A duplicate or a late status matches nothing and is counted as ``stale``.

Decisions:

- ``failed`` after ``delivered`` or ``read`` is ignored: the user has the message, a late
  failure cannot take that back. ``delivered``/``read`` after ``failed`` are applied: proof of
  delivery beats a failure report.
- A status for a provider id we do not know yet is **held** in ``pending_statuses`` (TTL
  :data:`HOLD_TTL_S`) instead of dropped: the dispatcher records the provider id only after the
  API answered, and a status may overtake that write. The dispatcher looks for held statuses
  in the command that records the send, after the send's own write
  (:meth:`shared.outbound.delivery.Deliveries.sent`), and applies what it found
  (:meth:`StatusTracker.release_held`); the tracker looks again right after holding one;
  whichever write comes second sees the other, so no status is lost to the race. Statuses
  for messages we never sent (another app on the same number) simply expire.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shared import metrics
from shared.caching import per_process
from shared.clock import Clock, system_clock
from shared.errors import BadRequest
from shared.eventfn import decode
from shared.events import MESSAGE_STATUS
from shared.handlers import EventFunction
from shared.models import DeliveryStatus, StatusUpdate, status_from_dict
from shared.outbound.delivery import channel_message_id
from shared.settings import get_settings
from shared.store.indexes import ensure_once
from shared.store.messages import parse_time
from shared.store.mongo import database, mongodb_reachable, unavailable_as_503

RANK = {"pending": 0, "sending": 1, "sent": 2, "delivered": 3, "read": 4}
HOLD_TTL_S = 7 * 24 * 3600  # as long as WhatsApp retries a webhook
HOLDING = "pending_statuses"


def allowed_previous(status: DeliveryStatus) -> tuple[str | None, ...]:
    """The states a message may be in for ``status`` to apply (None: no state recorded)."""
    if status is DeliveryStatus.FAILED:
        return (None, "pending", "sending", "sent")
    earlier = tuple(state for state, rank in RANK.items() if rank < RANK[status])
    if status in (DeliveryStatus.DELIVERED, DeliveryStatus.READ):
        return (None, *earlier, "failed")
    return (None, *earlier)


def moves_forward(current: str | None, status: DeliveryStatus) -> bool:
    return current in allowed_previous(status)


def status_error(update: StatusUpdate) -> dict[str, Any] | None:
    """``delivery.error`` for a failed status: the platform's first error, all of them kept."""
    if update.status is not DeliveryStatus.FAILED:
        return None
    first = update.errors[0] if update.errors else {}
    return {
        "code": str(first.get("code", "failed")),
        "message": str(first.get("title") or first.get("message") or "reported failed"),
        "provider_errors": list(update.errors),
    }


def parse_event(event: Any) -> StatusUpdate:
    return decode(event, status_from_dict, expected_type=MESSAGE_STATUS, what="a status")


class StatusTracker:
    def __init__(self, db: Any, clock: Clock = system_clock) -> None:
        self._db = db
        self._messages = db["messages"]
        self._holding = db[HOLDING]
        self._clock = clock

    def handle(self, event: Any) -> str:
        """One ``com.chatbot.message.status.v1`` event: ``applied``, ``stale`` or ``held``."""
        update = parse_event(event)
        with unavailable_as_503():
            ensure_once(self._db)
            result = self.apply(update)
        metrics.status_transitions.labels(update.channel, update.status, result).inc()
        return result

    def apply(self, update: StatusUpdate) -> str:
        now = self._now()
        if update.up_to is not None:
            return self._advance_up_to(update, now)
        provider_key = channel_message_id(
            update.channel, update.chat_id, update.platform_message_id
        )
        if self._advance(update.tenant_id, update.channel, provider_key, update, now):
            return "applied"
        if self._known(update.tenant_id, update.channel, provider_key):
            return "stale"
        self._hold(update, provider_key, now)
        if self._known(update.tenant_id, update.channel, provider_key):
            self.release_held(update.tenant_id, update.channel, provider_key)
        return "held"

    def release_held(self, tenant_id: str, channel: str, provider_key: str) -> int:
        """Apply the statuses held for a message now known; returns how many moved it on."""
        query = {
            "tenant_id": tenant_id,
            "channel": str(channel),
            "channel_message_id": provider_key,
        }
        held = sorted(self._holding.find(query), key=lambda d: RANK.get(d["status"], 99))
        applied = 0
        for document in held:
            update = status_from_dict(document["update"])
            applied += self._advance(tenant_id, channel, provider_key, update, self._now())
            self._holding.delete_one({"_id": document["_id"], "tenant_id": tenant_id})
        return applied

    def _advance(
        self, tenant_id: str, channel: str, provider_key: str, update: StatusUpdate, now: datetime
    ) -> bool:
        fields: dict[str, Any] = {"delivery.state": str(update.status), "delivery.updated_at": now}
        error = status_error(update)
        if error is not None:
            fields["delivery.error"] = error
        result = self._messages.update_one(
            {
                "tenant_id": tenant_id,
                "channel": str(channel),
                "channel_message_id": provider_key,
                "direction": "outbound",
                "delivery.state": {"$in": list(allowed_previous(update.status))},
            },
            {"$set": fields},
        )
        return bool(result.modified_count)

    def _advance_up_to(self, update: StatusUpdate, now: datetime) -> str:
        """A cumulative receipt: every reply of the conversation created up to ``up_to`` and
        already sent moves forward (one update; a pending reply is not delivered yet)."""
        if update.status not in (DeliveryStatus.DELIVERED, DeliveryStatus.READ):
            raise BadRequest(f"a cumulative {update.status} receipt means nothing")
        cutoff = parse_time(update.up_to or "", default=now)
        earlier = [state for state in ("sent", "delivered") if RANK[state] < RANK[update.status]]
        result = self._messages.update_many(
            {
                "tenant_id": update.tenant_id,
                "conversation_key": update.conversation_key,
                "direction": "outbound",
                "created_at": {"$lte": cutoff},
                "delivery.state": {"$in": earlier},
            },
            {"$set": {"delivery.state": str(update.status), "delivery.updated_at": now}},
        )
        return "applied" if result.modified_count else "stale"

    def _known(self, tenant_id: str, channel: str, provider_key: str) -> bool:
        query = {
            "tenant_id": tenant_id,
            "channel": str(channel),
            "channel_message_id": provider_key,
            "direction": "outbound",
        }
        return self._messages.find_one(query, {"_id": 1}) is not None

    def _hold(self, update: StatusUpdate, provider_key: str, now: datetime) -> None:
        key = f"{update.tenant_id}|{update.channel}|{provider_key}|{update.status}"
        document = {
            "channel": str(update.channel),
            "channel_message_id": provider_key,
            "status": str(update.status),
            "update": update.to_dict(),
            "received_at": now,
        }
        self._holding.update_one(
            {"_id": key, "tenant_id": update.tenant_id}, {"$setOnInsert": document}, upsert=True
        )

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)


@per_process
def get_tracker() -> StatusTracker:
    """The process's tracker; the MongoDB client connects on first use, not here."""
    return StatusTracker(database(get_settings()))


def health() -> dict[str, bool]:
    """The tracker needs MongoDB only (it never touches Redis)."""
    return {"mongodb": mongodb_reachable(get_settings().mongodb_uri)}


FUNCTION = EventFunction(
    name="status-tracker",
    handler=lambda: get_tracker().handle,
    health=health,
    required=("mongodb",),
    poison="store",
    uses=("core", "mongodb"),
)
