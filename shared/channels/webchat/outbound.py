"""Replies to the web widget: our own channel, so there is no API to call.

The outbound ``messages`` document holds the reply: the widget fetches replies from storage (by
cursor) and its stream replays them from there after a reconnect. A widget that is connected
right now gets the reply live from Redis pub/sub, channel ``webchat:{tenant_id}:
{conversation_id}``, as the JSON of :meth:`OutboundMessage.to_dict`. The reply is marked sent
once that publish was accepted by Redis (reaching no subscriber is fine: nobody is watching);
a publish that failed is a 503, so the dispatcher retries, rather than a reply marked sent that
an open widget never showed. A redelivered event may publish twice; the widget dedupes on
``message_id``.
"""

from __future__ import annotations

import json
import logging

from shared.cache import redis_client
from shared.errors import DependencyUnavailable, describe
from shared.models import OutboundMessage
from shared.settings import Settings

log = logging.getLogger(__name__)


def pubsub_channel(tenant_id: str, conversation_id: str) -> str:
    return f"webchat:{tenant_id}:{conversation_id}"


def payload(message: OutboundMessage) -> str:
    return json.dumps(message.to_dict(), separators=(",", ":"), ensure_ascii=False)


def publish(redis_url: str, message: OutboundMessage) -> int | None:
    """Subscribers that received the reply; None when Redis could not be reached."""
    channel = pubsub_channel(message.tenant_id, message.conversation_id)
    try:
        return int(redis_client(redis_url).publish(channel, payload(message)))
    except Exception as exc:  # any Redis failure: the stored reply is still polled
        log.warning(
            "web chat reply not published",
            extra={"message_id": message.message_id, "error": describe(exc)},
        )
        return None


def deliver(message: OutboundMessage, settings: Settings) -> str:
    """Publish the stored reply to live widgets; its id is ours. Redis down → 503 (retried)."""
    if publish(settings.redis_url, message) is None:
        raise DependencyUnavailable(
            "the web chat reply could not be published", dependency="redis", retry_after_s=2
        )
    return message.message_id
