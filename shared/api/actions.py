"""What an agent does to a conversation: take it over, answer, close it, give it back to the bot.

States (``docs/data-model.md``): ``open`` (the bot answers) → ``handoff`` (the bot is silent, an
agent is assigned) → ``closed``; ``reopen`` gives a handed-off or closed conversation back to
the bot. Every change is one conditional update on ``(_id, tenant_id, state…)``, so two agents
acting at once cannot both win, and the loser gets 409.

An agent's reply takes the bot's path: it is stored as an outbound message (author ``agent``)
and then published to the outbound topic, where the outbound dispatcher sends it through the
channel API like any reply. With an ``Idempotency-Key`` the message id is derived from it, so a
retried request stores and sends one message; the event is published again on every retry
(a first attempt may have stored it and then failed to publish), and the dispatcher sends a
message id once.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from cloudevents.http import CloudEvent

from shared import events
from shared.api.auth import Caller
from shared.api.views import Views, message_view
from shared.errors import Conflict, InvalidParameter
from shared.models import Author, Channel, OutboundMessage, QuickReply
from shared.store import conversations as conv
from shared.store.conversations import ConversationStore
from shared.store.messages import MessageStore
from shared.store.mongo import unavailable_as_503

SOURCE = "/chat-service/conversations-api"
MAX_TEXT_CHARS = 4096
MAX_QUICK_REPLIES = 10
IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
SUBJECT = re.compile(r"[^\x00-\x1f]{1,128}")


class Producer(Protocol):
    def publish(self, events: list[tuple[str, CloudEvent]]) -> None: ...


class Actions:
    def __init__(self, db: Any, producer: Producer, outbound_topic: str) -> None:
        self._db = db
        self._views = Views(db)
        self._conversations = db["conversations"]
        self._producer = producer
        self._topic = outbound_topic

    def handoff(
        self, caller: Caller, conversation: str, body: Mapping[str, Any], now: datetime
    ) -> dict[str, Any]:
        assignee = _text(body, "assignee", 128) or caller.subject
        return self._move(
            caller,
            conversation,
            (conv.OPEN, conv.HANDOFF),
            {"state": conv.HANDOFF, "assignee": assignee, "handoff_at": now},
            now,
        )

    def close(self, caller: Caller, conversation: str, now: datetime) -> dict[str, Any]:
        states = (conv.OPEN, conv.HANDOFF, conv.CLOSED)
        return self._move(
            caller, conversation, states, {"state": conv.CLOSED, "closed_at": now}, now
        )

    def reopen(self, caller: Caller, conversation: str, now: datetime) -> dict[str, Any]:
        states = (conv.HANDOFF, conv.CLOSED, conv.OPEN)
        return self._move(caller, conversation, states, {"state": conv.OPEN, "assignee": None}, now)

    def reply(
        self,
        caller: Caller,
        conversation: str,
        body: Mapping[str, Any],
        idempotency_key: str | None,
        now: datetime,
    ) -> tuple[dict[str, Any], bool]:
        """The stored reply's view, and whether this request created it."""
        doc = self._views.conversation(caller.tenant_id, conversation)
        if doc.get("state") == conv.CLOSED:
            raise Conflict(
                "the conversation is closed: reopen it first", code="conversation_closed"
            )
        message = self._message(caller, doc, body, idempotency_key, now)
        created = MessageStore(self._db).insert_outbound([message], now)
        if created:
            ConversationStore(self._db).record_outbound(
                caller.tenant_id, message.conversation_key, created, now
            )
        self._producer.publish([(self._topic, events.message_outbound(message, source=SOURCE))])
        stored = MessageStore(self._db).get(caller.tenant_id, message.message_id)
        return message_view(stored or {"_id": message.message_id}), bool(created)

    def _message(
        self,
        caller: Caller,
        doc: Mapping[str, Any],
        body: Mapping[str, Any],
        idempotency_key: str | None,
        now: datetime,
    ) -> OutboundMessage:
        text = _text(body, "text", MAX_TEXT_CHARS)
        if not text:
            raise InvalidParameter("text", "a non-empty string is required")
        if idempotency_key is not None and not IDEMPOTENCY_KEY.fullmatch(idempotency_key):
            raise InvalidParameter(
                "Idempotency-Key", "1-128 characters of A-Z a-z 0-9 _ . : - are allowed"
            )
        key = str(doc["_id"])
        message_id = (
            events.deterministic_id("agent-reply", caller.tenant_id, key, idempotency_key)
            if idempotency_key
            else str(uuid.uuid4())
        )
        last_inbound = doc.get("last_inbound_at")
        return OutboundMessage(
            tenant_id=caller.tenant_id,
            channel=Channel(doc["channel"]),
            account_id=str(doc["account_id"]),
            chat_id=str(doc["chat_id"]),
            message_id=message_id,
            text=text,
            author=Author.AGENT,
            created_at=now.isoformat().replace("+00:00", "Z"),
            quick_replies=_quick_replies(body.get("quick_replies")),
            in_reply_to_at=(
                last_inbound.isoformat().replace("+00:00", "Z")
                if isinstance(last_inbound, datetime)
                else None
            ),
        )

    def _move(
        self,
        caller: Caller,
        conversation: str,
        from_states: tuple[str, ...],
        changes: dict[str, Any],
        now: datetime,
    ) -> dict[str, Any]:
        from pymongo import ReturnDocument

        doc = self._views.conversation(caller.tenant_id, conversation)
        with unavailable_as_503():
            updated: dict[str, Any] | None = self._conversations.find_one_and_update(
                {"_id": doc["_id"], "tenant_id": caller.tenant_id, "state": {"$in": from_states}},
                {"$set": {**changes, "updated_at": now}},
                return_document=ReturnDocument.AFTER,
            )
        if updated is None:
            current = self._views.conversation(caller.tenant_id, conversation).get("state")
            raise Conflict(
                f"the conversation is {current}: not possible from there", code="invalid_state"
            )
        return updated


def _text(body: Mapping[str, Any], name: str, max_chars: int) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_chars or not value.strip():
        raise InvalidParameter(name, f"must be a non-empty string of at most {max_chars}")
    if name == "assignee" and not SUBJECT.fullmatch(value):
        raise InvalidParameter(name, "must be 1-128 printable characters")
    return value


def _quick_replies(value: Any) -> tuple[QuickReply, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_QUICK_REPLIES:
        raise InvalidParameter("quick_replies", f"must be a list of at most {MAX_QUICK_REPLIES}")
    replies = []
    for index, item in enumerate(value):
        where = f"quick_replies[{index}]"
        if not isinstance(item, dict):
            raise InvalidParameter(where, "must be an object with id and title")
        reply_id, title = item.get("id"), item.get("title")
        if not isinstance(reply_id, str) or not 1 <= len(reply_id) <= 256:
            raise InvalidParameter(f"{where}.id", "must be a string of 1-256 characters")
        if not isinstance(title, str) or not 1 <= len(title) <= 80:
            raise InvalidParameter(f"{where}.title", "must be a string of 1-80 characters")
        replies.append(QuickReply(id=reply_id, title=title))
    return tuple(replies)
