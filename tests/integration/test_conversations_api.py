"""conversations-api through functions-framework, on real servers: MongoDB-protocol, Redis and a
Kafka-protocol broker. Every answer of every test is checked against the OpenAPI document
(``api_support.ApiClient``): its status must be documented for the operation and its body must
match the documented schema.

Two tenants, acme and globex, have conversations side by side in one database; each token
carries its tenant (``tid``), and nothing of one tenant may be seen, counted, changed or
erased with the other's token.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from typing import Any

import jwt
import pytest
import redis
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator

from shared.api import paging
from shared.api.gdpr import ERASED_EVENT
from shared.api.service import ROUTES
from shared.audit import audit_document
from shared.bot.ports import Turn
from shared.bot.session import SessionCache, session_keys
from shared.caching import clear_all
from shared.errors import BadRequest
from shared.events import MESSAGE_OUTBOUND, message_outbound, message_received
from shared.models import Author, DeliveryStatus, InboundMessage, MediaRef
from shared.outbound.delivery import Deliveries
from shared.status import StatusTracker
from shared.store.poison import PoisonStore
from tests.builders import deliver, status_update
from tests.integration.analytics_support import count
from tests.integration.api_support import (  # noqa: F401
    ACME,
    CONVERSATIONS,
    GLOBEX,
    OPENAPI_PATH,
    PREFIX,
    REPORTS,
    SECRET,
    Answer,
    ApiClient,
    OpenApi,
    Seeder,
    api_env_fixture,
    conversation_path,
    db_fixture,
    iso,
    openapi_document,
    token,
    user_path,
)

pytestmark = pytest.mark.integration

Client = Callable[[str], FlaskClient]
Events = Callable[..., list[Any]]
T0 = datetime(2025, 6, 1, 10, 0, tzinfo=UTC)

AGENT = token(ACME, "agent")
ADMIN = token(ACME, "admin")
GLOBEX_AGENT = token(GLOBEX, "agent")
GLOBEX_ADMIN = token(GLOBEX, "admin")


@pytest.fixture(scope="module")
def spec() -> OpenApi:
    return OpenApi(openapi_document())


@pytest.fixture
def api(make_client: Client, api_env: dict[str, str], spec: OpenApi) -> ApiClient:
    return ApiClient(make_client("conversations-api"), spec)


@pytest.fixture
def seed(db: Any) -> Seeder:
    return Seeder(db)


def cid(message: InboundMessage) -> str:
    """The API's id of the message's conversation."""
    return paging.conversation_id(message.conversation_key)


def ids(page: Answer) -> list[str]:
    return [item["id"] for item in page.body["items"]]


def keys(page: Answer) -> list[str]:
    return [paging.conversation_key(item["id"]) for item in page.body["items"]]


def all_ids(api: ApiClient, bearer: str, **query: str) -> list[str]:
    return [i for page in api.pages(CONVERSATIONS, bearer, **query) for i in ids(page)]


def outbound_records(read_events: Events, min_records: int = 0) -> list[Any]:
    timeout = 5.0 if min_records else 1.0
    return list(read_events("messages.outbound", min_records=min_records, timeout_s=timeout))


# Every route, with a conversation or user to fill in: (method, path, body).
def every_route(conversation: str, channel: str, user_id: str) -> list[tuple[str, str, Any]]:
    return [
        ("GET", conversation_path(conversation), None),
        ("GET", conversation_path(conversation, "messages"), None),
        ("POST", conversation_path(conversation, "messages"), {"text": "hi from an agent"}),
        ("POST", conversation_path(conversation, "handoff"), {}),
        ("POST", conversation_path(conversation, "close"), None),
        ("POST", conversation_path(conversation, "reopen"), None),
        ("GET", user_path(channel, user_id, export=True), None),
        ("DELETE", user_path(channel, user_id, export=True), None),
        ("DELETE", user_path(channel, user_id), None),
    ]


def test_every_route_is_tried_by_the_route_tests() -> None:
    # The route tests below go through every_route(); a new route must be added there.
    tried = [
        ("GET", CONVERSATIONS),
        ("GET", REPORTS),  # test_daily_reports_*
        *((m, p) for m, p, _ in every_route("X", "telegram", "U")),
    ]

    for route in ROUTES:
        assert any(m == route.method and route.pattern.match(p) for m, p in tried), route
    assert len(tried) == len(ROUTES)


def test_health_needs_mongodb_and_no_token(api: ApiClient) -> None:
    response = api.client.get("/api/v2/health")

    assert response.status_code == 200, response.data
    body = response.get_json()
    assert body["service"] == "conversations-api"
    assert body["dependencies"]["mongodb"] == "up"


# --- authentication and roles -------------------------------------------------------------------


def test_the_openapi_document_needs_no_token(api: ApiClient, spec: OpenApi) -> None:
    answer = api.get(OPENAPI_PATH)

    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.body == spec.document


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer   ", "Basic YWdlbnQ6c2VjcmV0", "Token abc", AGENT],
    ids=["absent", "empty", "no-token", "blank-token", "basic", "other-scheme", "no-scheme"],
)
def test_without_a_bearer_token_every_route_is_401(
    api: ApiClient, seed: Seeder, authorization: str | None
) -> None:
    message = seed.inbound(T0)
    headers = {} if authorization is None else {"Authorization": authorization}
    routes = [("GET", CONVERSATIONS, None), *every_route(cid(message), "telegram", "555001")]

    answers = [api.call(m, p, json_body=b, headers=headers) for m, p, b in routes]

    assert {a.error for a in answers} == {(401, "missing_token")}


def expired() -> str:
    return token(ACME, "admin", now=time.time() - 7200, ttl_s=3600)


@pytest.mark.parametrize(
    ("bearer", "code"),
    [
        ("garbage", "invalid_token"),
        ("a.b.c", "invalid_token"),
        ("eyJhbGciOiJub25lIn0.eyJ0aWQiOiJhY21lIn0.", "invalid_token"),  # alg: none
        (expired(), "token_expired"),
        (token(ACME, "admin", secret="a-different-secret-of-enough-length-000"), "invalid_token"),
        (AGENT[:-4] + ("AAAA" if not AGENT.endswith("AAAA") else "BBBB"), "invalid_token"),
    ],
    ids=["malformed", "three-garbage-parts", "alg-none", "expired", "wrong-secret", "tampered"],
)
def test_a_bad_token_is_401_on_every_route(
    api: ApiClient, seed: Seeder, bearer: str, code: str
) -> None:
    message = seed.inbound(T0)
    routes = [("GET", CONVERSATIONS, None), *every_route(cid(message), "telegram", "555001")]

    answers = [api.call(m, p, bearer, json_body=b) for m, p, b in routes]

    assert {a.error for a in answers} == {(401, code)}


def test_an_agent_may_not_export_or_erase(api: ApiClient, seed: Seeder, db: Any) -> None:
    seed.inbound(T0, chat_id="555001")

    answers = [
        api.get(user_path("telegram", "555001", export=True), AGENT),
        api.delete(user_path("telegram", "555001", export=True), AGENT),
        api.delete(user_path("telegram", "555001"), AGENT),
    ]

    assert {a.error for a in answers} == {(403, "forbidden")}
    assert db.conversations.count_documents({}) == 1
    assert db.messages.count_documents({}) == 1


def test_an_admin_is_an_agent_too(api: ApiClient, seed: Seeder) -> None:
    message = seed.inbound(T0)

    assert api.get(CONVERSATIONS, ADMIN).status == 200
    assert api.post(conversation_path(cid(message), "handoff"), ADMIN).status == 200


@pytest.mark.parametrize("roles", [(), ("viewer",)], ids=["no-role", "unknown-role"])
def test_a_token_without_a_known_role_is_403(api: ApiClient, roles: tuple[str, ...]) -> None:
    now = int(time.time())
    claims = {
        "iss": "chat-service",
        "aud": "chat-service-api",
        "sub": "someone",
        "tid": ACME,
        "roles": list(roles),
        "iat": now,
        "exp": now + 600,
    }
    bearer = jwt.encode(claims, SECRET, algorithm="HS256")

    assert api.get(CONVERSATIONS, bearer).error == (403, "forbidden")


def test_an_unreachable_jwks_is_503_and_hs256_tokens_still_work(
    make_client: Client,
    api_env: dict[str, str],
    spec: OpenApi,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("API_JWKS_URL", f"http://127.0.0.1:{port}/.well-known/jwks.json")
    clear_all()
    api = ApiClient(make_client("conversations-api"), spec)
    now = int(time.time())
    claims = {
        "iss": "chat-service",
        "aud": "chat-service-api",
        "sub": "idp-user",
        "tid": ACME,
        "roles": ["agent"],
        "iat": now,
        "exp": now + 600,
    }
    signed = jwt.encode(
        claims, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256", headers={"kid": "k1"}
    )

    answer = api.get(CONVERSATIONS, signed)

    assert answer.error == (503, "dependency_unavailable")
    assert int(answer.headers["Retry-After"]) >= 1
    assert api.get(CONVERSATIONS, AGENT).status == 200


# --- methods and routes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("POST", CONVERSATIONS, "GET"),
        ("DELETE", CONVERSATIONS, "GET"),
        ("PUT", conversation_path("Y29udg"), "GET"),
        ("DELETE", conversation_path("Y29udg", "messages"), "GET, POST"),
        ("GET", conversation_path("Y29udg", "handoff"), "POST"),
        ("GET", conversation_path("Y29udg", "close"), "POST"),
        ("PATCH", conversation_path("Y29udg", "reopen"), "POST"),
        ("POST", user_path("telegram", "1", export=True), "DELETE, GET"),
        ("GET", user_path("telegram", "1"), "DELETE"),
        ("POST", OPENAPI_PATH, "GET"),
    ],
)
def test_a_wrong_method_is_405_with_allow(
    api: ApiClient, method: str, path: str, allowed: str
) -> None:
    answer = api.call(method, path, AGENT)

    assert answer.error == (405, "method_not_allowed")
    assert answer.headers["Allow"] == allowed


@pytest.mark.parametrize(
    "path",
    [f"{PREFIX}/nothing", f"{CONVERSATIONS}/a/b/c", f"{PREFIX}/users/telegram", "/api/v1/chat"],
)
def test_an_unknown_route_is_404(api: ApiClient, path: str) -> None:
    assert api.get(path, AGENT).status == 404


# --- tenants ------------------------------------------------------------------------------------


def test_another_tenants_conversation_is_404_on_every_route(
    api: ApiClient, seed: Seeder, db: Any, read_events: Events
) -> None:
    mine = seed.inbound(T0, chat_id="555001", text="acme's secret")
    seed.outbound(mine, T0 + timedelta(seconds=1))
    seed.inbound(T0, tenant=GLOBEX, chat_id="777001", account_id="7000000002")
    before = {
        "conversations": list(db.conversations.find({"tenant_id": ACME})),
        "messages": list(db.messages.find({"tenant_id": ACME})),
    }

    answers = [
        (m, p, api.call(m, p, GLOBEX_ADMIN, json_body=b))
        for m, p, b in every_route(cid(mine), "telegram", "555001")
    ]

    assert [(m, p, a.error) for m, p, a in answers] == [
        (m, p, (404, "not_found")) for m, p, _ in answers
    ]
    # Nothing changed, nothing was sent, and no erase was recorded.
    assert list(db.conversations.find({"tenant_id": ACME})) == before["conversations"]
    assert list(db.messages.find({"tenant_id": ACME})) == before["messages"]
    assert db.audit.count_documents({}) == 0
    assert outbound_records(read_events) == []
    # ... and the owner still sees it all.
    assert api.get(conversation_path(cid(mine)), AGENT).body["state"] == "open"
    assert api.get(user_path("telegram", "555001", export=True), ADMIN).status == 200


def test_the_other_tenant_sees_nothing_even_with_the_same_chat(
    api: ApiClient, seed: Seeder
) -> None:
    # The same platform ids under both tenants: still two conversations, one each.
    ours = seed.inbound(T0, chat_id="555001")
    theirs = seed.inbound(T0, tenant=GLOBEX, chat_id="555001")

    seed.inbound(T0 + timedelta(seconds=1), tenant=GLOBEX, chat_id="555001")

    assert ids(api.get(CONVERSATIONS, AGENT)) == [cid(ours)]
    assert ids(api.get(CONVERSATIONS, GLOBEX_AGENT)) == [cid(theirs)]
    assert api.get(conversation_path(cid(ours)), AGENT).body["message_count"] == 1
    assert api.get(conversation_path(cid(theirs)), GLOBEX_AGENT).body["message_count"] == 2
    mine = api.get(conversation_path(cid(ours), "messages"), AGENT).body["items"]
    assert [m["id"] for m in mine] == [event_id_of(ours)]
    assert api.get(conversation_path(cid(theirs)), AGENT).status == 404
    assert api.get(conversation_path(cid(ours)), GLOBEX_AGENT).status == 404
    assert api.get(CONVERSATIONS, token("initech", "agent")).body == {
        "items": [],
        "next_cursor": None,
    }


@pytest.mark.parametrize(
    "conversation",
    [
        paging.conversation_id("acme:telegram:7000000001/404404"),  # well-formed, not stored
        "garbage",
        "!!!",
        "x" * 1500,
        paging.conversation_id("no colons"),
    ],
    ids=["unknown", "garbage", "punctuation", "too-long", "not-a-key"],
)
def test_an_unknown_or_garbage_conversation_is_404_on_every_route(
    api: ApiClient, seed: Seeder, conversation: str
) -> None:
    seed.inbound(T0)

    answers = [
        api.call(m, p, ADMIN, json_body=b)
        for m, p, b in every_route(conversation, "telegram", "555001")[:6]
    ]

    assert {a.error for a in answers} == {(404, "not_found")}


def test_lists_counts_and_cursors_hold_only_the_callers_tenant(
    api: ApiClient, seed: Seeder
) -> None:
    for i in range(12):  # interleaved in time, same channels and chat ids
        at = T0 + timedelta(minutes=i)
        seed.inbound(at, chat_id=f"7{i:05d}", channel="telegram" if i % 2 else "whatsapp")
        seed.inbound(at, tenant=GLOBEX, chat_id=f"7{i:05d}", account_id="7000000002")
        seed.inbound(at, tenant=GLOBEX, chat_id=f"8{i:05d}")

    acme_pages = list(api.pages(CONVERSATIONS, AGENT, limit="5"))
    globex_pages = list(api.pages(CONVERSATIONS, GLOBEX_AGENT, limit="5"))

    acme_keys = [k for page in acme_pages for k in keys(page)]
    assert len(acme_keys) == len(set(acme_keys)) == 12
    assert all(k.startswith("acme:") for k in acme_keys)
    cursors = [p.body["next_cursor"] for p in acme_pages if p.body["next_cursor"]]
    assert len(cursors) == 2
    assert all(paging.decode_cursor(c).id.startswith("acme:") for c in cursors)
    globex_keys = [k for page in globex_pages for k in keys(page)]
    assert len(globex_keys) == 24
    assert all(k.startswith("globex:") for k in globex_keys)
    # A cursor of one tenant's list pages through the other tenant's list, never its own.
    crossed = api.get(CONVERSATIONS, GLOBEX_AGENT, cursor=cursors[0], limit="100")
    assert crossed.status == 200
    assert all(k.startswith("globex:") for k in keys(crossed))


# --- parameters ---------------------------------------------------------------------------------


# A position in year 9999 at UTC-1: after year 9999 in UTC, which no BSON date can hold.
OVERFLOWING_CURSOR = (
    base64.urlsafe_b64encode(b'["9999-12-31T23:59:59-01:00","x"]').decode().rstrip("=")
)


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "-5"}, "limit"),
        ({"limit": "\u00b2"}, "limit"),
        ({"status": "bogus"}, "status"),
        ({"status": "OPEN"}, "status"),
        ({"channel": "bogus"}, "channel"),
        ({"channel": "sms"}, "channel"),
        ({"updated_since": "yesterday"}, "updated_since"),
        ({"updated_since": "2025-13-45T00:00:00Z"}, "updated_since"),
        ({"updated_since": "9999-12-31T23:59:59-01:00"}, "updated_since"),  # past year 9999 in UTC
        ({"cursor": "garbage!"}, "cursor"),
        ({"cursor": "W10"}, "cursor"),  # "[]"
        ({"cursor": OVERFLOWING_CURSOR}, "cursor"),
    ],
    ids=lambda v: json.dumps(v) if isinstance(v, dict) else str(v),
)
def test_a_bad_list_parameter_is_400_naming_it(
    api: ApiClient, seed: Seeder, query: dict[str, str], parameter: str
) -> None:
    seed.inbound(T0)

    answer = api.get(CONVERSATIONS, AGENT, **query)

    assert answer.error == (400, "invalid_parameter")
    assert answer.parameter == parameter
    assert answer.body["message"].startswith(f"{parameter}: ")


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"cursor": "nope!"}, "cursor"),
        ({"cursor": OVERFLOWING_CURSOR}, "cursor"),
    ],
)
def test_a_bad_messages_parameter_is_400_naming_it(
    api: ApiClient, seed: Seeder, query: dict[str, str], parameter: str
) -> None:
    message = seed.inbound(T0)

    answer = api.get(conversation_path(cid(message), "messages"), AGENT, **query)

    assert answer.error == (400, "invalid_parameter")
    assert answer.parameter == parameter


@pytest.mark.parametrize(
    ("body", "headers", "parameter"),
    [
        ({"text": ""}, {}, "text"),
        ({"text": "   \n "}, {}, "text"),
        ({}, {}, "text"),
        ({"text": None}, {}, "text"),
        ({"text": 42}, {}, "text"),
        ({"text": "x" * 4097}, {}, "text"),
        ({"text": "ok"}, {"Idempotency-Key": "has space"}, "Idempotency-Key"),
        ({"text": "ok"}, {"Idempotency-Key": "k" * 129}, "Idempotency-Key"),
        ({"text": "ok"}, {"Idempotency-Key": "slash/not/allowed"}, "Idempotency-Key"),
        ({"text": "ok", "quick_replies": "yes"}, {}, "quick_replies"),
        ({"text": "ok", "quick_replies": [{"id": "a"}] * 11}, {}, "quick_replies"),
        ({"text": "ok", "quick_replies": ["yes"]}, {}, "quick_replies[0]"),
        ({"text": "ok", "quick_replies": [{"id": "a", "title": ""}]}, {}, "quick_replies[0].title"),
        ({"text": "ok", "quick_replies": [{"id": "", "title": "A"}]}, {}, "quick_replies[0].id"),
    ],
    ids=[
        "empty",
        "blank",
        "missing",
        "null",
        "number",
        "too-long",
        "key-space",
        "key-too-long",
        "key-slash",
        "quick-replies-not-a-list",
        "too-many-quick-replies",
        "quick-reply-not-an-object",
        "quick-reply-empty-title",
        "quick-reply-empty-id",
    ],
)
def test_a_bad_reply_is_400_naming_the_field_and_nothing_is_sent(
    api: ApiClient,
    seed: Seeder,
    db: Any,
    read_events: Events,
    body: dict[str, Any],
    headers: dict[str, str],
    parameter: str,
) -> None:
    message = seed.inbound(T0)

    answer = api.post(conversation_path(cid(message), "messages"), AGENT, body, headers)

    assert answer.error == (400, "invalid_parameter")
    assert answer.parameter == parameter
    assert db.messages.count_documents({"direction": "outbound"}) == 0
    assert outbound_records(read_events) == []


NOT_AN_OBJECT = {
    "truncated": b'{"text": ',
    "array": b'["text"]',
    "string": b'"text"',
    "form": b"text=hi",
    "not-utf-8": b'{"text": "\xff"}',
    "nested-too-deep": b"[" * 100_000,  # deeper than the parser goes: RecursionError
}


@pytest.mark.parametrize("data", NOT_AN_OBJECT.values(), ids=NOT_AN_OBJECT.keys())
def test_a_reply_body_that_is_not_a_json_object_is_400(
    api: ApiClient, seed: Seeder, db: Any, data: bytes
) -> None:
    message = seed.inbound(T0)

    answer = api.call(
        "POST",
        conversation_path(cid(message), "messages"),
        AGENT,
        data=data,
        headers={"Content-Type": "application/json"},
    )

    assert answer.error == (400, "malformed_json")
    assert db.messages.count_documents({"direction": "outbound"}) == 0


@pytest.mark.parametrize(
    ("body", "code", "parameter"),
    [
        (b'{"assignee": ', "malformed_json", None),
        (b'{"assignee": ' * 50_000, "malformed_json", None),
        (b'{"assignee": ""}', "invalid_parameter", "assignee"),
        (b'{"assignee": 7}', "invalid_parameter", "assignee"),
        (b'{"assignee": "' + b"a" * 129 + b'"}', "invalid_parameter", "assignee"),
        (b'{"assignee": "bob\\u0000"}', "invalid_parameter", "assignee"),
    ],
    ids=["malformed", "nested-too-deep", "empty", "number", "too-long", "control-character"],
)
def test_a_bad_handoff_body_is_400_and_changes_nothing(
    api: ApiClient, seed: Seeder, db: Any, body: bytes, code: str, parameter: str | None
) -> None:
    message = seed.inbound(T0)

    answer = api.call(
        "POST",
        conversation_path(cid(message), "handoff"),
        AGENT,
        data=body,
        headers={"Content-Type": "application/json"},
    )

    assert answer.error == (400, code)
    assert answer.parameter == parameter
    assert db.conversations.find_one({"_id": message.conversation_key})["state"] == "open"


def test_an_unknown_channel_in_a_user_path_is_400(api: ApiClient) -> None:
    answers = [
        api.get(user_path("bogus", "555001", export=True), ADMIN),
        api.delete(user_path("bogus", "555001"), ADMIN),
        api.delete(user_path("bogus", "555001", export=True), ADMIN),
    ]

    assert {(a.error, a.parameter) for a in answers} == {((400, "invalid_parameter"), "channel")}


# --- listing conversations ----------------------------------------------------------------------


def test_the_list_filters_by_channel_status_assignee_and_update_time(
    api: ApiClient, seed: Seeder, db: Any
) -> None:
    hour = timedelta(hours=1)
    c1 = seed.inbound(T0, channel="whatsapp", chat_id="16505550001")
    c2 = seed.inbound(T0 + hour, channel="whatsapp", chat_id="16505550002")
    c3 = seed.inbound(T0 + 2 * hour, channel="telegram", chat_id="555003")
    c4 = seed.inbound(T0 + 3 * hour, channel="slack", chat_id="C0000004")
    c5 = seed.inbound(T0 + 4 * hour, channel="webchat", chat_id="conv-5")
    other = seed.inbound(T0 + hour, tenant=GLOBEX, channel="whatsapp", chat_id="16505550002")
    alice = api.post(conversation_path(cid(c2), "handoff"), AGENT, {"assignee": "alice"})
    assert alice.status == 200
    assert api.post(conversation_path(cid(c3), "close"), AGENT).status == 200
    assert api.post(conversation_path(cid(c5), "handoff"), AGENT).status == 200
    handed = api.post(conversation_path(cid(other), "handoff"), GLOBEX_AGENT, {"assignee": "alice"})
    assert handed.status == 200

    def listed(**query: str) -> set[str]:
        return set(all_ids(api, AGENT, **query))

    everything = all_ids(api, AGENT)
    documents = db.conversations.find({"tenant_id": ACME}).sort([("updated_at", -1), ("_id", -1)])
    assert everything == [paging.conversation_id(d["_id"]) for d in documents]
    assert everything.index(cid(c4)) < everything.index(cid(c1))  # newest first
    assert set(everything) == {cid(c) for c in (c1, c2, c3, c4, c5)}
    assert listed(channel="whatsapp") == {cid(c1), cid(c2)}
    assert listed(channel="telegram") == {cid(c3)}
    assert listed(channel="messenger") == set()
    assert listed(status="open") == {cid(c1), cid(c4)}
    assert listed(status="handoff") == {cid(c2), cid(c5)}
    assert listed(status="closed") == {cid(c3)}
    assert listed(channel="whatsapp", status="open") == {cid(c1)}
    assert listed(assignee="alice") == {cid(c2)}
    assert listed(assignee="agent@acme") == {cid(c5)}
    assert listed(assignee="nobody") == set()
    assert listed(updated_since=iso(T0)) == set(everything)
    assert listed(updated_since="2025-06-01T12:30:00+02:00") == set(everything) - {cid(c1)}
    assert listed(updated_since=iso(T0 + 3 * hour)) == {cid(c2), cid(c3), cid(c4), cid(c5)}
    assert listed(updated_since="2999-01-01T00:00:00Z") == set()
    assert listed(updated_since=iso(T0 + 3 * hour), status="open") == {cid(c4)}


def test_a_conversation_is_shown_as_stored(api: ApiClient, seed: Seeder) -> None:
    first = seed.inbound(T0, channel="whatsapp", chat_id="16505550001", name="Sheena")
    seed.outbound(first, T0 + timedelta(seconds=5))
    last = seed.inbound(T0 + timedelta(minutes=2), channel="whatsapp", chat_id="16505550001")

    answer = api.get(conversation_path(cid(last)), AGENT)

    assert answer.status == 200
    assert answer.body == {
        "id": cid(last),
        "channel": "whatsapp",
        "account_id": "106540352242922",
        "chat_id": "16505550001",
        "state": "open",
        "assignee": None,
        "participant": {"id": "16505550001", "name": "Ann"},
        "message_count": 3,
        "created_at": "2025-06-01T10:00:00Z",
        "updated_at": "2025-06-01T10:02:00Z",
        "last_message_at": "2025-06-01T10:02:00Z",
        "last_inbound_at": "2025-06-01T10:02:00Z",
    }
    assert api.get(CONVERSATIONS, AGENT).body["items"] == [answer.body]


def test_the_list_pages_20_by_default_and_up_to_100(api: ApiClient, seed: Seeder) -> None:
    for i in range(105):
        seed.inbound(T0 + timedelta(seconds=i), chat_id=f"9{i:05d}")

    default = api.get(CONVERSATIONS, AGENT)
    largest = api.get(CONVERSATIONS, AGENT, limit="100")
    one = api.get(CONVERSATIONS, AGENT, limit="1")

    assert len(ids(default)) == 20 and default.body["next_cursor"]
    assert len(ids(largest)) == 100 and largest.body["next_cursor"]
    assert ids(one) == ids(default)[:1]
    rest = api.get(CONVERSATIONS, AGENT, limit="100", cursor=largest.body["next_cursor"])
    assert len(ids(rest)) == 5 and rest.body["next_cursor"] is None
    assert ids(largest)[0] == paging.conversation_id("acme:telegram:7000000001/900104")


def test_paging_neither_repeats_nor_skips_while_conversations_arrive(
    api: ApiClient, seed: Seeder, db: Any
) -> None:
    # 45 conversations in 15 distinct update times (three share each time: the cursor's _id
    # breaks the ties), with globex's conversations at the very same times.
    original = []
    for i in range(45):
        at = T0 + timedelta(seconds=i // 3)
        original.append(cid(seed.inbound(at, chat_id=f"4{i:04d}")))
        seed.inbound(at, tenant=GLOBEX, chat_id=f"4{i:04d}")
    expected = [
        paging.conversation_id(d["_id"])
        for d in db.conversations.find({"tenant_id": ACME}).sort([("updated_at", -1), ("_id", -1)])
    ]
    assert sorted(expected) == sorted(original)

    seen: list[str] = []
    arrived: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = api.get(CONVERSATIONS, AGENT, limit="10", **({"cursor": cursor} if cursor else {}))
        assert page.status == 200
        pages += 1
        seen.extend(ids(page))
        cursor = page.body["next_cursor"]
        if cursor is None:
            break
        # New conversations (and a new message in a new one) between pages.
        for n in range(2):
            arrived.append(cid(seed.inbound(datetime.now(UTC), chat_id=f"new-{pages}-{n}")))

    assert pages == 5
    assert seen == expected  # every original once, newest first, ties in _id order
    assert not set(arrived) & set(seen)
    fresh = ids(api.get(CONVERSATIONS, AGENT, limit="100"))
    assert fresh[: len(arrived)] == list(reversed(arrived))
    assert fresh[len(arrived) :] == expected


# --- messages -----------------------------------------------------------------------------------


def test_messages_are_oldest_first_with_the_delivery_of_each_reply(
    api: ApiClient, seed: Seeder, db: Any
) -> None:
    s = timedelta(seconds=1)
    photo = MediaRef("image", "media-1", "image/jpeg", caption="my receipt", url="https://x/1")
    m1 = seed.inbound(T0, text="Where is my order?", name="Ann", attachments=(photo,))
    r1 = seed.outbound(m1, T0 + s, text="Let me check.")
    m2 = seed.inbound(T0 + 2 * s, text="Order 4471")
    r2 = seed.outbound(m2, T0 + 3 * s, text="Sorry, try later.", author=Author.FALLBACK)
    r3 = seed.outbound(m2, T0 + 4 * s, text="It ships tomorrow.")
    m3 = seed.inbound(T0 + 4 * s, text="Thanks!")  # the same time as r3: _id decides
    deliveries = Deliveries(db)
    deliveries.sent(r1, deliveries.claim(r1, T0 + s, lease_s=30), "901", T0 + 2 * s)
    claim = deliveries.claim(r2, T0 + 3 * s, lease_s=30)
    error = {"code": "channel_rejected", "message": "chat not found", "http_status": 400}
    assert deliveries.fail(r2, claim, error, T0 + 4 * s)
    path = conversation_path(cid(m1), "messages")

    pages = list(api.pages(path, AGENT, limit="2"))
    items = [item for page in pages for item in page.body["items"]]
    whole = api.get(path, AGENT).body

    assert [len(p.body["items"]) for p in pages] == [2, 2, 2]
    assert whole == {"items": items, "next_cursor": None}
    tied = sorted([(r3.message_id, "It ships tomorrow."), (event_id_of(m3), "Thanks!")])
    assert [i["text"] for i in items] == [
        "Where is my order?",
        "Let me check.",
        "Order 4471",
        "Sorry, try later.",
        *(text for _, text in tied),
    ]
    by_text = {i["text"]: i for i in items}
    assert by_text["Where is my order?"] == {
        "id": event_id_of(m1),
        "direction": "inbound",
        "author": "user",
        "kind": "text",
        "text": "Where is my order?",
        "created_at": "2025-06-01T10:00:00Z",
        "sender": {"id": "555001", "name": "Ann"},
        "attachments": [
            {
                "type": "image",
                "mime_type": "image/jpeg",
                "caption": "my receipt",
                "filename": None,
                "url": "https://x/1",
            }
        ],
    }
    assert by_text["Let me check."]["delivery"] == {
        "state": "sent",
        "updated_at": "2025-06-01T10:00:02Z",
        "error": None,
    }
    assert by_text["Sorry, try later."]["author"] == "fallback"
    assert by_text["Sorry, try later."]["delivery"]["state"] == "failed"
    assert by_text["Sorry, try later."]["delivery"]["error"] == error
    assert by_text["It ships tomorrow."]["delivery"]["state"] == "pending"
    assert by_text["It ships tomorrow."]["id"] == r3.message_id
    for item in items:
        assert ("delivery" in item) == (item["direction"] == "outbound")
        assert ("sender" in item) == (item["direction"] == "inbound")


def test_messages_of_another_conversation_are_not_mixed_in(api: ApiClient, seed: Seeder) -> None:
    mine = seed.inbound(T0, chat_id="555001", text="mine")
    seed.inbound(T0, chat_id="555002", text="someone else's")
    seed.inbound(T0, tenant=GLOBEX, chat_id="555001", text="globex's")

    page = api.get(conversation_path(cid(mine), "messages"), AGENT)

    assert [i["text"] for i in page.body["items"]] == ["mine"]


def event_id_of(message: InboundMessage) -> str:
    return str(message_received(message)["id"])


# --- handoff, close, reopen ---------------------------------------------------------------------


def test_handoff_close_and_reopen_move_the_state_and_the_assignee(
    api: ApiClient, seed: Seeder, db: Any
) -> None:
    message = seed.inbound(T0)
    conversation = cid(message)

    def stored() -> dict[str, Any]:
        document: dict[str, Any] = db.conversations.find_one({"_id": message.conversation_key})
        return document

    taken = api.post(conversation_path(conversation, "handoff"), AGENT)
    assert (taken.status, taken.body["state"], taken.body["assignee"]) == (
        200,
        "handoff",
        "agent@acme",
    )
    assert stored()["state"] == "handoff" and stored()["handoff_at"] is not None
    assert taken.body["updated_at"] > "2025-06-01T10:00:00Z"

    passed = api.post(conversation_path(conversation, "handoff"), AGENT, {"assignee": "bob"})
    assert (passed.body["state"], passed.body["assignee"]) == ("handoff", "bob")
    assert api.get(conversation_path(conversation), AGENT).body == passed.body

    closed = api.post(conversation_path(conversation, "close"), AGENT)
    assert (closed.status, closed.body["state"]) == (200, "closed")
    assert stored()["closed_at"] is not None
    assert api.post(conversation_path(conversation, "close"), AGENT).body["state"] == "closed"

    reopened = api.post(conversation_path(conversation, "reopen"), AGENT)
    assert (reopened.status, reopened.body["state"], reopened.body["assignee"]) == (
        200,
        "open",
        None,
    )
    assert (stored()["state"], stored()["assignee"]) == ("open", None)
    assert api.post(conversation_path(conversation, "reopen"), AGENT).body["state"] == "open"
    # The history is untouched by state changes.
    assert stored()["message_count"] == 1


def test_a_closed_conversation_takes_no_reply_and_no_handoff(
    api: ApiClient, seed: Seeder, db: Any, read_events: Events
) -> None:
    message = seed.inbound(T0)
    conversation = cid(message)
    assert api.post(conversation_path(conversation, "close"), AGENT).status == 200

    reply = api.post(conversation_path(conversation, "messages"), AGENT, {"text": "hello?"})
    handoff = api.post(conversation_path(conversation, "handoff"), AGENT)

    assert reply.error == (409, "conversation_closed")
    assert handoff.error == (409, "invalid_state")
    assert "closed" in handoff.body["message"]
    assert db.conversations.find_one({"_id": message.conversation_key})["state"] == "closed"
    assert db.messages.count_documents({"direction": "outbound"}) == 0
    assert outbound_records(read_events) == []
    # Reopened, it takes both again.
    assert api.post(conversation_path(conversation, "reopen"), AGENT).status == 200
    assert api.post(conversation_path(conversation, "handoff"), AGENT).status == 200
    assert api.post(conversation_path(conversation, "messages"), AGENT, {"text": "hi"}).status == (
        202
    )


# --- agent replies ------------------------------------------------------------------------------


def test_an_agents_reply_is_stored_and_published_once_per_idempotency_key(
    api: ApiClient, seed: Seeder, db: Any, read_events: Events
) -> None:
    message = seed.inbound(T0, chat_id="555001")
    path = conversation_path(cid(message), "messages")
    assert api.post(conversation_path(cid(message), "handoff"), AGENT).status == 200
    body = {"text": "Hi, this is Alice.", "quick_replies": [{"id": "yes", "title": "Yes"}]}
    key = {"Idempotency-Key": "reply-0001:abc_DEF.9"}

    first = api.post(path, AGENT, body, key)

    assert first.status == 202
    reply = first.body
    assert reply["direction"] == "outbound" and reply["author"] == "agent"
    assert reply["text"] == "Hi, this is Alice."
    assert reply["quick_replies"] == [{"id": "yes", "title": "Yes"}]
    assert reply["delivery"]["state"] == "pending"
    stored = db.messages.find_one({"_id": reply["id"]})
    assert stored["tenant_id"] == ACME
    assert (stored["direction"], stored["author"]) == ("outbound", "agent")
    assert stored["conversation_key"] == message.conversation_key
    assert stored["chat_id"] == "555001" and stored["text"] == "Hi, this is Alice."
    conversation = db.conversations.find_one({"_id": message.conversation_key})
    assert conversation["message_count"] == 2
    [record] = outbound_records(read_events, min_records=1)
    event = record.event()
    assert event["type"] == MESSAGE_OUTBOUND
    assert event["id"] == reply["id"]
    assert event["tenantid"] == ACME
    assert record.key == message.conversation_key.encode()
    assert event.data["author"] == "agent" and event.data["message_id"] == reply["id"]
    assert event.data["text"] == "Hi, this is Alice."
    assert event.data["in_reply_to_at"] == "2025-06-01T10:00:00Z"

    again = api.post(path, AGENT, body, key)

    assert again.status == 200
    assert again.body["id"] == reply["id"]
    assert again.body == reply
    assert db.messages.count_documents({"_id": reply["id"]}) == 1
    assert db.messages.count_documents({"direction": "outbound"}) == 1
    assert db.conversations.find_one({"_id": message.conversation_key})["message_count"] == 2
    # Published again (a first attempt may have stored and then failed to publish): same id.
    records = outbound_records(read_events, min_records=2)
    assert [r.event()["id"] for r in records] == [reply["id"], reply["id"]]
    listed = api.get(conversation_path(cid(message), "messages"), AGENT).body["items"]
    assert [i["author"] for i in listed] == ["user", "agent"]


def test_replies_without_a_key_are_separate_messages(
    api: ApiClient, seed: Seeder, db: Any, read_events: Events
) -> None:
    message = seed.inbound(T0)
    path = conversation_path(cid(message), "messages")

    first = api.post(path, AGENT, {"text": "One"})
    second = api.post(path, AGENT, {"text": "One"})

    assert (first.status, second.status) == (202, 202)
    assert first.body["id"] != second.body["id"]
    assert db.messages.count_documents({"direction": "outbound", "author": "agent"}) == 2
    assert len(outbound_records(read_events, min_records=2)) == 2


def test_the_same_idempotency_key_in_another_conversation_is_another_message(
    api: ApiClient, seed: Seeder, db: Any
) -> None:
    one = seed.inbound(T0, chat_id="555001")
    two = seed.inbound(T0, chat_id="555002")
    key = {"Idempotency-Key": "same-key"}

    first = api.post(conversation_path(cid(one), "messages"), AGENT, {"text": "a"}, key)
    second = api.post(conversation_path(cid(two), "messages"), AGENT, {"text": "a"}, key)

    assert (first.status, second.status) == (202, 202)
    assert first.body["id"] != second.body["id"]
    assert db.messages.count_documents({"direction": "outbound"}) == 2


# --- rate limits --------------------------------------------------------------------------------


def test_each_token_has_its_own_per_minute_budget(
    make_client: Client,
    api_env: dict[str, str],
    spec: OpenApi,
    seed: Seeder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("API_RATE_LIMIT_PER_MIN", "3")
    clear_all()
    api = ApiClient(make_client("conversations-api"), spec)
    message = seed.inbound(T0)

    for attempt in range(3):  # a minute boundary in between starts a new window: try again
        window = int(time.time() // 60)
        first = token(ACME, "agent", subject=f"first-{attempt}@acme")
        second = token(ACME, "agent", subject=f"second-{attempt}@acme")
        statuses = [api.get(CONVERSATIONS, first).status for _ in range(3)]
        refused = api.get(conversation_path(cid(message)), first)
        other = api.get(CONVERSATIONS, second)
        if int(time.time() // 60) == window:
            break

    assert statuses == [200, 200, 200]
    assert refused.error == (429, "rate_limited")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert other.status == 200  # another token of the same tenant is not limited


# --- GDPR ---------------------------------------------------------------------------------------

USER = "880011223"  # a Telegram user: their private chat has their id
NEIGHBOUR = "990044556"
GROUP = "-1005550001"
USER_TEXTS = ("I need my order 4471 status", "Your order ships tomorrow", "hello second bot")
GROUP_TEXT = "group message from the user"


class Gdpr:
    """The user's data and everyone else's: what an export must show and an erase remove."""

    def __init__(self, seed: Seeder, db: Any, redis_url: str) -> None:
        self.db = db
        self.sessions = SessionCache(redis_url)
        at = T0
        # The user's private chats with two of acme's bots, with a reply in one.
        self.own = seed.inbound(at, chat_id=USER, text=USER_TEXTS[0], name="Uma")
        self.reply = seed.outbound(self.own, at + timedelta(seconds=1), text=USER_TEXTS[1])
        self.second = seed.inbound(
            at, chat_id=USER, account_id="7000000009", text=USER_TEXTS[2], name="Uma"
        )
        # A group: the user wrote first, the neighbour last (the neighbour is its participant).
        self.in_group = seed.inbound(at, chat_id=GROUP, user_id=USER, text=GROUP_TEXT)
        self.group = seed.inbound(
            at + timedelta(seconds=2), chat_id=GROUP, user_id=NEIGHBOUR, text="neighbour in group"
        )
        # Someone else, the same id on another channel, and the same user under globex.
        self.neighbour = seed.inbound(at, chat_id=NEIGHBOUR, text="neighbour private text")
        seed.outbound(self.neighbour, at + timedelta(seconds=1), text="reply to neighbour")
        self.whatsapp = seed.inbound(at, channel="whatsapp", chat_id=USER, text="whatsapp text")
        self.globex = seed.inbound(
            at, tenant=GLOBEX, chat_id=USER, account_id="7000000002", text="globex text"
        )
        # The audit trail of every one of those events, as the audit-logger records them.
        events = [
            message_received(m)
            for m in (
                self.own,
                self.second,
                self.in_group,
                self.group,
                self.neighbour,
                self.whatsapp,
                self.globex,
            )
        ] + [message_outbound(self.reply, "/chat-service/message-processor")]
        self.events = events
        db.audit.insert_many([audit_document(e, at) for e in events])
        # A held delivery status of the user's chat and of the neighbour's.
        tracker = StatusTracker(db, clock=lambda: T0.timestamp())
        for chat in (USER, NEIGHBOUR):
            update = status_update(
                DeliveryStatus.DELIVERED,
                channel=self.own.channel,
                account_id=self.own.account_id,
                chat_id=chat,
                platform_message_id=f"77{chat}",
                timestamp=iso(at),
            )
            assert tracker.apply(update) == "held"
        # Poison events of both conversations.
        for message in (self.own, self.neighbour):
            PoisonStore(db).record(
                "message-processor", message_received(message), BadRequest("bad"), at
            )
        # The bot's memory of the conversations.
        for message in (self.own, self.second, self.neighbour, self.globex):
            turns = [Turn("user", message.text or ""), Turn("bot", "noted")]
            assert self.sessions.record(message.conversation_key, turns, {"last_intent": "x"})

    @property
    def user_keys(self) -> list[str]:
        return sorted([self.own.conversation_key, self.second.conversation_key])

    def is_users(self, collection: str, document: dict[str, Any]) -> bool:
        """Whether the document is one an erase of the user must remove."""
        keys = self.user_keys
        if collection == "conversations":
            return document["_id"] in keys
        if collection == "messages":
            sender = (document.get("sender") or {}).get("id")
            own = document["tenant_id"] == ACME and document["channel"] == "telegram"
            return document["conversation_key"] in keys or (own and sender == USER)
        if collection == "audit":
            data = document.get("data") or {}
            sender = (data.get("sender") or {}).get("id")
            own = document["tenant_id"] == ACME and data.get("channel") == "telegram"
            return data.get("conversation_key") in keys or (own and sender == USER)
        if collection == "pending_statuses":
            return document["update"]["conversation_key"] in keys
        return document["event"]["data"]["conversation_key"] in keys  # poison_events

    def others(self) -> dict[str, Any]:
        """Everything stored that is not the user's (the erase record aside)."""
        found: dict[str, Any] = {}
        for collection in COLLECTIONS:
            documents = self.db[collection].find({"type": {"$ne": ERASED_EVENT}})
            found[collection] = sorted(
                (d for d in documents if not self.is_users(collection, d)),
                key=lambda d: str(d["_id"]),
            )
        found["sessions"] = {
            m.conversation_key: self.sessions.context(m.tenant_id, "telegram", m.conversation_key)
            for m in (self.neighbour, self.globex)
        }
        return found


COLLECTIONS = ("conversations", "messages", "audit", "pending_statuses", "poison_events")


@pytest.fixture
def gdpr(seed: Seeder, db: Any, redis_url: str) -> Gdpr:
    return Gdpr(seed, db, redis_url)


def test_an_export_holds_everything_stored_about_the_user(api: ApiClient, gdpr: Gdpr) -> None:
    answer = api.get(user_path("telegram", USER, export=True), ADMIN)

    assert answer.status == 200
    export = answer.body
    assert export["subject"] == {"channel": "telegram", "user_id": USER}
    assert export["exported_at"].endswith("Z")
    assert sorted(c["_id"] for c in export["conversations"]) == gdpr.user_keys
    assert {c["participant"]["id"] for c in export["conversations"]} == {USER}
    assert sorted(m["text"] for m in export["messages"]) == sorted([*USER_TEXTS, GROUP_TEXT])
    assert len(export["audit"]) == 4  # both private chats' messages, the reply, the group one
    # The trail keeps a hash of each body, never the body (shared.audit.summary).
    audited = {a["data"]["text_sha256"] for a in export["audit"]}
    assert audited == {sha256(t.encode()).hexdigest() for t in (*USER_TEXTS, GROUP_TEXT)}
    assert [p["update"]["chat_id"] for p in export["pending_statuses"]] == [USER]
    assert [p["event"]["data"]["text"] for p in export["poison_events"]] == [USER_TEXTS[0]]
    sessions = {s["conversation_key"]: s for s in export["sessions"]}
    assert sorted(sessions) == gdpr.user_keys
    assert sessions[gdpr.own.conversation_key]["turns"] == [
        {"role": "user", "text": USER_TEXTS[0]},
        {"role": "bot", "text": "noted"},
    ]
    assert sessions[gdpr.own.conversation_key]["values"] == {"last_intent": "x"}
    everything = json.dumps(export)
    for foreign in ("neighbour", "whatsapp text", "globex", NEIGHBOUR):
        assert foreign not in everything
    assert all(isinstance(c["created_at"], str) for c in export["conversations"])


def test_an_erase_removes_the_user_and_leaves_everyone_else(
    api: ApiClient,
    gdpr: Gdpr,
    db: Any,
    redis_url: str,
    start_sink: Callable[..., FlaskClient],
    analytics_db: str,
) -> None:
    sink = start_sink()  # the analytics facts of the same events
    for event in gdpr.events:
        assert deliver(sink, event).status_code == 200
    facts_before = count(analytics_db, "message_facts")
    before = gdpr.others()

    answer = api.delete(user_path("telegram", USER), ADMIN)

    assert answer.status == 200
    # The user's own chats (a message and its reply, another bot's chat) and their group
    # message; the neighbour's, the WhatsApp and the globex facts stay.
    assert count(analytics_db, "message_facts") == facts_before - 4
    assert answer.body == {
        "status": "erased",
        "removed": {
            "analytics": 4,
            "conversations": 2,
            "messages": 4,
            "audit": 4,
            "pending_statuses": 1,
            "poison_events": 1,
            "sessions": 4,
        },
    }
    keys = gdpr.user_keys
    assert db.conversations.count_documents({"_id": {"$in": keys}}) == 0
    assert (
        db.conversations.count_documents(
            {"tenant_id": ACME, "participant.id": USER, "channel": "telegram"}
        )
        == 0
    )
    assert db.messages.count_documents({"conversation_key": {"$in": keys}}) == 0
    assert (
        db.messages.count_documents({"tenant_id": ACME, "channel": "telegram", "sender.id": USER})
        == 0
    )
    assert db.audit.count_documents({"data.conversation_key": {"$in": keys}}) == 0
    assert (
        db.audit.count_documents(
            {"tenant_id": ACME, "data.channel": "telegram", "data.sender.id": USER}
        )
        == 0
    )
    assert db.pending_statuses.count_documents({"update.conversation_key": {"$in": keys}}) == 0
    assert db.poison_events.count_documents({"event.data.conversation_key": {"$in": keys}}) == 0
    client = redis.Redis.from_url(redis_url)
    for key in keys:
        assert client.exists(*session_keys(key)) == 0
    # Everyone else's data, the same user's on WhatsApp and under globex included, is intact.
    assert gdpr.others() == before
    assert all(context.history for context in before["sessions"].values())
    assert all(before[collection] for collection in COLLECTIONS)
    assert db.messages.count_documents({"tenant_id": GLOBEX, "sender.id": USER}) == 1
    assert db.messages.count_documents({"channel": "whatsapp", "sender.id": USER}) == 1
    # One audit record says an erase happened, without anything that identifies the user.
    [record] = list(db.audit.find({"type": ERASED_EVENT}))
    assert record["tenant_id"] == ACME
    assert record["data"]["requested_by"] == "admin@acme"
    assert record["data"]["removed"] == answer.body["removed"]
    written = json.dumps(record, default=str)
    for identifying in (USER, GROUP, "Uma", *USER_TEXTS, GROUP_TEXT, *keys):
        assert identifying not in written
    # Gone: nothing to export or erase any more, and no second erase record.
    assert api.get(user_path("telegram", USER, export=True), ADMIN).error == (404, "not_found")
    assert api.delete(user_path("telegram", USER), ADMIN).error == (404, "not_found")
    assert db.audit.count_documents({"type": ERASED_EVENT}) == 1


def test_the_export_path_erases_too(api: ApiClient, gdpr: Gdpr, db: Any) -> None:
    answer = api.delete(user_path("telegram", NEIGHBOUR, export=True), ADMIN)

    assert answer.status == 200
    assert answer.body["removed"]["conversations"] == 2  # their chat and the group they lead
    assert db.conversations.count_documents({"_id": gdpr.neighbour.conversation_key}) == 0
    assert db.conversations.count_documents({"_id": {"$in": gdpr.user_keys}}) == 2
    assert api.delete(user_path("telegram", NEIGHBOUR, export=True), ADMIN).status == 404


@pytest.mark.parametrize(
    ("channel", "user_id"),
    [("telegram", "404404404"), ("slack", USER), ("whatsapp", NEIGHBOUR)],
    ids=["unknown-user", "user-on-another-channel", "neighbour-on-another-channel"],
)
def test_an_unknown_user_is_404_and_no_erase_is_recorded(
    api: ApiClient, gdpr: Gdpr, db: Any, channel: str, user_id: str
) -> None:
    exported = api.get(user_path(channel, user_id, export=True), ADMIN)
    erased = api.delete(user_path(channel, user_id), ADMIN)

    assert (exported.error, erased.error) == ((404, "not_found"), (404, "not_found"))
    assert db.audit.count_documents({"type": ERASED_EVENT}) == 0


def test_another_tenants_admin_cannot_export_or_erase_the_user(
    api: ApiClient, gdpr: Gdpr, db: Any
) -> None:
    # globex has a user with the same id on Telegram: its own, and only its own, is found.
    before = gdpr.others()
    theirs = api.get(user_path("telegram", USER, export=True), GLOBEX_ADMIN)
    assert theirs.status == 200
    assert [m["text"] for m in theirs.body["messages"]] == ["globex text"]
    assert api.get(user_path("telegram", NEIGHBOUR, export=True), GLOBEX_ADMIN).status == 404
    assert api.delete(user_path("telegram", NEIGHBOUR), GLOBEX_ADMIN).status == 404

    erased = api.delete(user_path("telegram", USER), GLOBEX_ADMIN)

    assert erased.status == 200
    assert erased.body["removed"]["conversations"] == 1
    assert db.conversations.count_documents({"_id": {"$in": gdpr.user_keys}}) == 2
    assert db.messages.count_documents({"tenant_id": GLOBEX}) == 0
    after = gdpr.others()
    assert after["conversations"] == [
        c for c in before["conversations"] if c["tenant_id"] != GLOBEX
    ]
    assert api.get(user_path("telegram", USER, export=True), ADMIN).status == 200
    [record] = list(db.audit.find({"type": ERASED_EVENT}))
    assert record["tenant_id"] == GLOBEX


# --- the OpenAPI document -----------------------------------------------------------------------


def test_the_document_is_openapi_3_1_and_describes_every_route(spec: OpenApi) -> None:
    document = spec.document
    assert document["openapi"] == "3.1.0"
    assert document["info"]["title"] and document["info"]["version"]
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert document["security"] == [{"bearer": []}]
    assert document["paths"][OPENAPI_PATH]["get"]["security"] == []

    # Every route the service serves is a documented path and method, and nothing else is.
    documented = {
        (method.upper(), pattern.pattern)
        for pattern, path in spec.paths
        for method in document["paths"][path]
        if path != OPENAPI_PATH
    }
    assert {(route.method, route.pattern.pattern) for route in ROUTES} == documented

    operation_ids = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert method in {"get", "post", "put", "patch", "delete"}, (path, method)
            operation_ids.append(operation["operationId"])
            in_path = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert in_path == set(re.findall(r"\{([^}]+)\}", path)), (path, method)
            for status, response in operation["responses"].items():
                assert status.isdigit() and response["description"], (path, method, status)
                schema = response["content"]["application/json"]["schema"]
                Draft202012Validator.check_schema(spec.schema(schema))
            if path != OPENAPI_PATH:
                assert {"401", "403", "429", "503"} <= set(operation["responses"]), path
                assert (
                    "429" in operation["responses"]
                    and operation["responses"]["429"]["headers"]["Retry-After"]
                )
            if "{" in path:
                assert "404" in operation["responses"], (path, method)
            if "requestBody" in operation or any(
                p["in"] == "query" for p in operation.get("parameters", [])
            ):
                assert "400" in operation["responses"], (path, method)
    assert len(operation_ids) == len(set(operation_ids))
    for schema in document["components"]["schemas"].values():
        Draft202012Validator.check_schema(spec.schema(schema))
    # Every $ref points at something.
    refs = re.findall(r'"\$ref": "#/([^"]+)"', json.dumps(document))
    for ref in refs:
        target: Any = document
        for part in ref.split("/"):
            target = target[part]
        assert isinstance(target, dict), ref


def test_real_answers_match_the_documented_schemas(
    api: ApiClient, spec: OpenApi, seed: Seeder, db: Any, redis_url: str
) -> None:
    # Every answer is validated as it arrives (ApiClient); this walks one of each kind.
    Gdpr(seed, db, redis_url)
    spec.checked.clear()
    message = seed.inbound(T0 + timedelta(hours=1), chat_id="555100", text="schema please")
    seed.outbound(message, T0 + timedelta(hours=1, seconds=1))
    conversation = cid(message)

    api.get(CONVERSATIONS, AGENT, limit="2")
    api.get(CONVERSATIONS, AGENT, limit="0")
    api.get(conversation_path(conversation), AGENT)
    api.get(conversation_path("garbage"), AGENT)
    api.get(conversation_path(conversation, "messages"), AGENT)
    api.get(conversation_path(conversation, "messages"), AGENT, cursor="bad!")
    api.post(conversation_path(conversation, "handoff"), AGENT, {"assignee": "alice"})
    api.post(
        conversation_path(conversation, "messages"),
        AGENT,
        {"text": "hi"},
        {"Idempotency-Key": "k1"},
    )
    api.post(
        conversation_path(conversation, "messages"),
        AGENT,
        {"text": "hi"},
        {"Idempotency-Key": "k1"},
    )
    api.post(conversation_path(conversation, "messages"), AGENT, {"text": ""})
    api.post(conversation_path(conversation, "close"), AGENT)
    api.post(conversation_path(conversation, "messages"), AGENT, {"text": "late"})
    api.post(conversation_path(conversation, "handoff"), AGENT)
    api.post(conversation_path(conversation, "reopen"), AGENT)
    api.get(user_path("telegram", USER, export=True), ADMIN)
    api.get(user_path("telegram", USER, export=True), AGENT)
    api.get(user_path("bogus", USER, export=True), ADMIN)
    api.delete(user_path("telegram", USER), ADMIN)
    api.delete(user_path("telegram", USER), ADMIN)
    api.get(CONVERSATIONS)
    api.get(CONVERSATIONS, expired())
    api.get(OPENAPI_PATH)

    assert spec.checked >= {
        ("listConversations", 200),
        ("listConversations", 400),
        ("listConversations", 401),
        ("getConversation", 200),
        ("getConversation", 404),
        ("listMessages", 200),
        ("listMessages", 400),
        ("handoff", 200),
        ("handoff", 409),
        ("replyAsAgent", 202),
        ("replyAsAgent", 200),
        ("replyAsAgent", 400),
        ("replyAsAgent", 409),
        ("close", 200),
        ("reopen", 200),
        ("exportUser", 200),
        ("exportUser", 403),
        ("exportUser", 400),
        ("eraseUser", 200),
        ("eraseUser", 404),
        ("openapi", 200),
    }


def test_a_429_matches_the_document_too(
    make_client: Client, api_env: dict[str, str], spec: OpenApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_RATE_LIMIT_PER_MIN", "1")
    clear_all()
    api = ApiClient(make_client("conversations-api"), spec)
    bearer = token(ACME, "agent", subject=f"{uuid.uuid4().hex}@acme")

    answers = [api.get(CONVERSATIONS, bearer) for _ in range(3)]  # a minute may turn once

    assert (429, "rate_limited") in [a.error for a in answers if a.status != 200]
    assert ("listConversations", 429) in spec.checked
