"""Web chat visitors and their stored conversations, for the read and stream tests.

Messages are stored the way the message processor stores them (:class:`MessageStore`), for a
conversation opened through the function's own ``POST /sessions``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.channels.webchat import inbound
from shared.channels.webchat.tokens import VisitorClaims
from shared.models import Author, Channel, OutboundMessage, QuickReply
from shared.store.messages import MessageStore

WEBCHAT = Channel("webchat")


@dataclass(frozen=True)
class Visitor:
    token: str
    site_key: str
    tenant_id: str
    visitor_id: str
    conversation_id: str  # the token's (the chat id)

    @property
    def conversation_key(self) -> str:
        return f"{self.tenant_id}:webchat:{self.site_key}/{self.conversation_id}"

    @property
    def pubsub_channel(self) -> str:
        return f"webchat:{self.tenant_id}:{self.site_key}/{self.conversation_id}"

    def claims(self) -> VisitorClaims:
        return VisitorClaims(
            self.tenant_id, self.site_key, self.visitor_id, self.conversation_id, 0, 2**40
        )

    def headers(self, **more: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **more}


def visitor_from(session: dict[str, Any], site_key: str, tenant_id: str) -> Visitor:
    return Visitor(
        session["token"], site_key, tenant_id, session["visitor_id"], session["conversation_id"]
    )


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(1_750_000_000 + seconds, UTC)


def rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def store_visitor_message(
    db: Any, visitor: Visitor, client_id: str, text: str, when: datetime
) -> str:
    """The visitor's message as the processor has stored it once screened (its text kept);
    returns its id (the event id)."""
    message = inbound.to_inbound(
        inbound.parse_message({"client_message_id": client_id, "text": text}),
        visitor.claims(),
        when.timestamp(),
    )
    event_id = f"evt-{uuid.uuid4().hex}"
    MessageStore(db).insert_inbound(event_id, message, datetime.now(UTC))
    db.messages.update_one({"_id": event_id}, {"$set": {"text": text}})
    return event_id


def reply(
    visitor: Visitor, message_id: str, text: str, when: datetime, **changes: Any
) -> OutboundMessage:
    fields: dict[str, Any] = {
        "tenant_id": visitor.tenant_id,
        "channel": WEBCHAT,
        "account_id": visitor.site_key,
        "chat_id": visitor.conversation_id,
        "message_id": message_id,
        "text": text,
        "author": Author.BOT,
        "created_at": rfc3339(when),
        "quick_replies": (QuickReply("faq_hours", "Opening hours"),),
    }
    return OutboundMessage(**(fields | changes))


def store_reply(
    db: Any, visitor: Visitor, message_id: str, text: str, when: datetime, **changes: Any
) -> OutboundMessage:
    message = reply(visitor, message_id, text, when, **changes)
    MessageStore(db).insert_outbound([message], datetime.now(UTC))
    return message
