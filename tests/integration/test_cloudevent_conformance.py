"""Every event handler holds its CloudEvents to the specification, checked on the request.

The single-event cases of the CloudEvents conformance suite (tests/data/cloudevents, from
github.com/cloudevents/conformance) are posted in structured mode to each handler, loaded as
functions-framework loads it: every invalid one answers 400 and leaves nothing behind (the
audit-logger records nothing); every valid one passes the check (what the handler then makes of
a test event is its own business: never 400 ``invalid_cloudevent``). Binary mode is checked too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from shared.handlers import MODULES

pytestmark = pytest.mark.integration

DATA = Path(__file__).resolve().parents[1] / "data" / "cloudevents"
HANDLERS = sorted(MODULES)


def cases(kind: str) -> list[Any]:
    tests = json.loads((DATA / f"{kind}-events.json").read_text(encoding="utf-8"))["tests"]
    return [pytest.param(case["event"], id=case["id"]) for case in tests]


def post_structured(client: FlaskClient, event: dict[str, Any]) -> Any:
    return client.post(
        "/", data=json.dumps(event), headers={"Content-Type": "application/cloudevents+json"}
    )


@pytest.mark.parametrize("handler", HANDLERS)
@pytest.mark.parametrize("event", cases("invalid"))
def test_an_invalid_event_is_400_everywhere(
    make_client: Callable[[str], FlaskClient], mongodb: Any, handler: str, event: dict[str, Any]
) -> None:
    response = post_structured(make_client(handler), event)

    assert response.status_code == 400, response.get_data(as_text=True)
    assert mongodb["audit"].count_documents({}) == 0


@pytest.mark.parametrize("handler", HANDLERS)
@pytest.mark.parametrize("event", cases("valid"))
def test_a_valid_event_passes_the_check(
    make_client: Callable[[str], FlaskClient], mongodb: Any, handler: str, event: dict[str, Any]
) -> None:
    response = post_structured(make_client(handler), event)

    body = response.get_json(silent=True) or {}
    assert body.get("error") != "invalid_cloudevent", body


@pytest.mark.parametrize(
    ("headers", "valid"),
    [
        ({"ce-time": "2018-04-05T17:31:00Z"}, True),
        ({"ce-time": "lunchtime"}, False),
        ({"ce-id": ""}, False),
        ({"ce-my.extension": "x"}, False),
        ({"ce-specversion": "0.3"}, False),
        ({"Content-Type": "xyz"}, False),
    ],
)
def test_binary_mode_is_checked_the_same_way(
    make_client: Callable[[str], FlaskClient], headers: dict[str, str], valid: bool
) -> None:
    base = {
        "ce-specversion": "1.0",
        "ce-id": "binary-1",
        "ce-source": "/test",
        "ce-type": "io.cloudevents.test",
        "Content-Type": "application/json",
    }
    response = make_client("audit-logger").post("/", data=b"{}", headers={**base, **headers})

    body = response.get_json(silent=True) or {}
    assert (body.get("error") == "invalid_cloudevent") is not valid, body
