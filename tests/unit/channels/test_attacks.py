"""Attacks on the webhooks and on outbound calls (docs/reliability.md, "Attacks").

Covered elsewhere, not repeated here: JWT ``alg: none``, HS/RS confusion, expiry and audience
(tests/unit/api/test_auth.py); the handlers' sender identity (tests/integration/
test_sender_identity.py); one HMAC per unauthenticated request (test_secret_candidates.py);
Slack's replay window for a stale timestamp (test_slack.py); cross-tenant reads and writes on
every API route (tests/integration/test_conversations_api.py); MongoDB operator injection
through the API (tests/integration/test_injection.py).

Here: a captured request replayed with a fresh timestamp or under another tenant's key;
signatures, secret tokens, verify tokens and JWTs decided by a constant-time compare; CR/LF in
anything of ours that could reach the HTTP headers of a channel API call; MongoDB operators in
the web chat's own fields.
"""

from __future__ import annotations

import copy
import hmac
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from shared import tracing
from shared.channels import messenger, slack, telegram, webchat, whatsapp
from shared.channels.webchat import tokens as webchat_tokens
from shared.clock import frozen
from shared.errors import BadRequest, ChatServiceError, Unauthorized
from shared.ingress import Ingress
from shared.models import Channel, QuickReply
from shared.outbound.render import find_account, render
from shared.outbound.send import ChannelApi
from shared.settings import Settings
from shared.tenants import TenantDirectory
from shared.web import WebRequest, WebResponse, error_response
from tests.builders import outbound_message
from tests.conftest import DATA, TENANTS, payload, payload_bytes
from tests.unit.fakes import MemoryDedupe, RecordingProducer

NOW = 1_749_416_400


def directory() -> TenantDirectory:
    accounts = json.loads((DATA / "messenger" / "accounts.json").read_text())
    document = copy.deepcopy(TENANTS)
    for tenant in document["tenants"]:
        tenant["messenger"] = accounts[tenant["id"]]
    return TenantDirectory.from_dict(document)


@pytest.fixture
def producer() -> RecordingProducer:
    return RecordingProducer()


@pytest.fixture
def ingress(producer: RecordingProducer) -> Ingress:
    return Ingress(Settings(), directory(), producer, MemoryDedupe(), clock=frozen(NOW))


def respond(
    handler: Callable[[WebRequest, Ingress], WebResponse], request: WebRequest, ingress: Ingress
) -> WebResponse:
    try:
        return handler(request, ingress)
    except ChatServiceError as exc:
        return error_response(exc)


# --- replay ---------------------------------------------------------------------------------------


def slack_request(body: bytes, timestamp: int, signature: str) -> WebRequest:
    headers = {slack.TIMESTAMP_HEADER: str(timestamp), slack.SIGNATURE_HEADER: signature}
    return WebRequest("POST", "/", headers, body)


def test_a_captured_slack_request_replayed_with_a_fresh_timestamp_is_refused(
    ingress: Ingress, producer: RecordingProducer
) -> None:
    # Captured an hour ago: its timestamp is out of the window, so the attacker puts a fresh
    # one in the header. The signature covers the timestamp: it no longer matches.
    body = payload_bytes("slack", "message_im.json")
    captured_at = NOW - 3600
    signature = slack.sign("slack-signing-acme", str(captured_at), body)

    stale = respond(slack.handle, slack_request(body, captured_at, signature), ingress)
    fresh = respond(slack.handle, slack_request(body, NOW, signature), ingress)

    assert stale.body["error"] == "stale_timestamp"
    assert (fresh.status, fresh.body["error"]) == (401, "bad_signature")
    assert producer.published == []


def test_a_slack_request_replayed_within_the_window_publishes_nothing_twice(
    ingress: Ingress, producer: RecordingProducer
) -> None:
    body = payload_bytes("slack", "message_im.json")
    request = slack_request(body, NOW - 10, slack.sign("slack-signing-acme", str(NOW - 10), body))

    answers = [respond(slack.handle, request, ingress).body for _ in range(3)]

    assert [a["published"] for a in answers] == [1, 0, 0]
    assert len(producer.published) == 1


@pytest.mark.parametrize(
    ("module", "channel", "name", "other_secret"),
    [
        (whatsapp, "whatsapp", "text_message.json", "wa-app-secret-globex"),
        (messenger, "messenger", "text.json", "ms-app-secret-globex"),
    ],
)
def test_a_body_re_signed_with_another_tenants_app_secret_is_refused(
    ingress: Ingress,
    producer: RecordingProducer,
    module: Any,
    channel: str,
    name: str,
    other_secret: str,
) -> None:
    # globex's app secret is real and configured, but the body names acme's number (Page):
    # only acme's app may speak for it.
    body = payload_bytes(channel, name)
    request = WebRequest(
        "POST", "/", {"X-Hub-Signature-256": module.sign(other_secret, body)}, body
    )

    answer = respond(module.handle, request, ingress)

    assert (answer.status, answer.body["error"]) == (401, "bad_signature")
    assert producer.published == []


def test_a_slack_body_re_signed_with_another_tenants_signing_secret_is_refused(
    ingress: Ingress, producer: RecordingProducer
) -> None:
    body = payload_bytes("slack", "message_im.json")
    signature = slack.sign("slack-signing-globex", str(NOW), body)

    answer = respond(slack.handle, slack_request(body, NOW, signature), ingress)

    assert (answer.status, answer.body["error"]) == (401, "bad_signature")
    assert producer.published == []


def test_a_telegram_update_under_another_bots_secret_is_refused(
    ingress: Ingress, producer: RecordingProducer
) -> None:
    body = payload_bytes("telegram", "text_private.json")
    for path, secret in [
        ("/webhook/7000000001", "tg-secret-globex"),  # acme's bot, globex's secret
        ("/webhook/7000000002", "tg-secret-acme-0123"),  # globex's bot, acme's secret
    ]:
        headers = {telegram.SECRET_HEADER: secret}
        answer = respond(telegram.handle, WebRequest("POST", path, headers, body), ingress)
        assert (answer.status, answer.body["error"]) == (401, "bad_secret_token")
    assert producer.published == []


# --- timing-safe compares -------------------------------------------------------------------------


class CompareDigest:
    """hmac.compare_digest, recorded, and with a verdict the test may force."""

    def __init__(self, verdict: bool | None = None) -> None:
        self.calls: list[tuple[Any, Any]] = []
        self.verdict = verdict
        self.original = hmac.compare_digest

    def __call__(self, a: Any, b: Any) -> bool:
        self.calls.append((a, b))
        return self.original(a, b) if self.verdict is None else self.verdict


@pytest.fixture
def compare(monkeypatch: pytest.MonkeyPatch) -> Iterator[CompareDigest]:
    spy = CompareDigest()
    monkeypatch.setattr(hmac, "compare_digest", spy)
    yield spy


def forged_requests() -> dict[str, tuple[Callable[[WebRequest, Ingress], WebResponse], WebRequest]]:
    """One request per secret the webhooks check, each with a wrong secret or signature."""
    wa = payload_bytes("whatsapp", "text_message.json")
    ms = payload_bytes("messenger", "text.json")
    sl = payload_bytes("slack", "message_im.json")
    tg = payload_bytes("telegram", "text_private.json")
    wrong = "sha256=" + "0" * 64
    handshake = {"hub.mode": "subscribe", "hub.challenge": "42", "hub.verify_token": "guess-123"}
    return {
        "whatsapp signature": (
            whatsapp.handle,
            WebRequest("POST", "/", {"X-Hub-Signature-256": wrong}, wa),
        ),
        "messenger signature": (
            messenger.handle,
            WebRequest("POST", "/", {"X-Hub-Signature-256": wrong}, ms),
        ),
        "slack signature": (slack.handle, slack_request(sl, NOW, "v0=" + "0" * 64)),
        "telegram secret token": (
            telegram.handle,
            WebRequest("POST", "/webhook/7000000001", {telegram.SECRET_HEADER: "guess"}, tg),
        ),
        "whatsapp verify token": (
            whatsapp.handle,
            WebRequest("GET", "/", {}, b"", query=handshake),
        ),
        "messenger verify token": (
            messenger.handle,
            WebRequest("GET", "/", {}, b"", query=handshake),
        ),
    }


@pytest.mark.parametrize("check", sorted(forged_requests()))
def test_every_webhook_secret_is_decided_by_a_constant_time_compare(
    ingress: Ingress, compare: CompareDigest, check: str
) -> None:
    handler, request = forged_requests()[check]

    refused = respond(handler, request, ingress)
    compare.verdict = True  # were the decision anything but compare_digest, this changes nothing
    accepted = respond(handler, request, ingress)

    assert refused.status in (401, 403)
    assert compare.calls, f"{check}: compare_digest was never called"
    assert accepted.status == 200, f"{check}: decided without compare_digest: {accepted.body}"


def test_a_visitor_token_is_checked_by_a_constant_time_compare(
    ingress: Ingress, compare: CompareDigest
) -> None:
    account = ingress.tenants.account(Channel("webchat"), "site-acme")
    assert account is not None
    token = webchat_tokens.issue(account, now=NOW, ttl_s=600).token
    header, claims, _ = token.split(".")
    forged = f"{header}.{claims}.{'A' * 43}"

    with pytest.raises(Unauthorized):
        webchat_tokens.verify(forged, ingress.tenants, now=NOW + 1)
    assert compare.calls  # pyjwt's HS256 verification
    compare.verdict = True
    assert webchat_tokens.verify(forged, ingress.tenants, now=NOW + 1).site_key == "site-acme"


def test_an_api_token_is_checked_by_a_constant_time_compare(compare: CompareDigest) -> None:
    from shared.api.auth import TokenVerifier, mint

    secret = "unit-test-api-secret-0123456789-abcdef"
    settings = Settings(api_jwt_secret=secret)
    now = time.time()
    token = mint(settings, tenant_id="acme", subject="a", roles=("agent",), now=now, ttl_s=600)
    forged = token.rsplit(".", 1)[0] + "." + "A" * 43
    verifier = TokenVerifier(settings)

    with pytest.raises(Unauthorized):
        verifier.verify(forged)
    assert compare.calls
    compare.verdict = True
    assert verifier.verify(forged).tenant_id == "acme"


# --- header injection into outbound calls ---------------------------------------------------------

CRLF = "\r\nX-Injected: 1\r\n\r\n"
SENDERS = {
    "whatsapp": "106540352242922",
    "slack": "T0001ACME",
    "telegram": "7000000001",
    "messenger": "106540352243001",
}


@pytest.mark.parametrize("channel", sorted(SENDERS))
def test_cr_lf_in_a_reply_never_reaches_the_headers_of_the_channel_api_call(
    channel: str,
) -> None:
    # Everything of a reply that came from a user or an agent: text, quick replies, the chat
    # and thread it answers. Only the JSON body may carry it.
    message = outbound_message(
        tenant_id="acme",
        channel=Channel(channel),
        account_id=SENDERS[channel],
        chat_id="555" + CRLF,
        thread_id="1749416383.000200" + CRLF,
        text="hello" + CRLF,
        quick_replies=(QuickReply(id="yes" + CRLF, title="Yes" + CRLF),),
    )
    tenants = directory()
    now = datetime.fromtimestamp(NOW, UTC)
    request = render(
        message, find_account(message, tenants), Settings(), last_inbound_at=now, now=now
    )
    sent: list[httpx.Request] = []

    def transport(req: httpx.Request) -> httpx.Response:
        sent.append(req)
        return httpx.Response(500)

    with tracing.span("reply", "00-" + "1" * 32 + "-" + "2" * 16 + "-01" + CRLF):
        api = ChannelApi(5.0, httpx.Client(transport=httpx.MockTransport(transport)))
        with pytest.raises(ChatServiceError):
            api.send(request)

    [call] = sent
    assert "\r" not in call.url.raw_path.decode() and "\n" not in call.url.raw_path.decode()
    for name, value in call.headers.raw:
        assert b"\r" not in name + value and b"\n" not in name + value, (name, value)
    assert b"X-Injected" not in b"".join(n + v for n, v in call.headers.raw)
    assert set(call.headers) <= {
        "host",
        "accept",
        "accept-encoding",
        "connection",
        "user-agent",
        "content-length",
        "content-type",
        "authorization",
        "traceparent",
    }
    assert tracing.parse(call.headers.get("traceparent")) is not None  # a fresh, valid one
    assert json.loads(call.content)  # the text travels in the JSON body, escaped


# --- MongoDB operators in the web chat's fields ---------------------------------------------------

OPERATORS: list[Any] = [{"$ne": None}, {"$gt": ""}, {"$where": "1"}, ["$ne"], "$where", "$ne"]


@pytest.mark.parametrize("value", OPERATORS, ids=[json.dumps(v) for v in OPERATORS])
def test_an_operator_as_a_web_chat_client_message_id_is_refused(
    ingress: Ingress, producer: RecordingProducer, value: Any
) -> None:
    started = webchat.handle(
        WebRequest("POST", "/sessions", {}, b'{"site_key": "site-acme"}'), ingress
    )
    headers = {"Authorization": f"Bearer {started.body['token']}"}
    body = json.dumps({"client_message_id": value, "text": "hi"}).encode()

    answer = respond(webchat.handle, WebRequest("POST", "/messages", headers, body), ingress)

    assert answer.status == 400
    assert producer.published == []


@pytest.mark.parametrize("value", OPERATORS, ids=[json.dumps(v) for v in OPERATORS])
def test_an_operator_as_a_web_chat_site_key_or_name_is_refused_or_literal(
    ingress: Ingress, value: Any
) -> None:
    for document in ({"site_key": value}, {"site_key": "site-acme", "name": value}):
        body = json.dumps(document).encode()
        answer = respond(webchat.handle, WebRequest("POST", "/sessions", {}, body), ingress)
        if isinstance(value, str) and "name" in document:
            assert answer.status == 201  # a name is text, kept as the literal it is
            claims = webchat_tokens.verify(answer.body["token"], ingress.tenants, now=NOW)
            assert claims.name == value
        else:
            assert answer.status in (400, 403), answer.body


def test_an_operator_in_a_webhook_id_field_is_a_400_never_a_query(ingress: Ingress) -> None:
    # Every id a parser reads is typed: an object where an id belongs is a named 400.
    update = payload("whatsapp", "text_message.json")
    update["entry"][0]["changes"][0]["value"]["messages"][0]["from"] = {"$ne": None}
    body = json.dumps(update).encode()
    headers = {"X-Hub-Signature-256": whatsapp.sign("wa-app-secret-acme", body)}

    with pytest.raises(BadRequest) as info:
        whatsapp.handle(WebRequest("POST", "/", headers, body), ingress)
    assert info.value.code == "invalid_field"
