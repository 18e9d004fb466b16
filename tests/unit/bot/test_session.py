"""The session cache without Redis: the bot turn carries on with an empty context."""

from __future__ import annotations

from shared.bot.ports import ConversationContext, Turn
from shared.bot.session import SessionCache
from shared.devstack.servers import free_port


def test_redis_down_gives_an_empty_context_and_skips_the_update() -> None:
    cache = SessionCache(f"redis://127.0.0.1:{free_port()}/0")

    assert cache.context("acme", "whatsapp", "acme:whatsapp:a/c") == ConversationContext(
        "acme", "whatsapp", "acme:whatsapp:a/c"
    )
    assert cache.record("acme:whatsapp:a/c", [Turn("user", "hi")], {"last_intent": "x"}) is False
