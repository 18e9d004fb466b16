"""Rate-limit decisions that need no server; counting is tested on a real Redis in
tests/integration/test_redis_state.py."""

from __future__ import annotations

import pytest

from shared.devstack.servers import free_port
from shared.ratelimit import Decision, RateLimiter


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
