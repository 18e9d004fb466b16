"""The KafkaSource handler adapter: outcomes, Knative status codes, poison storage, bugs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cloudevents.http import CloudEvent
from prometheus_client import REGISTRY
from werkzeug.exceptions import HTTPException

from shared import eventfn
from shared.errors import BadRequest, DependencyUnavailable, RateLimited


def event() -> CloudEvent:
    return CloudEvent(
        {"type": "com.chatbot.message.received.v1", "source": "/test", "id": "ev-1"}, {"x": 1}
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


def test_a_bug_is_a_logged_and_counted_json_500(caplog: pytest.LogCaptureFixture) -> None:
    def buggy(e: Any) -> str:
        raise TypeError("unexpected")

    before = handled("error")
    status, body, _ = run(buggy)

    assert status == 500
    assert body == {"error": "internal_error", "message": "internal error"}
    assert handled("error") == before + 1
    [line] = [r for r in caplog.records if r.getMessage() == "event handler failed"]
    assert line.__dict__["event_id"] == "ev-1"
