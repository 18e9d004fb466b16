"""outbound-dispatcher: one ``com.chatbot.message.outbound.v1`` event → one reply sent, once.

1. The outbound ``messages`` document is the idempotency record (its ``_id`` is the message
   id, which is the event id). If its ``delivery.state`` is already
   ``sent``/``delivered``/``read``/``failed``, the event is a redelivery: ``duplicate``, 200,
   nothing sent.
2. The send is claimed with a lease (``sending`` until ``lease_until``, ``attempts`` + 1) by
   one atomic ``find_one_and_update``, which also creates the document if the publisher has
   not stored it (yet). A redelivery that finds a live lease answers 429 with the lease's
   remaining time: the first attempt may still be waiting for the API.
3. Render, send, record: ``sent`` with the provider id (also as ``channel_message_id``, where
   the status tracker looks it up); a transient failure puts the message back to ``pending``
   with the error and answers 429/503, so KafkaSource retries; a permanent one records
   ``failed`` with the provider's error and answers 200 (retrying cannot help).

**The only window for a duplicate send** is between the request reaching the platform and
``sent`` being recorded: the process dies, MongoDB refuses the write, or the answer is lost
(read timeout, dropped connection, an unreadable 2xx). The outcome is then unknown, and none of
the three APIs takes an idempotency key, so we choose at-least-once: the lease expires (or the
transient error released it) and the next delivery sends again. The alternative — marking
such a message failed — would lose replies that were never sent. Everywhere else the lease and
the conditional updates make a second send impossible.
"""

from __future__ import annotations

import logging
import math
import time
from datetime import UTC, datetime
from typing import Any

from shared import metrics
from shared.caching import per_process
from shared.channels.registry import spec
from shared.clock import Clock, system_clock
from shared.dataclass import dataclass
from shared.errors import DependencyUnavailable, RateLimited
from shared.eventfn import decode
from shared.events import MESSAGE_OUTBOUND
from shared.handlers import EventFunction
from shared.models import OutboundMessage
from shared.outbound.api import Undeliverable
from shared.outbound.delivery import FINISHED, SENDING, Claim, Deliveries, channel_message_id
from shared.outbound.render import find_account, render
from shared.outbound.send import ChannelApi
from shared.settings import Settings, get_settings
from shared.status import StatusTracker
from shared.store.conversations import ConversationStore
from shared.store.indexes import ensure_once
from shared.store.mongo import database, unavailable_as_503
from shared.tenants import TenantDirectory, get_directory

log = logging.getLogger(__name__)

SERVICE = "outbound-dispatcher"
MIN_LEASE_S = 30.0


def parse_event(event: Any) -> OutboundMessage:
    return decode(
        event, OutboundMessage.from_dict, expected_type=MESSAGE_OUTBOUND, what="an outbound message"
    )


def lease_seconds(settings: Settings) -> float:
    """Longer than any one attempt can take: connect, write, read and pool timeouts each get
    ``channel_api_timeout_s``, so a live lease never expires under an attempt in flight."""
    return max(MIN_LEASE_S, 4 * settings.channel_api_timeout_s + 10)


@dataclass
class Dispatcher:
    settings: Settings
    tenants: TenantDirectory
    db: Any
    api: ChannelApi
    clock: Clock = system_clock

    def handle(self, event: Any) -> str:
        message = parse_event(event)
        account = find_account(message, self.tenants)
        with unavailable_as_503():
            return self._dispatch(message, account)

    def _dispatch(self, message: OutboundMessage, account: Any) -> str:
        ensure_once(self.db)
        deliveries = Deliveries(self.db)
        now = self._now()
        last_inbound_at = self._last_inbound_at(message, account, now)
        claim = deliveries.claim(message, now, lease_seconds(self.settings))
        if not claim.granted:
            return self._not_claimed(message, claim)
        started = time.perf_counter()
        try:
            provider_id = self._send(message, account, last_inbound_at, now)
        except Undeliverable as exc:
            observe_send(message, started, "failed", exc.code)
            deliveries.fail(message, claim, exc.to_dict(), self._now())
            log.warning(
                "reply undeliverable",
                extra={
                    "message_id": message.message_id,
                    "channel": message.channel,
                    "error": exc.code,
                    "reason": exc.message,
                },
            )
            return "failed"
        except (RateLimited, DependencyUnavailable) as exc:
            observe_send(message, started, "retry", exc.code)
            self._release(deliveries, message, claim, exc)
            raise
        observe_send(message, started, "sent", now_s=self.clock())
        recorded = deliveries.sent(message, claim, provider_id, self._now())
        if not recorded.sent:
            log.error(
                "reply sent twice: another attempt recorded its send first",
                extra={"message_id": message.message_id, "provider_message_id": provider_id},
            )
            return "duplicate_send"
        if not recorded.held:
            return "sent"
        # Statuses that overtook this write were held for it (see shared.status). The reply is
        # sent whatever happens here: a failure must not turn into a retry of the send.
        try:
            StatusTracker(self.db, self.clock).release_held(
                message.tenant_id,
                message.channel,
                channel_message_id(message.channel, message.chat_id, provider_id),
            )
        except Exception:
            log.exception("held statuses not released", extra={"message_id": message.message_id})
        return "sent"

    def _send(
        self,
        message: OutboundMessage,
        account: Any,
        last_inbound_at: datetime | None,
        now: datetime,
    ) -> str:
        deliver = spec(message.channel).outbound.deliver
        if deliver is not None:  # a channel without an API (web chat) delivers it itself
            return deliver(message, self.settings)
        request = render(message, account, self.settings, last_inbound_at=last_inbound_at, now=now)
        return self.api.send(request)

    def _not_claimed(self, message: OutboundMessage, claim: Claim) -> str:
        if claim.state in FINISHED:
            return "duplicate"
        wait_s = 1
        if claim.state == SENDING and claim.lease_until is not None:
            wait_s = max(1, math.ceil((claim.lease_until - self._now()).total_seconds()))
        # A live lease (or a claim racing ours): the other attempt may still be sending.
        raise RateLimited(
            f"message {message.message_id} is being sent by another attempt", retry_after_s=wait_s
        )

    def _release(
        self,
        deliveries: Deliveries,
        message: OutboundMessage,
        claim: Claim,
        exc: RateLimited | DependencyUnavailable,
    ) -> None:
        error = {"code": exc.code, "message": exc.message}
        try:
            deliveries.release(message, claim, error, self._now())
        except Exception:  # the lease runs out anyway; the retry status stands
            log.exception("delivery not released", extra={"message_id": message.message_id})

    def _last_inbound_at(
        self, message: OutboundMessage, account: Any, now: datetime
    ) -> datetime | None:
        """The user's last message, for a channel whose window is measured from it (WhatsApp,
        Messenger): the conversation's ``last_inbound_at``, unless the reply proves it needs no
        reading (:meth:`_answer_decides`)."""
        if not spec(message.channel).outbound.needs_last_inbound:
            return None
        answered = _time(message.in_reply_to_at)
        if answered is not None and self._answer_decides(message, account, answered, now):
            return answered
        conversation = ConversationStore(self.db).get(message.tenant_id, message.conversation_key)
        value = (conversation or {}).get("last_inbound_at")
        return value if isinstance(value, datetime) else None

    def _answer_decides(
        self, message: OutboundMessage, account: Any, answered: datetime, now: datetime
    ) -> bool:
        """Whether the reply renders alike for a last message at ``answered`` (the user's
        message it answers) and at ``now``. The conversation's ``last_inbound_at`` lies between
        the two — it counts the message answered (recorded before the reply was published, or
        read from it for an agent's reply), and a later message only moves it towards now —
        and a window is an age limit measured from it, so it would render alike too: the
        conversation need not be read. Outside a window, or near its end, it is read."""
        try:
            when_answered = render(
                message, account, self.settings, last_inbound_at=answered, now=now
            )
            just_now = render(message, account, self.settings, last_inbound_at=now, now=now)
        except Undeliverable:
            return False
        return when_answered == just_now

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)


def _time(value: str | None) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value) if value else None
    except ValueError:
        return None
    return parsed if parsed is None or parsed.tzinfo else parsed.replace(tzinfo=UTC)


def observe_send(
    message: OutboundMessage,
    started: float,
    outcome: str,
    code: str | None = None,
    *,
    now_s: float | None = None,
) -> None:
    """Count one send: its latency and outcome, the provider's error code, and once sent, the
    conversation's response time (the platform's timestamp of the message answered → now)."""
    metrics.channel_api_seconds.labels(message.channel, outcome).observe(
        time.perf_counter() - started
    )
    if code is not None:
        metrics.channel_api_errors.labels(message.channel, code).inc()
    elif message.in_reply_to_at:
        try:
            asked = datetime.fromisoformat(message.in_reply_to_at.replace("Z", "+00:00"))
        except ValueError:
            return
        response_s = max(0.0, (time.time() if now_s is None else now_s) - asked.timestamp())
        metrics.response_seconds.labels(message.channel, message.author).observe(response_s)


@per_process
def get_dispatcher() -> Dispatcher:
    """The process's dispatcher; clients connect on first use, not here."""
    settings = get_settings()
    return Dispatcher(
        settings, get_directory(), database(settings), ChannelApi(settings.channel_api_timeout_s)
    )


def health() -> dict[str, bool]:
    """MongoDB is required (no record, no send); Redis only carries live web chat replies."""
    from shared.cache import redis_reachable
    from shared.store.mongo import mongodb_reachable

    settings = get_settings()
    return {
        "mongodb": mongodb_reachable(settings.mongodb_uri),
        "redis": redis_reachable(settings.redis_url),
    }


FUNCTION = EventFunction(
    name=SERVICE,
    handler=lambda: get_dispatcher().handle,
    health=health,
    required=("mongodb",),
    poison="store",
    uses=("core", "redis", "mongodb", "tenants", "channel-apis"),
)
