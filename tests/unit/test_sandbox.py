"""The channel API sandbox in-process: API shapes, auth checks, recording, failure injection."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from shared.devstack import sandbox
from shared.devstack.servers import free_port


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    port = free_port()
    server = sandbox.make_server("127.0.0.1", port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def api(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url) as client:
        client.delete("/calls")
        client.delete("/fail")
        yield client


def whatsapp(api: httpx.Client, token: str | None = "wa-token") -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {"messaging_product": "whatsapp", "to": "1555", "type": "text", "text": {"body": "x"}}
    return api.post("/v21.0/106540352242922/messages", json=body, headers=headers)


def test_whatsapp_answers_with_a_wamid(api: httpx.Client) -> None:
    response = whatsapp(api)

    assert response.status_code == 200
    body = response.json()
    assert body["contacts"] == [{"input": "1555", "wa_id": "1555"}]
    assert body["messages"][0]["id"].startswith("wamid.SANDBOX")


def test_slack_ts_is_unique(api: httpx.Client) -> None:
    headers = {"Authorization": "Bearer xoxb"}
    answers = [
        api.post("/api/chat.postMessage", json={"channel": "C1", "text": "x"}, headers=headers)
        for _ in range(3)
    ]

    assert all(a.json()["ok"] for a in answers)
    assert len({a.json()["ts"] for a in answers}) == 3


def test_calls_are_recorded_without_secrets(api: httpx.Client) -> None:
    whatsapp(api)
    api.post("/botSECRET-TOKEN/sendMessage", json={"chat_id": 5, "text": "hi"})

    calls: list[dict[str, Any]] = api.get("/calls").json()

    assert [c["channel"] for c in calls] == ["whatsapp", "telegram"]
    assert "Authorization" not in calls[0]["headers"]
    assert calls[0]["credential"] == sandbox.fingerprint("wa-token")
    assert calls[1]["path"] == "/bot***/sendMessage"
    assert "SECRET-TOKEN" not in str(calls)
    assert calls[1]["response"]["result"]["text"] == "hi"


def test_a_missing_token_is_refused_in_the_platforms_shape(api: httpx.Client) -> None:
    assert whatsapp(api, token=None).json()["error"]["code"] == 190
    slack = api.post("/api/chat.postMessage", json={"channel": "C1", "text": "x"})
    assert slack.json() == {"ok": False, "error": "not_authed"}


@pytest.mark.parametrize(
    ("channel", "status", "expected_status", "expected_body"),
    [
        ("whatsapp", 500, 500, {"code": 1}),
        ("slack", 429, 429, {"ok": False, "error": "ratelimited"}),
        ("slack", 400, 200, {"ok": False, "error": "channel_not_found"}),
        ("telegram", 429, 429, {"error_code": 429, "parameters": {"retry_after": 4}}),
    ],
)
def test_failures_come_in_the_platforms_shape(
    api: httpx.Client,
    channel: str,
    status: int,
    expected_status: int,
    expected_body: dict[str, Any],
) -> None:
    api.post("/fail", json={"channel": channel, "status": status, "retry_after": 4})
    paths = {
        "whatsapp": "/v21.0/1/messages",
        "slack": "/api/chat.postMessage",
        "telegram": "/bott/sendMessage",
    }
    body = {"messaging_product": "whatsapp", "to": "1", "channel": "C", "chat_id": 1, "text": "x"}
    headers = {"Authorization": "Bearer t"}

    failed = api.post(paths[channel], json=body, headers=headers)
    recovered = api.post(paths[channel], json=body, headers=headers)

    assert failed.status_code == expected_status
    assert failed.headers["Retry-After"] == "4"
    document = failed.json().get("error") if channel == "whatsapp" else failed.json()
    assert expected_body.items() <= document.items()
    assert recovered.status_code == 200


def test_a_bad_rule_is_refused(api: httpx.Client) -> None:
    assert api.post("/fail", json={"channel": "fax"}).status_code == 400
