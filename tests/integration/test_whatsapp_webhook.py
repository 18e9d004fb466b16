"""whatsapp-webhook against a real Kafka-protocol broker and Redis."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from shared.channels.whatsapp import sign
from shared.events import MESSAGE_RECEIVED
from tests.conftest import payload_bytes

pytestmark = pytest.mark.integration

SECRET = "wa-app-secret-acme"


def post(client: FlaskClient, body: bytes, secret: str = SECRET) -> Any:
    return client.post(
        "/",
        data=body,
        headers={"X-Hub-Signature-256": sign(secret, body), "Content-Type": "application/json"},
    )


def test_signed_message_becomes_one_binary_cloudevent(
    make_client: Callable[[str], FlaskClient], read_events: Callable[..., list[Any]]
) -> None:
    client = make_client("whatsapp-webhook")
    body = payload_bytes("whatsapp", "text_message.json")

    response = post(client, body)

    assert response.status_code == 200, response.data
    assert response.json == {"status": "ok", "published": 1, "duplicates": 0}
    [record] = read_events("messages.inbound", min_records=1)
    assert record.key == b"acme:whatsapp:106540352242922/16505551234"
    assert record.headers["ce_specversion"] == b"1.0"
    assert record.headers["ce_type"] == MESSAGE_RECEIVED.encode()
    assert record.headers["ce_source"] == b"/chat-service/channels/whatsapp/106540352242922"
    assert record.headers["ce_tenantid"] == b"acme"
    assert record.headers["content-type"] == b"application/json"
    data = json.loads(record.value)
    assert data["text"] == "Does it come in another color?"
    assert data["sender"] == {"id": "16505551234", "name": "Sheena Nelson", "is_bot": False}
    assert data["platform_message_id"].startswith("wamid.")
    event = record.event()
    assert event["partitionkey"] == "acme:whatsapp:106540352242922/16505551234"
    assert event["time"] == "2025-06-08T20:59:43Z"


def test_same_webhook_three_times_gives_one_event(
    make_client: Callable[[str], FlaskClient], read_events: Callable[..., list[Any]]
) -> None:
    client = make_client("whatsapp-webhook")
    body = payload_bytes("whatsapp", "text_message.json")

    codes = [post(client, body).status_code for _ in range(3)]

    assert codes == [200, 200, 200]
    records = read_events("messages.inbound", min_records=2, timeout_s=2)
    assert len(records) == 1
