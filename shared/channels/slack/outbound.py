"""Replies through Slack's Web API.

Follows the ``chat.postMessage`` method reference (api.slack.com/methods/chat.postMessage) and
the Block Kit reference (api.slack.com/reference/block-kit): ``POST {api}/chat.postMessage``
with the bot token as bearer; ``thread_ts`` keeps a threaded conversation in its thread.
Quick replies become buttons in an ``actions`` block (≤ 25 elements, button text ≤ 75
characters, ``value`` ≤ 2000); the top-level ``text`` is always sent too, because Slack uses it
for notifications and for clients that cannot show blocks. Beyond the limits the options are
appended to the text instead.
"""

from __future__ import annotations

from typing import Any

from shared.channels.contract import SendContext
from shared.channels.slack.account import SlackAccount
from shared.errors import DependencyUnavailable, RateLimited
from shared.models import Channel, OutboundMessage, QuickReply
from shared.outbound.api import (
    ApiRequest,
    Undeliverable,
    bearer,
    options_as_text,
    provider_id,
    shorten,
    unreadable,
)
from shared.settings import Settings

CHANNEL = Channel("slack")
API_BASE = "https://slack.com/api"
# chat.postMessage errors that are Slack's trouble, not ours.
UNAVAILABLE = frozenset({"internal_error", "fatal_error", "service_unavailable"})

MAX_BUTTONS = 25
BUTTON_TEXT_CHARS = 75
BUTTON_VALUE_CHARS = 2000
SECTION_TEXT_CHARS = 3000
ACTIONS_BLOCK_ID = "quick_replies"


def render(
    message: OutboundMessage, account: SlackAccount, settings: Settings, context: SendContext
) -> ApiRequest:
    del settings
    if not account.bot_token:
        raise Undeliverable("missing_credentials", f"no bot_token for Slack team {account.team_id}")
    body: dict[str, Any] = {"channel": message.chat_id, "text": message.text}
    if message.thread_id:
        body["thread_ts"] = message.thread_id
    if message.quick_replies:
        if _fits_blocks(message):
            body["blocks"] = _blocks(message.text, message.quick_replies)
        else:
            body["text"] = options_as_text(message.text, [r.title for r in message.quick_replies])
    return ApiRequest(
        channel=CHANNEL,
        method="POST",
        url=f"{context.api_base}/chat.postMessage",
        headers=bearer(account.bot_token.reveal()),
        json=body,
    )


def _fits_blocks(message: OutboundMessage) -> bool:
    return (
        len(message.quick_replies) <= MAX_BUTTONS
        and len(message.text) <= SECTION_TEXT_CHARS
        and all(len(r.id) <= BUTTON_VALUE_CHARS for r in message.quick_replies)
    )


def _blocks(text: str, replies: tuple[QuickReply, ...]) -> list[dict[str, Any]]:
    buttons = [
        {
            "type": "button",
            "text": {"type": "plain_text", "text": shorten(r.title, BUTTON_TEXT_CHARS)},
            # action_id must be unique within the block; the option's own id is the value.
            "action_id": f"quick_reply_{index}",
            "value": r.id,
        }
        for index, r in enumerate(replies)
    ]
    blocks: list[dict[str, Any]] = []
    if text:  # a section's text may not be empty
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    blocks.append({"type": "actions", "block_id": ACTIONS_BLOCK_ID, "elements": buttons})
    return blocks


def interpret(status: int, document: dict[str, Any], wait_s: int) -> str:
    """chat.postMessage's answer (429/5xx already handled): ``ts``, or its ``error``."""
    if 200 <= status < 300 and document.get("ok") is True:
        return provider_id(CHANNEL, document.get("ts"))
    error = str(document.get("error") or "")
    if 200 <= status < 300 and not error:
        raise unreadable(CHANNEL, status)
    if error == "ratelimited":
        raise RateLimited("slack API rate limit (ratelimited)", retry_after_s=wait_s)
    if error in UNAVAILABLE:
        raise DependencyUnavailable(f"slack API error {error}", dependency="slack-api")
    code = error or f"http_{status}"
    raise Undeliverable(code, f"chat.postMessage failed: {code}", http_status=status)
