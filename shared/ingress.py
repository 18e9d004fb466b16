"""What every channel webhook does once it has verified and parsed a request.

``publish`` takes the parsed messages and statuses, drops the ones already published (Redis
dedupe on the platform id), produces the rest to Kafka and waits for ``acks=all``, and only
then marks them as seen. A Kafka failure raises :class:`DependencyUnavailable` before any mark
is written, so the platform's retry publishes them again: nothing lost.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cloudevents.http import CloudEvent

from shared import events, logs, metrics
from shared.caching import per_process
from shared.clock import Clock, system_clock
from shared.idempotency import DedupeKey, Deduplicator, dedupe_key, sender_count_key
from shared.models import InboundMessage, StatusUpdate
from shared.ratelimit import WINDOW_S, ConversationLimiter, Decision, RateLimiter
from shared.settings import Settings, get_settings
from shared.tenants import TenantDirectory, get_directory

log = logging.getLogger(__name__)


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
        senders = {env[3].key: self._sender_count(env[0]) for env in unique}
        counters = sorted({c for c in senders.values() if c is not None})
        seen, counts = self.dedupe.read([key for *_, key in unique], counters)
        fresh = [env for env in unique if env[3].key not in seen]
        fresh = [self._route(env, senders[env[3].key], counts) for env in fresh]
        self.producer.publish([(topic, event) for _, topic, event, _ in fresh])
        counted = [c for env in fresh if (c := senders[env[3].key]) is not None]
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

    def _sender_count(self, item: InboundMessage | StatusUpdate) -> str | None:
        """The counter of the item's sender in this minute, for a message under a budget."""
        if not isinstance(item, InboundMessage) or self.settings.user_rate_limit_per_min <= 0:
            return None
        window = int(self.clock() // WINDOW_S)
        return sender_count_key(
            item.channel, item.tenant_id, item.account_id, item.sender.id, window
        )

    def _route(
        self,
        envelope: tuple[InboundMessage | StatusUpdate, str, CloudEvent, DedupeKey],
        counter: str | None,
        counts: dict[str, int],
    ) -> tuple[InboundMessage | StatusUpdate, str, CloudEvent, DedupeKey]:
        """A message of a sender already past their per-minute budget goes to the overflow
        topic, marked: stored and never answered (the processor would refuse it anyway), and
        no longer queued in front of the other conversations of its inbound partition."""
        if counter is None:
            return envelope
        sent = counts.get(counter, 0)
        counts[counter] = sent + 1  # the next message of this batch from the same sender
        if sent < self.settings.user_rate_limit_per_min:
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
