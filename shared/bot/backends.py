"""What the message processor needs from MongoDB, Redis and Kafka, as protocols.

The real implementations are :mod:`shared.store.messages`, :mod:`shared.store.conversations`,
:mod:`shared.ratelimit`, :mod:`shared.bot.session` and :mod:`shared.kafka`; unit tests pass
in-memory stand-ins, so the processor's state machine is tested without servers and the
stores' own behaviour is tested against a real MongoDB-protocol server.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol

from cloudevents.http import CloudEvent

from shared.bot.ports import ConversationContext, Turn
from shared.models import InboundMessage, OutboundMessage
from shared.ratelimit import Decision
from shared.store.messages import InsertResult


class Messages(Protocol):
    def insert_inbound(
        self, event_id: str, message: InboundMessage, now: datetime
    ) -> InsertResult: ...

    def get(self, tenant_id: str, message_id: str) -> dict[str, Any] | None: ...

    def advance(
        self,
        tenant_id: str,
        message_id: str,
        *,
        from_states: Iterable[str],
        to_state: str,
        now: datetime,
        fields: dict[str, Any] | None = None,
    ) -> dict[str, Any] | None: ...

    def mark(self, tenant_id: str, message_id: str, fields: dict[str, Any]) -> None: ...

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
    ) -> bool: ...


class Conversations(Protocol):
    def record_inbound(self, message: InboundMessage, now: datetime) -> dict[str, Any]: ...

    def ensure(self, message: InboundMessage, now: datetime) -> dict[str, Any]: ...

    def change_state(
        self, tenant_id: str, key: str, *, from_state: str, to_state: str, now: datetime
    ) -> bool: ...


class Limiter(Protocol):
    def check(self, tenant_id: str, channel: str, user_id: str) -> Decision: ...


class Sessions(Protocol):
    def context(
        self, tenant_id: str, channel: str, conversation_key: str
    ) -> ConversationContext: ...

    def record(
        self, conversation_key: str, turns: Sequence[Turn], values: dict[str, str] | None = None
    ) -> bool: ...


class Producer(Protocol):
    def publish(self, events: Sequence[tuple[str, CloudEvent]]) -> None: ...
