"""webchat against a real Kafka-protocol broker and Redis, through functions-framework."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from shared.channels.webchat import tokens as webchat_tokens
from shared.events import MESSAGE_RECEIVED
from shared.tenants import TenantDirectory
from tests.conftest import TENANTS, payload, payload_bytes

pytestmark = pytest.mark.integration

ACME_ORIGIN = "https://acme.example"
Client = Callable[[str], FlaskClient]
Events = Callable[..., list[Any]]


def start_session(client: FlaskClient, **headers: str) -> dict[str, Any]:
    response = client.post(
        "/sessions", data=payload_bytes("webchat", "session.json"), headers=headers
    )
    assert response.status_code == 201, response.data
    return body_of(response)


def body_of(response: Any) -> dict[str, Any]:
    body = response.get_json()
    assert isinstance(body, dict), response.data
    return body


def error_of(response: Any) -> tuple[int, str]:
    return response.status_code, body_of(response)["error"]


def send(client: FlaskClient, token: str | None, body: bytes, **headers: str) -> Any:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return client.post(
        "/messages", data=body, headers={"Content-Type": "application/json", **headers}
    )


def test_session_then_message_gives_one_binary_cloudevent(
    make_client: Client, read_events: Events
) -> None:
    client = make_client("webchat")
    session = start_session(client, Origin=ACME_ORIGIN)

    response = send(
        client, session["token"], payload_bytes("webchat", "text_message.json"), Origin=ACME_ORIGIN
    )

    assert response.status_code == 202, response.data
    assert response.headers["Access-Control-Allow-Origin"] == ACME_ORIGIN
    assert response.json == {
        "status": "accepted",
        "message_id": "msg-01J8Z3Q4W5",
        "conversation_id": session["conversation_id"],
        "duplicate": False,
    }
    [record] = read_events("messages.inbound", min_records=1)
    key = f"acme:webchat:site-acme/{session['conversation_id']}"
    assert record.key == key.encode()
    assert record.headers["ce_specversion"] == b"1.0"
    assert record.headers["ce_type"] == MESSAGE_RECEIVED.encode()
    assert record.headers["ce_source"] == b"/chat-service/channels/webchat/site-acme"
    assert record.headers["ce_tenantid"] == b"acme"
    assert record.headers["content-type"] == b"application/json"
    data = json.loads(record.value)
    assert data["text"] == "Hi! Do you ship to Lisbon?"
    assert data["sender"] == {"id": session["visitor_id"], "name": "Ada Lovelace", "is_bot": False}
    assert data["platform_message_id"] == f"{data['chat_id']}/msg-01J8Z3Q4W5"
    assert data["raw"] == {"client_message_id": "msg-01J8Z3Q4W5"}
    assert record.event()["partitionkey"] == key


def test_same_client_message_id_three_times_gives_one_event(
    make_client: Client, read_events: Events
) -> None:
    client = make_client("webchat")
    token = start_session(client)["token"]
    body = payload_bytes("webchat", "text_message.json")

    answers = [send(client, token, body) for _ in range(3)]

    assert [a.status_code for a in answers] == [202, 202, 202]
    assert [a.json["duplicate"] for a in answers] == [False, True, True]
    assert len(read_events("messages.inbound", min_records=2, timeout_s=2)) == 1


def expired_token() -> str:
    account = TenantDirectory.from_dict(TENANTS).of("webchat")["site-acme"]
    return webchat_tokens.issue(account, now=time.time() - 3600, ttl_s=1800).token


@pytest.mark.parametrize(
    ("token", "code"),
    [
        (None, "missing_token"),
        ("garbage", "invalid_token"),
        ("eyJhbGciOiJub25lIn0.eyJzaXRlIjoic2l0ZS1hY21lIn0.", "invalid_token"),
        (expired_token(), "token_expired"),
    ],
)
def test_unauthenticated_messages_are_refused(
    make_client: Client, read_events: Events, token: str | None, code: str
) -> None:
    client = make_client("webchat")

    response = send(client, token, payload_bytes("webchat", "text_message.json"))

    assert error_of(response) == (401, code)
    assert read_events("messages.inbound", timeout_s=1) == []


def test_the_widget_can_read_its_errors(make_client: Client) -> None:
    # Without CORS headers on a 401 the browser hides it, and the widget could not tell an
    # expired token (start a new session) from a network failure.
    client = make_client("webchat")
    body = payload_bytes("webchat", "text_message.json")

    response = send(client, expired_token(), body, Origin=ACME_ORIGIN)

    assert error_of(response) == (401, "token_expired")
    assert response.headers["Access-Control-Allow-Origin"] == ACME_ORIGIN


def test_bad_bodies_are_refused(make_client: Client, read_events: Events) -> None:
    client = make_client("webchat")
    token = start_session(client)["token"]

    malformed = send(client, token, b'{"client_message_id": "m1", "text": ')
    no_text = send(client, token, json.dumps({"client_message_id": "m1"}).encode())
    bad_id = send(client, token, json.dumps({"client_message_id": "a b", "text": "x"}).encode())

    assert error_of(malformed) == (400, "malformed_json")
    assert error_of(no_text) == (400, "missing_field")
    assert "'text'" in body_of(no_text)["message"]
    assert error_of(bad_id) == (400, "invalid_field")
    assert read_events("messages.inbound", timeout_s=1) == []


def test_wrong_origin_is_forbidden(make_client: Client, read_events: Events) -> None:
    client = make_client("webchat")
    evil = {"Origin": "https://evil.example"}

    session = client.post("/sessions", json={"site_key": "site-acme"}, headers=evil)
    token = start_session(client)["token"]
    message = send(client, token, payload_bytes("webchat", "text_message.json"), **evil)

    assert error_of(session) == (403, "origin_not_allowed")
    assert "Access-Control-Allow-Origin" not in session.headers
    assert error_of(message) == (403, "origin_not_allowed")
    assert "Access-Control-Allow-Origin" not in message.headers
    assert read_events("messages.inbound", timeout_s=1) == []


def test_unknown_site_key_is_forbidden(make_client: Client) -> None:
    response = make_client("webchat").post("/sessions", json={"site_key": "site-nobody"})
    assert error_of(response) == (403, "unknown_account")


@pytest.mark.parametrize(
    ("path", "method", "methods"),
    [
        ("/sessions", "POST", "POST"),
        ("/messages", "POST", "GET, POST"),
        ("/messages", "GET", "GET, POST"),
        ("/stream", "GET", "GET"),
    ],
)
def test_preflight_is_answered(make_client: Client, path: str, method: str, methods: str) -> None:
    response = make_client("webchat").options(
        path,
        headers={
            "Origin": ACME_ORIGIN,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, content-type, last-event-id",
        },
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == ACME_ORIGIN
    assert method in response.headers["Access-Control-Allow-Methods"].split(", ")
    assert response.headers["Access-Control-Allow-Methods"] == methods
    assert response.headers["Access-Control-Allow-Headers"] == (
        "Authorization, Content-Type, Last-Event-ID"
    )


def test_routes_and_methods(make_client: Client) -> None:
    client = make_client("webchat")
    assert client.get("/sessions").status_code == 405
    assert client.post("/replies", json=payload("webchat", "session.json")).status_code == 404


def test_the_visitor_id_is_the_servers(make_client: Client) -> None:
    client = make_client("webchat")

    chosen = client.post("/sessions", json={"site_key": "site-acme", "visitor_id": "ada"})
    first, second = start_session(client), start_session(client)

    assert error_of(chosen) == (400, "invalid_field")
    assert first["visitor_id"] != second["visitor_id"]
    assert len(first["visitor_id"]) == 32


def test_a_returning_visitor_resumes_with_their_token(make_client: Client) -> None:
    client = make_client("webchat")
    session = start_session(client, Origin=ACME_ORIGIN)

    resumed = client.post(
        "/sessions/resume",
        headers={"Authorization": f"Bearer {session['token']}", "Origin": ACME_ORIGIN},
    )

    assert resumed.status_code == 200, resumed.data
    assert resumed.headers["Access-Control-Allow-Origin"] == ACME_ORIGIN
    body = body_of(resumed)
    assert (body["visitor_id"], body["conversation_id"]) == (
        session["visitor_id"],
        session["conversation_id"],
    )
    expired = client.post(
        "/sessions/resume", headers={"Authorization": f"Bearer {expired_token()}"}
    )
    assert error_of(expired) == (401, "token_expired")


def test_sessions_are_limited_per_client_and_per_site(
    make_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.caching import clear_all

    monkeypatch.setenv("WEBCHAT_SESSIONS_PER_CLIENT_PER_MIN", "3")
    monkeypatch.setenv("WEBCHAT_SESSIONS_PER_SITE_PER_MIN", "5")
    clear_all()
    client = make_client("webchat")
    body = payload_bytes("webchat", "session.json")

    def new_session(address: str) -> Any:
        # As Knative delivers it (TRUSTED_PROXY_HOPS 2): the caller's own claim, the address
        # the gateway saw, the gateway's as queue-proxy saw it.
        forwarded = f"198.51.100.9, {address}, 10.0.0.5"
        return client.post("/sessions", data=body, headers={"X-Forwarded-For": forwarded})

    first = [new_session("203.0.113.1").status_code for _ in range(4)]
    assert first == [201, 201, 201, 429]
    refused = new_session("203.0.113.1")
    assert error_of(refused) == (429, "rate_limited")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60

    # Another client still gets sessions, until the site's own limit is reached.
    other = [new_session("203.0.113.2").status_code for _ in range(3)]
    assert other == [201, 201, 429]


def test_messages_are_limited_per_conversation_and_per_client(
    make_client: Client, monkeypatch: pytest.MonkeyPatch, read_events: Events
) -> None:
    from shared.caching import clear_all

    monkeypatch.setenv("WEBCHAT_MESSAGES_PER_CONVERSATION_PER_MIN", "2")
    monkeypatch.setenv("WEBCHAT_MESSAGES_PER_CLIENT_PER_MIN", "3")
    clear_all()
    client = make_client("webchat")

    def message(token: str, number: int, address: str) -> Any:
        body = json.dumps({"client_message_id": f"m{number}", "text": "hi"}).encode()
        return send(client, token, body, **{"X-Forwarded-For": f"{address}, 10.0.0.5"})

    first, second = start_session(client)["token"], start_session(client)["token"]
    answers = [message(first, n, "203.0.113.1").status_code for n in range(3)]
    assert answers == [202, 202, 429]  # the conversation's limit
    refused = message(first, 9, "203.0.113.1")
    assert error_of(refused) == (429, "rate_limited")
    assert "conversation limit" in body_of(refused)["message"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60

    # Another conversation from the same address: only the client's limit is left (2 of 3 used).
    assert message(second, 1, "203.0.113.1").status_code == 202
    refused = message(second, 2, "203.0.113.1")
    assert error_of(refused) == (429, "rate_limited")
    assert "client limit" in body_of(refused)["message"]
    # A forged X-Forwarded-For entry does not make a new client.
    forged = send(
        client,
        second,
        json.dumps({"client_message_id": "m3", "text": "hi"}).encode(),
        **{"X-Forwarded-For": "192.0.2.44, 203.0.113.1, 10.0.0.5"},
    )
    assert forged.status_code == 429
    assert message(second, 4, "203.0.113.2").status_code == 202  # another client
    assert len(read_events("messages.inbound", min_records=4)) == 4
