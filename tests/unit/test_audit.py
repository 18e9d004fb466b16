"""The audit document of an event: its id, tenant, time and attributes."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import pytest
from cloudevents.http import CloudEvent

from shared.audit import audit_document
from shared.models import Location, Sender

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def event(data: object = None, **attributes: str) -> CloudEvent:
    base = {"type": "com.chatbot.message.status.v1", "source": "/s", "id": "e1"}
    return CloudEvent({**base, **attributes}, data)


def test_id_is_source_id_and_type() -> None:
    document = audit_document(event(), NOW)
    assert document["_id"] == "/s|e1|com.chatbot.message.status.v1"
    assert document["recorded_at"] == NOW


def test_tenant_from_the_extension_else_from_the_data() -> None:
    assert audit_document(event(tenantid="acme"), NOW)["tenant_id"] == "acme"
    assert audit_document(event({"tenant_id": "globex"}), NOW)["tenant_id"] == "globex"
    assert audit_document(event(b"raw"), NOW)["tenant_id"] is None


@pytest.mark.parametrize(
    ("time", "expected"),
    [
        ("2025-06-08T20:59:43Z", datetime(2025, 6, 8, 20, 59, 43, tzinfo=UTC)),
        ("2025-06-08T22:59:43.5+02:00", datetime(2025, 6, 8, 20, 59, 43, 500000, tzinfo=UTC)),
        ("yesterday", None),
    ],
)
def test_time_becomes_a_utc_date(time: str, expected: datetime | None) -> None:
    assert audit_document(event(time=time), NOW)["time"] == expected


def test_other_attributes_are_kept_as_text() -> None:
    document = audit_document(event({"a": 1}, partitionkey="k", traceparent="00-abc-def-01"), NOW)
    assert document["attributes"] == {"partitionkey": "k", "traceparent": "00-abc-def-01"}
    assert document["data"] == {}  # not an identifier: not kept


def test_a_message_leaves_ids_a_hash_and_sizes_never_its_content() -> None:
    from shared.events import message_received
    from tests.builders import inbound_message

    message = inbound_message(text="My card is 4111 1111 1111 1111")
    message = dataclasses.replace(
        message,
        sender=Sender(id="15551234", name="Ada Lovelace"),
        raw={"contacts": [{"phones": [{"phone": "+1 555 0100"}]}]},
        location=Location(48.85, 2.35, "Home", "1 Rue de Rivoli"),
    )
    data = audit_document(message_received(message), NOW)["data"]

    text = json.dumps(data)
    for secret in ("4111", "Ada", "555 0100", "Rivoli", "48.85"):
        assert secret not in text
    assert data["sender"] == {"id": "15551234"}
    assert data["conversation_key"] == message.conversation_key
    assert data["text_length"] == len("My card is 4111 1111 1111 1111")
