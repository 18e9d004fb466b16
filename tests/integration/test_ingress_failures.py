"""Bad input and broker outages on a real function, a real broker and a real Redis.

The WhatsApp webhook stands in for all channels here: the rejection paths and the Kafka
handling are shared code (shared/web.py, shared/ingress.py); each channel's own tests cover
its signature and parsing rules.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from shared.channels.whatsapp import sign
from shared.devstack import servers
from shared.kafka import ensure_topics, read_topic
from tests.conftest import payload, payload_bytes

pytestmark = pytest.mark.integration

SECRET = "wa-app-secret-acme"


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"X-Hub-Signature-256": sign(secret, body), "Content-Type": "application/json"}


def rejections(client: FlaskClient, status: int, code: str) -> float:
    """``chat_ingress_rejections_total`` for WhatsApp, ``status`` and ``code``, from /metrics."""
    text = client.get("/metrics").get_data(as_text=True)
    wanted = {"channel": "whatsapp", "status": str(status), "code": code}
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "chat_ingress_rejections_total" and sample.labels == wanted
    )


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        (b'{"object":', "sign", 400, "malformed_json"),
        (b"[1, 2]", "sign", 400, "malformed_json"),
        (b'{"object": "page", "entry": []}', "sign", 400, "wrong_object"),
        (b'{"object": "whatsapp_business_account"}', "sign", 400, "missing_field"),
        (b'{"object": "whatsapp_business_account", "entry": []}', {}, 401, "missing_signature"),
        (b"{}", {"X-Hub-Signature-256": "sha256=" + "ab" * 32}, 401, "bad_signature"),
        (b"{}", "wrong-secret", 401, "bad_signature"),
    ],
)
def test_bad_requests_get_a_named_4xx_and_publish_nothing(
    make_client: Callable[[str], FlaskClient],
    read_events: Callable[..., list[Any]],
    caplog: pytest.LogCaptureFixture,
    body: bytes,
    headers: Any,
    status: int,
    code: str,
) -> None:
    if headers == "sign":
        headers = signed(body)
    elif headers == "wrong-secret":
        headers = signed(body, "not-the-secret")
    client = make_client("whatsapp-webhook")
    before = rejections(client, status, code)
    response = client.post("/", data=body, headers=headers)

    assert response.status_code == status
    assert response.json is not None and response.json["error"] == code
    assert rejections(client, status, code) == before + 1
    assert read_events("messages.inbound") == []
    rejected = [r for r in caplog.records if r.getMessage() == "request rejected"]
    assert rejected and rejected[-1].__dict__["error"] == code
    assert SECRET not in caplog.text


def _with_messages_5(document: dict[str, Any]) -> None:
    document["entry"][0]["changes"][0]["value"]["messages"] = 5


def _with_a_dict_caption(document: dict[str, Any]) -> None:
    message = document["entry"][0]["changes"][0]["value"]["messages"][0]
    message.update(type="image", image={"id": "1479537139650973", "caption": {"text": "hi"}})
    del message["text"]


@pytest.mark.parametrize(
    ("mutate", "named"),
    [
        (_with_messages_5, "entry[0].changes[0].value.messages"),
        (_with_a_dict_caption, "entry[0].changes[0].value.messages[0].image.caption"),
    ],
)
def test_wrongly_typed_fields_in_a_signed_body_are_a_named_400(
    make_client: Callable[[str], FlaskClient],
    read_events: Callable[..., list[Any]],
    mutate: Callable[[dict[str, Any]], None],
    named: str,
) -> None:
    """Meta signed it, but a field of the wrong type is still the sender's 400, not our 500,
    and nothing of the wrong type reaches the topic."""
    document = payload("whatsapp", "text_message.json")
    mutate(document)
    body = json.dumps(document).encode()
    client = make_client("whatsapp-webhook")
    before = rejections(client, 400, "invalid_field")

    response = client.post("/", data=body, headers=signed(body))

    assert response.status_code == 400
    assert response.content_type == "application/json"
    assert response.json == {
        "error": "invalid_field",
        "message": f"field '{named}' has the wrong type",
    }
    assert rejections(client, 400, "invalid_field") == before + 1
    assert read_events("messages.inbound") == []
    assert read_events("messages.status") == []


def test_unknown_account_is_403(make_client: Callable[[str], FlaskClient]) -> None:
    document = payload("whatsapp", "text_message.json")
    document["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = "555"
    body = json.dumps(document).encode()
    response = make_client("whatsapp-webhook").post("/", data=body, headers=signed(body))
    assert response.status_code == 403
    assert response.json == {"error": "unknown_account", "message": "unknown phone_number_id 555"}


def test_oversized_body_is_413(make_client: Callable[[str], FlaskClient]) -> None:
    body = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'
    response = make_client("whatsapp-webhook").post("/", data=body, headers=signed(body))
    assert response.status_code == 413
    assert response.json is not None and response.json["error"] == "payload_too_large"


def test_wrong_method_and_unknown_path(make_client: Callable[[str], FlaskClient]) -> None:
    client = make_client("whatsapp-webhook")
    response = client.delete("/")
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, POST"
    assert client.post("/nowhere", data=b"{}").status_code == 404


def test_health_and_metrics(make_client: Callable[[str], FlaskClient]) -> None:
    client = make_client("whatsapp-webhook")
    health = client.get("/api/v2/health")
    assert health.status_code == 200
    assert health.json == {
        "status": "ok",
        "service": "whatsapp-webhook",
        "dependencies": {"kafka": "up", "redis": "up"},
    }
    client.post("/", data=b"{}")  # one rejection to count
    metrics = client.get("/metrics").get_data(as_text=True)
    assert "chat_ingress_rejections_total" in metrics
    assert 'code="missing_signature"' in metrics


@pytest.fixture
def own_broker() -> Iterator[servers.Server]:
    broker = servers.start_kafka()
    yield broker
    broker.stop()


def test_broker_down_is_503_and_nothing_is_marked_then_the_retry_lands(
    make_client: Callable[[str], FlaskClient],
    monkeypatch: pytest.MonkeyPatch,
    own_broker: servers.Server,
    redis_url: str,
    topic_prefix: str,
) -> None:
    from shared.caching import clear_all

    topics = [f"{topic_prefix}.messages.inbound", f"{topic_prefix}.messages.status"]
    ensure_topics([own_broker.url], topics)
    monkeypatch.setenv("KAFKA_BROKERS", own_broker.url)
    clear_all()
    client = make_client("whatsapp-webhook")
    body = payload_bytes("whatsapp", "text_message.json")
    assert client.post("/", data=body, headers=signed(body)).status_code == 200

    own_broker.stop()
    retried = body.replace(b"wamid.HBg", b"wamid.XBg")
    down = client.post("/", data=retried, headers=signed(retried))

    assert down.status_code == 503
    assert down.headers["Retry-After"] == "5"
    assert down.json is not None and down.json["error"] == "dependency_unavailable"
    assert redis.Redis.from_url(redis_url).keys("dedupe:*") == [
        b"dedupe:{whatsapp:acme:106540352242922}:"
        + b"wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
    ]
    assert client.get("/api/v2/health").status_code == 503

    # The platform retries once the broker is back: the message is published, not lost.
    restarted = servers.restart(own_broker)
    try:
        ensure_topics([restarted.url], topics)
        back = client.post("/", data=retried, headers=signed(retried))
        assert back.status_code == 200, back.data
        assert back.json == {"status": "ok", "published": 1, "duplicates": 0}
        [record] = read_topic([restarted.url], topics[0], min_records=1)
        assert b"wamid.XBg" in record.value
    finally:
        restarted.stop()


def test_redis_down_still_publishes(
    make_client: Callable[[str], FlaskClient],
    monkeypatch: pytest.MonkeyPatch,
    read_events: Callable[..., list[Any]],
) -> None:
    """Redis is a cache: without it ingress cannot dedupe, but it must not drop messages."""
    from shared.caching import clear_all

    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{servers.free_port()}/0")
    clear_all()
    client = make_client("whatsapp-webhook")
    body = payload_bytes("whatsapp", "text_message.json")

    response = client.post("/", data=body, headers=signed(body))

    assert response.status_code == 200
    assert len(read_events("messages.inbound", min_records=1)) == 1
    health = client.get("/api/v2/health")
    assert health.status_code == 200
    assert health.json is not None and health.json["status"] == "degraded"
