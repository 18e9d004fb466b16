"""Replies through the Telegram Bot API.

Follows the Bot API reference (core.telegram.org/bots/api#sendmessage): ``POST
{api}/bot<token>/sendMessage`` with ``chat_id``, ``text`` and, for quick replies, an
``InlineKeyboardMarkup`` whose buttons carry the option id as ``callback_data`` (1 to 64 bytes).
The bot token is part of the URL, so the URL is never logged. ``message_thread_id`` keeps a
reply in its forum topic. An option id too long for ``callback_data`` sends the options as text.
"""

from __future__ import annotations

from typing import Any

from shared.channels.contract import SendContext
from shared.channels.telegram.account import TelegramAccount
from shared.errors import RateLimited
from shared.models import Channel, OutboundMessage
from shared.outbound.api import ApiRequest, Undeliverable, options_as_text, provider_id, unreadable
from shared.settings import Settings

CHANNEL = Channel("telegram")
API_BASE = "https://api.telegram.org"

CALLBACK_DATA_BYTES = 64
MAX_BUTTONS = 100  # the Bot API's limit on an inline keyboard


def render(
    message: OutboundMessage, account: TelegramAccount, settings: Settings, context: SendContext
) -> ApiRequest:
    del settings
    if not account.bot_token:
        raise Undeliverable(
            "missing_credentials", f"no bot_token for Telegram bot {account.bot_id}"
        )
    body: dict[str, Any] = {"chat_id": _chat_id(message.chat_id), "text": message.text}
    if message.thread_id and message.thread_id.lstrip("-").isdigit():
        body["message_thread_id"] = int(message.thread_id)
    replies = message.quick_replies
    if replies:
        if _fits_keyboard(message):
            # One button per row: titles stay readable on a phone.
            keyboard = [[{"text": r.title, "callback_data": r.id}] for r in replies]
            body["reply_markup"] = {"inline_keyboard": keyboard}
        else:
            body["text"] = options_as_text(message.text, [r.title for r in replies])
    return ApiRequest(
        channel=CHANNEL,
        method="POST",
        url=f"{context.api_base}/bot{account.bot_token.reveal()}/sendMessage",
        headers={"Content-Type": "application/json"},
        json=body,
    )


def _fits_keyboard(message: OutboundMessage) -> bool:
    return len(message.quick_replies) <= MAX_BUTTONS and all(
        0 < len(r.id.encode()) <= CALLBACK_DATA_BYTES for r in message.quick_replies
    )


def _chat_id(chat_id: str) -> int | str:
    # Bot API chat ids are integers; "@channelusername" is the string form.
    return int(chat_id) if chat_id.lstrip("-").isdigit() else chat_id


def interpret(status: int, document: dict[str, Any], wait_s: int) -> str:
    """sendMessage's answer (429/5xx already handled): ``result.message_id``, or its error."""
    if 200 <= status < 300 and document.get("ok") is True:
        result = document.get("result")
        return provider_id(CHANNEL, result.get("message_id") if isinstance(result, dict) else None)
    code = document.get("error_code")
    if 200 <= status < 300 and code is None:
        raise unreadable(CHANNEL, status)
    description = str(document.get("description") or f"HTTP {status}")
    if code == 429:
        raise RateLimited(f"telegram API rate limit: {description}", retry_after_s=wait_s)
    raise Undeliverable(str(code or f"http_{status}"), description, http_status=status)
