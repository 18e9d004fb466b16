"""telegram-webhook against a real Kafka-protocol broker and Redis."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from shared.channels.telegram import SECRET_HEADER
from shared.events import MESSAGE_RECEIVED
from tests.conftest import payload_bytes

pytestmark = pytest.mark.integration

ACME_PATH = "/webhook/7000000001"
ACME_SECRET = "tg-secret-acme-0123"


def post(
    client: FlaskClient,
    body: bytes,
    *,
    path: str = ACME_PATH,
    secret: str | None = ACME_SECRET,
) -> Any:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers[SECRET_HEADER] = secret
    return client.post(path, data=body, headers=headers)


def test_update_becomes_one_binary_cloudevent(
    make_client: Callable[[str], FlaskClient], read_events: Callable[..., list[Any]]
) -> None:
    client = make_client("telegram-webhook")

    response = post(client, payload_bytes("telegram", "text_private.json"))

    assert response.status_code == 200, response.data
    assert response.json == {"status": "ok", "published": 1, "duplicates": 0}
    [record] = read_events("messages.inbound", min_records=1)
    assert record.key == b"acme:telegram:7000000001/123456789"
    assert record.headers["ce_specversion"] == b"1.0"
    assert record.headers["ce_type"] == MESSAGE_RECEIVED.encode()
    assert record.headers["ce_source"] == b"/chat-service/channels/telegram/7000000001"
    assert record.headers["ce_tenantid"] == b"acme"
    assert record.headers["content-type"] == b"application/json"
    data = json.loads(record.value)
    assert data["text"] == "Hi, is my order on its way?"
    assert data["sender"] == {"id": "123456789", "name": "Ada Lovelace", "is_bot": False}
    assert data["platform_message_id"] == "7000000001/123456789/1201"
    assert data["raw"] == {"message_id": 1201, "chat_type": "private", "update_id": 815400001}
    event = record.event()
    assert event["partitionkey"] == "acme:telegram:7000000001/123456789"
    assert event["time"] == "2025-06-08T20:59:43Z"


def test_same_update_three_times_gives_one_event(
    make_client: Callable[[str], FlaskClient], read_events: Callable[..., list[Any]]
) -> None:
    client = make_client("telegram-webhook")
    body = payload_bytes("telegram", "callback_query.json")

    responses = [post(client, body) for _ in range(3)]

    assert [r.status_code for r in responses] == [200, 200, 200]
    assert responses[2].json == {"status": "ok", "published": 0, "duplicates": 1}
    records = read_events("messages.inbound", min_records=2, timeout_s=2)
    assert len(records) == 1
    assert json.loads(records[0].value)["interactive"]["id"] == "rate:5"


@pytest.mark.parametrize(
    ("path", "secret", "status", "code"),
    [
        (ACME_PATH, None, 401, "missing_secret_token"),
        (ACME_PATH, "tg-secret-wrong", 401, "bad_secret_token"),
        (ACME_PATH, "tg-secret-globex", 401, "bad_secret_token"),  # another tenant's secret
        ("/webhook/7000000099", ACME_SECRET, 404, "unknown_account"),
        ("/hooks/7000000001", ACME_SECRET, 404, "not_found"),
    ],
)
def test_rejected_requests_publish_nothing(
    make_client: Callable[[str], FlaskClient],
    read_events: Callable[..., list[Any]],
    path: str,
    secret: str | None,
    status: int,
    code: str,
) -> None:
    client = make_client("telegram-webhook")

    response = post(
        client, payload_bytes("telegram", "text_private.json"), path=path, secret=secret
    )

    assert response.status_code == status
    assert response.json["error"] == code
    assert read_events("messages.inbound", timeout_s=1) == []


def test_malformed_json_is_a_400(
    make_client: Callable[[str], FlaskClient], read_events: Callable[..., list[Any]]
) -> None:
    response = post(make_client("telegram-webhook"), b'{"update_id": 1, "message": ')

    assert response.status_code == 400
    assert response.json["error"] == "malformed_json"
    assert read_events("messages.inbound", timeout_s=1) == []


def test_ignored_update_is_acknowledged_without_an_event(
    make_client: Callable[[str], FlaskClient], read_events: Callable[..., list[Any]]
) -> None:
    response = post(make_client("telegram-webhook"), payload_bytes("telegram", "poll.json"))

    assert response.status_code == 200
    assert response.json == {"status": "ignored", "published": 0, "duplicates": 0}
    assert read_events("messages.inbound", timeout_s=1) == []


def test_get_is_a_405(make_client: Callable[[str], FlaskClient]) -> None:
    response = make_client("telegram-webhook").get(ACME_PATH)

    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
