"""The message processor of this process, built from the settings on the first event.

Nothing here runs at import: the MongoDB, Redis, Kafka and gRPC clients are created on the
first event, in the worker (after gunicorn forks — none of these clients is fork-safe), and the
gRPC modules (generated stubs, grpcio) are imported then too, because import time is cold-start
time.
"""

from __future__ import annotations

from shared.bot.breaker import CircuitBreaker
from shared.bot.processor import MessageProcessor
from shared.bot.session import SessionCache
from shared.caching import per_process
from shared.handlers import EventFunction
from shared.ratelimit import RateLimiter
from shared.settings import Settings, get_settings
from shared.store.conversations import ConversationStore
from shared.store.indexes import ensure_once
from shared.store.messages import MessageStore
from shared.store.mongo import database

FALLBACK_RULES = "fallback_rules.json"  # packaged in shared/bot; FALLBACK_RULES_FILE overrides


@per_process
def get_processor() -> MessageProcessor:
    from shared.bot.rules import RuleEngine, load_rules
    from shared.grpc.engine_client import EngineClient
    from shared.grpc.security_client import SecurityHubClient
    from shared.kafka import EventProducer

    settings = get_settings()
    db = database(settings)
    fallback = None
    if settings.fallback_enabled:
        # A broken rules file fails here, on the first event (500, retried), and says which
        # file; waiting for the engine's first outage to find out would be worse.
        fallback = RuleEngine(load_rules(settings.fallback_rules_file or None, FALLBACK_RULES))
    breaker = CircuitBreaker(
        EngineClient(settings),
        settings.redis_url,
        failures=settings.engine_breaker_failures,
        open_s=settings.engine_breaker_open_s,
    )
    return MessageProcessor(
        settings=settings,
        messages=MessageStore(db),
        conversations=ConversationStore(db),
        limiter=RateLimiter(
            settings.redis_url,
            tenant_per_min=settings.tenant_rate_limit_per_min,
            user_per_min=settings.user_rate_limit_per_min,
            channel_tenant_per_min=channel_budgets(settings),
        ),
        # The breaker's state is read with the session's context: one round trip for both.
        sessions=SessionCache(settings.redis_url, circuit=breaker),
        hub=SecurityHubClient(settings),
        engine=breaker,
        producer=EventProducer(settings),
        fallback=fallback,
        prepare=lambda: ensure_once(db),
    )


def channel_budgets(settings: Settings) -> dict[str, int]:
    """Channels whose turns count against a tenant budget of their own, not the shared one:
    web chat's visitors are anonymous, and a flood of them must not silence the tenant's users
    on the other channels."""
    return {"webchat": settings.webchat_tenant_rate_limit_per_min}


def health() -> dict[str, bool]:
    """MongoDB and Kafka are required (no checkpoint, no reply); Redis only holds the
    rate-limit counters and the session cache, both of which degrade without it."""
    from shared.cache import redis_reachable
    from shared.kafka import brokers_reachable
    from shared.store.mongo import mongodb_reachable

    settings = get_settings()
    return {
        "mongodb": mongodb_reachable(settings.mongodb_uri),
        "kafka": brokers_reachable(settings.kafka_brokers),
        "redis": redis_reachable(settings.redis_url),
    }


FUNCTION = EventFunction(
    name="message-processor",
    handler=lambda: get_processor().handle_event,
    health=health,
    required=("mongodb", "kafka"),
    poison="store",
    uses=("core", "kafka", "redis", "mongodb", "bot"),
)
