"""What every channel webhook does once it has verified and parsed a request.

``publish`` takes the parsed messages and statuses, drops the ones already published (Redis
dedupe on the platform id), produces the rest to Kafka and waits for ``acks=all``, and only
then marks them as seen. A Kafka failure raises :class:`DependencyUnavailable` before any mark
is written, so the platform's retry publishes them again: nothing lost.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

from cloudevents.http import CloudEvent

from shared import events, logs, metrics
from shared.caching import per_process
from shared.clock import Clock, system_clock
from shared.dataclass import dataclass
from shared.idempotency import DedupeKey, Deduplicator, dedupe_key, sender_count_key
from shared.models import InboundMessage, StatusUpdate
from shared.ratelimit import WINDOW_S, ConversationLimiter, Decision, RateLimiter
from shared.settings import Settings, get_settings
from shared.tenants import TenantDirectory, get_directory

log = logging.getLogger(__name__)
BURST_WINDOW_S = 10  # a sender's burst budget (USER_BURST_PER_10S) counts in these windows


class Producer(Protocol):
    def publish(self, events: Sequence[tuple[str, CloudEvent]]) -> None: ...


class Dedupe(Protocol):
    def read(
        self, keys: Sequence[DedupeKey], counts: Sequence[str] = ()
    ) -> tuple[set[str], dict[str, int]]: ...

    def mark(self, keys: Any, counts: Sequence[str] = ()) -> bool: ...


@dataclass(frozen=True)
class PublishReport:
    published: int
    duplicates: int

    @property
    def outcome(self) -> str:
        if self.published:
            return "accepted"
        return "duplicate" if self.duplicates else "ignored"


class Limiter(Protocol):
    def check(self, tenant_id: str, channel: str, user_id: str) -> Decision: ...


class MessageLimiter(Protocol):
    def check(self, conversation_key: str, site_key: str, client: str) -> Decision: ...


@dataclass
class Ingress:
    settings: Settings
    tenants: TenantDirectory
    producer: Producer
    dedupe: Dedupe
    clock: Clock = system_clock
    session_limiter: Limiter | None = None  # web chat sessions per site and per client
    message_limiter: MessageLimiter | None = None  # web chat messages per conversation, client

    def publish(
        self, channel: str, items: Sequence[InboundMessage | StatusUpdate], *, ttl_s: int
    ) -> PublishReport:
        tenants = sorted({item.tenant_id for item in items})
        logs.annotate(tenant=",".join(tenants) if tenants else None)
        envelopes = [(item, *self._envelope(item, ttl_s)) for item in items]
        # A batch may repeat an item (WhatsApp resends whole batches); keep the first of each.
        unique = list({env[3].key: env for env in envelopes}.values())
        senders = {env[3].key: self._sender_counts(env[0]) for env in unique}
        counters = sorted({c for budget in senders.values() for c, _ in budget})
        seen, counts = self.dedupe.read([key for *_, key in unique], counters)
        fresh = [env for env in unique if env[3].key not in seen]
        fresh = [self._route(env, senders[env[3].key], counts) for env in fresh]
        self.producer.publish([(topic, event) for _, topic, event, _ in fresh])
        counted = [c for env in fresh for c, _ in senders[env[3].key]]
        self.dedupe.mark([key for *_, key in fresh], counted)
        for item, topic, event, _ in fresh:
            metrics.events_published.labels(channel, event["type"]).inc()
            if isinstance(item, InboundMessage):
                metrics.messages_received.labels(item.tenant_id, channel, str(item.kind)).inc()
            log.info(
                "event published",
                extra={
                    "event_id": event["id"],
                    "event_type": event["type"],
                    "channel": channel,
                    "tenant": item.tenant_id,
                    "topic": topic,
                },
            )
        duplicates = len(envelopes) - len(fresh)
        if duplicates:
            metrics.events_deduplicated.labels(channel).inc(duplicates)
        return PublishReport(published=len(fresh), duplicates=duplicates)

    def _sender_counts(self, item: InboundMessage | StatusUpdate) -> list[tuple[str, int]]:
        """The counters of the item's sender that hold it to a budget, each with its limit:
        this minute's, and this 10-second window's (the burst)."""
        if not isinstance(item, InboundMessage):
            return []
        now = self.clock()
        budgets = [(WINDOW_S, self.settings.user_rate_limit_per_min)]
        if self.settings.user_rate_limit_per_min > 0:
            budgets.append((BURST_WINDOW_S, self.settings.user_burst_per_10s))
        ids = (item.channel, item.tenant_id, item.account_id, item.sender.id)
        return [
            (sender_count_key(*ids, int(now // span), span), limit)
            for span, limit in budgets
            if limit > 0
        ]

    def _route(
        self,
        envelope: tuple[InboundMessage | StatusUpdate, str, CloudEvent, DedupeKey],
        budgets: list[tuple[str, int]],
        counts: dict[str, int],
    ) -> tuple[InboundMessage | StatusUpdate, str, CloudEvent, DedupeKey]:
        """A message of a sender already past a budget (per minute, or the burst of a 10-second
        window) goes to the overflow topic, marked: stored and never answered, and not queued
        in front of the other conversations of its inbound partition."""
        over = False
        for counter, limit in budgets:
            sent = counts.get(counter, 0)
            counts[counter] = sent + 1  # the next message of this batch from the same sender
            over = over or sent >= limit
        if not over:
            return envelope
        item, _, event, key = envelope
        event[events.OVERFLOW_ATTRIBUTE] = events.OVERFLOW_RATE_LIMITED
        return item, self.settings.overflow_topic, event, key

    def _envelope(
        self, item: InboundMessage | StatusUpdate, ttl_s: int
    ) -> tuple[str, CloudEvent, DedupeKey]:
        if isinstance(item, StatusUpdate):
            key = dedupe_key(
                item.channel,
                item.tenant_id,
                item.account_id,
                item.platform_message_id,
                item.status,
                ttl_s=ttl_s,
            )
            return self.settings.status_topic, events.status_changed(item), key
        key = dedupe_key(
            item.channel, item.tenant_id, item.account_id, item.platform_message_id, ttl_s=ttl_s
        )
        return self.settings.inbound_topic, events.message_received(item), key


@per_process
def get_ingress() -> Ingress:
    """The process's ingress, built on first request (after gunicorn forked the worker)."""
    from shared.kafka import EventProducer

    settings = get_settings()
    return Ingress(
        settings=settings,
        tenants=get_directory(),
        producer=EventProducer(settings),
        dedupe=Deduplicator(settings.redis_url),
        session_limiter=RateLimiter(
            settings.redis_url,
            tenant_per_min=settings.webchat_sessions_per_site_per_min,
            user_per_min=settings.webchat_sessions_per_client_per_min,
            prefix="sessions",
        ),
        message_limiter=ConversationLimiter(
            settings.redis_url,
            per_conversation=settings.webchat_messages_per_conversation_per_min,
            per_client=settings.webchat_messages_per_client_per_min,
        ),
    )


def health() -> dict[str, bool]:
    """Kafka is required (no ack, no 2xx); Redis only saves duplicate events."""
    from shared.cache import redis_reachable
    from shared.kafka import brokers_reachable

    settings = get_settings()
    return {
        "kafka": brokers_reachable(settings.kafka_brokers),
        "redis": redis_reachable(settings.redis_url),
    }
