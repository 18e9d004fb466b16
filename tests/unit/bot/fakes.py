"""In-memory stand-ins for the message processor's backends, for unit tests only.

They keep the semantics the processor relies on (insert-if-absent, the platform-id backstop,
conditional state moves) so the state machine can be tested without servers; the real stores
are tested against a MongoDB-protocol server in tests/integration.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from shared.bot.ports import (
    ConversationContext,
    EngineReply,
    ReplyPart,
    Screening,
    Turn,
    Verdict,
)
from shared.errors import DependencyUnavailable
from shared.models import InboundMessage, OutboundMessage
from shared.ratelimit import Decision, Scope
from shared.store.messages import InsertResult, inbound_document, outbound_document


class MemoryMessages:
    def __init__(self, conversations: MemoryConversations | None = None) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self.conversations = conversations  # the answer counts its replies there
        self.before_advance: Callable[[str], None] | None = None  # to simulate a racing delivery

    def insert_inbound(self, event_id: str, message: InboundMessage, now: datetime) -> InsertResult:
        if event_id in self.docs:
            return InsertResult(copy.deepcopy(self.docs[event_id]), created=False)
        for doc in self.docs.values():
            same = (doc["tenant_id"], doc["channel"], doc.get("channel_message_id"))
            if same == (message.tenant_id, message.channel, message.platform_message_id):
                return InsertResult(None, created=False, duplicate_of=doc["_id"])
        self.docs[event_id] = inbound_document(event_id, message, now)
        return InsertResult(copy.deepcopy(self.docs[event_id]), created=True)

    def get(self, tenant_id: str, message_id: str) -> dict[str, Any] | None:
        doc = self.docs.get(message_id)
        return copy.deepcopy(doc) if doc and doc["tenant_id"] == tenant_id else None

    def advance(
        self,
        tenant_id: str,
        message_id: str,
        *,
        from_states: Iterable[str],
        to_state: str,
        now: datetime,
        fields: dict[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        if self.before_advance is not None:
            self.before_advance(to_state)
        doc = self.docs.get(message_id)
        if doc is None or doc["tenant_id"] != tenant_id:
            return None
        if doc["processing"]["state"] not in set(from_states):
            return None
        for path, value in {"processing.state": to_state, **(fields or {})}.items():
            target = doc
            *parents, last = path.split(".")
            for part in parents:
                target = target.setdefault(part, {})
            target[last] = copy.deepcopy(value)
        return copy.deepcopy(doc)

    def mark(self, tenant_id: str, message_id: str, fields: dict[str, Any]) -> None:
        doc = self.docs[message_id]
        for dotted, value in fields.items():
            target = doc
            *parents, leaf = dotted.split(".")
            for name in parents:
                target = target.setdefault(name, {})
            target[leaf] = value

    def reply(
        self,
        message: InboundMessage,
        event_id: str,
        *,
        from_states: Iterable[str],
        fields: dict[str, Any],
        replies: Sequence[OutboundMessage],
        handoff: bool,
        now: datetime,
    ) -> bool:
        doc = self.docs.get(event_id)
        if doc is not None and "answer" in doc["processing"]:  # an answer is stored already
            return False
        to_state = "replying" if replies else "replied"
        moved = self.advance(
            message.tenant_id,
            event_id,
            from_states=from_states,
            to_state=to_state,
            now=now,
            fields={**fields, "processing.answer": "stored"},
        )
        if moved is None:
            return False
        turn = [reply.message_id for reply in replies]
        self.insert_outbound(replies, now, inbound_id=event_id, turn=turn)
        if self.conversations is not None:
            if replies:
                self.conversations.docs[message.conversation_key]["message_count"] += len(replies)
            if handoff:
                self.conversations.change_state(
                    message.tenant_id,
                    message.conversation_key,
                    from_state="open",
                    to_state="handoff",
                    now=now,
                )
        return True

    def insert_outbound(
        self,
        messages: Sequence[OutboundMessage],
        now: datetime,
        inbound_id: str | None = None,
        turn: Sequence[str] = (),
    ) -> int:
        created = 0
        for message in messages:
            if message.message_id not in self.docs:
                self.docs[message.message_id] = outbound_document(
                    message, now, inbound_id=inbound_id, turn=turn
                )
                created += 1
        return created

    def inbound(self, event_id: str) -> dict[str, Any]:
        return self.docs[event_id]

    def outbound(self) -> list[dict[str, Any]]:
        return [d for d in self.docs.values() if d["direction"] == "outbound"]


class MemoryConversations:
    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}

    def record_inbound(self, message: InboundMessage, now: datetime) -> dict[str, Any]:
        doc = self.docs.setdefault(
            message.conversation_key,
            {"_id": message.conversation_key, "tenant_id": message.tenant_id, "state": "open"},
        )
        doc["message_count"] = doc.get("message_count", 0) + 1
        doc["last_inbound_at"] = max(now, doc.get("last_inbound_at") or now)
        doc["participant"] = {"id": message.sender.id, "name": message.sender.name}
        return dict(doc)

    def ensure(self, message: InboundMessage, now: datetime) -> dict[str, Any]:
        existing = self.docs.get(message.conversation_key)
        return dict(existing) if existing else self.record_inbound(message, now)

    def change_state(
        self, tenant_id: str, key: str, *, from_state: str, to_state: str, now: datetime
    ) -> bool:
        doc = self.docs.get(key)
        if doc is None or doc["tenant_id"] != tenant_id or doc["state"] != from_state:
            return False
        doc["state"] = to_state
        return True


class CountingLimiter:
    def __init__(self, user_limit: int = 1000) -> None:
        self.user_limit = user_limit
        self.calls = 0

    def check(self, tenant_id: str, channel: str, user_id: str) -> Decision:
        self.calls += 1
        if self.calls > self.user_limit:
            return Decision(allowed=False, scope=Scope.USER, retry_after_s=30)
        return Decision(allowed=True)


class MemorySessions:
    def __init__(self) -> None:
        self.turns: dict[str, list[Turn]] = {}
        self.values: dict[str, dict[str, str]] = {}

    def context(self, tenant_id: str, channel: str, conversation_key: str) -> ConversationContext:
        return ConversationContext(
            tenant_id,
            channel,
            conversation_key,
            history=tuple(self.turns.get(conversation_key, ())),
            session=dict(self.values.get(conversation_key, {})),
        )

    def record(
        self, conversation_key: str, turns: Sequence[Turn], values: dict[str, str] | None = None
    ) -> bool:
        self.turns.setdefault(conversation_key, []).extend(turns)
        self.values.setdefault(conversation_key, {}).update(values or {})
        return True


class ScriptedEngine:
    """Answers ``reply`` (default: an echo) and records what it was asked; ``down`` fails."""

    def __init__(self, reply: EngineReply | None = None, *, down: bool = False) -> None:
        self.reply = reply
        self.down = down
        self.calls: list[tuple[ConversationContext, InboundMessage]] = []

    def generate_reply(self, context: ConversationContext, message: InboundMessage) -> EngineReply:
        if self.down:
            raise DependencyUnavailable("engine down (fake)", dependency="mcp-engine")
        self.calls.append((context, message))
        return self.reply or EngineReply(parts=(ReplyPart(f"echo: {message.text}"),), intent="echo")


class ScriptedHub:
    def __init__(self, verdict: Verdict = Verdict.ALLOW, text: str | None = None) -> None:
        self.verdict = verdict
        self.text = text
        self.down = False
        self.screened: list[str] = []

    def screen(self, tenant_id: str, text: str, *, direction: str = "inbound") -> Screening:
        if self.down:
            raise DependencyUnavailable("hub down (fake)", dependency="security-hub")
        self.screened.append(text)
        return Screening(self.verdict, self.text if self.text is not None else text, "fake")
