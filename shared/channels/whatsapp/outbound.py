"""Replies through the WhatsApp Cloud API.

Follows Meta's Cloud API messages reference (developers.facebook.com/docs/whatsapp/cloud-api/
reference/messages) and its interactive-message limits: ``POST /{version}/{phone_number_id}/
messages`` with the account's bearer token; up to 3 reply buttons (title ≤ 20 characters),
a list of up to 10 rows (title ≤ 24), interactive body ≤ 1024 characters.

The 24-hour customer-service window: a free-form message may only be sent within 24 hours of
the user's last message (``conversations.last_inbound_at``). Outside it only an approved
template may be sent; without one the message is :class:`Undeliverable` and no call is made
(Meta would refuse it with error 131047 anyway).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from shared.channels.contract import SendContext
from shared.channels.whatsapp.account import WhatsAppAccount
from shared.errors import DependencyUnavailable, RateLimited
from shared.models import Channel, OutboundMessage, QuickReply, TemplateRef
from shared.outbound.api import (
    ApiRequest,
    Undeliverable,
    bearer,
    options_as_text,
    provider_id,
    shorten,
)
from shared.settings import Settings

CHANNEL = Channel("whatsapp")
API_BASE = "https://graph.facebook.com/v21.0"
# Graph API error codes that mean "slow down" or "our side is down" (Cloud API error-codes
# reference): 4 app rate limit, 80007 account rate limit, 130429 throughput, 131048 spam
# rate limit, 131056 pair rate limit; 1/2 service, 131000 unknown, 131016 service
# unavailable, 133004 server temporarily unavailable.
THROTTLED = frozenset({4, 80007, 130429, 131048, 131056})
UNAVAILABLE = frozenset({1, 2, 131000, 131016, 133004})

WINDOW = timedelta(hours=24)
MAX_BUTTONS = 3
BUTTON_TITLE_CHARS = 20
MAX_LIST_ROWS = 10
ROW_TITLE_CHARS = 24
ROW_DESCRIPTION_CHARS = 72
INTERACTIVE_BODY_CHARS = 1024
LIST_BUTTON_LABEL = "Options"


def within_window(last_inbound_at: datetime | None, now: datetime) -> bool:
    """A conversation the user never wrote in (or one we know nothing of) has no open window."""
    return last_inbound_at is not None and now - last_inbound_at <= WINDOW


def render(
    message: OutboundMessage, account: WhatsAppAccount, settings: Settings, context: SendContext
) -> ApiRequest:
    del settings  # everything comes from the account and the context
    if not account.access_token:
        raise Undeliverable("missing_credentials", f"no access_token for {account.phone_number_id}")
    if not within_window(context.last_inbound_at, context.now):
        if message.template is None:
            raise Undeliverable(
                "outside_window",
                "outside the 24-hour window: only an approved template may be sent",
            )
        content = _template(message.template)
    else:
        content = _content(message)
    body = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": message.chat_id,
        **content,
    }
    return ApiRequest(
        channel=CHANNEL,
        method="POST",
        url=f"{context.api_base}/{account.phone_number_id}/messages",
        headers=bearer(account.access_token.reveal()),
        json=body,
    )


def _content(message: OutboundMessage) -> dict[str, Any]:
    replies = message.quick_replies
    # Interactive messages need a body; a long one goes out as text with numbered options.
    fits = bool(replies) and 0 < len(message.text) <= INTERACTIVE_BODY_CHARS
    if fits and len(replies) <= MAX_BUTTONS:
        return {"type": "interactive", "interactive": _buttons(message.text, replies)}
    if fits and len(replies) <= MAX_LIST_ROWS:
        return {"type": "interactive", "interactive": _list(message.text, replies)}
    text = options_as_text(message.text, [r.title for r in replies]) if replies else message.text
    return {"type": "text", "text": {"preview_url": False, "body": text}}


def _buttons(text: str, replies: tuple[QuickReply, ...]) -> dict[str, Any]:
    buttons = [
        {"type": "reply", "reply": {"id": r.id, "title": shorten(r.title, BUTTON_TITLE_CHARS)}}
        for r in replies
    ]
    return {"type": "button", "body": {"text": text}, "action": {"buttons": buttons}}


def _list(text: str, replies: tuple[QuickReply, ...]) -> dict[str, Any]:
    rows = [_row(r) for r in replies]
    return {
        "type": "list",
        "body": {"text": text},
        "action": {"button": LIST_BUTTON_LABEL, "sections": [{"rows": rows}]},
    }


def _row(reply: QuickReply) -> dict[str, str]:
    row = {"id": reply.id, "title": shorten(reply.title, ROW_TITLE_CHARS)}
    if len(reply.title) > ROW_TITLE_CHARS:  # the description shows what the title lost
        row["description"] = shorten(reply.title, ROW_DESCRIPTION_CHARS)
    return row


def _template(template: TemplateRef) -> dict[str, Any]:
    content: dict[str, Any] = {"name": template.name, "language": {"code": template.language}}
    if template.parameters:
        parameters = [{"type": "text", "text": p} for p in template.parameters]
        content["components"] = [{"type": "body", "parameters": parameters}]
    return {"type": "template", "template": content}


def interpret(status: int, document: dict[str, Any], wait_s: int) -> str:
    """The Graph API's answer (429/5xx already handled): ``messages[0].id``, or its error."""
    error = document.get("error")
    if 200 <= status < 300 and not isinstance(error, dict):
        messages = document.get("messages")
        first = messages[0] if isinstance(messages, list) and messages else None
        return provider_id(CHANNEL, first.get("id") if isinstance(first, dict) else None)
    error = error if isinstance(error, dict) else {}
    code = error.get("code")
    message = str(error.get("message") or f"HTTP {status}")
    if code in THROTTLED:
        raise RateLimited(f"whatsapp API rate limit ({code}): {message}", retry_after_s=wait_s)
    if code in UNAVAILABLE:
        raise DependencyUnavailable(
            f"whatsapp API error {code}: {message}", dependency="whatsapp-api"
        )
    raise Undeliverable(str(code or f"http_{status}"), message, http_status=status)
