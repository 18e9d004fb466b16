"""Every webhook endpoint, fuzzed with valid signatures (docs/reliability.md, "Fuzzing").

Each test signs generated and mutated bodies (tests/fuzzing.py) exactly as the platform would,
so they pass verification and reach the parser, and holds the handler to the rule of
:func:`tests.fuzzing.answer`: a 2xx, or a 4xx ChatServiceError with nothing published; never
another exception, never a 5xx, never half a request on the broker. The broker fake encodes
every event as the real producer does, so an event that could not be produced fails here.

Cases per test: the hypothesis profile's ``max_examples`` (tests/conftest.py: "ci" in
``make test``, "reliability" in ``make test-reliability``).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.channels import messenger, slack, telegram, webchat, whatsapp
from shared.clock import frozen
from shared.ingress import Ingress
from shared.settings import Settings
from shared.tenants import TenantDirectory
from shared.web import WebRequest
from tests.conftest import DATA, TENANTS
from tests.fuzzing import EncodingProducer, answer, bodies, load, payload_names
from tests.unit.fakes import MemoryDedupe

pytestmark = pytest.mark.fuzz

NOW = 1_749_416_400  # a minute after the saved payloads' time


def directory() -> TenantDirectory:
    """The shared test tenants, each with its Messenger Page too."""
    accounts = json.loads((DATA / "messenger" / "accounts.json").read_text())
    document = copy.deepcopy(TENANTS)
    for tenant in document["tenants"]:
        tenant["messenger"] = accounts[tenant["id"]]
    return TenantDirectory.from_dict(document)


TENANT_DIRECTORY = directory()


def ingress() -> Ingress:
    """A fresh broker and dedupe per example: each example is one request on its own."""
    return Ingress(
        Settings(), TENANT_DIRECTORY, EncodingProducer(), MemoryDedupe(), clock=frozen(NOW)
    )


def documents(channel: str, *exclude: str) -> list[Any]:
    return [load(channel, name)[0] for name in payload_names(channel, exclude)]


# Which app signs: mostly the payloads' own (acme), so the parser is reached; sometimes the
# other tenant's, which must be refused for an acme account (or accepted for its own).
secrets = st.sampled_from(["acme", "acme", "acme", "globex"])


@given(body=bodies(documents("whatsapp")), signer=secrets)
def test_whatsapp_webhook(body: bytes, signer: str) -> None:
    secret = {"acme": "wa-app-secret-acme", "globex": "wa-app-secret-globex"}[signer]
    headers = {"X-Hub-Signature-256": whatsapp.sign(secret, body)}

    answer(whatsapp.handle, WebRequest("POST", "/", headers, body), ingress())


@given(body=bodies(documents("messenger")), signer=secrets)
def test_messenger_webhook(body: bytes, signer: str) -> None:
    secret = {"acme": "ms-app-secret-acme", "globex": "ms-app-secret-globex"}[signer]
    headers = {"X-Hub-Signature-256": messenger.sign(secret, body)}

    answer(messenger.handle, WebRequest("POST", "/webhook", headers, body), ingress())


@given(
    body=bodies(documents("slack")),
    signer=secrets,
    skew=st.sampled_from([0, 0, 0, 0, 0, 0, -299, 299, 301, -301]),
    retry=st.sampled_from([None, "1", "x" * 500]),
)
def test_slack_webhook(body: bytes, signer: str, skew: int, retry: str | None) -> None:
    secret = {"acme": "slack-signing-acme", "globex": "slack-signing-globex"}[signer]
    timestamp = str(NOW + skew)
    headers = {
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": slack.sign(secret, timestamp, body),
    }
    if retry is not None:
        headers["X-Slack-Retry-Num"] = retry

    outcome = answer(slack.handle, WebRequest("POST", "/", headers, body), ingress())

    if abs(skew) > Settings().slack_max_clock_skew_s:
        assert outcome.response.status == 401  # signed, but outside the replay window


@given(
    body=bodies(documents("telegram")),
    bot=st.sampled_from(["7000000001", "7000000001", "7000000002"]),
)
def test_telegram_webhook(body: bytes, bot: str) -> None:
    secret = {"7000000001": "tg-secret-acme-0123", "7000000002": "tg-secret-globex"}[bot]
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret}

    answer(telegram.handle, WebRequest("POST", f"/webhook/{bot}", headers, body), ingress())


@given(
    body=bodies(documents("webchat", "text_message.json", "media_message.json")),
    origin=st.sampled_from([None, "https://acme.example", "https://evil.example", "null"]),
)
def test_webchat_sessions(body: bytes, origin: str | None) -> None:
    headers = {} if origin is None else {"Origin": origin}

    outcome = answer(webchat.handle, WebRequest("POST", "/sessions", headers, body), ingress())

    assert outcome.published == []  # a session publishes nothing


def _visitor_token(ingress: Ingress) -> str:
    started = webchat.handle(
        WebRequest("POST", "/sessions", {}, b'{"site_key": "site-acme"}'), ingress
    )
    token: str = started.body["token"]
    return token


@given(body=bodies(documents("webchat", "session.json")))
def test_webchat_messages(body: bytes) -> None:
    fresh = ingress()
    headers = {"Authorization": f"Bearer {_visitor_token(fresh)}"}

    outcome = answer(webchat.handle, WebRequest("POST", "/messages", headers, body), fresh)

    if outcome.response.status == 202:
        assert len(outcome.published) == 1  # the message, once
