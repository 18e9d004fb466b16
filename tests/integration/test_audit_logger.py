"""audit-logger against a real MongoDB-protocol server, driven as KafkaSource drives it."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cloudevents.http import CloudEvent
from flask.testing import FlaskClient

from shared.caching import clear_all
from shared.devstack.servers import free_port
from tests.builders import deliver
from tests.integration.conftest import ROOT

pytestmark = pytest.mark.integration


@pytest.fixture
def start(mongodb: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., FlaskClient]]:
    """``start(**env)``: the audit-logger function, loaded with the test's settings."""
    import functions_framework

    def make(**env: str) -> FlaskClient:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        clear_all()
        source = ROOT / "functions" / "audit-logger" / "main.py"
        return functions_framework.create_app("handle", str(source)).test_client()

    yield make
    clear_all()


def received(event_id: str = "9f0c1d2e") -> CloudEvent:
    return CloudEvent(
        {
            "type": "com.chatbot.message.received.v1",
            "source": "/chat-service/channels/whatsapp/106540352242922",
            "id": event_id,
            "subject": "106540352242922/16505551234",
            "time": "2025-06-08T20:59:43Z",
            "datacontenttype": "application/json",
            "partitionkey": "acme:whatsapp:106540352242922/16505551234",
            "tenantid": "acme",
        },
        {"tenant_id": "acme", "text": "hello"},
    )


def test_an_event_becomes_one_audit_document(
    start: Callable[..., FlaskClient], mongodb: Any
) -> None:
    before = datetime.now(UTC)
    response = deliver(start(), received())

    assert response.status_code == 200
    (document,) = mongodb["audit"].find()
    source = "/chat-service/channels/whatsapp/106540352242922"
    assert document.pop("recorded_at") - before < timedelta(seconds=10)
    assert document == {
        "_id": f"{source}|9f0c1d2e|com.chatbot.message.received.v1",
        "tenant_id": "acme",
        "type": "com.chatbot.message.received.v1",
        "event_id": "9f0c1d2e",
        "source": source,
        "subject": "106540352242922/16505551234",
        "time": datetime(2025, 6, 8, 20, 59, 43, tzinfo=UTC),
        "attributes": {
            "datacontenttype": "application/json",
            "partitionkey": "acme:whatsapp:106540352242922/16505551234",
            "tenantid": "acme",
        },
        # Ids and metadata only: the body is a hash and a size (docs/data-model.md, audit).
        "data": {
            "tenant_id": "acme",
            "text_sha256": hashlib.sha256(b"hello").hexdigest(),
            "text_length": 5,
        },
    }


def test_a_redelivered_event_is_recorded_once(
    start: Callable[..., FlaskClient], mongodb: Any
) -> None:
    client = start()
    assert deliver(client, received()).status_code == 200
    first = mongodb["audit"].find_one()
    assert deliver(client, received()).status_code == 200  # a duplicate is done, not an error
    assert deliver(client, received("another")).status_code == 200

    assert mongodb["audit"].count_documents({}) == 2
    assert mongodb["audit"].find_one({"_id": first["_id"]}) == first  # append-only: untouched


def test_retention_is_a_ttl_index_on_recorded_at(
    start: Callable[..., FlaskClient], mongodb: Any
) -> None:
    assert deliver(start(AUDIT_RETENTION_DAYS="7"), received()).status_code == 200

    ttl = [i for i in mongodb["audit"].list_indexes() if "expireAfterSeconds" in i]
    assert [(dict(i["key"]), i["expireAfterSeconds"]) for i in ttl] == [
        ({"recorded_at": 1}, 7 * 86400)
    ]


KNATIVE_SOURCE = "/apis/v1/namespaces/default/kafkasources/audit-logger#chatbot.platform.audit"


def test_a_kafka_record_wrapped_by_knative_is_recorded_without_tenant(
    start: Callable[..., FlaskClient], mongodb: Any
) -> None:
    wrapped = CloudEvent(
        {
            "id": "partition:0/offset:12",
            "source": KNATIVE_SOURCE,
            "type": "dev.knative.kafka.event",
            "key": "k1",
        }
    )
    response = deliver(start(), wrapped, body=b"not json", headers={"content-type": "text/plain"})
    assert response.status_code == 200

    (document,) = mongodb["audit"].find()
    assert document["tenant_id"] is None
    assert document["data"] == {"size": 8, "sha256": hashlib.sha256(b"not json").hexdigest()}


def test_mongodb_down_is_a_503_so_the_kafkasource_retries(
    start: Callable[..., FlaskClient],
) -> None:
    client = start(MONGODB_URI=f"mongodb://127.0.0.1:{free_port()}/")

    assert deliver(client, received()).status_code == 503
    health = client.get("/api/v2/health")
    assert (health.status_code, health.json) == (
        503,
        {"status": "unavailable", "service": "audit-logger", "dependencies": {"mongodb": "down"}},
    )


def test_health_is_ok_with_mongodb_up(start: Callable[..., FlaskClient]) -> None:
    response = start().get("/api/v2/health")
    assert (response.status_code, response.get_json()) == (
        200,
        {"status": "ok", "service": "audit-logger", "dependencies": {"mongodb": "up"}},
    )
