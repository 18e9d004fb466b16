"""scripts/maintenance.sh on real servers: indexes, audit retention and dead letters, each
found fine and then found needing a person."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.caching import clear_all
from shared.kafka import RecordProducer, ensure_topics
from shared.ops import maintenance
from shared.settings import get_settings
from shared.store.indexes import ensure_indexes
from tests.integration.conftest import ROOT

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(
    mongodb: Any, kafka_brokers: str, topic_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> Any:
    monkeypatch.setenv("KAFKA_BROKERS", kafka_brokers)
    monkeypatch.setenv("TOPIC_PREFIX", f"chatbot.{topic_prefix.split('.')[-1]}")
    clear_all()
    ensure_indexes(mongodb, audit_retention_days=90)
    yield get_settings()
    clear_all()


def problems(settings: Any) -> list[str]:
    return [f"{f.area}: {f.message}" for f in maintenance.check(settings) if not f.ok]


def test_a_healthy_system_needs_nobody(settings: Any, mongodb: Any) -> None:
    mongodb.audit.insert_one({"_id": "e1", "recorded_at": datetime.now(UTC) - timedelta(days=3)})

    assert problems(settings) == []
    script = subprocess.run(
        [str(ROOT / "scripts" / "maintenance.sh"), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert script.returncode == 0, script.stderr
    areas = {f["area"] for f in json.loads(script.stdout)["findings"]}
    assert areas == {"indexes", "audit", "dead letters"}


def test_a_missing_or_undeclared_index_needs_a_person(settings: Any, mongodb: Any) -> None:
    mongodb.messages.drop_index("tenant_conversation_created")
    mongodb.conversations.create_index([("assignee", 1)], name="by_assignee")

    found = problems(settings)

    assert "indexes: messages.tenant_conversation_created is missing (run the migration)" in found
    assert "indexes: conversations.by_assignee is not declared" in found


def test_audit_records_older_than_the_retention_need_a_person(settings: Any, mongodb: Any) -> None:
    mongodb.audit.insert_one({"_id": "old", "recorded_at": datetime.now(UTC) - timedelta(days=95)})

    [found] = problems(settings)

    assert found.startswith("audit: ") and "the TTL monitor is behind" in found


def test_a_dead_letter_needs_a_person(settings: Any) -> None:
    topic = f"{settings.topic_prefix}.dlq.outbound-dispatcher"
    ensure_topics(settings.kafka_brokers, [topic])
    producer = RecordProducer(settings.kafka_brokers, client_id="test")
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"reply-1"),
        ("ce_source", b"/chat-service/message-processor"),
        ("ce_type", b"com.chatbot.message.outbound.v1"),
        ("ce_knativeerrorcode", b"503"),
        ("content-type", b"application/json"),
    ]
    producer.send(topic, b"k", headers, b"{}")
    producer.close()

    assert problems(settings) == [f"dead letters: {topic}: 1 (503: 1)"]


def test_unreachable_servers_need_a_person_too(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.devstack.servers import free_port

    monkeypatch.setenv("MONGODB_URI", f"mongodb://127.0.0.1:{free_port()}/")
    monkeypatch.setenv("KAFKA_BROKERS", f"127.0.0.1:{free_port()}")
    clear_all()
    try:
        found = problems(get_settings())
    finally:
        clear_all()
    assert [f.split(":")[0] for f in found] == ["indexes", "dead letters"]
    assert "MongoDB not checked" in found[0] and "not checked" in found[1]
