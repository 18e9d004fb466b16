"""The conversations API's integration tests: tokens, a client that checks every answer against
the OpenAPI document, and conversations seeded through the stores' own code.

pytest only finds fixtures in conftest.py and the test module, so the test module imports the
fixtures here as ``*_fixture`` functions (the import then does not shadow the argument names).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator, FormatChecker
from werkzeug.datastructures import Headers

from shared import events
from shared.api.auth import mint
from shared.caching import clear_all
from shared.kafka import ensure_topics
from shared.models import Author, Channel, InboundMessage, MediaRef, OutboundMessage, Sender
from shared.settings import Settings
from shared.store.conversations import ConversationStore
from shared.store.messages import MessageStore
from tests.builders import inbound_message, outbound_message

ROOT = Path(__file__).resolve().parents[2]
OPENAPI_FILE = ROOT / "shared" / "api" / "openapi.json"
SECRET = "integration-api-secret-0123456789-abcdefgh"  # 42 bytes
PREFIX = "/api/v2/chat"
CONVERSATIONS = f"{PREFIX}/conversations"
REPORTS = f"{PREFIX}/reports/daily"
OPENAPI_PATH = "/api/v2/openapi.json"
ACME, GLOBEX = "acme", "globex"


# --- tokens -------------------------------------------------------------------------------------


def token(
    tenant: str,
    *roles: str,
    subject: str | None = None,
    now: float | None = None,
    ttl_s: int = 24 * 3600,
    secret: str = SECRET,
) -> str:
    """An HS256 token as ``python -m shared.api token`` mints it (valid for a day: module
    constants are minted when the suite is collected)."""
    chosen = roles or ("agent",)
    return mint(
        Settings(api_jwt_secret=secret),
        tenant_id=tenant,
        subject=subject or f"{chosen[0]}@{tenant}",
        roles=tuple(chosen),
        now=time.time() if now is None else now,
        ttl_s=ttl_s,
    )


# --- the OpenAPI document -----------------------------------------------------------------------


def rfc3339(value: object) -> bool:
    """``format: date-time`` (jsonschema checks it only with an optional package installed)."""
    if not isinstance(value, str):
        return True
    pattern = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})"
    if not re.fullmatch(pattern, value):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


FORMATS = FormatChecker(formats=())
FORMATS.checks("date-time")(rfc3339)


def openapi_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(OPENAPI_FILE.read_text(encoding="utf-8"))
    return document


class OpenApi:
    """The document's operations, and a check of real answers against their schemas."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.paths = [
            (re.compile("^" + re.sub(r"\{[^}/]+\}", "([^/]+)", path) + "$"), path)
            for path in document["paths"]
        ]
        self.checked: set[tuple[str, int]] = set()  # (operationId, status) seen and valid

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any]] | None:
        """The documented operation a request is for: (path template, operation)."""
        for pattern, template in self.paths:
            if pattern.match(path):
                operation = self.document["paths"][template].get(method.lower())
                return (template, operation) if operation is not None else None
        return None

    def schema(self, schema: Mapping[str, Any]) -> dict[str, Any]:
        """A schema of the document, standalone: ``#/components/...`` resolves inside it."""
        return {**schema, "components": self.document["components"]}

    def validate(self, schema: Mapping[str, Any], body: Any) -> None:
        Draft202012Validator(self.schema(schema), format_checker=FORMATS).validate(body)

    def check(self, method: str, path: str, status: int, body: Any, headers: Headers) -> None:
        found = self.operation(method, path)
        if found is None or status == 405:
            return  # no such operation: an unknown route (404) or method (405, with Allow)
        template, operation = found
        responses = operation["responses"]
        assert str(status) in responses, (
            f"{method} {template} answered {status}, which the document does not describe: {body}"
        )
        response = responses[str(status)]
        self.validate(response["content"]["application/json"]["schema"], body)
        for name, header in (response.get("headers") or {}).items():
            value = headers.get(name)
            assert value is not None, f"{method} {template} {status} without {name}"
            self.validate(header["schema"], int(value))
        self.checked.add((operation["operationId"], status))


# --- the client ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    headers: Headers

    @property
    def error(self) -> tuple[int, str]:
        return self.status, str(self.body["error"])

    @property
    def parameter(self) -> str | None:
        value = self.body.get("parameter")
        return None if value is None else str(value)


@dataclass
class ApiClient:
    """The function's test client; every answer is checked against the OpenAPI document."""

    client: FlaskClient
    spec: OpenApi
    answers: list[tuple[str, str, Answer]] = field(default_factory=list)

    def call(
        self,
        method: str,
        path: str,
        bearer: str | None = None,
        *,
        json_body: Any = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        query: Mapping[str, str] | None = None,
    ) -> Answer:
        sent = dict(headers or {})
        if bearer is not None:
            sent["Authorization"] = f"Bearer {bearer}"
        if json_body is not None:
            data = json.dumps(json_body).encode()
            sent.setdefault("Content-Type", "application/json")
        response = self.client.open(
            path, method=method, data=data, headers=sent, query_string=dict(query or {})
        )
        body = response.get_json(silent=True)
        assert body is not None, f"{method} {path}: not JSON: {response.data!r}"
        answer = Answer(response.status_code, body, response.headers)
        self.spec.check(method, path, answer.status, body, response.headers)
        self.answers.append((method, path, answer))
        return answer

    def get(self, path: str, bearer: str | None = None, **query: str) -> Answer:
        return self.call("GET", path, bearer, query=query)

    def post(
        self,
        path: str,
        bearer: str | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        return self.call("POST", path, bearer, json_body=body, headers=headers)

    def delete(self, path: str, bearer: str | None = None) -> Answer:
        return self.call("DELETE", path, bearer)

    def pages(self, path: str, bearer: str, **query: str) -> Iterator[Answer]:
        """Every page of a list, following ``next_cursor``."""
        cursor = None
        while True:
            page = self.get(path, bearer, **query, **({"cursor": cursor} if cursor else {}))
            assert page.status == 200, page.body
            yield page
            cursor = page.body["next_cursor"]
            if cursor is None:
                return


def conversation_path(conversation: str, action: str = "") -> str:
    return f"{CONVERSATIONS}/{conversation}" + (f"/{action}" if action else "")


def user_path(channel: str, user_id: str, export: bool = False) -> str:
    return f"{PREFIX}/users/{channel}/{user_id}" + ("/export" if export else "")


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(name="api_env")
def api_env_fixture(
    function_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    mongodb_server: str,
    kafka_brokers: str,
    topic_prefix: str,
    analytics_db: str,
) -> Iterator[dict[str, str]]:
    """The integration env (Kafka, Redis, a topic prefix of its own) plus a database of the
    test's own, the API's secret and the analytics store (PostgreSQL, emptied)."""
    env = {
        "MONGODB_URI": mongodb_server,
        "MONGODB_DATABASE": f"test_api_{uuid.uuid4().hex[:12]}",
        "API_JWT_SECRET": SECRET,
        "API_RATE_LIMIT_PER_MIN": "1000",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("API_JWKS_URL", raising=False)
    ensure_topics(kafka_brokers.split(","), [f"{topic_prefix}.messages.outbound"])
    clear_all()
    yield {**function_env, **env}
    from shared.analytics.db import get_pool

    if get_pool.cache_info().currsize:  # the API's pool (reports, erase): closed, not dropped
        get_pool().close()
    clear_all()


@pytest.fixture(name="db")
def db_fixture(api_env: dict[str, str]) -> Iterator[Any]:
    """The test's database, as the function under test sees it."""
    from pymongo import MongoClient

    client: Any = MongoClient(api_env["MONGODB_URI"], tz_aware=True)
    try:
        yield client[api_env["MONGODB_DATABASE"]]
        client.drop_database(api_env["MONGODB_DATABASE"])
    finally:
        client.close()


# --- seeding ------------------------------------------------------------------------------------


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


ACCOUNTS = {
    "whatsapp": "106540352242922",
    "slack": "T0001ACME",
    "telegram": "7000000001",
    "webchat": "site-acme",
    "messenger": "1000000001",
}


@dataclass
class Seeder:
    """Conversations and messages written the way the message processor writes them."""

    db: Any

    def inbound(
        self,
        at: datetime,
        *,
        tenant: str = ACME,
        channel: str = "telegram",
        chat_id: str = "555001",
        user_id: str | None = None,
        name: str | None = "Ann",
        account_id: str | None = None,
        text: str = "hello",
        attachments: tuple[MediaRef, ...] = (),
    ) -> InboundMessage:
        message = inbound_message(
            tenant_id=tenant,
            channel=Channel(channel),
            account_id=account_id or ACCOUNTS[channel],
            chat_id=chat_id,
            platform_message_id=f"pm-{uuid.uuid4().hex}",
            sender=Sender(user_id or chat_id, name),
            timestamp=iso(at),
            text=text,
            attachments=attachments,
        )
        result = MessageStore(self.db).insert_inbound(event_id(message), message, at)
        assert result.created
        ConversationStore(self.db).record_inbound(message, at)
        return message

    def outbound(
        self,
        to: InboundMessage,
        at: datetime,
        *,
        text: str = "Hi, how can I help?",
        author: Author = Author.BOT,
    ) -> OutboundMessage:
        message = outbound_message(
            tenant_id=to.tenant_id,
            channel=to.channel,
            account_id=to.account_id,
            chat_id=to.chat_id,
            message_id=str(uuid.uuid4()),
            text=text,
            author=author,
            created_at=iso(at),
            in_reply_to=to.platform_message_id,
            in_reply_to_at=to.timestamp,
        )
        created = MessageStore(self.db).insert_outbound([message], at)
        ConversationStore(self.db).record_outbound(
            message.tenant_id, message.conversation_key, created, at
        )
        return message


def event_id(message: InboundMessage) -> str:
    return str(events.message_received(message)["id"])
