"""The canonical message model every channel is normalised into.

A channel module turns a platform payload into :class:`InboundMessage` and
:class:`StatusUpdate` values; everything downstream (events, storage, the bot) sees only these.
Rich content keeps a plain-text rendering in ``text`` where one exists, so a consumer that only
understands text still has something to work with.
"""

from __future__ import annotations

import copy
import dataclasses
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING, Any, cast

from shared.dataclass import dataclass, field

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


class Channel(str):
    """A channel's name, one of :data:`shared.channels.registry.NAMES`; any other is refused
    (``ValueError``), so an event naming an unknown channel is poison, never a default."""

    __slots__ = ()

    def __new__(cls, value: object) -> Channel:
        from shared.channels.registry import NAMES

        if not isinstance(value, str) or value not in NAMES:
            raise ValueError(f"unknown channel {value!r} (known: {', '.join(NAMES)})")
        return super().__new__(cls, value)


class MessageKind(StrEnum):
    TEXT = "text"
    MEDIA = "media"  # image, audio, video, document, sticker, voice, animation
    LOCATION = "location"
    CONTACTS = "contacts"
    INTERACTIVE = "interactive"  # a button / list / callback reply
    REACTION = "reaction"
    ORDER = "order"
    SYSTEM = "system"
    UNSUPPORTED = "unsupported"


class DeliveryStatus(StrEnum):
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"


_ATOMS = (str, int, float, type(None))  # immutable: bool is an int, a StrEnum a str


@cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def plain(value: Any) -> Any:
    """What :func:`dataclasses.asdict` makes of ``value`` (dataclasses become dicts, tuples,
    lists and dicts are rebuilt), without its ``deepcopy`` of every immutable leaf: ``asdict``
    took 85 of the 784 µs a webhook request cost in its own code (docs/performance.md,
    Ingress)."""
    if isinstance(value, _ATOMS):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {name: plain(getattr(value, name)) for name in _field_names(type(value))}
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a named tuple
        return type(value)(*[plain(v) for v in value])
    if isinstance(value, list | tuple):
        return type(value)(plain(v) for v in value)
    if isinstance(value, dict):
        return type(value)((plain(k), plain(v)) for k, v in value.items())
    return copy.deepcopy(value)


class _InConversation:
    """What every message-like dataclass derives from its tenant, channel, account and chat."""

    tenant_id: str
    channel: Channel
    account_id: str
    chat_id: str

    @property
    def conversation_id(self) -> str:
        """The conversation within the channel: one chat as seen through one account."""
        return f"{self.account_id}/{self.chat_id}"

    @property
    def conversation_key(self) -> str:
        return conversation_key(self.tenant_id, self.channel, self.conversation_id)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = plain(cast("DataclassInstance", self))
        data["conversation_id"] = self.conversation_id
        data["conversation_key"] = self.conversation_key
        return data


@dataclass(frozen=True)
class Sender:
    id: str
    name: str | None = None
    is_bot: bool = False


@dataclass(frozen=True)
class MediaRef:
    """A reference to media held by the platform (ids expire: WhatsApp's after 7 days)."""

    type: str  # image, audio, video, document, sticker, voice, animation, file
    id: str
    mime_type: str | None = None
    caption: str | None = None
    filename: str | None = None
    url: str | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class Location:
    latitude: float
    longitude: float
    name: str | None = None
    address: str | None = None


@dataclass(frozen=True)
class InteractiveReply:
    """The user picked an option we offered: a button, a list row, a callback query."""

    type: str  # button_reply, list_reply, button, callback_query
    id: str
    title: str | None = None


@dataclass(frozen=True)
class Reaction:
    emoji: str  # empty when the user removed the reaction
    message_id: str  # the platform id of the message reacted to


@dataclass(frozen=True)
class InboundMessage(_InConversation):
    tenant_id: str
    channel: Channel
    account_id: str  # phone_number_id, Slack team_id, Telegram bot id, web site key
    chat_id: str  # the platform's conversation: wa_id, Slack channel, Telegram chat id, ...
    platform_message_id: str  # wamid, Slack channel/ts, Telegram bot/chat/message, client id
    sender: Sender
    kind: MessageKind
    timestamp: str  # RFC 3339, UTC
    text: str | None = None
    attachments: tuple[MediaRef, ...] = ()
    location: Location | None = None
    interactive: InteractiveReply | None = None
    reaction: Reaction | None = None
    reply_to: str | None = None
    thread_id: str | None = None
    edited: bool = False
    raw_type: str = ""  # the platform's own type name, kept for unsupported and audit
    raw: dict[str, Any] = field(default_factory=dict)  # platform fields we do not model


@dataclass(frozen=True)
class StatusUpdate(_InConversation):
    """What the platform says happened to a message we sent."""

    tenant_id: str
    channel: Channel
    account_id: str
    chat_id: str
    platform_message_id: str  # the id the platform gave our outbound message
    status: DeliveryStatus
    timestamp: str
    errors: tuple[dict[str, Any], ...] = ()
    # A cumulative receipt (Messenger's watermark): every message sent to this chat up to this
    # RFC 3339 time has the status; ``platform_message_id`` then only identifies the receipt.
    up_to: str | None = None


def conversation_key(tenant_id: str, channel: str, conversation_id: str) -> str:
    """``tenant:channel:conversation``: the Kafka record key, so a conversation stays ordered."""
    return f"{tenant_id}:{channel}:{conversation_id}"


class Author(StrEnum):
    BOT = "bot"  # the MCP engine
    FALLBACK = "fallback"  # the rule-based fallback, while the engine is unreachable
    AGENT = "agent"  # a human, through conversations-api


@dataclass(frozen=True)
class QuickReply:
    """An option offered with a reply: a button where the channel has them, else a text line."""

    id: str
    title: str


@dataclass(frozen=True)
class TemplateRef:
    """A WhatsApp approved template, the only thing allowed outside the 24-hour window."""

    name: str
    language: str = "en_US"
    parameters: tuple[str, ...] = ()


@dataclass(frozen=True)
class OutboundMessage(_InConversation):
    """A reply to send through a channel: what the bot (or an agent) says."""

    tenant_id: str
    channel: Channel
    account_id: str
    chat_id: str
    message_id: str  # ours; equals the outbound event id, derived from the inbound event id
    text: str
    author: Author
    created_at: str
    quick_replies: tuple[QuickReply, ...] = ()
    in_reply_to: str | None = None  # the inbound message's platform id
    thread_id: str | None = None
    template: TemplateRef | None = None
    # The platform's timestamp of the message answered (RFC 3339): response time is measured
    # from it to the reply accepted by the channel API.
    in_reply_to_at: str | None = None
    # The reply hands the conversation to a human (the bot's handoff intent): analytics counts
    # the conversation as handed off even before an agent answers.
    handoff: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OutboundMessage:
        template = data.get("template")
        return cls(
            tenant_id=str(data["tenant_id"]),
            channel=Channel(data["channel"]),
            account_id=str(data["account_id"]),
            chat_id=str(data["chat_id"]),
            message_id=str(data["message_id"]),
            text=str(data.get("text") or ""),
            author=Author(data.get("author", Author.BOT)),
            created_at=str(data["created_at"]),
            quick_replies=tuple(QuickReply(**q) for q in data.get("quick_replies") or ()),
            in_reply_to=data.get("in_reply_to"),
            in_reply_to_at=data.get("in_reply_to_at"),
            handoff=bool(data.get("handoff", False)),
            thread_id=data.get("thread_id"),
            template=(
                TemplateRef(
                    template["name"],
                    template.get("language", "en_US"),
                    tuple(template.get("parameters") or ()),
                )
                if template
                else None
            ),
        )


def inbound_from_dict(data: dict[str, Any]) -> InboundMessage:
    """An :class:`InboundMessage` back from its event data (``to_dict``'s inverse)."""

    def optional(kind: Any, value: Any) -> Any:
        return kind(**value) if value else None

    return InboundMessage(
        tenant_id=str(data["tenant_id"]),
        channel=Channel(data["channel"]),
        account_id=str(data["account_id"]),
        chat_id=str(data["chat_id"]),
        platform_message_id=str(data["platform_message_id"]),
        sender=Sender(**data["sender"]),
        kind=MessageKind(data["kind"]),
        timestamp=str(data["timestamp"]),
        text=data.get("text"),
        attachments=tuple(MediaRef(**a) for a in data.get("attachments") or ()),
        location=optional(Location, data.get("location")),
        interactive=optional(InteractiveReply, data.get("interactive")),
        reaction=optional(Reaction, data.get("reaction")),
        reply_to=data.get("reply_to"),
        thread_id=data.get("thread_id"),
        edited=bool(data.get("edited", False)),
        raw_type=str(data.get("raw_type", "")),
        raw=dict(data.get("raw") or {}),
    )


def status_from_dict(data: dict[str, Any]) -> StatusUpdate:
    return StatusUpdate(
        tenant_id=str(data["tenant_id"]),
        channel=Channel(data["channel"]),
        account_id=str(data["account_id"]),
        chat_id=str(data["chat_id"]),
        platform_message_id=str(data["platform_message_id"]),
        status=DeliveryStatus(data["status"]),
        timestamp=str(data["timestamp"]),
        errors=tuple(data.get("errors") or ()),
        up_to=str(data["up_to"]) if data.get("up_to") else None,
    )
