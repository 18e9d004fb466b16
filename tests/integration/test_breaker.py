"""The engine circuit breaker against a real Redis (the engine itself is a stand-in here;
the processor's integration tests use the real reference engine)."""

from __future__ import annotations

import pytest

from shared.bot.breaker import CircuitBreaker
from shared.bot.ports import ConversationContext, EngineReply, ReplyPart
from shared.devstack import servers
from shared.errors import DependencyUnavailable
from shared.models import Channel, InboundMessage, MessageKind, Sender

pytestmark = pytest.mark.integration

CONTEXT = ConversationContext("acme", "whatsapp", "acme:whatsapp:1/2")
MESSAGE = InboundMessage(
    "acme",
    Channel("whatsapp"),
    "1",
    "2",
    "wamid.1",
    Sender("2"),
    MessageKind.TEXT,
    "2025-01-01T00:00:00Z",
    "hi",
)


class FlakyEngine:
    def __init__(self) -> None:
        self.up = False
        self.calls = 0

    def generate_reply(self, context: ConversationContext, message: InboundMessage) -> EngineReply:
        self.calls += 1
        if not self.up:
            raise DependencyUnavailable("engine down", dependency="mcp-engine")
        return EngineReply((ReplyPart("hello"),))


def test_opens_after_repeated_failures_and_is_shared_through_redis(redis_url: str) -> None:
    engine = FlakyEngine()
    breaker = CircuitBreaker(engine, redis_url, failures=3, open_s=30)
    for _ in range(3):
        with pytest.raises(DependencyUnavailable):
            breaker.generate_reply(CONTEXT, MESSAGE)
    assert engine.calls == 3

    # Open: no more calls to the engine, from this breaker or another replica's.
    other_replica = CircuitBreaker(engine, redis_url, failures=3, open_s=30)
    for candidate in (breaker, other_replica):
        with pytest.raises(DependencyUnavailable, match="circuit is open"):
            candidate.generate_reply(CONTEXT, MESSAGE)
    assert engine.calls == 3


def test_half_open_success_closes_the_circuit(redis_url: str) -> None:
    import redis

    engine = FlakyEngine()
    breaker = CircuitBreaker(engine, redis_url, failures=2, open_s=30)
    for _ in range(2):
        with pytest.raises(DependencyUnavailable):
            breaker.generate_reply(CONTEXT, MESSAGE)
    assert breaker.is_open()
    redis.Redis.from_url(redis_url).delete("breaker:mcp-engine:open")  # the open period ends
    engine.up = True

    assert breaker.generate_reply(CONTEXT, MESSAGE).parts[0].text == "hello"
    assert not breaker.is_open()
    # The failure count restarted: one new failure does not reopen it.
    engine.up = False
    with pytest.raises(DependencyUnavailable, match="engine down"):
        breaker.generate_reply(CONTEXT, MESSAGE)
    assert not breaker.is_open()


def test_redis_down_means_no_breaker() -> None:
    engine = FlakyEngine()
    breaker = CircuitBreaker(engine, f"redis://127.0.0.1:{servers.free_port()}/0", failures=1)
    for _ in range(3):
        with pytest.raises(DependencyUnavailable, match="engine down"):
            breaker.generate_reply(CONTEXT, MESSAGE)
    assert engine.calls == 3


def test_the_state_read_with_the_session_context_is_the_one_used(redis_url: str) -> None:
    """The processor reads the breaker's state in the session's pipeline: one round trip for
    both, and the breaker reads nothing more itself."""
    from shared.bot.session import SessionCache
    from shared.perf.roundtrips import RoundTrips

    engine = FlakyEngine()
    breaker = CircuitBreaker(engine, redis_url, failures=1, open_s=30)
    sessions = SessionCache(redis_url, circuit=breaker)
    with pytest.raises(DependencyUnavailable, match="engine down"):
        breaker.generate_reply(CONTEXT, MESSAGE)  # opens it

    with RoundTrips() as trips, trips.step("turn") as tally:
        context = sessions.context("acme", "whatsapp", CONTEXT.conversation_key)
        with pytest.raises(DependencyUnavailable, match="circuit is open"):
            breaker.generate_reply(context, MESSAGE)

    assert context.circuit is not None and context.circuit.open
    assert tally.redis == ["PIPELINE LRANGE HGETALL EXISTS GET"]
    assert engine.calls == 1


def test_a_success_resets_the_count_only_when_there_were_failures(redis_url: str) -> None:
    from shared.perf.roundtrips import RoundTrips

    engine = FlakyEngine()
    engine.up = True
    breaker = CircuitBreaker(engine, redis_url, failures=3)
    assert not breaker.is_open()  # connected: the handshake is not what is counted
    with RoundTrips() as trips:
        with trips.step("closed") as closed:
            breaker.generate_reply(CONTEXT, MESSAGE)
        engine.up = False
        with pytest.raises(DependencyUnavailable):
            breaker.generate_reply(CONTEXT, MESSAGE)
        engine.up = True
        with trips.step("after a failure") as after_failure:
            breaker.generate_reply(CONTEXT, MESSAGE)

    assert closed.redis == ["PIPELINE EXISTS GET"]
    assert after_failure.redis == ["PIPELINE EXISTS GET", "DEL"]
