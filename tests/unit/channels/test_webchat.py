"""Web chat: origins and CORS, body validation, and the handler with in-process fakes."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from shared.channels import webchat
from shared.channels.webchat import cors
from shared.channels.webchat import tokens as webchat_tokens
from shared.clock import frozen
from shared.errors import BadRequest, ChatServiceError, Forbidden, Unauthorized
from shared.events import MESSAGE_RECEIVED
from shared.ingress import Ingress
from shared.models import Channel, MediaRef, MessageKind, Sender
from shared.ratelimit import Decision, Scope
from shared.settings import Settings
from shared.tenants import TenantDirectory
from shared.web import WebRequest, WebResponse, error_response
from tests.conftest import TENANTS, payload, payload_bytes
from tests.unit.fakes import MemoryDedupe, RecordingProducer

NOW = 1_750_000_000  # 2025-06-15T15:06:40Z
ACME_ORIGIN = "https://acme.example"
ALLOWED = {
    "Access-Control-Allow-Origin": ACME_ORIGIN,
    "Access-Control-Expose-Headers": "Retry-After",
    "Vary": "Origin",
}


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, at: float) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


@pytest.fixture
def producer() -> RecordingProducer:
    return RecordingProducer()


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def ingress(producer: RecordingProducer, clock: Clock) -> Ingress:
    return Ingress(
        settings=Settings(),
        tenants=TenantDirectory.from_dict(TENANTS),
        producer=producer,
        dedupe=MemoryDedupe(),
        clock=clock,
    )


def respond(request: WebRequest, ingress: Ingress) -> WebResponse:
    """What the web adapter would answer: errors become their status and JSON body."""
    try:
        return webchat.handle(request, ingress)
    except ChatServiceError as exc:
        return error_response(exc)


def post(path: str, body: bytes | dict[str, Any], **headers: str) -> WebRequest:
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    return WebRequest("POST", path, {k.replace("_", "-"): v for k, v in headers.items()}, raw)


def start(ingress: Ingress, **fields: Any) -> dict[str, Any]:
    response = respond(post("/sessions", {"site_key": "site-acme", **fields}), ingress)
    assert response.status == 201, response.body
    body: dict[str, Any] = response.body
    return body


def send(ingress: Ingress, token: str, body: bytes | dict[str, Any], **headers: str) -> WebResponse:
    return respond(post("/messages", body, Authorization=f"Bearer {token}", **headers), ingress)


def test_session_issues_a_token_for_a_new_conversation(ingress: Ingress) -> None:
    response = respond(post("/sessions", payload_bytes("webchat", "session.json")), ingress)

    assert response.status == 201
    body = response.body
    assert set(body) == {"token", "conversation_id", "visitor_id", "expires_at"}
    assert len(body["visitor_id"]) == len(body["conversation_id"]) == 32  # both the server's
    assert body["expires_at"] == "2025-06-15T15:36:40Z"  # NOW + webchat_token_ttl_s
    claims = webchat_tokens.verify(body["token"], ingress.tenants, now=NOW)
    assert (claims.conversation_id, claims.name) == (body["conversation_id"], "Ada Lovelace")
    assert response.headers == {}  # no Origin: not a browser, no CORS headers


def test_a_client_chosen_visitor_id_is_refused(ingress: Ingress) -> None:
    # Whoever could choose the id could speak as another visitor, or mint user budgets.
    response = respond(post("/sessions", {"site_key": "site-acme", "visitor_id": "v-1"}), ingress)

    assert (response.status, response.body["error"]) == (400, "invalid_field")
    assert "/sessions/resume" in response.body["message"]


def test_resume_keeps_the_visitor_and_the_conversation(ingress: Ingress, clock: Clock) -> None:
    session = start(ingress, name="Ada")
    clock.at = NOW + 600

    response = respond(
        post("/sessions/resume", b"", Authorization=f"Bearer {session['token']}"), ingress
    )

    assert response.status == 200
    resumed = response.body
    assert (resumed["visitor_id"], resumed["conversation_id"]) == (
        session["visitor_id"],
        session["conversation_id"],
    )
    assert resumed["token"] != session["token"]
    assert resumed["expires_at"] == "2025-06-15T15:46:40Z"  # 600 s later than the first
    claims = webchat_tokens.verify(resumed["token"], ingress.tenants, now=NOW + 600)
    assert claims.name == "Ada"


def test_resume_needs_a_token_that_has_not_expired(ingress: Ingress, clock: Clock) -> None:
    token = start(ingress)["token"]
    clock.at = NOW + Settings().webchat_token_ttl_s

    expired = respond(post("/sessions/resume", b"", Authorization=f"Bearer {token}"), ingress)
    anonymous = respond(post("/sessions/resume", b""), ingress)

    assert (expired.status, expired.body["error"]) == (401, "token_expired")
    assert (anonymous.status, anonymous.body["error"]) == (401, "missing_token")


def test_message_becomes_one_inbound_event(ingress: Ingress, producer: RecordingProducer) -> None:
    session = start(ingress, name="Ada")

    response = send(ingress, session["token"], payload_bytes("webchat", "text_message.json"))

    assert (response.status, response.body) == (
        202,
        {
            "status": "accepted",
            "message_id": "msg-01J8Z3Q4W5",
            "conversation_id": session["conversation_id"],
            "duplicate": False,
        },
    )
    [(topic, event)] = producer.published
    assert topic == "chatbot.platform.messages.inbound"
    assert event["type"] == MESSAGE_RECEIVED
    assert event["source"] == "/chat-service/channels/webchat/site-acme"
    assert event["partitionkey"] == f"acme:webchat:site-acme/{session['conversation_id']}"
    assert event["time"] == "2025-06-15T15:06:40Z"
    data = event.data
    assert data["channel"] == "webchat"
    assert data["text"] == "Hi! Do you ship to Lisbon?"
    assert data["kind"] == "text"
    assert data["sender"] == {"id": session["visitor_id"], "name": "Ada", "is_bot": False}
    assert data["platform_message_id"] == f"{data['chat_id']}/msg-01J8Z3Q4W5"
    assert data["raw"] == {"client_message_id": "msg-01J8Z3Q4W5"}


class RefusingLimiter:
    """Refuses every message after the first ``allowed``; records what it was asked."""

    def __init__(self, allowed: int) -> None:
        self.allowed = allowed
        self.asked: list[tuple[str, str, str]] = []

    def check(self, conversation_key: str, site_key: str, client: str) -> Decision:
        self.asked.append((conversation_key, site_key, client))
        if len(self.asked) <= self.allowed:
            return Decision(allowed=True)
        return Decision(allowed=False, scope=Scope.CLIENT, retry_after_s=17)


def test_messages_over_the_limit_are_a_429_with_retry_after(
    ingress: Ingress, producer: RecordingProducer
) -> None:
    limiter = RefusingLimiter(allowed=1)
    ingress.message_limiter = limiter
    session = start(ingress)

    first = send(ingress, session["token"], {"client_message_id": "m1", "text": "hi"})
    second = send(ingress, session["token"], {"client_message_id": "m2", "text": "hi"})

    assert first.status == 202
    assert (second.status, second.body["error"]) == (429, "rate_limited")
    assert second.headers["Retry-After"] == "17"
    assert "client limit" in second.body["message"]
    assert len(producer.published) == 1
    key = f"acme:webchat:site-acme/{session['conversation_id']}"
    assert limiter.asked[0] == (key, "site-acme", "")


def test_resent_message_is_answered_as_duplicate(
    ingress: Ingress, producer: RecordingProducer
) -> None:
    token = start(ingress)["token"]
    body = payload("webchat", "text_message.json")

    answers = [send(ingress, token, body).body["duplicate"] for _ in range(3)]

    assert answers == [False, True, True]
    assert len(producer.published) == 1


def test_same_client_id_in_two_conversations_is_two_messages(
    ingress: Ingress, producer: RecordingProducer
) -> None:
    body = payload("webchat", "text_message.json")
    send(ingress, start(ingress)["token"], body)
    send(ingress, start(ingress)["token"], body)
    assert len(producer.published) == 2


def test_media_message(ingress: Ingress, producer: RecordingProducer) -> None:
    token = start(ingress)["token"]

    response = send(ingress, token, payload_bytes("webchat", "media_message.json"))

    assert response.status == 202
    data = producer.published[0][1].data
    assert data["kind"] == "media"
    assert data["text"] == "Here is the damaged box"
    url = "https://uploads.acme.example/v/7f3a/box.jpg"
    assert data["attachments"][0] | {"caption": None, "sha256": None} == {
        "type": "image",
        "id": url,
        "url": url,
        "mime_type": "image/jpeg",
        "filename": "box.jpg",
        "caption": None,
        "sha256": None,
    }


def test_to_inbound_takes_identity_from_the_token_only(ingress: Ingress) -> None:
    visitor = webchat_tokens.verify(start(ingress, name="Ada")["token"], ingress.tenants, now=NOW)
    message = webchat.parse_message({"client_message_id": "m1", "text": "hi", "tid": "globex"})

    inbound = webchat.to_inbound(message, visitor, NOW + 0.5)

    assert inbound.channel == Channel("webchat")
    assert (inbound.tenant_id, inbound.account_id) == ("acme", "site-acme")
    assert inbound.chat_id == visitor.conversation_id
    assert inbound.sender == Sender(id=visitor.visitor_id, name="Ada")
    assert inbound.kind is MessageKind.TEXT
    assert inbound.timestamp == "2025-06-15T15:06:40.500000Z"


def test_expired_token_is_refused_and_nothing_published(
    ingress: Ingress, producer: RecordingProducer, clock: Clock
) -> None:
    token = start(ingress)["token"]
    clock.at = NOW + Settings().webchat_token_ttl_s

    response = send(ingress, token, payload("webchat", "text_message.json"))

    assert (response.status, response.body["error"]) == (401, "token_expired")
    assert producer.published == []


def test_token_is_checked_before_the_body(ingress: Ingress) -> None:
    response = respond(post("/messages", b"{not json"), ingress)
    assert (response.status, response.body["error"]) == (401, "missing_token")
    response = send(ingress, "garbage", b"{not json")
    assert (response.status, response.body["error"]) == (401, "invalid_token")
    response = send(ingress, start(ingress)["token"], b"{not json")
    assert (response.status, response.body["error"]) == (400, "malformed_json")


def test_unknown_site_key(ingress: Ingress) -> None:
    response = respond(post("/sessions", {"site_key": "site-nobody"}), ingress)
    assert (response.status, response.body["error"]) == (403, "unknown_account")


def test_origin_is_checked_on_both_routes(ingress: Ingress, producer: RecordingProducer) -> None:
    good = respond(post("/sessions", {"site_key": "site-acme"}, Origin=ACME_ORIGIN), ingress)
    assert good.status == 201
    assert good.headers == ALLOWED
    bad = respond(
        post("/sessions", {"site_key": "site-acme"}, Origin="https://evil.example"), ingress
    )
    assert (bad.status, bad.body["error"]) == (403, "origin_not_allowed")

    token = good.body["token"]
    body = payload("webchat", "text_message.json")
    response = send(ingress, token, body, Origin="https://evil.example")
    assert (response.status, response.body["error"]) == (403, "origin_not_allowed")
    assert producer.published == []
    response = send(ingress, token, body, Origin=ACME_ORIGIN)
    assert response.headers["Access-Control-Allow-Origin"] == ACME_ORIGIN


def test_cors_headers(tenants: TenantDirectory) -> None:
    acme, globex = tenants.of("webchat")["site-acme"], tenants.of("webchat")["site-globex"]
    assert cors.cors_headers(None, acme) == {}
    assert cors.cors_headers(ACME_ORIGIN, acme) == ALLOWED
    # No allowed_origins configured: the site accepts any origin.
    assert cors.cors_headers("https://x.example", globex)["Access-Control-Allow-Origin"] == (
        "https://x.example"
    )
    for origin in ("https://acme.example.evil.com", "http://acme.example", "null", ""):
        with pytest.raises(Forbidden):
            cors.cors_headers(origin, acme)


def test_errors_are_readable_by_an_accepted_origin(tenants: TenantDirectory) -> None:
    expired = Unauthorized("token has expired", code="token_expired")
    assert webchat.error_cors_headers(expired, ACME_ORIGIN, tenants) == ALLOWED
    assert webchat.error_cors_headers(expired, None, tenants) == {}
    refused = Forbidden("no", code="origin_not_allowed")
    assert webchat.error_cors_headers(refused, ACME_ORIGIN, tenants) == {}
    only_acme = TenantDirectory.from_dict({"tenants": [TENANTS["tenants"][0]]})
    assert webchat.error_cors_headers(expired, "https://evil.example", only_acme) == {}


def test_configured_origins_are_normalised() -> None:
    directory = TenantDirectory.from_dict(
        {
            "tenants": [
                {
                    "id": "t",
                    "webchat": [
                        {
                            "site_key": "s",
                            "token_secret": "x" * 32,
                            "allowed_origins": ["HTTPS://A.example/"],
                        }
                    ],
                }
            ]
        }
    )
    account = directory.of("webchat")["s"]
    assert cors.cors_headers("https://a.example", account)
    with pytest.raises(Forbidden) as info:
        cors.preflight("https://b.example", directory, ("POST",))
    assert info.value.code == "origin_not_allowed"


@pytest.mark.parametrize(
    ("path", "methods"),
    [
        ("/sessions", "POST"),
        ("/sessions/resume", "POST"),
        ("/messages", "GET, POST"),
        ("/stream", "GET"),
    ],
)
def test_preflight(ingress: Ingress, path: str, methods: str) -> None:
    request = WebRequest("OPTIONS", path, {"Origin": ACME_ORIGIN}, b"")
    response = respond(request, ingress)
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == ACME_ORIGIN
    assert response.headers["Access-Control-Allow-Methods"] == methods
    assert response.headers["Allow"] == f"{methods}, OPTIONS"
    assert (
        response.headers["Access-Control-Allow-Headers"]
        == "Authorization, Content-Type, Last-Event-ID"
    )
    assert (
        "Access-Control-Allow-Origin"
        not in respond(WebRequest("OPTIONS", path, {}, b""), ingress).headers
    )


def test_routes_and_methods(ingress: Ingress) -> None:
    assert respond(WebRequest("GET", "/sessions", {}, b""), ingress).status == 405
    response = respond(WebRequest("PUT", "/messages", {}, b""), ingress)
    assert (response.status, response.headers["Allow"]) == (405, "GET, POST, OPTIONS")
    response = respond(post("/", {}), ingress)
    assert (response.status, response.headers["Allow"]) == (405, "GET, HEAD")
    assert respond(WebRequest("OPTIONS", "/widget.js", {}, b""), ingress).status == 405
    assert respond(post("/replies", {}), ingress).status == 404
    assert respond(WebRequest("GET", "/sessions/other", {}, b""), ingress).status == 404


IMAGE = {"type": "image", "url": "https://a.example/b.jpg"}


@pytest.mark.parametrize(
    ("body", "code", "named"),
    [
        ({"text": "hi"}, "missing_field", "client_message_id"),
        ({"client_message_id": "", "text": "hi"}, "missing_field", "client_message_id"),
        ({"client_message_id": 7, "text": "hi"}, "invalid_field", "client_message_id"),
        ({"client_message_id": "has space", "text": "hi"}, "invalid_field", "client_message_id"),
        ({"client_message_id": "m\n", "text": "hi"}, "invalid_field", "client_message_id"),
        ({"client_message_id": "m" * 129, "text": "hi"}, "invalid_field", "client_message_id"),
        ({"client_message_id": "m1"}, "missing_field", "text"),
        ({"client_message_id": "m1", "text": ""}, "missing_field", "text"),
        ({"client_message_id": "m1", "text": ["hi"]}, "invalid_field", "text"),
        ({"client_message_id": "m1", "text": "x" * 4097}, "invalid_field", "text"),
        (
            {"client_message_id": "m1", "text": "hi", "attachments": {}},
            "invalid_field",
            "attachments",
        ),
        (
            {"client_message_id": "m1", "attachments": [{"type": "image", "url": "http://a.b/c"}]},
            "invalid_field",
            "attachments[0].url",
        ),
        (
            {"client_message_id": "m1", "attachments": [{"type": "virus", "url": "https://a/b"}]},
            "invalid_field",
            "attachments[0].type",
        ),
        (
            {"client_message_id": "m1", "attachments": [{"type": "image"}]},
            "missing_field",
            "attachments[0].url",
        ),
        # Wrongly typed values: a 400 naming the field, never a 500 or a non-string downstream.
        ({"client_message_id": True, "text": "hi"}, "invalid_field", "client_message_id"),
        ({"client_message_id": ["m1"], "text": "hi"}, "invalid_field", "client_message_id"),
        ({"client_message_id": "m1", "text": {"body": "hi"}}, "invalid_field", "text"),
        ({"client_message_id": "m1", "text": 5}, "invalid_field", "text"),
        ({"client_message_id": "m1", "text": True}, "invalid_field", "text"),
        ({"client_message_id": "m1", "attachments": "a.jpg"}, "invalid_field", "attachments"),
        ({"client_message_id": "m1", "attachments": [5]}, "invalid_field", "attachments[0]"),
        (
            {"client_message_id": "m1", "attachments": ["https://a.example/b.jpg"]},
            "invalid_field",
            "attachments[0]",
        ),
        (
            {"client_message_id": "m1", "attachments": [{"type": ["image"], "url": "https://a/b"}]},
            "invalid_field",
            "attachments[0].type",
        ),
        (
            {"client_message_id": "m1", "attachments": [{"type": "image", "url": 5}]},
            "invalid_field",
            "attachments[0].url",
        ),
        (
            {"client_message_id": "m1", "attachments": [IMAGE | {"mime_type": 5}]},
            "invalid_field",
            "attachments[0].mime_type",
        ),
        (
            {"client_message_id": "m1", "attachments": [IMAGE | {"filename": {"a": 1}}]},
            "invalid_field",
            "attachments[0].filename",
        ),
    ],
)
def test_parse_message_rejects(body: dict[str, Any], code: str, named: str) -> None:
    with pytest.raises(BadRequest) as info:
        webchat.parse_message(body)
    assert info.value.code == code
    assert f"'{named}'" in info.value.message


def test_parse_message_accepts_the_limits() -> None:
    longest = webchat.parse_message({"client_message_id": "A-z_0.9:" * 16, "text": "é" * 4096})
    assert (len(longest.client_message_id), len(longest.text or "")) == (128, 4096)
    ref = {"type": "file", "url": "https://files.example/a.pdf"}
    captionless = webchat.parse_message({"client_message_id": "m", "attachments": [ref]})
    assert captionless.text is None
    assert captionless.attachments == (MediaRef(type="file", id=ref["url"], url=ref["url"]),)


@pytest.mark.parametrize(
    ("body", "code", "named"),
    [
        ({}, "missing_field", "site_key"),
        ({"site_key": 1}, "invalid_field", "site_key"),
        ({"site_key": "s", "visitor_id": "a b"}, "invalid_field", "visitor_id"),
        ({"site_key": "s", "visitor_id": "visitor-1"}, "invalid_field", "visitor_id"),
        ({"site_key": "s", "visitor_id": None}, "invalid_field", "visitor_id"),
        ({"site_key": "s", "name": ""}, "invalid_field", "name"),
        ({"site_key": "s", "name": "n" * 129}, "invalid_field", "name"),
        ({"site_key": ["site-acme"]}, "invalid_field", "site_key"),
        ({"site_key": "s", "visitor_id": 7}, "invalid_field", "visitor_id"),
        ({"site_key": "s", "visitor_id": True}, "invalid_field", "visitor_id"),
        ({"site_key": "s", "visitor_id": ["v"]}, "invalid_field", "visitor_id"),
        ({"site_key": "s", "name": {"first": "Ada"}}, "invalid_field", "name"),
        ({"site_key": "s", "name": ["Ada"]}, "invalid_field", "name"),
        ({"site_key": "s", "name": 5}, "invalid_field", "name"),
    ],
)
def test_parse_session_rejects(body: dict[str, Any], code: str, named: str) -> None:
    with pytest.raises(BadRequest) as info:
        webchat.parse_session(body)
    assert info.value.code == code
    assert f"'{named}'" in info.value.message


def test_wrongly_typed_fields_are_a_400_on_both_routes(
    ingress: Ingress, producer: RecordingProducer
) -> None:
    session = respond(post("/sessions", {"site_key": "site-acme", "name": {"a": 1}}), ingress)
    assert (session.status, session.body["error"]) == (400, "invalid_field")
    assert "'name'" in session.body["message"]

    token = start(ingress)["token"]
    body = {"client_message_id": "m1", "attachments": [["https://a.example/b.jpg"]]}
    message = send(ingress, token, body)
    assert (message.status, message.body["error"]) == (400, "invalid_field")
    assert "'attachments[0]'" in message.body["message"]
    assert producer.published == []


def test_session_does_not_need_the_broker(tenants: TenantDirectory) -> None:
    ingress = Ingress(
        Settings(), tenants, RecordingProducer(fail=True), MemoryDedupe(), frozen(NOW)
    )
    assert respond(post("/sessions", {"site_key": "site-globex"}), ingress).status == 201


def test_broker_failure_is_retryable_and_marks_nothing(tenants: TenantDirectory) -> None:
    dedupe = MemoryDedupe()
    ingress = Ingress(Settings(), tenants, RecordingProducer(fail=True), dedupe, frozen(NOW))
    token = start(ingress)["token"]
    response = send(ingress, token, payload("webchat", "text_message.json"))
    assert response.status == 503
    assert dedupe.marked == {}


def test_a_reply_whose_publish_failed_is_not_delivered() -> None:
    from shared.channels.webchat.outbound import deliver
    from shared.errors import DependencyUnavailable
    from tests.builders import outbound_message

    reply = outbound_message(channel=Channel("webchat"), account_id="site-acme", chat_id="c1")
    with pytest.raises(DependencyUnavailable):  # the dispatcher retries: never marked sent
        deliver(reply, Settings(redis_url="redis://127.0.0.1:1/0"))


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/x.jpg",
        "https://10.0.0.5/x.jpg",
        "https://192.168.1.9/x.jpg",
        "https://169.254.169.254/latest/meta-data",  # a cloud's metadata service
        "https://[::1]/x.jpg",
        "https://[fd00::5]/x.jpg",
        "https://localhost/x.jpg",
        "https://printer.local/x.jpg",
        "https://metadata.google.internal/x",
        "https://intranet/x.jpg",
        "https://user:secret@cdn.example.com/x.jpg",
    ],
)
def test_attachment_urls_must_be_public_https(url: str) -> None:
    # The URL comes from an anonymous browser and may later be fetched by our own services:
    # nothing that points inside a network, or carries credentials.
    document = {"client_message_id": "m1", "attachments": [{"type": "image", "url": url}]}
    with pytest.raises(BadRequest) as info:
        webchat.parse_message(document)
    assert info.value.code == "invalid_field" and "attachments[0].url" in info.value.message


def test_a_public_attachment_url_is_fine() -> None:
    url = "https://cdn.example.com:8443/u/x.jpg"
    document = {"client_message_id": "m1", "attachments": [{"type": "image", "url": url}]}
    assert webchat.parse_message(document).attachments[0].url == url


def test_a_session_can_be_resumed_only_until_its_maximum_age(
    ingress: Ingress, clock: Clock
) -> None:
    """Resuming renews the token, not the session: a leaked token cannot be kept alive for
    ever. The last token ends with the session, and resuming it is refused (the widget then
    starts a new session)."""
    settings = Settings()
    ttl, max_age = settings.webchat_token_ttl_s, settings.webchat_session_max_age_s
    session = start(ingress)
    token, expires_at, renewals = session["token"], NOW + ttl, 0
    for _ in range(2 * max_age // ttl):  # bounded: without an end it would never stop
        clock.at = expires_at - 60  # renewed before expiry (the widget: 5 minutes before)
        answer = respond(post("/sessions/resume", b"", Authorization=f"Bearer {token}"), ingress)
        if answer.status != 200:
            break
        renewals += 1
        assert answer.body["conversation_id"] == session["conversation_id"]
        token = answer.body["token"]
        claims = webchat_tokens.verify(token, ingress.tenants, now=clock.at)
        assert claims.session_started_at == NOW
        assert claims.expires_at <= NOW + max_age
        expires_at = claims.expires_at
    assert (answer.status, answer.body["error"]) == (401, "session_expired")
    assert expires_at == NOW + max_age  # renewed up to the session's end, not past it
    assert renewals == -(-(max_age - ttl) // (ttl - 60))
    assert clock.at == NOW + max_age - 60  # refused while the last token was still valid
    clock.at = NOW + max_age
    expired = respond(post("/sessions/resume", b"", Authorization=f"Bearer {token}"), ingress)
    assert (expired.status, expired.body["error"]) == (401, "token_expired")


def test_a_token_from_before_session_ages_starts_its_session_when_issued(
    ingress: Ingress,
) -> None:
    """Tokens issued before the ``sst`` claim existed stay valid: their session started at
    their ``iat``."""
    import jwt

    account = next(iter(ingress.tenants.of("webchat").values()))
    old = webchat_tokens.issue(account, now=NOW, ttl_s=600)
    payload = jwt.decode(old.token, options={"verify_signature": False})
    del payload["sst"]
    token = jwt.encode(payload, account.token_secret.reveal(), algorithm="HS256")
    assert webchat_tokens.verify(token, ingress.tenants, now=NOW).session_started_at == NOW
    payload["sst"] = NOW + 1  # a session cannot start after its token
    later = jwt.encode(payload, account.token_secret.reveal(), algorithm="HS256")
    with pytest.raises(Unauthorized):
        webchat_tokens.verify(later, ingress.tenants, now=NOW)


def test_a_session_never_starts_after_its_token_whatever_the_replicas_clocks(
    ingress: Ingress, clock: Clock
) -> None:
    """A token started on a replica whose clock runs ahead (accepted up to MAX_CLOCK_SKEW_S),
    resumed on one that runs behind: the new token's session starts no later than it does."""
    account = next(iter(ingress.tenants.of("webchat").values()))
    ahead = webchat_tokens.issue(account, now=NOW + 50, ttl_s=600)

    answer = respond(post("/sessions/resume", b"", Authorization=f"Bearer {ahead.token}"), ingress)

    assert answer.status == 200, answer.body
    claims = webchat_tokens.verify(answer.body["token"], ingress.tenants, now=NOW)
    assert claims.session_started_at == claims.issued_at == NOW


def test_a_maximum_age_below_a_token_lifetime_still_gives_a_whole_first_token(
    ingress: Ingress, clock: Clock
) -> None:
    """WEBCHAT_SESSION_MAX_AGE_S=0 (or below WEBCHAT_TOKEN_TTL_S) must not sign tokens that
    have already expired, nor send the widget round a loop: one token, then a new session."""
    ingress.settings = replace(ingress.settings, webchat_session_max_age_s=0)
    ttl = ingress.settings.webchat_token_ttl_s
    session = start(ingress)
    assert webchat_tokens.verify(session["token"], ingress.tenants, now=NOW).expires_at == NOW + ttl

    clock.at = NOW + ttl - 300
    answer = respond(
        post("/sessions/resume", b"", Authorization=f"Bearer {session['token']}"), ingress
    )

    assert (answer.status, answer.body["error"]) == (401, "session_expired")
