"""messenger-webhook and Messenger replies against real servers: the Kafka-protocol broker,
Redis, MongoDB and the channel sandbox (its Send API stand-in)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from shared.caching import clear_all
from shared.channels.messenger import sign
from shared.devstack.sandbox import fingerprint
from shared.events import MESSAGE_RECEIVED, MESSAGE_STATUS, message_outbound
from tests.builders import deliver, outbound_message
from tests.conftest import payload_bytes
from tests.integration.outbound_support import (  # noqa: F401
    SandboxCalls,
    channel_api_fixture,
    db_fixture,
    outbound_env_fixture,
    sandbox_url_fixture,
)
from tests.unit.channels.test_messenger import messenger_tenants

pytestmark = pytest.mark.integration

SECRET = "ms-app-secret-acme"
PAGE, USER = "106540352243001", "6543210987654321"


@pytest.fixture(autouse=True)
def with_messenger_pages(function_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENANTS_JSON", json.dumps(messenger_tenants()))
    clear_all()


def post(client: FlaskClient, body: bytes, secret: str = SECRET) -> Any:
    headers = {"X-Hub-Signature-256": sign(secret, body), "Content-Type": "application/json"}
    return client.post("/", data=body, headers=headers)


def test_a_signed_message_becomes_one_binary_cloudevent(
    make_client: Callable[[str], FlaskClient], read_events: Callable[..., list[Any]]
) -> None:
    client = make_client("messenger-webhook")
    body = payload_bytes("messenger", "text.json")

    answers = [post(client, body) for _ in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[0].json == {"status": "ok", "published": 1, "duplicates": 0}
    assert answers[2].json == {"status": "ok", "published": 0, "duplicates": 1}
    [record] = read_events("messages.inbound", min_records=2, timeout_s=2)
    assert record.key == f"acme:messenger:{PAGE}/{USER}".encode()
    assert record.headers["ce_type"] == MESSAGE_RECEIVED.encode()
    assert record.headers["ce_source"] == f"/chat-service/channels/messenger/{PAGE}".encode()
    assert record.headers["ce_tenantid"] == b"acme"
    data = json.loads(record.value)
    assert (data["platform_message_id"], data["text"]) == (
        "m_text1",
        "Does it come in another color?",
    )


def test_receipts_go_to_the_status_topic(
    make_client: Callable[[str], FlaskClient], read_events: Callable[..., list[Any]]
) -> None:
    client = make_client("messenger-webhook")

    assert post(client, payload_bytes("messenger", "delivery.json")).status_code == 200
    assert post(client, payload_bytes("messenger", "read.json")).status_code == 200

    records = read_events("messages.status", min_records=3)
    assert all(r.headers["ce_type"] == MESSAGE_STATUS.encode() for r in records)
    statuses = [json.loads(r.value) for r in records]
    assert [(s["platform_message_id"], s["status"], s["up_to"]) for s in statuses] == [
        ("m_out1", "delivered", None),
        ("m_out2", "delivered", None),
        ("read/1749416410000", "read", "2025-06-08T21:00:10Z"),
    ]


def test_the_handshake_and_a_bad_signature(make_client: Callable[[str], FlaskClient]) -> None:
    client = make_client("messenger-webhook")
    query = {
        "hub.mode": "subscribe",
        "hub.verify_token": "ms-verify-acme-0123",
        "hub.challenge": "31",
    }

    assert client.get("/", query_string=query).data == b"31"
    refused = post(client, payload_bytes("messenger", "text.json"), secret="not-the-secret")
    assert (refused.status_code, refused.json["error"]) == (401, "bad_signature")


def test_a_reply_is_sent_through_the_send_api_and_recorded(
    make_client: Callable[[str], FlaskClient], channel_api: SandboxCalls, db: Any
) -> None:
    clear_all()  # the dispatcher reads the Pages and the sandbox's address from the env
    dispatcher = make_client("outbound-dispatcher")
    message = outbound_message(channel="messenger", account_id=PAGE, chat_id=USER, text="Blue.")
    db.conversations.insert_one(
        {
            "_id": message.conversation_key,
            "tenant_id": "acme",
            "channel": "messenger",
            "state": "open",
            "last_inbound_at": datetime.now(UTC) - timedelta(minutes=5),
        }
    )

    response = deliver(dispatcher, message_outbound(message, "/chat-service/message-processor"))

    assert response.status_code == 200, response.data
    [call] = channel_api.calls("messenger")
    assert call["path"] == f"/messenger/v21.0/{PAGE}/messages"
    assert call["credential"] == fingerprint("ms-page-token-acme")
    assert call["json"] == {
        "recipient": {"id": USER},
        "messaging_type": "RESPONSE",
        "message": {"text": "Blue."},
    }
    document = db.messages.find_one({"_id": message.message_id})
    assert document["delivery"]["state"] == "sent"
    assert document["channel_message_id"] == call["response"]["message_id"]
