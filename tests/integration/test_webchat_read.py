"""GET /messages of the webchat function (loaded as functions-framework loads it) on a real
MongoDB-protocol server: paging by cursor, and a token sees its own conversation only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from shared.devstack.servers import free_port
from tests.integration.webchat_support import (
    Visitor,
    at,
    store_reply,
    store_visitor_message,
    visitor_from,
)

pytestmark = pytest.mark.integration

ACME_ORIGIN = "https://acme.example"


@pytest.fixture
def client(make_client: Callable[[str], FlaskClient], mongodb: Any) -> FlaskClient:
    return make_client("webchat")


def open_session(client: FlaskClient, site_key: str = "site-acme") -> Visitor:
    response = client.post("/sessions", json={"site_key": site_key})
    assert response.status_code == 201, response.data
    tenant = {"site-acme": "acme", "site-globex": "globex"}[site_key]
    return visitor_from(response.get_json(), site_key, tenant)


def page(client: FlaskClient, visitor: Visitor, **query: Any) -> dict[str, Any]:
    response = client.get("/messages", query_string=query, headers=visitor.headers())
    assert response.status_code == 200, response.data
    body: dict[str, Any] = response.get_json()
    return body


def everything(client: FlaskClient, visitor: Visitor, limit: int) -> list[dict[str, Any]]:
    """Every message by following the cursor, a page of ``limit`` at a time."""
    messages: list[dict[str, Any]] = []
    cursor = None
    while True:
        body = page(client, visitor, limit=limit, **({"after": cursor} if cursor else {}))
        messages += body["messages"]
        cursor = body["next_cursor"]
        if not body["has_more"]:
            return messages


def test_both_directions_oldest_first_a_page_at_a_time(client: FlaskClient, mongodb: Any) -> None:
    visitor = open_session(client)
    first = store_visitor_message(mongodb, visitor, "m1", "Hello", at(1))
    store_reply(mongodb, visitor, "r1", "Hello! How can I help?", at(2))
    store_visitor_message(mongodb, visitor, "m2", "Shipping?", at(3))
    # Two replies in the same millisecond: the id decides, as the cursor does.
    store_reply(mongodb, visitor, "r2-b", "We ship to Lisbon.", at(4), author="agent")
    store_reply(mongodb, visitor, "r2-a", "In 3 days.", at(4), quick_replies=())

    one_page = page(client, visitor)
    by_two = everything(client, visitor, limit=2)

    assert [m["id"] for m in one_page["messages"]] == [first, "r1", by_two[2]["id"], "r2-a", "r2-b"]
    assert by_two == one_page["messages"]
    assert one_page["has_more"] is False
    assert one_page["next_cursor"] == one_page["messages"][-1]["cursor"]
    mine, answer = one_page["messages"][0], one_page["messages"][1]
    assert mine == {
        "id": first,
        "cursor": mine["cursor"],
        "direction": "inbound",
        "author": "visitor",
        "text": "Hello",
        "quick_replies": [],
        "created_at": mine["created_at"],
        "client_message_id": "m1",
    }
    assert mine["created_at"].startswith("2025-06-15T15:06:41.")  # within the second sent
    assert answer["direction"] == "outbound"
    assert answer["author"] == "bot"
    assert answer["quick_replies"] == [{"id": "faq_hours", "title": "Opening hours"}]
    assert [m["author"] for m in one_page["messages"][3:]] == ["bot", "agent"]


def test_the_cursor_is_stable_while_messages_are_stored(client: FlaskClient, mongodb: Any) -> None:
    visitor = open_session(client)
    for n in range(3):
        store_reply(mongodb, visitor, f"r{n}", f"reply {n}", at(n))

    first = page(client, visitor, limit=2)
    store_reply(mongodb, visitor, "r9", "a newer reply", at(9))
    rest = page(client, visitor, limit=2, after=first["next_cursor"])
    caught_up = page(client, visitor, after=rest["next_cursor"])

    assert [m["id"] for m in first["messages"]] == ["r0", "r1"]
    assert first["has_more"] is True
    assert [m["id"] for m in rest["messages"]] == ["r2", "r9"]
    assert caught_up == {"messages": [], "next_cursor": rest["next_cursor"], "has_more": False}


def test_a_token_sees_its_own_conversation_only(client: FlaskClient, mongodb: Any) -> None:
    visitor = open_session(client)
    store_visitor_message(mongodb, visitor, "m1", "my address is …", at(1))
    store_reply(mongodb, visitor, "r1", "Noted.", at(2))
    other_conversation = open_session(client)
    other_tenant = open_session(client, "site-globex")
    stolen_cursor = page(client, visitor, limit=1)["next_cursor"]

    for stranger in (other_conversation, other_tenant):
        assert page(client, stranger)["messages"] == []
        assert page(client, stranger, after=stolen_cursor)["messages"] == []
    assert len(page(client, visitor)["messages"]) == 2


def test_the_widget_on_the_site_may_read_and_others_may_not(client: FlaskClient) -> None:
    visitor = open_session(client)

    allowed = client.get("/messages", headers=visitor.headers(Origin=ACME_ORIGIN))
    foreign = client.get("/messages", headers=visitor.headers(Origin="https://evil.example"))
    anonymous = client.get("/messages", headers={"Origin": ACME_ORIGIN})
    in_the_url = client.get("/messages", query_string={"token": visitor.token})

    assert allowed.status_code == 200
    assert allowed.headers["Access-Control-Allow-Origin"] == ACME_ORIGIN
    assert allowed.headers["Cache-Control"] == "no-store"
    assert (foreign.status_code, foreign.get_json()["error"]) == (403, "origin_not_allowed")
    assert (anonymous.status_code, anonymous.get_json()["error"]) == (401, "missing_token")
    assert anonymous.headers["Access-Control-Allow-Origin"] == ACME_ORIGIN  # readable error
    # Only the stream takes the token in the URL (EventSource cannot send headers).
    assert (in_the_url.status_code, in_the_url.get_json()["error"]) == (401, "missing_token")


@pytest.mark.parametrize(
    ("query", "parameter"),
    [({"after": "not-a-cursor"}, "after"), ({"limit": "500"}, "limit"), ({"limit": "x"}, "limit")],
)
def test_bad_parameters_are_a_400_naming_them(
    client: FlaskClient, query: dict[str, str], parameter: str
) -> None:
    visitor = open_session(client)
    response = client.get("/messages", query_string=query, headers=visitor.headers())
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_parameter"
    assert response.get_json()["parameter"] == parameter


def test_mongodb_down_is_a_503_to_retry(
    make_client: Callable[[str], FlaskClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MONGODB_URI", f"mongodb://127.0.0.1:{free_port()}/")
    client = make_client("webchat")
    visitor = open_session(client)

    response = client.get("/messages", headers=visitor.headers())

    assert response.status_code == 503
    assert response.get_json()["error"] == "dependency_unavailable"
    assert int(response.headers["Retry-After"]) > 0
