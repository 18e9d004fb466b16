"""Rate-limit decisions that need no server; counting is tested on a real Redis in
tests/integration/test_redis_state.py."""

from __future__ import annotations

import pytest

from shared.bot.runtime import channel_budgets
from shared.devstack.servers import free_port
from shared.ratelimit import ConversationLimiter, Decision, Limit, RateLimiter, Scope
from shared.settings import Settings


def unreachable_redis() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there


def test_no_limits_configured_means_no_redis_call() -> None:
    limiter = RateLimiter(unreachable_redis(), tenant_per_min=0, user_per_min=0)
    assert limiter.check("acme", "whatsapp", "u1") == Decision(allowed=True)


def test_redis_down_allows_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    limiter = RateLimiter(unreachable_redis(), tenant_per_min=1, user_per_min=1)

    for _ in range(3):
        assert limiter.check("acme", "whatsapp", "u1") == Decision(allowed=True, degraded=True)
    assert "rate limit not checked: redis unavailable" in caplog.text


def test_web_chat_turns_count_against_a_tenant_budget_of_their_own() -> None:
    limiter = RateLimiter(
        unreachable_redis(),
        tenant_per_min=600,
        user_per_min=20,
        channel_tenant_per_min=channel_budgets(Settings(webchat_tenant_rate_limit_per_min=50)),
    )

    assert limiter.limits("acme", "whatsapp", "u1") == (
        Limit(Scope.TENANT, "tenant:acme", 600),
        Limit(Scope.USER, "user:acme:whatsapp:u1", 20),
    )
    assert limiter.limits("acme", "webchat", "v1") == (
        Limit(Scope.TENANT, "tenant:acme:webchat", 50),
        Limit(Scope.USER, "user:acme:webchat:v1", 20),
    )


def test_web_chat_messages_are_limited_per_conversation_and_per_client_of_a_site() -> None:
    limiter = ConversationLimiter(unreachable_redis(), per_conversation=30, per_client=120)

    assert limiter.limits("acme:webchat:site-acme/c1", "site-acme", "203.0.113.7") == (
        Limit(Scope.CONVERSATION, "conversation:acme:webchat:site-acme/c1", 30),
        Limit(Scope.CLIENT, "client:site-acme:203.0.113.7", 120),
    )
    unlimited = ConversationLimiter(unreachable_redis(), per_conversation=0, per_client=0)
    assert unlimited.check("k", "s", "c") == Decision(allowed=True)  # Redis never asked
