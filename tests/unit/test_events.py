from __future__ import annotations

import json

from shared import events
from shared.kafka import from_record, to_record
from shared.models import Channel, DeliveryStatus, InboundMessage, StatusUpdate
from tests.builders import inbound_message


def message(platform_id: str = "wamid.1", tenant: str = "acme") -> InboundMessage:
    return inbound_message(platform_message_id=platform_id, tenant_id=tenant, text="héllo ✓")


def status(state: DeliveryStatus) -> StatusUpdate:
    return StatusUpdate(
        "acme",
        Channel("whatsapp"),
        "106540352242922",
        "16505551234",
        "wamid.9",
        state,
        "2025-01-01T00:00:00Z",
    )


def test_event_ids_are_deterministic_and_distinct() -> None:
    assert events.message_received(message())["id"] == events.message_received(message())["id"]
    assert (
        events.message_received(message())["id"]
        != events.message_received(message("wamid.2"))["id"]
    )
    # The same platform id under another tenant is another message.
    assert (
        events.message_received(message())["id"]
        != events.message_received(message(tenant="b"))["id"]
    )
    sent = events.status_changed(status(DeliveryStatus.SENT))["id"]
    read = events.status_changed(status(DeliveryStatus.READ))["id"]
    assert sent != read
    assert sent == events.status_changed(status(DeliveryStatus.SENT))["id"]


def test_received_event_attributes() -> None:
    event = events.message_received(message())
    assert event["specversion"] == "1.0"
    assert event["type"] == "com.chatbot.message.received.v1"
    assert event["source"] == "/chat-service/channels/whatsapp/106540352242922"
    assert event["subject"] == "106540352242922/16505551234"
    assert event["partitionkey"] == "acme:whatsapp:106540352242922/16505551234"
    assert event["tenantid"] == "acme"
    assert event.data["conversation_key"] == event["partitionkey"]
    assert events.status_changed(status(DeliveryStatus.READ))["type"] == (
        "com.chatbot.message.status.v1"
    )


def test_kafka_binary_mode_round_trip() -> None:
    event = events.message_received(message())
    record = to_record(event)
    assert record.key == b"acme:whatsapp:106540352242922/16505551234"
    assert record.headers["ce_id"] == event["id"].encode()
    assert record.headers["ce_type"] == b"com.chatbot.message.received.v1"
    assert record.headers["content-type"] == b"application/json"
    assert "ce_partitionkey" not in record.headers  # carried by the record key
    assert json.loads(record.value)["text"] == "héllo ✓"

    back = from_record(list(record.headers.items()), record.key, record.value)
    assert back["id"] == event["id"]
    assert back["partitionkey"] == event["partitionkey"]
    assert back.data == json.loads(json.dumps(event.data))
