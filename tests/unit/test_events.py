from __future__ import annotations

import dataclasses
import json
from dataclasses import replace

from shared import events
from shared.kafka import from_record, to_record
from shared.models import (
    Author,
    Channel,
    DeliveryStatus,
    InboundMessage,
    InteractiveReply,
    Location,
    MediaRef,
    OutboundMessage,
    QuickReply,
    StatusUpdate,
    plain,
)
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


def test_plain_is_asdict_without_the_copies() -> None:
    """``to_dict`` builds events on every webhook request: it must say what ``asdict`` says
    (rebuilt containers, same types), leaving the leaves shared instead of deep-copied."""
    rich = replace(
        message(),
        attachments=(MediaRef("image", "m1", "image/jpeg", caption="a"), MediaRef("file", "m2")),
        location=Location(52.5, 13.4, name="here"),
        interactive=InteractiveReply("button_reply", "yes", "Yes"),
        raw={"nested": {"list": [1, 2.5, None, True, {"deep": ("t", "u")}]}, "n": 3},
    )
    failed = StatusUpdate(
        "acme", Channel("whatsapp"), "1065", "1555", "wamid.9", DeliveryStatus.FAILED,
        "2025-01-01T00:00:00Z", errors=({"code": 131047, "details": ["x"]},),
    )  # fmt: skip
    reply = OutboundMessage(
        "acme", Channel("slack"), "T1", "C1", "out-1", "Pick one", Author.BOT,
        "2025-01-01T00:00:00Z", quick_replies=(QuickReply("A", "a"), QuickReply("B", "b")),
    )  # fmt: skip
    for value in (rich, failed, reply):
        made, expected = plain(value), dataclasses.asdict(value)
        assert made == expected
        assert json.dumps(made, sort_keys=True) == json.dumps(expected, sort_keys=True)
        assert _types(made) == _types(expected)
    made = plain(rich)
    made["raw"]["nested"]["list"].append("changed")  # containers are the dict's own
    assert rich.raw["nested"]["list"] == [1, 2.5, None, True, {"deep": ("t", "u")}]
    assert rich.to_dict()["conversation_key"] == rich.conversation_key


def _types(value: object) -> object:
    if isinstance(value, dict):
        return {k: _types(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return (type(value).__name__, [_types(v) for v in value])
    return type(value).__name__
