"""The MongoDB store on a real MongoDB-protocol server: the documented indexes, the unique
backstop, the migration command, and the message, conversation and poison collections."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cloudevents.http import CloudEvent
from pymongo.errors import DuplicateKeyError

from shared.errors import BadRequest
from shared.models import InboundMessage, OutboundMessage, Sender
from shared.store import migrate
from shared.store.conversations import ConversationStore
from shared.store.indexes import ensure_indexes
from shared.store.messages import MessageStore
from shared.store.poison import PoisonStore
from tests.builders import inbound_message, outbound_message

pytestmark = pytest.mark.integration

NOW = datetime(2025, 6, 8, 21, 0, tzinfo=UTC)

HAS_PLATFORM_ID = {"channel_message_id": {"$type": "string"}}
DOCUMENTED: dict[str, dict[str, tuple[list[tuple[str, int]], dict[str, Any]]]] = {
    "conversations": {
        "tenant_channel_conversation_unique": (
            [("tenant_id", 1), ("channel", 1), ("conversation_id", 1)],
            {"unique": True},
        ),
        "tenant_state_last_message": ([("tenant_id", 1), ("state", 1), ("last_message_at", 1)], {}),
        "tenant_updated": ([("tenant_id", 1), ("updated_at", -1), ("_id", -1)], {}),
        "tenant_channel_participant": (
            [("tenant_id", 1), ("channel", 1), ("participant.id", 1)],
            {},
        ),
    },
    "messages": {
        "tenant_channel_message_id_unique": (
            [("tenant_id", 1), ("channel", 1), ("channel_message_id", 1)],
            {
                "unique": True,
                "partialFilterExpression": {"channel_message_id": {"$type": "string"}},
            },
        ),
        "tenant_conversation_created": (
            [("tenant_id", 1), ("conversation_key", 1), ("created_at", 1)],
            {},
        ),
    },
    "audit": {"recorded_at_ttl": ([("recorded_at", 1)], {"expireAfterSeconds": 30 * 86_400})},
    "pending_statuses": {
        "tenant_channel_message_id": (
            [("tenant_id", 1), ("channel", 1), ("channel_message_id", 1)],
            {},
        ),
        "received_at_ttl": ([("received_at", 1)], {"expireAfterSeconds": 7 * 86_400}),
    },
}


def inbound(platform_id: str = "wamid.1", **changes: Any) -> InboundMessage:
    return inbound_message(platform_message_id=platform_id, **changes)


def reply(message_id: str = "reply-1", text: str = "hi") -> OutboundMessage:
    return outbound_message(message_id=message_id, text=text)


def index_spec(info: dict[str, Any]) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    options: dict[str, Any] = {
        k: json.loads(json.dumps(info[k]))
        for k in ("unique", "partialFilterExpression", "expireAfterSeconds")
        if k in info
    }
    return [(field, int(order)) for field, order in info["key"]], options


def test_the_documented_indexes_are_created_idempotently(mongodb: Any) -> None:
    ensure_indexes(mongodb, audit_retention_days=30)
    ensure_indexes(mongodb, audit_retention_days=30)

    for collection, expected in DOCUMENTED.items():
        info = mongodb[collection].index_information()
        info.pop("_id_")
        assert {name: index_spec(spec) for name, spec in info.items()} == expected


def test_a_changed_audit_retention_changes_the_ttl_in_place(mongodb: Any) -> None:
    ensure_indexes(mongodb, audit_retention_days=90)
    ensure_indexes(mongodb, audit_retention_days=7)

    ttl = mongodb.audit.index_information()["recorded_at_ttl"]["expireAfterSeconds"]
    assert ttl == 7 * 86_400


def test_the_unique_backstop_rejects_a_second_document_for_one_platform_message(
    mongodb: Any,
) -> None:
    ensure_indexes(mongodb)
    base = {"tenant_id": "acme", "channel": "whatsapp", "channel_message_id": "wamid.1"}
    mongodb.messages.insert_one({"_id": "event-1", **base})

    with pytest.raises(DuplicateKeyError):
        mongodb.messages.insert_one({"_id": "event-2", **base})
    mongodb.messages.insert_one({"_id": "event-3", **base, "tenant_id": "globex"})
    # Outbound messages have no provider id before they are sent: many may coexist.
    mongodb.messages.insert_one({"_id": "out-1", "tenant_id": "acme", "channel": "whatsapp"})
    mongodb.messages.insert_one({"_id": "out-2", "tenant_id": "acme", "channel": "whatsapp"})


def test_migrate_creates_and_prints_the_indexes(
    mongodb: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from shared.settings import get_settings

    get_settings.cache_clear()
    try:
        assert migrate.main([]) == 0
    finally:
        get_settings.cache_clear()

    printed = json.loads(capsys.readouterr().out)
    assert printed["database"] == mongodb.name
    names = {c: {i["name"] for i in idx} for c, idx in printed["indexes"].items()}
    assert names["messages"] == {"_id_", *DOCUMENTED["messages"]}
    assert names["poison_events"] == set()


def test_migrate_fails_cleanly_without_mongodb(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from shared.devstack.servers import free_port
    from shared.settings import get_settings

    monkeypatch.setenv("MONGODB_URI", f"mongodb://127.0.0.1:{free_port()}/")
    get_settings.cache_clear()
    try:
        assert migrate.main([]) == 1
    finally:
        get_settings.cache_clear()
    assert "MongoDB unavailable" in capsys.readouterr().err


def test_an_inbound_message_is_stored_once(mongodb: Any) -> None:
    ensure_indexes(mongodb)
    store = MessageStore(mongodb)

    first = store.insert_inbound("event-1", inbound(), NOW)
    again = store.insert_inbound("event-1", inbound(), NOW + timedelta(seconds=5))
    other = store.insert_inbound("event-2", inbound(), NOW)

    assert first.created and first.document is not None
    # The platform's second (20:59:43), refined by our receipt (NOW is later: its last ms).
    assert first.document["created_at"] == datetime(2025, 6, 8, 20, 59, 43, 999000, tzinfo=UTC)
    assert not again.created and again.document == mongodb.messages.find_one({"_id": "event-1"})
    assert other.document is None and other.duplicate_of == "event-1"
    assert store.get("globex", "event-1") is None  # every read is scoped to the tenant


def test_the_processing_state_only_moves_from_the_expected_states(mongodb: Any) -> None:
    store = MessageStore(mongodb)
    store.insert_inbound("event-1", inbound(), NOW)

    moved = store.advance(
        "acme", "event-1", from_states=["stored"], to_state="screened", now=NOW,
        fields={"text": "redacted"},
    )  # fmt: skip
    assert moved is not None and moved["processing"]["state"] == "screened"
    assert moved["text"] == "redacted"
    assert store.advance("acme", "event-1", from_states=["stored"], to_state="x", now=NOW) is None
    assert (
        store.advance("globex", "event-1", from_states=["screened"], to_state="x", now=NOW) is None
    )


def test_replies_are_inserted_once_and_never_overwritten(mongodb: Any) -> None:
    ensure_indexes(mongodb)
    store = MessageStore(mongodb)

    assert store.insert_outbound([reply("r1"), reply("r2")], NOW) == 2
    mongodb.messages.update_one({"_id": "r1"}, {"$set": {"delivery.state": "sent"}})
    assert store.insert_outbound([reply("r1", "changed"), reply("r2")], NOW) == 0

    stored = mongodb.messages.find_one({"_id": "r1"})
    assert stored["text"] == "hi" and stored["delivery"]["state"] == "sent"
    assert stored["direction"] == "outbound" and "channel_message_id" not in stored


def test_a_conversation_counts_messages_and_keeps_the_latest_times(mongodb: Any) -> None:
    ensure_indexes(mongodb)
    store = ConversationStore(mongodb)
    key = inbound().conversation_key

    created = store.record_inbound(inbound(), NOW)
    older = inbound("wamid.0", timestamp="2025-06-08T20:00:00Z", sender=Sender("16505551234"))
    store.record_inbound(older, NOW)
    store.record_outbound("acme", key, 1, NOW)

    doc = store.get("acme", key)
    assert created["state"] == "open" and created["created_at"] == NOW
    assert doc is not None and doc["message_count"] == 3
    assert doc["last_inbound_at"] == datetime(2025, 6, 8, 20, 59, 43, tzinfo=UTC)  # not older
    assert doc["last_message_at"] == NOW
    assert doc["participant"] == {"id": "16505551234", "name": "Sheena"}  # name kept
    assert doc["conversation_id"] == "106540352242922/16505551234"
    assert store.get("globex", key) is None


def test_a_conversation_state_changes_only_from_the_expected_state(mongodb: Any) -> None:
    store = ConversationStore(mongodb)
    store.record_inbound(inbound(), NOW)
    key = inbound().conversation_key

    assert store.change_state("acme", key, from_state="open", to_state="handoff", now=NOW)
    assert not store.change_state("acme", key, from_state="open", to_state="handoff", now=NOW)
    assert not store.change_state("globex", key, from_state="handoff", to_state="open", now=NOW)


def test_a_poison_event_is_kept_once(mongodb: Any) -> None:
    event = CloudEvent({"id": "e1", "source": "/x", "type": "t", "tenantid": "acme"}, b"\xff{")
    store = PoisonStore(mongodb)

    store.record("message-processor", event, BadRequest("bad", code="malformed_event"), NOW)
    store.record("message-processor", event, BadRequest("other"), NOW + timedelta(minutes=1))

    [doc] = list(mongodb.poison_events.find({"tenant_id": "acme"}))
    assert doc["_id"] == "message-processor|e1" and doc["recorded_at"] == NOW
    assert doc["error"] == {"code": "malformed_event", "message": "bad"}
    assert doc["event"]["data"] == "\ufffd{" and doc["event"]["attributes"]["type"] == "t"
