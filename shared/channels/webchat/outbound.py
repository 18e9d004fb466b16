"""Replies to the web widget: our own channel, so there is no API to call.

The outbound ``messages`` document *is* the delivery: the widget fetches replies from storage
(by cursor), so a reply is delivered once it is stored. For a widget that is connected right
now the reply is also published on Redis pub/sub, channel ``webchat:{tenant_id}:
{conversation_id}``, as the JSON of :meth:`OutboundMessage.to_dict`; the webchat function's
stream subscribes to it. Pub/sub is fire-and-forget and Redis is a cache, so a failed publish
is logged and counted, never a failed delivery: the stored reply is still fetched on the next
poll. A redelivered event may publish twice; the widget dedupes on ``message_id``.
"""

from __future__ import annotations

import json
import logging

from shared.cache import redis_client
from shared.errors import describe
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
    """The stored reply is the delivery; live widgets also get it now. Its id is ours."""
    publish(settings.redis_url, message)
    return message.message_id
