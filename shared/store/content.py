"""What of an end user's message is stored, and when: nothing before it is screened.

The inbound document is written first with its content *withheld* (no text, attachments,
location, platform fields or display name; :func:`withheld`) — it is the checkpoint, and must
exist before the Security Hub is asked. The content is written once screened
(:func:`screened_fields`), in its screened form: a REDACT verdict rewrites the text (and a
caption repeating it), and also drops the display name and every platform field that is not an
id (a contact card, a phone number in ``raw``). A message that is rate-limited is never
screened, and its content never stored; a blocked one keeps only the verdict.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from shared.models import InboundMessage, plain
from shared.store.messages import with_text

WITHHELD, SCREENED = "withheld", "screened"
# Platform fields that identify a message, not what it says: kept whatever the verdict.
RAW_IDS = frozenset(
    {"message_id", "chat_type", "update_id", "client_message_id", "event_id", "ts"}
    | {"callback_query_id", "mid", "postback_payload"}
)


def withheld(message: InboundMessage) -> InboundMessage:
    """The message as first stored: who, where and when, not what."""
    return dataclasses.replace(
        message,
        text=None,
        attachments=(),
        location=None,
        raw={k: v for k, v in message.raw.items() if k in RAW_IDS},
        sender=dataclasses.replace(message.sender, name=None),
    )


def platform_content(message: InboundMessage) -> str | None:
    """The platform fields that are not ids (a contact card has no text, but a phone number),
    as text the Security Hub can screen too; None when there are none."""
    extra = {k: v for k, v in message.raw.items() if k not in RAW_IDS}
    return json.dumps(extra, ensure_ascii=False, sort_keys=True) if extra else None


def screened_fields(message: InboundMessage, text: str | None, *, redacted: bool) -> dict[str, Any]:
    """The ``$set`` that stores the message's content as screened: ``text`` is the screened
    text; ``redacted`` when any part of the message was redacted."""
    shown = with_text(message, text)
    raw = {k: v for k, v in message.raw.items() if k in RAW_IDS} if redacted else message.raw
    return {
        "text": shown.text,
        "attachments": [plain(a) for a in shown.attachments],
        "location": plain(message.location) if message.location else None,
        "raw": raw,
        "sender.name": None if redacted else message.sender.name,
        "processing.content": SCREENED,
    }
