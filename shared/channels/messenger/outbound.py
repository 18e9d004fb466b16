"""Replies through the Messenger Send API.

Follows Meta's Send API reference (developers.facebook.com/docs/messenger-platform/reference/
send-api): ``POST /{version}/{page_id}/messages`` with the Page access token,
``{"recipient": {"id": <PSID>}, "messaging_type": …, "message": {"text", "quick_replies"}}``;
text up to 2,000 characters, up to 13 quick replies (title ≤ 20 characters, payload ≤ 1,000).
The answer is ``{"recipient_id", "message_id"}``, errors are Graph API errors.

The standard messaging window: a reply may be sent within 24 hours of the person's last
message (``messaging_type: RESPONSE``). After it, only a human agent may answer, for up to
7 days, with the ``HUMAN_AGENT`` tag; anything else is :class:`Undeliverable`, and no call is
made.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from shared.channels.contract import SendContext
from shared.channels.messenger.account import MessengerAccount
from shared.errors import DependencyUnavailable, RateLimited
from shared.models import Author, Channel, OutboundMessage
from shared.outbound.api import (
    ApiRequest,
    Undeliverable,
    bearer,
    options_as_text,
    provider_id,
    shorten,
)
from shared.settings import Settings

CHANNEL = Channel("messenger")
API_BASE = "https://graph.facebook.com/v21.0"
WINDOW = timedelta(hours=24)
HUMAN_AGENT_WINDOW = timedelta(days=7)
TEXT_CHARS = 2000
MAX_QUICK_REPLIES = 13
QUICK_REPLY_TITLE_CHARS = 20
QUICK_REPLY_PAYLOAD_BYTES = 1000
# Graph API error codes that mean "slow down" (4 app, 17 user, 32 page, 613 calls per hour) or
# "our side is down" (1 unknown, 2 service, 1200 temporary send failure).
THROTTLED = frozenset({4, 17, 32, 613})
UNAVAILABLE = frozenset({1, 2, 1200})


def messaging_type(
    message: OutboundMessage, last_inbound_at: datetime | None, now: datetime
) -> dict[str, str]:
    """How the reply is sent: within the 24-hour window, as a human agent's tagged reply, or
    not at all."""
    age = now - last_inbound_at if last_inbound_at is not None else None
    if age is not None and age <= WINDOW:
        return {"messaging_type": "RESPONSE"}
    if age is not None and age <= HUMAN_AGENT_WINDOW and message.author is Author.AGENT:
        return {"messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}
    raise Undeliverable(
        "outside_window", "outside the 24-hour window: only a human agent may answer (7 days)"
    )


def render(
    message: OutboundMessage, account: MessengerAccount, settings: Settings, context: SendContext
) -> ApiRequest:
    del settings
    if not account.page_access_token:
        raise Undeliverable("missing_credentials", f"no page_access_token for {account.page_id}")
    body = {
        "recipient": {"id": message.chat_id},
        **messaging_type(message, context.last_inbound_at, context.now),
        "message": _content(message),
    }
    return ApiRequest(
        channel=CHANNEL,
        method="POST",
        url=f"{context.api_base}/{account.page_id}/messages",
        headers=bearer(account.page_access_token.reveal()),
        json=body,
    )


def _content(message: OutboundMessage) -> dict[str, Any]:
    replies = message.quick_replies
    fits = len(replies) <= MAX_QUICK_REPLIES and all(
        0 < len(r.id.encode()) <= QUICK_REPLY_PAYLOAD_BYTES for r in replies
    )
    if replies and not fits:
        return {
            "text": shorten(options_as_text(message.text, [r.title for r in replies]), TEXT_CHARS)
        }
    content: dict[str, Any] = {"text": shorten(message.text, TEXT_CHARS)}
    if replies:
        content["quick_replies"] = [
            {
                "content_type": "text",
                "title": shorten(r.title, QUICK_REPLY_TITLE_CHARS),
                "payload": r.id,
            }
            for r in replies
        ]
    return content


def interpret(status: int, document: dict[str, Any], wait_s: int) -> str:
    """The Send API's answer (429/5xx already handled): ``message_id``, or its error."""
    error = document.get("error")
    if 200 <= status < 300 and not isinstance(error, dict):
        return provider_id(CHANNEL, document.get("message_id"))
    error = error if isinstance(error, dict) else {}
    code = error.get("code")
    text = str(error.get("message") or f"HTTP {status}")
    if code in THROTTLED:
        raise RateLimited(f"messenger API rate limit ({code}): {text}", retry_after_s=wait_s)
    if code in UNAVAILABLE:
        raise DependencyUnavailable(
            f"messenger API error {code}: {text}", dependency="messenger-api"
        )
    raise Undeliverable(str(code or f"http_{status}"), text, http_status=status)
