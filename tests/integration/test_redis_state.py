"""Rate limits and the session cache on a real Redis."""

from __future__ import annotations

import threading

import pytest
import redis

from shared.bot.ports import Turn
from shared.bot.session import SessionCache, session_keys
from shared.ratelimit import Decision, RateLimiter, Scope

pytestmark = pytest.mark.integration

START = 1_750_000_040.0  # 20 s into a one-minute window (1_750_000_020 is a boundary)


class Clock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_the_user_limit_refuses_until_the_window_ends(redis_url: str) -> None:
    clock = Clock()
    limiter = RateLimiter(redis_url, tenant_per_min=100, user_per_min=2, clock=clock)

    assert limiter.check("acme", "whatsapp", "u1").allowed
    assert limiter.check("acme", "whatsapp", "u1").allowed
    assert limiter.check("acme", "whatsapp", "u1") == Decision(
        allowed=False, scope=Scope.USER, retry_after_s=40
    )
    assert limiter.check("acme", "whatsapp", "u2").allowed  # another user
    assert limiter.check("acme", "slack", "u1").allowed  # the same id on another channel
    assert limiter.check("globex", "whatsapp", "u1").allowed  # another tenant

    clock.now += 40
    assert limiter.check("acme", "whatsapp", "u1").allowed


def test_the_tenant_limit_covers_all_its_users(redis_url: str) -> None:
    limiter = RateLimiter(redis_url, tenant_per_min=3, user_per_min=0, clock=Clock())

    assert [limiter.check("acme", "whatsapp", f"u{i}").allowed for i in range(4)] == [
        True,
        True,
        True,
        False,
    ]
    assert limiter.check("acme", "whatsapp", "u9").scope == Scope.TENANT
    assert limiter.check("globex", "whatsapp", "u1").allowed


def test_a_user_over_the_limit_does_not_use_up_the_tenants_budget(redis_url: str) -> None:
    limiter = RateLimiter(redis_url, tenant_per_min=5, user_per_min=1, clock=Clock())

    results = [limiter.check("acme", "whatsapp", "noisy").allowed for _ in range(20)]

    assert results.count(True) == 1
    assert all(limiter.check("acme", "whatsapp", f"quiet{i}").allowed for i in range(4))


def test_a_flood_of_web_chat_visitors_cannot_silence_the_tenants_other_channels(
    redis_url: str,
) -> None:
    limiter = RateLimiter(
        redis_url,
        tenant_per_min=3,
        user_per_min=2,
        clock=Clock(),
        channel_tenant_per_min={"webchat": 5},
    )

    # Anonymous visitors, each a new one: only web chat's own budget stops them.
    flood = [limiter.check("acme", "webchat", f"visitor-{i}") for i in range(20)]

    assert [d.allowed for d in flood].count(True) == 5
    assert flood[-1].scope == Scope.TENANT
    assert [limiter.check("acme", "whatsapp", f"u{i}").allowed for i in range(4)] == [
        True,
        True,
        True,
        False,  # the tenant's shared budget: none of it went to web chat
    ]
    assert limiter.check("acme", "telegram", "u9").scope == Scope.TENANT
    assert limiter.check("globex", "webchat", "visitor-1").allowed  # per tenant


def test_counting_is_atomic_across_threads(redis_url: str) -> None:
    limiter = RateLimiter(redis_url, tenant_per_min=10, user_per_min=0, clock=Clock())
    allowed: list[bool] = []
    lock = threading.Lock()

    def send() -> None:
        for _ in range(5):
            decision = limiter.check("acme", "whatsapp", "u1")
            with lock:
                allowed.append(decision.allowed)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert allowed.count(True) == 10 and len(allowed) == 40


def test_counters_expire_on_their_own(redis_url: str) -> None:
    RateLimiter(redis_url, tenant_per_min=5, user_per_min=5, clock=Clock()).check(
        "acme", "whatsapp", "u1"
    )
    client = redis.Redis.from_url(redis_url)
    keys = client.keys("ratelimit:*")
    assert len(keys) == 2 and all(0 < client.ttl(key) <= 120 for key in keys)


def test_the_session_keeps_the_recent_turns_and_values(redis_url: str) -> None:
    cache = SessionCache(redis_url, max_turns=3, ttl_s=600)
    key = "acme:whatsapp:a/c"

    cache.record(key, [Turn("user", "hi"), Turn("bot", "hello")], {"last_intent": "greeting"})
    cache.record(key, [Turn("user", "hours?"), Turn("bot", "9 to 5")], {"last_intent": "hours"})

    context = cache.context("acme", "whatsapp", key)
    assert [(t.role, t.text) for t in context.history] == [
        ("bot", "hello"),
        ("user", "hours?"),
        ("bot", "9 to 5"),
    ]
    assert context.session == {"last_intent": "hours"}
    client = redis.Redis.from_url(redis_url)
    turns, _ = session_keys(key)
    assert 0 < client.ttl(turns) <= 600
    assert cache.context("acme", "whatsapp", "acme:whatsapp:other").history == ()


def test_a_corrupt_session_entry_is_skipped(redis_url: str) -> None:
    key = "acme:whatsapp:a/c"
    redis.Redis.from_url(redis_url).rpush(session_keys(key)[0], b"not json", b'{"role":"user"}')
    cache = SessionCache(redis_url)
    cache.record(key, [Turn("user", "hi")])

    assert cache.context("acme", "whatsapp", key).history == (Turn("user", "hi"),)
