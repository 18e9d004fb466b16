"""The pure parts of a bot turn: the event in, the replies out, no I/O.

``parse_event`` decides what is poison (an answer of 400: retrying cannot fix it), and
``build_replies`` turns an engine reply into the outbound messages whose ids are derived from
the inbound event id, so a turn that runs twice produces the same reply events.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from shared import events
from shared.bot.ports import EngineReply, Turn
from shared.errors import BadRequest
from shared.eventfn import decode
from shared.events import MESSAGE_RECEIVED
from shared.models import Author, InboundMessage, OutboundMessage, inbound_from_dict

SOURCE = "/chat-service/message-processor"


def parse_event(event: Any) -> tuple[str, InboundMessage]:
    """The event id and the message of a ``message.received`` event, or BadRequest."""
    event_id = event.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise BadRequest("the event has no id", code="malformed_event")
    message = decode(event, inbound_from_dict, expected_type=MESSAGE_RECEIVED, what="a message")
    if message.text is not None and not isinstance(message.text, str):
        raise BadRequest("the message text is not a string", code="malformed_event")
    if not message.tenant_id or not message.sender.id:
        raise BadRequest("the message has no tenant or no sender", code="malformed_event")
    return event_id, message


def build_replies(
    event_id: str, message: InboundMessage, reply: EngineReply, author: Author, now: datetime
) -> list[OutboundMessage]:
    created_at = now.isoformat().replace("+00:00", "Z")
    return [
        OutboundMessage(
            tenant_id=message.tenant_id,
            channel=message.channel,
            account_id=message.account_id,
            chat_id=message.chat_id,
            message_id=events.outbound_id(event_id, index),
            text=part.text,
            author=author,
            created_at=created_at,
            quick_replies=part.quick_replies,
            in_reply_to=message.platform_message_id,
            in_reply_to_at=message.timestamp,
            handoff=reply.handoff,
            thread_id=message.thread_id,
        )
        for index, part in enumerate(reply.parts)
        if part.text.strip()
    ]


def session_turns(message: InboundMessage, replies: Sequence[OutboundMessage]) -> list[Turn]:
    """The turns the engine sees next time: what the user said (as screened) and our answer."""
    user_text = message.text or f"[{message.kind}]"
    return [Turn("user", user_text), *(Turn("bot", reply.text) for reply in replies)]
