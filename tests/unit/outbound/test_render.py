"""Rendering replies per channel: request shapes, quick replies, text fallback, 24 h window."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.errors import BadRequest
from shared.models import Author, Channel, OutboundMessage, QuickReply, TemplateRef
from shared.outbound.api import Undeliverable
from shared.outbound.render import find_account, render
from shared.settings import Settings
from shared.tenants import TenantConfigError, TenantDirectory

SETTINGS = Settings.from_env(
    {
        "CHANNEL_API_BASES": "whatsapp=https://graph.example/v21.0,"
        "slack=https://slack.example/api,telegram=https://telegram.example"
    }
)
NOW = datetime(2025, 6, 9, 12, 0, tzinfo=UTC)
ACCOUNTS = {
    Channel("whatsapp"): "106540352242922",
    Channel("slack"): "T0001ACME",
    Channel("telegram"): "7000000001",
    Channel("webchat"): "site-acme",
}
CHATS = {
    Channel("whatsapp"): "16505551234",
    Channel("slack"): "C0123",
    Channel("telegram"): "-1001234",
    Channel("webchat"): "conv-1",
}


def reply(channel: Channel, text: str = "Which colour?", **changes: object) -> OutboundMessage:
    message = OutboundMessage(
        tenant_id="acme",
        channel=channel,
        account_id=ACCOUNTS[channel],
        chat_id=CHATS[channel],
        message_id="m-1",
        text=text,
        author=Author.BOT,
        created_at="2025-06-09T12:00:00Z",
    )
    return dataclasses.replace(message, **changes)  # type: ignore[arg-type]


def options(count: int, title: str = "Option") -> tuple[QuickReply, ...]:
    return tuple(QuickReply(f"opt-{i}", f"{title} {i}") for i in range(1, count + 1))


def rendered(
    message: OutboundMessage, tenants: TenantDirectory, **window: object
) -> dict[str, Any]:
    account = find_account(message, tenants)
    window = {"last_inbound_at": NOW - timedelta(hours=1), "now": NOW} | window
    return render(message, account, SETTINGS, **window).json  # type: ignore[arg-type]


# WhatsApp Cloud API


def test_whatsapp_text_reply(tenants: TenantDirectory) -> None:
    message = reply(Channel("whatsapp"), "Hello!")
    request = render(
        message,
        find_account(message, tenants),
        SETTINGS,
        last_inbound_at=NOW - timedelta(hours=23),
        now=NOW,
    )

    assert request.method == "POST"
    assert request.url == "https://graph.example/v21.0/106540352242922/messages"
    assert request.headers["Authorization"] == "Bearer wa-access-acme"
    assert request.json == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "16505551234",
        "type": "text",
        "text": {"preview_url": False, "body": "Hello!"},
    }


def test_whatsapp_up_to_three_quick_replies_are_reply_buttons(tenants: TenantDirectory) -> None:
    message = reply(
        Channel("whatsapp"),
        quick_replies=(QuickReply("red", "Red"), QuickReply("blue", "A very long blue title")),
    )

    body = rendered(message, tenants)

    assert body["type"] == "interactive"
    assert body["interactive"] == {
        "type": "button",
        "body": {"text": "Which colour?"},
        "action": {
            "buttons": [
                {"type": "reply", "reply": {"id": "red", "title": "Red"}},
                {"type": "reply", "reply": {"id": "blue", "title": "A very long blue ti…"}},
            ]
        },
    }
    titles = [b["reply"]["title"] for b in body["interactive"]["action"]["buttons"]]
    assert all(len(t) <= 20 for t in titles)


def test_whatsapp_four_to_ten_quick_replies_are_a_list(tenants: TenantDirectory) -> None:
    message = reply(Channel("whatsapp"), quick_replies=options(5, "An option whose title is long"))

    body = rendered(message, tenants)

    assert body["interactive"]["type"] == "list"
    [section] = body["interactive"]["action"]["sections"]
    assert len(section["rows"]) == 5
    assert section["rows"][0]["id"] == "opt-1"
    assert len(section["rows"][0]["title"]) == 24
    assert section["rows"][0]["description"] == "An option whose title is long 1"


def test_whatsapp_more_than_ten_quick_replies_fall_back_to_text(tenants: TenantDirectory) -> None:
    message = reply(Channel("whatsapp"), quick_replies=options(11))

    body = rendered(message, tenants)

    assert body["type"] == "text"
    assert body["text"]["body"].startswith("Which colour?\n\n1. Option 1\n2. Option 2\n")
    assert body["text"]["body"].endswith("11. Option 11")


def test_whatsapp_body_too_long_for_buttons_falls_back_to_text(tenants: TenantDirectory) -> None:
    message = reply(Channel("whatsapp"), "x" * 1025, quick_replies=options(2))

    assert rendered(message, tenants)["type"] == "text"


@pytest.mark.parametrize("last_inbound", [None, NOW - timedelta(hours=24, seconds=1)])
def test_whatsapp_outside_the_window_without_template_is_undeliverable(
    tenants: TenantDirectory, last_inbound: datetime | None
) -> None:
    message = reply(Channel("whatsapp"))

    with pytest.raises(Undeliverable) as caught:
        rendered(message, tenants, last_inbound_at=last_inbound)

    assert caught.value.code == "outside_window"
    assert "outside the 24-hour window" in caught.value.message


def test_whatsapp_exactly_24_hours_is_still_inside(tenants: TenantDirectory) -> None:
    body = rendered(reply(Channel("whatsapp")), tenants, last_inbound_at=NOW - timedelta(hours=24))

    assert body["type"] == "text"


def test_whatsapp_outside_the_window_sends_the_template(tenants: TenantDirectory) -> None:
    template = TemplateRef("order_update", "en_GB", ("Ada", "42"))
    message = reply(Channel("whatsapp"), quick_replies=options(2), template=template)

    body = rendered(message, tenants, last_inbound_at=NOW - timedelta(days=3))

    assert body["type"] == "template"
    assert body["template"] == {
        "name": "order_update",
        "language": {"code": "en_GB"},
        "components": [
            {
                "type": "body",
                "parameters": [{"type": "text", "text": "Ada"}, {"type": "text", "text": "42"}],
            }
        ],
    }


def test_an_account_without_an_access_token_does_not_load() -> None:
    # Not "Bearer None" (or an empty bearer) sent at reply time: refused when the directory loads.
    account = {"phone_number_id": "2", "app_secret": "s" * 32, "verify_token": "v" * 16}
    with pytest.raises(TenantConfigError, match="access_token is required"):
        TenantDirectory.from_dict({"tenants": [{"id": "globex", "whatsapp": [account]}]})


# Slack chat.postMessage


def test_slack_text_reply_in_thread(tenants: TenantDirectory) -> None:
    message = reply(Channel("slack"), "Hi there", thread_id="1718000000.000100")
    request = render(message, find_account(message, tenants), SETTINGS)

    assert request.url == "https://slack.example/api/chat.postMessage"
    assert request.headers["Authorization"] == "Bearer xoxb-acme"
    assert request.json == {
        "channel": "C0123",
        "text": "Hi there",
        "thread_ts": "1718000000.000100",
    }


def test_slack_quick_replies_are_block_kit_buttons_with_text_kept(
    tenants: TenantDirectory,
) -> None:
    message = reply(Channel("slack"), quick_replies=options(2))

    body = rendered(message, tenants)

    assert body["text"] == "Which colour?"  # the notification / fallback text
    section, actions = body["blocks"]
    assert section == {"type": "section", "text": {"type": "mrkdwn", "text": "Which colour?"}}
    assert actions["type"] == "actions"
    assert actions["elements"][1] == {
        "type": "button",
        "text": {"type": "plain_text", "text": "Option 2"},
        "action_id": "quick_reply_1",
        "value": "opt-2",
    }


def test_slack_too_many_quick_replies_fall_back_to_text(tenants: TenantDirectory) -> None:
    body = rendered(reply(Channel("slack"), quick_replies=options(26)), tenants)

    assert "blocks" not in body
    assert body["text"].endswith("26. Option 26")


# Telegram sendMessage


def test_telegram_quick_replies_are_an_inline_keyboard(tenants: TenantDirectory) -> None:
    message = reply(Channel("telegram"), quick_replies=options(2), thread_id="77")
    request = render(message, find_account(message, tenants), SETTINGS)

    assert request.url == "https://telegram.example/bottg-acme/sendMessage"
    assert "Authorization" not in request.headers
    assert request.json == {
        "chat_id": -1001234,
        "text": "Which colour?",
        "message_thread_id": 77,
        "reply_markup": {
            "inline_keyboard": [
                [{"text": "Option 1", "callback_data": "opt-1"}],
                [{"text": "Option 2", "callback_data": "opt-2"}],
            ]
        },
    }


def test_telegram_callback_data_over_64_bytes_falls_back_to_text(
    tenants: TenantDirectory,
) -> None:
    message = reply(Channel("telegram"), quick_replies=(QuickReply("x" * 65, "Long id"),))

    body = rendered(message, tenants)

    assert "reply_markup" not in body
    assert body["text"] == "Which colour?\n\n1. Long id"


def test_bot_token_never_shows_in_the_request_repr(tenants: TenantDirectory) -> None:
    message = reply(Channel("slack"))

    assert "xoxb-acme" not in repr(render(message, find_account(message, tenants), SETTINGS))


@pytest.mark.parametrize("channel", [Channel("whatsapp"), Channel("slack"), Channel("telegram")])
def test_an_empty_reply_is_undeliverable(tenants: TenantDirectory, channel: Channel) -> None:
    with pytest.raises(Undeliverable, match="empty_message"):
        rendered(reply(channel, "  "), tenants)


# Accounts


def test_account_of_another_tenant_is_refused(tenants: TenantDirectory) -> None:
    message = dataclasses.replace(reply(Channel("slack")), account_id="T0002GLBX")

    with pytest.raises(BadRequest) as caught:
        find_account(message, tenants)

    assert caught.value.code == "unknown_account"


def test_web_chat_is_not_rendered_as_an_api_call(tenants: TenantDirectory) -> None:
    message = reply(Channel("webchat"))

    with pytest.raises(ValueError, match="not sent over an API"):
        render(message, find_account(message, tenants), SETTINGS)
