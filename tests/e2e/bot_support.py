"""Talking to a running local stack the way the platforms and the widget do, and watching the
channel sandbox for the bot's replies. Everything comes from the stack's endpoints.json.

The webhook bodies come from :mod:`shared.devstack.traffic` (re-exported here). Every message
gets fresh platform ids (wamid, Slack event id, Telegram update id, chat ids), so
a rerun against a Redis that outlived an earlier run is never taken for a redelivery.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from shared.channels import messenger, slack, telegram, whatsapp
from shared.devstack.replies import describe
from shared.devstack.traffic import messenger_body as messenger_body
from shared.devstack.traffic import slack_body as slack_body
from shared.devstack.traffic import telegram_body as telegram_body
from shared.devstack.traffic import unique_digits as unique_digits
from shared.devstack.traffic import whatsapp_body as whatsapp_body
from shared.events import MESSAGE_RECEIVED
from shared.kafka import ConsumedRecord, RecordProducer, read_topic

REPLY_TIMEOUT_S = 20.0
Call = dict[str, Any]


def poll(what: str, check: Callable[[], Any], timeout_s: float = REPLY_TIMEOUT_S) -> Any:
    """``check()``'s first truthy answer, polled until ``timeout_s``; a test failure after."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = check()
        if answer:
            return answer
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: nothing after {timeout_s:.0f}s")
        time.sleep(0.1)


@dataclass
class Chat:
    """One end user's conversation on one channel: what is sent, where the reply lands."""

    channel: str
    chat_id: str  # where the reply goes: WhatsApp wa_id, Slack channel, Telegram chat id
    conversation_key: str


class Stack:
    def __init__(self, endpoints: dict[str, Any]) -> None:
        self.endpoints = endpoints
        self.tenant = endpoints["tenant"]
        self.sandbox = endpoints["sandbox"]
        self.brokers = endpoints["kafka"]["brokers"].split(",")
        self.topics = endpoints["topics"]
        self.http = httpx.Client(trust_env=False, timeout=10)

    def url(self, function: str) -> str:
        return str(self.endpoints["functions"][function]["url"])

    # --- the sandbox

    def calls(self, chat: Chat | None = None) -> list[Call]:
        response = self.http.get(self.sandbox["calls_url"])
        response.raise_for_status()
        calls: list[Call] = response.json()
        return [c for c in calls if chat is None or is_call_for(c, chat)]

    def wait_calls(
        self, chat: Chat, count: int = 1, *, ok: bool = True, timeout_s: float = REPLY_TIMEOUT_S
    ) -> list[Call]:
        """The chat's calls once ``count`` of them (successful ones when ``ok``) are recorded."""

        def enough() -> list[Call] | None:
            calls = self.calls(chat)
            counted = [c for c in calls if succeeded(c)] if ok else calls
            return calls if len(counted) >= count else None

        found: list[Call] = poll(f"{count} sandbox call(s) for {chat}", enough, timeout_s)
        return found

    def fail_next(self, channel: str, status: int, times: int = 1) -> None:
        rule = {"channel": channel, "status": status, "times": times}
        self.http.post(self.sandbox["fail_url"], json=rule).raise_for_status()

    # --- the channels

    def whatsapp(
        self, text: str, wa_id: str | None = None, headers: dict[str, str] | None = None
    ) -> tuple[Chat, bytes]:
        """A signed WhatsApp webhook; returns the chat and the body (to deliver it again)."""
        account = self.tenant["whatsapp"]
        wa_id = wa_id or "1555" + unique_digits(7)
        body = whatsapp_body(account["phone_number_id"], wa_id, text)
        self.post_whatsapp(body, headers)
        key = f"dev:whatsapp:{account['phone_number_id']}/{wa_id}"
        return Chat("whatsapp", wa_id, key), body

    def post_whatsapp(self, body: bytes, headers: dict[str, str] | None = None) -> dict[str, Any]:
        return self._post_meta("whatsapp", whatsapp.SIGNATURE_HEADER, whatsapp.sign, body, headers)

    def _post_meta(
        self,
        channel: str,
        signature_header: str,
        sign: Callable[[Any, bytes], str],
        body: bytes,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """A webhook signed the way Meta signs (WhatsApp, Messenger): 200 and its answer."""
        account = self.tenant[channel]
        response = self.http.post(
            account["webhook_url"],
            content=body,
            headers={
                "Content-Type": "application/json",
                signature_header: sign(account["app_secret"], body),
                **(headers or {}),
            },
        )
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def slack(self, text: str) -> Chat:
        account = self.tenant["slack"]
        channel = "D0E2E" + uuid.uuid4().hex[:8].upper()
        body = slack_body(account["team_id"], account["bot_user_id"], channel, text)
        stamp = str(int(time.time()))  # the function checks the 5-minute window against now
        response = self.http.post(
            account["events_url"],
            content=body,
            headers={
                "Content-Type": "application/json",
                slack.TIMESTAMP_HEADER: stamp,
                slack.SIGNATURE_HEADER: slack.sign(account["signing_secret"], stamp, body),
            },
        )
        assert response.status_code == 200, response.text
        return Chat("slack", channel, f"dev:slack:{account['team_id']}/{channel}")

    def telegram(self, text: str, chat_id: str | None = None) -> Chat:
        account = self.tenant["telegram"]
        chat_id = chat_id or unique_digits(9)
        response = self.http.post(
            account["webhook_url"],
            content=telegram_body(int(chat_id), text),
            headers={
                "Content-Type": "application/json",
                telegram.SECRET_HEADER: account["secret_token"],
            },
        )
        assert response.status_code == 200, response.text
        return Chat("telegram", chat_id, telegram_key(account["bot_id"], chat_id))

    def messenger(self, text: str) -> Chat:
        account = self.tenant["messenger"]
        psid = unique_digits(16)
        message = {"mid": f"m_{uuid.uuid4().hex}", "text": text}
        self.post_messenger(messenger_body(account["page_id"], psid, message=message))
        return Chat("messenger", psid, f"dev:messenger:{account['page_id']}/{psid}")

    def post_messenger(self, body: bytes) -> dict[str, Any]:
        return self._post_meta("messenger", messenger.SIGNATURE_HEADER, messenger.sign, body)

    def webchat(self, text: str) -> Chat:
        account = self.tenant["webchat"]
        # Every session is a new visitor (the server chooses the visitor id).
        session = self.http.post(account["sessions_url"], json={"site_key": account["site_key"]})
        assert session.status_code == 201, session.text
        token, conversation = session.json()["token"], session.json()["conversation_id"]
        sent = self.http.post(
            account["messages_url"],
            json={"client_message_id": "msg-" + uuid.uuid4().hex, "text": text},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert sent.status_code == 202, sent.text
        key = f"dev:webchat:{account['site_key']}/{conversation}"
        return Chat("webchat", conversation, key)

    # --- the topics

    def publish_poison(self, key: str) -> str:
        """A ``message.received`` event that is not a message (``{}``) on the inbound topic,
        under the conversation ``key``; returns its event id."""
        event_id = str(uuid.uuid4())
        headers = [
            ("ce_specversion", b"1.0"),
            ("ce_id", event_id.encode()),
            ("ce_source", b"/e2e/poison"),
            ("ce_type", MESSAGE_RECEIVED.encode()),
            ("ce_tenantid", self.tenant["id"].encode()),
            ("content-type", b"application/json"),
        ]
        producer = RecordProducer(self.brokers, client_id="e2e-poison")
        try:
            producer.send(self.topics["inbound"], key.encode(), headers, b"{}")
        finally:
            producer.close()
        return event_id

    def wait_dead_lettered(self, topic: str, event_id: str) -> ConsumedRecord:
        def dead_lettered() -> list[ConsumedRecord]:
            records = read_topic(self.brokers, topic)
            return [r for r in records if r.headers.get("ce_id") == event_id.encode()]

        [record] = poll(f"the poison event on {topic}", dead_lettered)
        return record

    def records(self, topic: str, key: str) -> list[ConsumedRecord]:
        """The conversation's records on ``topic`` (every record is read: one small broker)."""
        return [r for r in read_topic(self.brokers, topic) if r.key == key.encode()]


def telegram_key(bot_id: str, chat_id: str) -> str:
    return f"dev:telegram:{bot_id}/{chat_id}"


def is_call_for(call: Call, chat: Chat) -> bool:
    return call["channel"] == chat.channel and describe(call).recipient == chat.chat_id


def succeeded(call: Call) -> bool:
    return bool(call["status"] == 200 and call["response"].get("ok", True) is not False)


def call_text(call: Call) -> str:
    return describe(call).text
