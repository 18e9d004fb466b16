"""message-processor on real servers: a Kafka-protocol broker, MongoDB-protocol, Redis, and the
reference MCP engine and Security Hub over real gRPC. Events are posted the way KafkaSource
delivers them: binary-mode CloudEvents (``ce-*`` headers, JSON body)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from cloudevents.http import CloudEvent
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from shared import events
from shared.devstack.servers import free_port
from shared.kafka import ensure_topics
from shared.models import InboundMessage
from shared.store.messages import MessageStore
from tests import builders

pytestmark = pytest.mark.integration

BLOCKED_WORD = "forbiddenword"


class EngineServer:
    """The reference engine on a fixed port, stoppable and restartable within a test."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"127.0.0.1:{self.port}"
        self._server: Any = None

    def start(self) -> None:
        from shared.refservers import mcp_engine

        self._server = mcp_engine.serve(self.port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(0).wait()
            self._server = None


@pytest.fixture
def engine() -> Iterator[EngineServer]:
    server = EngineServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def hub_url() -> Iterator[str]:
    from shared.refservers import security_hub

    port = free_port()
    server = security_hub.serve(port, blocklist=[BLOCKED_WORD])
    yield f"127.0.0.1:{port}"
    server.stop(0).wait()


@pytest.fixture
def start(
    make_client: Callable[[str], FlaskClient],
    monkeypatch: pytest.MonkeyPatch,
    mongodb: Any,
    engine: EngineServer,
    hub_url: str,
    kafka_brokers: str,
    topic_prefix: str,
) -> Iterator[Callable[..., FlaskClient]]:
    """``start(**env)``: the function under test, loaded with the test's settings."""
    from shared.bot.runtime import get_processor
    from shared.caching import clear_all
    from shared.grpc.channel import close_channels

    ensure_topics(kafka_brokers.split(","), [f"{topic_prefix}.messages.outbound"])

    def make(**env: str) -> FlaskClient:
        settings = {
            "MCP_ENGINE_URL": engine.url,
            "SECURITY_HUB_URL": hub_url,
            "GRPC_DEADLINE_S": "1",
            **env,
        }
        for key, value in settings.items():
            monkeypatch.setenv(key, value)
        clear_all()
        _drop_processor()
        return make_client("message-processor")

    def _drop_processor() -> None:
        if get_processor.cache_info().currsize:
            getattr(get_processor().producer, "close", lambda: None)()
        get_processor.cache_clear()

    yield make
    _drop_processor()
    close_channels()


def inbound(text: str | None = "hello", platform_id: str = "wamid.1") -> InboundMessage:
    return builders.inbound_message(text=text, platform_message_id=platform_id)


def deliver(client: FlaskClient, event: CloudEvent, body: bytes | None = None) -> TestResponse:
    """POST ``event`` as KafkaSource does: binary content mode."""
    return builders.deliver(client, event, body=body)


def outbound_events(read_events: Callable[..., list[Any]], expected: int) -> list[Any]:
    """Every record on the outbound topic, waiting for ``expected`` and a moment for more."""
    records = read_events("messages.outbound", min_records=expected + 1, timeout_s=2.0)
    return [record.event() for record in records]


def test_a_message_is_stored_answered_and_published(
    start: Callable[..., FlaskClient],
    mongodb: Any,
    read_events: Callable[..., list[Any]],
) -> None:
    client = start()
    event = events.message_received(inbound("hello"))

    assert deliver(client, event).status_code == 200

    [published] = outbound_events(read_events, 1)
    reply_id = events.outbound_id(event["id"], 0)
    assert published["id"] == reply_id and published["type"] == events.MESSAGE_OUTBOUND
    assert published["partitionkey"] == inbound().conversation_key
    assert published.data["author"] == "bot" and published.data["text"].startswith("Hello!")
    stored = mongodb.messages.find_one({"_id": event["id"], "tenant_id": "acme"})
    assert stored["processing"]["state"] == "replying"  # `replied`: when the send is recorded
    assert stored["processing"]["reply_ids"] == [reply_id]
    reply = mongodb.messages.find_one({"_id": reply_id, "tenant_id": "acme"})
    assert reply["direction"] == "outbound" and reply["delivery"]["state"] == "pending"
    assert reply["inbound_id"] == event["id"]
    conversation = mongodb.conversations.find_one({"_id": inbound().conversation_key})
    assert conversation["state"] == "open" and conversation["message_count"] == 2
    assert conversation["participant"] == {"id": "16505551234", "name": "Sheena"}
    assert conversation["last_inbound_at"].isoformat().startswith("2025-06-08T20:59:43")
    assert set(mongodb.messages.index_information()) >= {"tenant_channel_message_id_unique"}


def test_the_same_event_twice_publishes_the_stored_reply_until_it_is_sent(
    start: Callable[..., FlaskClient],
    mongodb: Any,
    read_events: Callable[..., list[Any]],
) -> None:
    client = start()
    event = events.message_received(inbound())

    assert deliver(client, event).status_code == 200
    assert deliver(client, event).status_code == 200
    # Before the send is recorded the stored answer goes out again: the same reply event,
    # which the dispatcher sends once (the engine is not asked twice).
    first, again = outbound_events(read_events, 2)
    assert again["id"] == first["id"] and again.data == first.data
    mongodb.messages.update_one(  # what the dispatcher writes when it records the send
        {"_id": event["id"]}, {"$set": {"processing.state": "replied"}}
    )
    assert deliver(client, event).status_code == 200

    assert len(outbound_events(read_events, 2)) == 2
    assert mongodb.messages.count_documents({"tenant_id": "acme", "direction": "inbound"}) == 1
    conversation = mongodb.conversations.find_one({"_id": inbound().conversation_key})
    assert conversation["message_count"] == 2


def test_a_turn_that_stopped_after_storing_is_finished_on_redelivery(
    start: Callable[..., FlaskClient],
    mongodb: Any,
    read_events: Callable[..., list[Any]],
) -> None:
    client = start()
    event = events.message_received(inbound())

    MessageStore(mongodb).insert_inbound(event["id"], inbound(), datetime.now(UTC))

    assert deliver(client, event).status_code == 200
    [published] = outbound_events(read_events, 1)
    assert published["id"] == events.outbound_id(event["id"], 0)


def test_kafka_down_is_503_and_the_redelivery_publishes_the_stored_reply(
    start: Callable[..., FlaskClient],
    mongodb: Any,
    read_events: Callable[..., list[Any]],
    kafka_brokers: str,
) -> None:
    event = events.message_received(inbound())
    down = start(KAFKA_BROKERS=f"127.0.0.1:{free_port()}", KAFKA_ACK_TIMEOUT_S="1")

    response = deliver(down, event)
    assert response.status_code == 503 and response.headers["Retry-After"]
    stored = mongodb.messages.find_one({"_id": event["id"], "tenant_id": "acme"})
    assert stored["processing"]["state"] == "replying"

    up = start(KAFKA_BROKERS=kafka_brokers)
    assert deliver(up, event).status_code == 200

    [published] = outbound_events(read_events, 1)
    assert published["id"] == events.outbound_id(event["id"], 0)
    assert published.data["text"] == stored["processing"]["replies"][0]["text"]
    conversation = mongodb.conversations.find_one({"_id": inbound().conversation_key})
    assert conversation["message_count"] == 2  # the reply counted once, with the answer


def test_a_conversation_in_handoff_gets_no_bot_reply(
    start: Callable[..., FlaskClient],
    mongodb: Any,
    read_events: Callable[..., list[Any]],
) -> None:
    client = start()
    assert (
        deliver(client, events.message_received(inbound("agent please", "wamid.1"))).status_code
        == 200
    )
    conversation = mongodb.conversations.find_one({"_id": inbound().conversation_key})
    assert conversation["state"] == "handoff"  # the engine's handoff intent

    later = events.message_received(inbound("hello?", "wamid.2"))
    assert deliver(client, later).status_code == 200

    assert len(outbound_events(read_events, 1)) == 1  # only the "connecting you" reply
    processing = mongodb.messages.find_one({"_id": later["id"]})["processing"]
    assert processing["state"] == "skipped" and processing["reason"] == "handoff"


def test_engine_down_with_fallback_answers_from_the_fallback_rules(
    start: Callable[..., FlaskClient],
    engine: EngineServer,
    read_events: Callable[..., list[Any]],
) -> None:
    client = start(FALLBACK_ENABLED="true")
    engine.stop()

    assert deliver(client, events.message_received(inbound())).status_code == 200

    [published] = outbound_events(read_events, 1)
    assert published.data["author"] == "fallback"
    assert "temporarily unavailable" in published.data["text"]


def test_engine_down_without_fallback_is_retried_until_the_engine_is_back(
    start: Callable[..., FlaskClient],
    engine: EngineServer,
    read_events: Callable[..., list[Any]],
) -> None:
    client = start(FALLBACK_ENABLED="false")
    event = events.message_received(inbound())
    engine.stop()

    assert deliver(client, event).status_code == 503

    engine.start()
    statuses = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # KafkaSource's retries, compressed
        statuses.append(deliver(client, event).status_code)
        if statuses[-1] == 200:
            break
        time.sleep(0.2)
    assert statuses[-1] == 200 and set(statuses) <= {200, 503}
    [published] = outbound_events(read_events, 1)
    assert published.data["author"] == "bot"


def test_blocked_content_gets_no_reply(
    start: Callable[..., FlaskClient],
    mongodb: Any,
    read_events: Callable[..., list[Any]],
) -> None:
    client = start()
    event = events.message_received(inbound(f"this is {BLOCKED_WORD} stuff"))

    assert deliver(client, event).status_code == 200

    assert outbound_events(read_events, 0) == []
    processing = mongodb.messages.find_one({"_id": event["id"]})["processing"]
    assert processing["state"] == "skipped" and processing["reason"] == "blocked"


def test_personal_data_is_redacted_before_storage_and_the_engine(
    start: Callable[..., FlaskClient],
    mongodb: Any,
    read_events: Callable[..., list[Any]],
) -> None:
    client = start()
    event = events.message_received(inbound("hello, mail me at jane@example.com"))

    assert deliver(client, event).status_code == 200

    stored = mongodb.messages.find_one({"_id": event["id"]})
    assert stored["text"] == "hello, mail me at [email]"
    assert stored["processing"]["screening"]["verdict"] == "redact"
    assert len(outbound_events(read_events, 1)) == 1


def test_over_the_rate_limit_the_message_is_stored_and_counted_not_answered(
    start: Callable[..., FlaskClient],
    mongodb: Any,
    read_events: Callable[..., list[Any]],
) -> None:
    client = start(USER_RATE_LIMIT_PER_MIN="1")
    first = events.message_received(inbound("hello", "wamid.1"))
    second = events.message_received(inbound("hello again", "wamid.2"))

    assert deliver(client, first).status_code == 200
    assert deliver(client, second).status_code == 200

    assert len(outbound_events(read_events, 1)) == 1
    processing = mongodb.messages.find_one({"_id": second["id"]})["processing"]
    assert processing["state"] == "skipped" and processing["reason"] == "rate_limited"
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'chat_rate_limited_total{channel="whatsapp",scope="user"}' in metrics
    assert 'outcome="rate_limited"' in metrics


def test_garbage_is_poison_400_and_kept_for_inspection(
    start: Callable[..., FlaskClient],
    mongodb: Any,
) -> None:
    client = start()
    event = events.message_received(inbound())

    response = deliver(client, event, body=b"{not json")

    assert response.status_code == 400
    poison = mongodb.poison_events.find_one({"_id": f"message-processor|{event['id']}"})
    assert poison["tenant_id"] == "acme" and poison["service"] == "message-processor"
    assert poison["event"]["data"] == "{not json"
    assert poison["error"]["code"] == "malformed_event"


def test_mongodb_down_is_503(start: Callable[..., FlaskClient]) -> None:
    client = start(MONGODB_URI=f"mongodb://127.0.0.1:{free_port()}/")

    response = deliver(client, events.message_received(inbound()))

    assert response.status_code == 503
    assert response.json is not None and response.json["error"] == "dependency_unavailable"
    health = client.get("/api/v2/health")
    assert health.status_code == 503
    assert health.json is not None and health.json["dependencies"]["mongodb"] == "down"


def test_health_reports_every_dependency(start: Callable[..., FlaskClient]) -> None:
    health = start().get("/api/v2/health")
    assert health.status_code == 200 and health.json is not None
    assert health.json["dependencies"] == {"mongodb": "up", "kafka": "up", "redis": "up"}
