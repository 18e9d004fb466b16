"""The conversations API fuzzed from its OpenAPI document with schemathesis (docs/reliability.md).

conversations-api runs as functions-framework loads it, on real servers (MongoDB-protocol,
Redis, Kafka-protocol broker, PostgreSQL), with conversations of two tenants stored. The schema
is read from the function itself (``GET /api/v2/openapi.json``); for every operation schemathesis
generates requests that follow the document (positive) and requests that break it (negative:
wrong types, missing or extra parameters, bodies that are no object), each sent with a token
drawn from valid and invalid ones (agent, admin, the other tenant's admin, expired, wrong key,
``alg: none``, no role, none at all). Every answer must be:

- no 5xx (``not_a_server_error``),
- a status the document lists for the operation, with its content type, headers and a body
  that matches the documented schema (schemathesis' conformance checks).

Cases: per operation and mode, an eighth of the hypothesis profile's ``max_examples`` (25 in
``make test``; HYPOTHESIS_PROFILE=reliability in ``make test-reliability``: 187).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
import schemathesis
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from shared.api import paging
from shared.caching import clear_all
from tests.integration.api_support import (  # noqa: F401
    ACME,
    GLOBEX,
    OPENAPI_PATH,
    SECRET,
    Seeder,
    api_env_fixture,
    db_fixture,
    token,
)

pytestmark = [pytest.mark.integration, pytest.mark.fuzz]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
T0 = datetime(2025, 6, 1, 10, 0, tzinfo=UTC)


def examples() -> int:
    """Per operation and mode: an eighth of the loaded profile's max_examples (at least 10)."""
    return max(10, settings().max_examples // 8)


def bearers() -> dict[str, str | None]:
    now = int(time.time())
    base = {"iss": "chat-service", "aud": "chat-service-api", "iat": now, "exp": now + 3600}
    return {
        "agent": token(ACME, "agent"),
        "admin": token(ACME, "admin"),
        "other tenant's admin": token(GLOBEX, "admin"),
        "expired": token(ACME, "admin", now=time.time() - 7200, ttl_s=3600),
        "wrong key": token(ACME, "admin", secret="a-different-secret-of-enough-length-000"),
        "alg none": jwt.encode({**base, "sub": "x", "tid": ACME, "roles": ["admin"]}, "", "none"),
        "no role": jwt.encode({**base, "sub": "x", "tid": ACME, "roles": []}, SECRET, "HS256"),
        "garbage": "not-a-token",
        "none": None,
    }


@pytest.fixture
def seeded(db: Any) -> dict[str, list[Any]]:
    """Conversations of both tenants (open, handed off, closed), ids the generator may use."""
    seed = Seeder(db)
    ids: list[str] = []
    users: list[tuple[str, str]] = []
    for n, (tenant, channel) in enumerate(
        [(ACME, "telegram"), (ACME, "whatsapp"), (ACME, "webchat"), (GLOBEX, "telegram")]
    ):
        account = "7000000002" if tenant == GLOBEX else None
        message = seed.inbound(
            T0 + timedelta(minutes=n),
            tenant=tenant,
            channel=channel,
            chat_id=f"55500{n}",
            account_id=account,
        )
        seed.outbound(message, T0 + timedelta(minutes=n, seconds=1))
        ids.append(paging.conversation_id(message.conversation_key))
        users.append((channel, message.sender.id))
    db.conversations.update_one({"chat_id": "555001"}, {"$set": {"state": "handoff"}})
    db.conversations.update_one({"chat_id": "555002"}, {"$set": {"state": "closed"}})
    return {"ids": ids, "users": users}


@pytest.fixture
def app(
    make_client: Callable[[str], FlaskClient],
    api_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    monkeypatch.setenv("API_RATE_LIMIT_PER_MIN", "1000000")  # the budget is not under test here
    clear_all()
    return make_client("conversations-api").application


def test_every_operation_answers_as_documented_whatever_is_sent(
    app: Any, seeded: dict[str, list[Any]]
) -> None:
    schema = schemathesis.openapi.from_wsgi(OPENAPI_PATH, app)
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    # Every route of shared/api/service.py (schemathesis leaves out the document's own path).
    assert len(operations) == 11, "\n".join(o.label for o in operations)
    tokens = bearers()
    seen: dict[str, set[int]] = {}

    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            exercise(operation, mode, tokens, seeded, seen.setdefault(operation.label, set()))

    # The generator got past authentication and found real documents, not only refusals.
    assert any(200 in statuses for statuses in seen.values()), seen
    assert all(401 in statuses for label, statuses in seen.items() if "openapi" not in label)


def exercise(
    operation: Any,
    mode: GenerationMode,
    tokens: dict[str, str | None],
    seeded: dict[str, list[Any]],
    statuses: set[int],
) -> None:
    """Generated requests of one operation and mode, each sent and checked."""

    @settings(
        max_examples=examples(),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(
        case=operation.as_strategy(generation_mode=mode),
        # The valid tokens of the tenant whose documents are stored, more often.
        bearer=st.sampled_from(["agent", "admin", *sorted(tokens)]),
        known=st.sampled_from([None, *seeded["ids"]]),
        user=st.sampled_from([None, *seeded["users"]]),
    )
    def run(case: Any, bearer: str, known: str | None, user: tuple[str, str] | None) -> None:
        # Sometimes a conversation or user that exists, so real documents are answered.
        if known is not None and "conversation" in (case.path_parameters or {}):
            case.path_parameters["conversation"] = known
        if user is not None and "user_id" in (case.path_parameters or {}):
            case.path_parameters["channel"], case.path_parameters["user_id"] = user
        headers = dict(case.headers or {})
        headers.pop("Authorization", None)
        if tokens[bearer] is not None:
            headers["Authorization"] = f"Bearer {tokens[bearer]}"
        case.headers = headers
        response = case.call()
        case.validate_response(response, checks=CHECKS)
        statuses.add(response.status_code)

    run()
