"""Keys one command or script uses together share a Redis Cluster slot (hash tags).

On a cluster a multi-key command (``MGET``), a ``MULTI`` and a Lua script must name keys of one
slot; a key's slot comes from its ``{hash tag}`` when it has one (Redis Cluster specification,
"Hash tags"). Checked with redis-py's own slot function.
"""

from __future__ import annotations

from redis.crc import key_slot

from shared.bot.session import session_keys
from shared.idempotency import dedupe_key


def slots(*keys: str) -> set[int]:
    return {key_slot(key.encode()) for key in keys}


def test_the_marks_of_one_webhook_batch_share_a_slot() -> None:
    keys = [dedupe_key("whatsapp", "acme", "106540", f"wamid.{n}", ttl_s=60).key for n in range(50)]
    statuses = [dedupe_key("whatsapp", "acme", "106540", "w", s, ttl_s=60).key for s in "ab"]
    assert len(slots(*keys, *statuses)) == 1
    others = {
        key_slot(dedupe_key("whatsapp", t, "106540", "w", ttl_s=60).key.encode())
        for t in "abcdefgh"
    }
    assert len(others) > 1  # tenants spread over the cluster


def test_a_conversations_session_keys_share_a_slot() -> None:
    assert len(slots(*session_keys("acme:whatsapp:106540/1555"))) == 1


def test_the_counters_one_limit_check_uses_share_a_slot() -> None:
    from shared.ratelimit import ConversationLimiter, Counters, RateLimiter

    counters = Counters("redis://unused", prefix="ratelimit")
    limiter = RateLimiter(
        "redis://unused", tenant_per_min=5, user_per_min=5, channel_tenant_per_min={"webchat": 3}
    )
    for channel in ("whatsapp", "webchat"):
        keys = counters.keys(limiter.limits("acme", channel, "u1"), "acme", 29_000_000)
        assert len(keys) == 2 and len(slots(*keys)) == 1
    site = ConversationLimiter("redis://unused", per_conversation=5, per_client=5)
    keys = counters.keys(
        site.limits("acme:webchat:site-1/c1", "site-1", "203.0.113.9"), "site-1", 1
    )
    assert len(slots(*keys)) == 1
