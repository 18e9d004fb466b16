"""Telegram Bot API webhooks.

Follows the Bot API reference (core.telegram.org/bots/api: ``setWebhook``, ``Update``,
``Message``, ``CallbackQuery``):

- A webhook belongs to one bot and the ``Update`` body does not say which bot it is for, so
  the bot id is part of the URL each bot is registered with: ``POST /webhook/<bot_id>``.
- ``setWebhook(secret_token=…)`` makes Telegram echo that token in
  ``X-Telegram-Bot-Api-Secret-Token``. It is a shared secret, not a signature: there is no
  HMAC of the body and no timestamp, hence no clock and no replay window here. Replays are
  absorbed by the dedupe on the message (bot, chat, message id).
- Telegram retries every non-2xx reply and keeps an undelivered update for 24 hours, so an
  update we choose not to handle (a poll, ``my_chat_member``, a bot's message) still gets 200.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from typing import Any

from shared import metrics
from shared.channels._payload import (
    allow,
    constant_time_equal,
    coordinate,
    field,
    optional,
    parse_json_object,
    rfc3339,
    shape_errors_as_400,
    typed,
    unix_field,
)
from shared.channels._webhook import publish
from shared.channels.telegram.account import TelegramAccount
from shared.errors import BadRequest, NotFound, Unauthorized
from shared.ingress import Ingress
from shared.models import (
    Channel,
    InboundMessage,
    InteractiveReply,
    Location,
    MediaRef,
    MessageKind,
    Sender,
)
from shared.tenants import Secret
from shared.web import WebRequest, WebResponse, json_response

log = logging.getLogger(__name__)

CHANNEL = Channel("telegram")
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)
RETENTION_S = 24 * 3600  # Telegram keeps (and retries) an undelivered update for 24 hours
ROUTE = re.compile(r"^/webhook/([^/]+)$")

# Update fields that carry a Message, and whether that message is an edit.
MESSAGE_UPDATES = {
    "message": False,
    "edited_message": True,
    "channel_post": False,
    "edited_channel_post": True,
}

# Message field → MediaRef type, in the order they are tried. An animation also carries a
# "document" copy for old clients, so it has to be looked at first.
MEDIA_FIELDS = {
    "animation": "animation",
    "photo": "image",
    "video": "video",
    "video_note": "video",
    "voice": "voice",
    "audio": "audio",
    "document": "document",
    "sticker": "sticker",
}

# Message fields that describe the message rather than hold its content: the first field of a
# message not listed here names the content type we do not support (dice, poll, game,
# new_chat_members, ...).
# fmt: off
ENVELOPE_FIELDS = frozenset({
    "message_id", "message_thread_id", "direct_messages_topic", "from", "sender_chat",
    "sender_boost_count", "sender_business_bot", "date", "business_connection_id", "chat",
    "forward_origin", "forward_from", "forward_from_chat", "forward_from_message_id",
    "forward_signature", "forward_sender_name", "forward_date", "is_topic_message",
    "is_automatic_forward", "reply_to_message", "external_reply", "quote", "reply_to_story",
    "reply_to_checklist_task_id", "via_bot", "edit_date", "has_protected_content",
    "is_from_offline", "is_paid_post", "media_group_id", "author_signature", "paid_star_count",
    "entities", "caption", "caption_entities", "show_caption_above_media", "has_media_spoiler",
    "link_preview_options", "suggested_post_info", "effect_id", "reply_markup",
})
# fmt: on


def verify_secret_token(header: str | None, expected: Secret) -> None:
    """Accept the request only when it carries the bot's ``secret_token`` (see setWebhook)."""
    if not header:
        raise Unauthorized(f"missing {SECRET_HEADER} header", code="missing_secret_token")
    if not constant_time_equal(header, expected.reveal()):
        raise Unauthorized(f"{SECRET_HEADER} does not match", code="bad_secret_token")


def parse(
    update: dict[str, Any], account: TelegramAccount, *, received_at: float
) -> list[InboundMessage]:
    """The (verified) update as canonical messages: one, or none when it is not for us.

    ``platform_message_id`` is the message itself: ``<bot>/<chat>/<message_id>`` (an edit adds
    ``/edit/<edit_date>``), ``<bot>/callback/<query id>`` for a button press. Not the
    ``update_id``: after a week without updates Telegram starts from a random one, and a reused
    id would silently drop a new message as a redelivery; and two bots of one tenant see the
    same chat and message ids, hence the bot. The ``update_id`` is kept in ``raw``.
    ``received_at`` (Unix seconds) dates callback queries, which carry no time of their own.
    """
    common: dict[str, Any] = {
        "tenant_id": account.tenant_id,
        "channel": CHANNEL,
        "account_id": account.bot_id,
    }
    update_id = field(update, "update_id", "", int)
    for update_type, edited in MESSAGE_UPDATES.items():
        if update_type in update:
            message = field(update, update_type, "", dict)
            return _accept(_message(message, update_type, edited, common), update_id)
    if "callback_query" in update:
        query = field(update, "callback_query", "", dict)
        return _accept(_callback_query(query, common, received_at), update_id)
    kinds = sorted(k for k in update if k != "update_id")
    log.info("update ignored", extra={"update_types": kinds})
    return []


def _accept(message: InboundMessage | None, update_id: int) -> list[InboundMessage]:
    if message is None:
        return []
    message = dataclasses.replace(message, raw={**message.raw, "update_id": update_id})
    if message.sender.is_bot:
        # Another bot's message (or our own echoed back): answering it risks a bot loop.
        log.info("message from a bot ignored", extra={"sender_id": message.sender.id})
        return []
    return [message]


def _message(
    message: dict[str, Any], path: str, edited: bool, common: dict[str, Any]
) -> InboundMessage:
    chat = field(message, "chat", path, dict)
    message_id = field(message, "message_id", path, int)
    content_type, content = _content(message, path)
    timestamp_field = "edit_date" if edited and "edit_date" in message else "date"
    reply_to = None
    if optional(message, "reply_to_message") is not None:
        reply = field(message, "reply_to_message", path, dict)
        reply_to = str(field(reply, "message_id", f"{path}.reply_to_message", int))
    # Replying needs the message's own id, so keep it where the renderer looks.
    raw = {"message_id": message_id, "chat_type": optional(chat, "type", str, f"{path}.chat")}
    raw.update(content.pop("raw", {}))
    chat_id = str(field(chat, "id", f"{path}.chat", int))
    key = f"{common['account_id']}/{chat_id}/{message_id}"
    if edited:
        key += f"/edit/{field(message, timestamp_field, path, int)}"
    return InboundMessage(
        platform_message_id=key,
        chat_id=chat_id,
        sender=_author(message, path),
        timestamp=unix_field(message, timestamp_field, path),
        reply_to=reply_to,
        thread_id=_thread_id(message, path),
        edited=edited,
        raw_type=f"{path}.{content_type}",
        raw=raw,
        **content,
        **common,
    )


def _content(message: dict[str, Any], path: str) -> tuple[str, dict[str, Any]]:
    """The message's content type (its Bot API field name) and the model fields it fills."""
    if "text" in message:
        return "text", {"kind": MessageKind.TEXT, "text": field(message, "text", path)}
    caption = optional(message, "caption", str, path)
    for name, media_type in MEDIA_FIELDS.items():
        if name in message:
            if name == "photo":
                media, where = _largest_photo(message, path)
            else:
                media, where = field(message, name, path, dict), f"{path}.{name}"
            ref = MediaRef(
                type=media_type,
                id=field(media, "file_id", where),
                mime_type=optional(media, "mime_type", str, where),
                caption=caption,
                filename=optional(media, "file_name", str, where),
            )
            return name, {"kind": MessageKind.MEDIA, "text": caption, "attachments": (ref,)}
    if "venue" in message:  # a venue also carries a bare "location"; the venue says more
        venue = field(message, "venue", path, dict)
        place = _location(field(venue, "location", f"{path}.venue", dict), f"{path}.venue")
        named = Location(
            place.latitude,
            place.longitude,
            optional(venue, "title", str, f"{path}.venue"),
            optional(venue, "address", str, f"{path}.venue"),
        )
        return "venue", {"kind": MessageKind.LOCATION, "location": named}
    if "location" in message:
        place = _location(field(message, "location", path, dict), path)
        return "location", {"kind": MessageKind.LOCATION, "location": place}
    if "contact" in message:
        contact = field(message, "contact", path, dict)
        return "contact", {"kind": MessageKind.CONTACTS, "raw": {"contact": contact}}
    # Anything else (dice, poll, service messages, types added to the API later) is kept with
    # its raw content so nothing the user sent disappears silently.
    name = next((key for key in message if key not in ENVELOPE_FIELDS), "unknown")
    return name, {"kind": MessageKind.UNSUPPORTED, "raw": {name: message.get(name)}}


def _largest_photo(message: dict[str, Any], path: str) -> tuple[dict[str, Any], str]:
    """Telegram sends a photo as several sizes of the same picture; we keep the largest
    (returned with its path, for errors about its fields)."""
    sizes = field(message, "photo", path, list)
    if not sizes:
        raise BadRequest(f"field '{path}.photo' is empty", code="missing_field")
    areas = []
    for i, size in enumerate(sizes):
        where = f"{path}.photo[{i}]"
        typed(size, where, dict)
        width = optional(size, "width", int, where) or 0
        height = optional(size, "height", int, where) or 0
        areas.append((width * height, i))
    _, largest = max(areas, key=lambda area: area[0])
    return sizes[largest], f"{path}.photo[{largest}]"


def _location(place: dict[str, Any], path: str) -> Location:
    where = f"{path}.location"
    return Location(
        latitude=coordinate(place, "latitude", where, 90),
        longitude=coordinate(place, "longitude", where, 180),
    )


def _thread_id(message: dict[str, Any], path: str) -> str | None:
    thread = optional(message, "message_thread_id", int, path)  # a forum topic or reply thread
    return str(thread) if thread is not None else None


def _author(message: dict[str, Any], path: str) -> Sender:
    # A message sent on behalf of a chat (a channel post, an anonymous group admin, a linked
    # channel's auto-forward) names that chat in sender_chat and, in groups, puts a placeholder
    # bot user in "from": the chat is the author, and it is not a bot to be ignored.
    if optional(message, "sender_chat") is not None:
        return _chat_sender(field(message, "sender_chat", path, dict), f"{path}.sender_chat")
    if optional(message, "from") is None:  # channel posts may come without either
        return _chat_sender(field(message, "chat", path, dict), f"{path}.chat")
    return _user(field(message, "from", path, dict), f"{path}.from")


def _user(user: dict[str, Any], path: str) -> Sender:
    first_name = optional(user, "first_name", str, path)
    last_name = optional(user, "last_name", str, path)
    username = optional(user, "username", str, path)
    name = " ".join(part for part in (first_name, last_name) if part)
    return Sender(
        id=str(field(user, "id", path, int)),
        name=name or username or None,
        is_bot=optional(user, "is_bot", bool, path) is True,
    )


def _chat_sender(chat: dict[str, Any], path: str) -> Sender:
    title = optional(chat, "title", str, path)
    username = optional(chat, "username", str, path)
    name = title or username or None
    return Sender(id=str(field(chat, "id", path, int)), name=name)


def _callback_query(
    query: dict[str, Any], common: dict[str, Any], received_at: float
) -> InboundMessage | None:
    path = "callback_query"
    if optional(query, "message") is None:
        # A button on a message sent in inline mode: no chat to file it under (we do not
        # offer inline mode, so this is not ours to answer).
        log.info("callback query without a message ignored")
        return None
    where = f"{path}.message"
    message = field(query, "message", path, dict)
    chat = field(message, "chat", where, dict)
    # "data" is absent only for game buttons; the choice is then empty rather than invented.
    data = optional(query, "data", str, path) or ""
    query_id = field(query, "id", path)
    return InboundMessage(
        platform_message_id=f"{common['account_id']}/callback/{query_id}",
        chat_id=str(field(chat, "id", f"{where}.chat", int)),
        sender=_user(field(query, "from", path, dict), f"{path}.from"),
        kind=MessageKind.INTERACTIVE,
        timestamp=rfc3339(received_at),
        text=data or None,
        interactive=InteractiveReply(type="callback_query", id=data, title=None),
        # The pressed button belongs to this message (possibly an InaccessibleMessage, date 0).
        reply_to=str(field(message, "message_id", where, int)),
        thread_id=_thread_id(message, where),
        raw_type=path,
        # answerCallbackQuery needs this id, or the user's client shows a spinner for a while.
        raw={
            "callback_query_id": query_id,
            "chat_type": optional(chat, "type", str, f"{where}.chat"),
        },
        **common,
    )


def handle(request: WebRequest, ingress: Ingress) -> WebResponse:
    route = ROUTE.match(request.path)
    if route is None:
        raise NotFound(f"no route {request.path}")
    allow(request.method, "POST")
    bot_id = route[1]
    account: TelegramAccount | None = ingress.tenants.account(CHANNEL, bot_id)
    if account is None:
        raise NotFound(f"no Telegram bot {bot_id} is configured", code="unknown_account")
    verify_secret_token(request.header(SECRET_HEADER), account.secret_token)
    update = parse_json_object(request.body)
    with shape_errors_as_400():
        items = parse(update, account, received_at=ingress.clock())
    if not items:
        # Still a 200: anything else and Telegram redelivers the update for 24 hours.
        metrics.ingress_requests.labels(CHANNEL, "ignored").inc()
        return json_response(200, {"status": "ignored", "published": 0, "duplicates": 0})
    return publish(ingress, CHANNEL, items, ttl_s=RETENTION_S)
