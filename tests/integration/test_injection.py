"""MongoDB operator injection through every user-controlled field of the conversations API
(docs/reliability.md, "Attacks").

Path parameters (a conversation id, a GDPR user's channel and id), query parameters (the list's
filters and cursors), the ``Idempotency-Key`` header and JSON body fields are sent as MongoDB
operators: ``{"$ne": null}`` and friends as JSON, ``$where``/``$ne`` as bare strings, and URL
forms like ``assignee[$ne]=x``. Each answer must be a 4xx or the answer to the literal value
(nothing matched: an empty list, a 404) — never more documents, never an erase of someone
else. And a spy on pymongo sees every filter the API sends: an injected value only ever appears
as a plain string leaf, never as a key or an operator object.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.collection import Collection

from shared.api import paging
from tests.integration.api_support import (  # noqa: F401
    ACME,
    CONVERSATIONS,
    GLOBEX,
    OPENAPI_PATH,
    ApiClient,
    OpenApi,
    Seeder,
    api_env_fixture,
    conversation_path,
    db_fixture,
    openapi_document,
    token,
    user_path,
)

pytestmark = pytest.mark.integration

T0 = datetime(2025, 6, 1, 10, 0, tzinfo=UTC)
AGENT = token(ACME, "agent")
ADMIN = token(ACME, "admin")
INJECTIONS = [
    '{"$ne": null}',
    '{"$gt": ""}',
    '{"$where": "sleep(100) || true"}',
    '{"$regex": ".*"}',
    "$where",
    "$ne",
    ".*",
    "acme', '$or': [{}], 'x': '",
]
# Operators the API's own queries use; anything else in a filter came from outside.
OWN_OPERATORS = frozenset(
    {"$and", "$or", "$in", "$lt", "$gt", "$gte", "$lte", "$set", "$inc", "$max", "$setOnInsert"}
)


class FilterSpy:
    """Every filter and update the code under test hands to pymongo."""

    METHODS = (
        "find",
        "find_one",
        "find_one_and_update",
        "update_one",
        "update_many",
        "delete_one",
        "delete_many",
        "count_documents",
    )

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.documents: list[Any] = []
        for name in self.METHODS:
            original = getattr(Collection, name)
            monkeypatch.setattr(Collection, name, self._spy(original))

    def _spy(self, original: Any) -> Any:
        spy = self

        def method(collection: Any, *args: Any, **kwargs: Any) -> Any:
            spy.documents.extend(a for a in args[:2] if isinstance(a, dict))
            spy.documents.extend(v for k, v in kwargs.items() if k in ("filter", "update"))
            return original(collection, *args, **kwargs)

        return method

    def check(self) -> None:
        """No key outside the API's own operators starts with $; no injected text is a key."""
        for document in self.documents:
            for key, value in _walk(document):
                assert not key.startswith("$") or key in OWN_OPERATORS, (key, document)
                assert key not in INJECTIONS, (key, document)
                if isinstance(value, str):
                    continue
                assert not (isinstance(value, dict) and "$where" in value), document


def _walk(node: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key), value
            yield from _walk(value)
    elif isinstance(node, list | tuple):
        for value in node:
            yield from _walk(value)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch, stored: dict[str, Any]) -> FilterSpy:
    """Installed once the test's documents are stored: it sees the API's queries only."""
    return FilterSpy(monkeypatch)


@pytest.fixture
def api(make_client: Any, api_env: dict[str, str]) -> ApiClient:
    return ApiClient(make_client("conversations-api"), OpenApi(openapi_document()))


@pytest.fixture
def stored(db: Any) -> dict[str, Any]:
    """Three acme conversations (one assigned to alice) and one of globex."""
    seed = Seeder(db)
    messages = [
        seed.inbound(T0 + timedelta(minutes=n), chat_id=f"55500{n}", text=f"hello {n}")
        for n in range(3)
    ]
    theirs = seed.inbound(T0, tenant=GLOBEX, chat_id="777001", account_id="7000000002")
    db.conversations.update_one(
        {"chat_id": "555000"}, {"$set": {"assignee": "alice", "state": "handoff"}}
    )
    return {"ours": messages, "theirs": theirs}


def counts(db: Any) -> tuple[int, int]:
    return db.conversations.count_documents({}), db.messages.count_documents({})


@pytest.mark.parametrize("value", INJECTIONS)
def test_an_operator_in_a_list_filter_is_a_literal_or_a_400(
    api: ApiClient, spy: FilterSpy, stored: dict[str, Any], value: str
) -> None:
    for name in ("assignee", "channel", "status", "updated_since", "cursor", "limit"):
        answer = api.get(CONVERSATIONS, AGENT, **{name: value})
        if name == "assignee":
            assert (answer.status, answer.body["items"]) == (200, [])  # nobody is called that
        else:
            assert answer.error[0] == 400, (name, answer.body)
    # The URL forms some frameworks turn into objects (qs, PHP, Rails): plain names here.
    raw = api.client.get(CONVERSATIONS + "?assignee[$ne]=x&status[$ne]=open", headers=_bearer())
    assert raw.status_code == 200 and len(raw.get_json()["items"]) == 3
    spy.check()


@pytest.mark.parametrize("value", INJECTIONS)
def test_an_operator_in_a_conversation_id_or_cursor_is_not_found(
    api: ApiClient, db: Any, spy: FilterSpy, stored: dict[str, Any], value: str
) -> None:
    before = counts(db)
    ids = [
        paging.conversation_id(value),  # the id of a key that is an operator
        paging.conversation_id(f"acme:telegram:{value}"),
        paging.conversation_id(json.dumps({"_id": {"$ne": None}})),
    ]
    for conversation in ids:
        for method, path, body in [
            ("GET", conversation_path(conversation), None),
            ("GET", conversation_path(conversation, "messages"), None),
            ("POST", conversation_path(conversation, "messages"), {"text": "hi"}),
            ("POST", conversation_path(conversation, "handoff"), {}),
            ("POST", conversation_path(conversation, "close"), None),
            ("POST", conversation_path(conversation, "reopen"), None),
        ]:
            assert api.call(method, path, ADMIN, json_body=body).error == (404, "not_found")
    ours = paging.conversation_id(stored["ours"][1].conversation_key)
    cursor = base64.urlsafe_b64encode(json.dumps([T0.isoformat(), {"$ne": None}]).encode())
    answer = api.get(conversation_path(ours, "messages"), AGENT, cursor=cursor.decode())
    assert answer.status in (200, 400)
    if answer.status == 200:  # the id is taken as the text it would print as: no match beyond
        assert len(answer.body["items"]) <= 1
    assert counts(db) == before
    spy.check()


@pytest.mark.parametrize("value", INJECTIONS)
def test_an_operator_in_a_reply_is_refused_or_stored_as_text(
    api: ApiClient, db: Any, spy: FilterSpy, stored: dict[str, Any], value: str
) -> None:
    ours = paging.conversation_id(stored["ours"][1].conversation_key)
    path = conversation_path(ours, "messages")

    keyed = api.post(path, AGENT, {"text": "hi"}, {"Idempotency-Key": value})
    as_object = api.post(path, AGENT, {"text": _as_json(value)})
    assignee = api.post(conversation_path(ours, "handoff"), AGENT, {"assignee": {"$ne": None}})
    literal = api.post(path, AGENT, {"text": value})

    assert keyed.error == (400, "invalid_parameter")  # $ { } ' are not key characters
    assert as_object.error == (400, "invalid_parameter")
    assert assignee.error == (400, "invalid_parameter")
    assert literal.status == 202 and literal.body["text"] == value  # text is text
    spy.check()


@pytest.mark.parametrize("value", INJECTIONS)
def test_an_operator_as_a_gdpr_user_erases_nobody(
    api: ApiClient, db: Any, spy: FilterSpy, stored: dict[str, Any], value: str
) -> None:
    before = counts(db)
    for channel, user in [("telegram", value), (value, "555000")]:
        export = api.get(user_path(channel, user, export=True), ADMIN)
        erase = api.delete(user_path(channel, user), ADMIN)
        assert export.status in (400, 404) and erase.status in (400, 404), (export, erase)
    assert counts(db) == before
    assert db.audit.count_documents({}) == 0  # no erase was recorded either
    spy.check()


def test_a_token_whose_tenant_is_an_operator_is_refused(api: ApiClient, stored: Any) -> None:
    import time

    import jwt

    from tests.integration.api_support import SECRET

    now = int(time.time())
    claims = {
        "iss": "chat-service",
        "aud": "chat-service-api",
        "sub": "mallory",
        "roles": ["admin"],
        "iat": now,
        "exp": now + 600,
        "tid": {"$ne": None},  # signed with the real secret: only the claim's type is wrong
    }
    bearer = jwt.encode(claims, SECRET, algorithm="HS256")

    assert api.get(CONVERSATIONS, bearer).error == (401, "invalid_token")


def _as_json(value: str) -> Any:
    """The injection as a JSON value that is no string: an object, or a list holding it."""
    try:
        return json.loads(value)
    except ValueError:
        return [value]


def _bearer() -> dict[str, str]:
    return {"Authorization": f"Bearer {AGENT}"}
