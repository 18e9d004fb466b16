"""Webhooks as the platforms send them to a local stack: bodies, signatures and who the reply
is for. Used by the end-to-end tests and ``make bench``.

Every message gets fresh platform ids (wamid, Slack event id, Telegram update and message id,
Messenger mid) unless given, so a rerun against a Redis that outlived an earlier run is never
taken for a redelivery. :class:`DevTraffic` reads the dev tenant's entry of
``endpoints.json`` (its secrets and webhook URLs) and signs each request the platform's way.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from typing import Any

from shared.channels import messenger, slack, telegram, whatsapp
from shared.dataclass import dataclass

# The channels whose replies leave through an API the channel sandbox stands in for (web chat
# answers through its own widget stream, not the sandbox).
SANDBOX_CHANNELS = ("whatsapp", "slack", "telegram", "messenger")


def unique_digits(length: int) -> str:
    return str(random.randint(10 ** (length - 1), 10**length - 1))  # noqa: S311 (test ids)


def whatsapp_body(
    phone_number_id: str, wa_id: str, text: str, message_id: str | None = None
) -> bytes:
    """A Cloud API webhook with one text message (one line of JSON)."""
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000000", "phone_number_id": phone_number_id},
        "contacts": [{"profile": {"name": "E2E User"}, "wa_id": wa_id}],
        "messages": [
            {
                "from": wa_id,
                "id": message_id or f"wamid.E2E{uuid.uuid4().hex.upper()}",
                "timestamp": str(int(time.time())),
                "type": "text",
                "text": {"body": text},
            }
        ],
    }
    document = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "100000000000000", "changes": [{"field": "messages", "value": value}]}],
    }
    return json.dumps(document).encode()


def slack_body(team_id: str, bot_user_id: str, channel: str, text: str) -> bytes:
    """An Events API ``event_callback`` with a direct message from a user."""
    now = time.time()
    document = {
        "token": "e2e",
        "team_id": team_id,
        "api_app_id": "A0DEVAPP",
        "type": "event_callback",
        "event_id": "Ev" + uuid.uuid4().hex[:12].upper(),
        "event_time": int(now),
        "event": {
            "type": "message",
            "channel_type": "im",
            "channel": channel,
            "user": "U0E2EUSER",
            "text": text,
            "ts": f"{now:.6f}",
            "event_ts": f"{now:.6f}",
            "team": team_id,
        },
        "authorizations": [{"team_id": team_id, "user_id": bot_user_id, "is_bot": True}],
    }
    return json.dumps(document).encode()


def telegram_body(chat_id: int, text: str) -> bytes:
    """A Bot API update with a private-chat text message."""
    user = {"id": chat_id, "is_bot": False, "first_name": "E2E"}
    document = {
        "update_id": int(unique_digits(9)),
        "message": {
            "message_id": int(unique_digits(9)),
            "from": user,
            "chat": {"id": chat_id, "first_name": "E2E", "type": "private"},
            "date": int(time.time()),
            "text": text,
        },
    }
    return json.dumps(document).encode()


def messenger_body(page_id: str, psid: str, **body: Any) -> bytes:
    """A Page webhook with one messaging event (``message=…``, ``read=…``, …)."""
    event = {
        "sender": {"id": psid},
        "recipient": {"id": page_id},
        "timestamp": int(time.time() * 1000),
        **body,
    }
    entry = {"id": page_id, "time": event["timestamp"], "messaging": [event]}
    return json.dumps({"object": "page", "entry": [entry]}).encode()


@dataclass(frozen=True)
class Webhook:
    channel: str
    url: str
    body: bytes
    headers: dict[str, str]
    recipient: str  # whom the bot's reply is sent to, as the sandbox describes the call


class DevTraffic:
    """Signed webhooks for the dev tenant (``endpoints.json``'s ``tenant`` entry)."""

    def __init__(self, tenant: dict[str, Any]) -> None:
        self.tenant = tenant

    def message(self, channel: str, text: str) -> Webhook:
        """A text message from a new end user (a new conversation) on ``channel``."""
        make = {
            "whatsapp": self._whatsapp,
            "slack": self._slack,
            "telegram": self._telegram,
            "messenger": self._messenger,
        }.get(channel)
        if make is None:
            raise ValueError(f"no webhook for channel {channel!r}: one of {SANDBOX_CHANNELS}")
        return make(text)

    def _whatsapp(self, text: str) -> Webhook:
        account = self.tenant["whatsapp"]
        wa_id = "1555" + unique_digits(7)
        body = whatsapp_body(account["phone_number_id"], wa_id, text)
        signature = whatsapp.sign(account["app_secret"], body)
        return Webhook(
            "whatsapp",
            account["webhook_url"],
            body,
            {"Content-Type": "application/json", whatsapp.SIGNATURE_HEADER: signature},
            wa_id,
        )

    def _slack(self, text: str) -> Webhook:
        account = self.tenant["slack"]
        channel = "D0E2E" + uuid.uuid4().hex[:8].upper()
        body = slack_body(account["team_id"], account["bot_user_id"], channel, text)
        stamp = str(int(time.time()))  # the function checks the 5-minute window against now
        headers = {
            "Content-Type": "application/json",
            slack.TIMESTAMP_HEADER: stamp,
            slack.SIGNATURE_HEADER: slack.sign(account["signing_secret"], stamp, body),
        }
        return Webhook("slack", account["events_url"], body, headers, channel)

    def _telegram(self, text: str) -> Webhook:
        account = self.tenant["telegram"]
        chat_id = unique_digits(9)
        headers = {
            "Content-Type": "application/json",
            telegram.SECRET_HEADER: account["secret_token"],
        }
        body = telegram_body(int(chat_id), text)
        return Webhook("telegram", account["webhook_url"], body, headers, chat_id)

    def _messenger(self, text: str) -> Webhook:
        account = self.tenant["messenger"]
        psid = unique_digits(16)
        message = {"mid": f"m_{uuid.uuid4().hex}", "text": text}
        body = messenger_body(account["page_id"], psid, message=message)
        signature = messenger.sign(account["app_secret"], body)
        headers = {"Content-Type": "application/json", messenger.SIGNATURE_HEADER: signature}
        return Webhook("messenger", account["webhook_url"], body, headers, psid)
