"""The KafkaSource handler adapter: outcomes, Knative status codes, poison storage, bugs."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest
from cloudevents.http import CloudEvent
from prometheus_client import REGISTRY
from werkzeug.exceptions import HTTPException

from shared import eventfn, logs
from shared.errors import BadRequest, DependencyUnavailable, RateLimited


def event() -> CloudEvent:
    return CloudEvent(
        {
            "type": "com.chatbot.message.received.v1",
            "source": "/test",
            "id": "ev-1",
            "tenantid": "acme",
        },
        {"x": 1, "channel": "slack"},
    )


def handled(outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "chat_events_handled_total",
        {"service": "svc", "type": "com.chatbot.message.received.v1", "outcome": outcome},
    )
    return value or 0.0


def run(handler: Any, **kwargs: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
    with pytest.raises(HTTPException) as caught:
        eventfn.run(event(), handler, service="svc", **kwargs)
    response = caught.value.get_response()
    return response.status_code, json.loads(response.get_data()), dict(response.headers)


def test_a_handled_event_is_counted_with_its_outcome() -> None:
    before = handled("duplicate")
    eventfn.run(event(), lambda e: "duplicate", service="svc")
    assert handled("duplicate") == before + 1


def test_poison_is_400_and_stored() -> None:
    stored: list[tuple[str, str]] = []

    def poison(e: Any) -> str:
        raise BadRequest("no text", code="missing_field")

    status, body, _ = run(poison, on_poison=lambda e, exc: stored.append((e["id"], exc.code)))

    assert status == 400
    assert body == {"error": "missing_field", "message": "no text"}
    assert stored == [("ev-1", "missing_field")]


@pytest.mark.parametrize(
    ("exc", "status", "retry_after"),
    [
        (DependencyUnavailable("mongo down", dependency="mongodb"), 503, "5"),
        (RateLimited("busy", retry_after_s=7), 429, "7"),
    ],
)
def test_transient_failures_ask_for_a_retry(exc: Exception, status: int, retry_after: str) -> None:
    def failing(e: Any) -> str:
        raise exc

    code, _, headers = run(failing)
    assert code == status
    assert headers["Retry-After"] == retry_after


def json_lines() -> tuple[io.StringIO, logging.Handler]:
    """A handler writing our JSON lines as they are logged (the context is read then)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter("svc"))
    return stream, handler


def test_a_bug_is_a_logged_and_counted_json_500() -> None:
    def buggy(e: Any) -> str:
        raise TypeError("unexpected")

    before = handled("error")
    stream, handler = json_lines()
    logging.getLogger("shared.eventfn").addHandler(handler)
    try:
        status, body, _ = run(buggy)
    finally:
        logging.getLogger("shared.eventfn").removeHandler(handler)

    assert status == 500
    assert body == {"error": "internal_error", "message": "internal error"}
    assert handled("error") == before + 1
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    [line] = [x for x in lines if x["message"] == "event handler failed"]
    assert line["event_id"] == "ev-1" and line["tenant"] == "acme" and line["channel"] == "slack"
    assert line["event_type"] == "com.chatbot.message.received.v1"
    assert line["service"] == "svc" and "TypeError" in line["exception"]
