"""slack-webhook against a real Kafka-protocol broker and Redis."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from shared.channels.slack import sign
from shared.events import MESSAGE_RECEIVED
from tests.conftest import payload_bytes

pytestmark = pytest.mark.integration

SECRET = "slack-signing-acme"


def post(
    client: FlaskClient,
    body: bytes,
    *,
    secret: str = SECRET,
    timestamp: int | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    # The function checks the signature against the real clock, so sign with it.
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return client.post(
        "/",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": sign(secret, stamp, body),
            **(headers or {}),
        },
    )


def test_signed_event_becomes_one_binary_cloudevent(
    make_client: Callable[[str], FlaskClient], read_events: Callable[..., list[Any]]
) -> None:
    client = make_client("slack-webhook")

    response = post(client, payload_bytes("slack", "message_im.json"))

    assert response.status_code == 200, response.data
    assert response.json == {"status": "ok", "published": 1, "duplicates": 0}
    [record] = read_events("messages.inbound", min_records=1)
    assert record.key == b"acme:slack:T0001ACME/D0ACMEDM01"
    assert record.headers["ce_specversion"] == b"1.0"
    assert record.headers["ce_type"] == MESSAGE_RECEIVED.encode()
    assert record.headers["ce_source"] == b"/chat-service/channels/slack/T0001ACME"
    assert record.headers["ce_tenantid"] == b"acme"
    assert record.headers["content-type"] == b"application/json"
    data = json.loads(record.value)
    assert data["platform_message_id"] == "D0ACMEDM01/1749416383.000200"
    assert data["text"] == "Hi, is my order on its way?"
    assert data["sender"] == {"id": "U0CUSTOMER", "name": None, "is_bot": False}
    event = record.event()
    assert event["partitionkey"] == "acme:slack:T0001ACME/D0ACMEDM01"
    assert event["time"] == "2025-06-08T20:59:43.000200Z"


def test_event_delivered_three_times_gives_one_event(
    make_client: Callable[[str], FlaskClient], read_events: Callable[..., list[Any]]
) -> None:
    client = make_client("slack-webhook")
    body = payload_bytes("slack", "app_mention.json")
    retries: list[dict[str, str]] = [
        {},
        {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
        {"X-Slack-Retry-Num": "2", "X-Slack-Retry-Reason": "http_timeout"},
    ]

    responses = [post(client, body, headers=h) for h in retries]

    assert [r.status_code for r in responses] == [200, 200, 200]
    assert [r.json["duplicates"] for r in responses] == [0, 1, 1]
    records = read_events("messages.inbound", min_records=2, timeout_s=2)
    assert len(records) == 1


def test_url_verification_answers_the_challenge(
    make_client: Callable[[str], FlaskClient], read_events: Callable[..., list[Any]]
) -> None:
    client = make_client("slack-webhook")

    response = post(client, payload_bytes("slack", "url_verification.json"))

    assert response.status_code == 200, response.data
    assert response.json == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}
    assert read_events("messages.inbound", timeout_s=1) == []


def test_bot_message_is_acknowledged_without_an_event(
    make_client: Callable[[str], FlaskClient], read_events: Callable[..., list[Any]]
) -> None:
    client = make_client("slack-webhook")

    response = post(client, payload_bytes("slack", "bot_message.json"))

    assert response.status_code == 200, response.data
    assert response.json == {"status": "ok", "published": 0, "duplicates": 0}
    assert read_events("messages.inbound", timeout_s=1) == []


@pytest.mark.parametrize(
    ("kwargs", "body", "status", "code"),
    [
        ({"secret": "not-the-signing-secret"}, None, 401, "bad_signature"),
        ({"timestamp": int(time.time()) - 600}, None, 401, "stale_timestamp"),
        ({}, b'{"type": "event_callback", ', 400, "malformed_json"),
    ],
)
def test_bad_requests_are_refused_without_an_event(
    kwargs: dict[str, Any],
    body: bytes | None,
    status: int,
    code: str,
    make_client: Callable[[str], FlaskClient],
    read_events: Callable[..., list[Any]],
) -> None:
    client = make_client("slack-webhook")

    response = post(client, body or payload_bytes("slack", "message_im.json"), **kwargs)

    assert response.status_code == status, response.data
    assert response.json["error"] == code
    # A request that can never succeed tells Slack not to retry it; a signature failure may
    # be a passing clock problem, and Slack signs each retry afresh.
    assert response.headers.get("X-Slack-No-Retry") == ("1" if status == 400 else None)
    assert read_events("messages.inbound", timeout_s=1) == []
