"""What the message processor needs from the MCP engine and the Security Hub.

The gRPC clients implement these protocols; so do in-process fakes in unit tests. Keeping the
processor on these types (not on generated protobuf classes) keeps protobuf out of its logic.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from shared.dataclass import dataclass, field
from shared.models import InboundMessage, QuickReply


@dataclass(frozen=True)
class Turn:
    role: str  # "user", "bot", "agent"
    text: str


@dataclass(frozen=True)
class CircuitState:
    """The engine circuit breaker's shared state (shared.bot.breaker)."""

    open: bool
    failures: int  # consecutive failures counted in the current window


@dataclass(frozen=True)
class ConversationContext:
    tenant_id: str
    channel: str
    conversation_key: str
    history: tuple[Turn, ...] = ()  # most recent last
    session: dict[str, str] = field(default_factory=dict)  # Redis session/context cache
    # The breaker's state, read with the session in the same Redis round trip; None when it
    # was not (the breaker then reads it itself).
    circuit: CircuitState | None = None


@dataclass(frozen=True)
class ReplyPart:
    text: str
    quick_replies: tuple[QuickReply, ...] = ()


@dataclass(frozen=True)
class EngineReply:
    parts: tuple[ReplyPart, ...]
    intent: str = ""
    confidence: float = 0.0
    handoff: bool = False  # the user asked for a human: the conversation goes to handoff


class Verdict(StrEnum):
    ALLOW = "allow"
    REDACT = "redact"  # allowed, with ``text`` redacted (PII)
    BLOCK = "block"  # not passed to the bot


@dataclass(frozen=True)
class Screening:
    verdict: Verdict
    text: str  # the text to use from here on (redacted when verdict is REDACT)
    reason: str = ""


class Engine(Protocol):
    def generate_reply(self, context: ConversationContext, message: InboundMessage) -> EngineReply:
        """The bot's reply; raises DependencyUnavailable when the engine cannot be reached."""
        ...


class SecurityHub(Protocol):
    def screen(self, tenant_id: str, text: str, *, direction: str = "inbound") -> Screening:
        """Screen content; raises DependencyUnavailable when the hub cannot be reached."""
        ...
