"""Facebook Messenger: signature, handshake, every event kind, the handler, replies, sandbox."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.channels import messenger
from shared.channels.contract import SandboxState, SendContext
from shared.channels.messenger import outbound, sandbox
from shared.errors import (
    BadRequest,
    DependencyUnavailable,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    RateLimited,
    Unauthorized,
)
from shared.ingress import Ingress
from shared.models import (
    Author,
    DeliveryStatus,
    InboundMessage,
    MessageKind,
    QuickReply,
    StatusUpdate,
)
from shared.outbound.api import Undeliverable
from shared.settings import Settings
from shared.tenants import Secret, TenantConfigError, TenantDirectory
from shared.web import WebRequest
from tests.builders import outbound_message
from tests.conftest import DATA, TENANTS, payload, payload_bytes
from tests.unit.channels.mutate import replaced
from tests.unit.fakes import MemoryDedupe, RecordingProducer

ACME = Secret("ms-app-secret-acme")
GLOBEX = Secret("ms-app-secret-globex")
PAGE, USER = "106540352243001", "6543210987654321"
NOW = datetime(2025, 6, 8, 21, 0, tzinfo=UTC)


def messenger_tenants() -> dict[str, Any]:
    """The shared test tenants, each with its Messenger Page (tests/data/messenger)."""
    accounts = json.loads((DATA / "messenger" / "accounts.json").read_text())
    document = copy.deepcopy(TENANTS)
    for tenant in document["tenants"]:
        tenant["messenger"] = accounts[tenant["id"]]
    return document


@pytest.fixture
def directory() -> TenantDirectory:
    return TenantDirectory.from_dict(messenger_tenants())


def parse(name: str, directory: TenantDirectory) -> list[Any]:
    return messenger.parse(payload("messenger", name), directory, ACME)


# --- verification ---------------------------------------------------------------------------


def test_sign_is_hmac_sha256_of_the_raw_body() -> None:
    assert messenger.sign("key", b"The quick brown fox jumps over the lazy dog") == (
        "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    )


def test_verify_finds_the_app_that_signed() -> None:
    body = payload_bytes("messenger", "text.json")
    assert (
        messenger.verify_signature(body, messenger.sign(ACME.reveal(), body), [GLOBEX, ACME])
        == ACME
    )


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "missing_signature"),
        ("sha1=ab", "bad_signature"),
        ("sha256=" + "0" * 64, "bad_signature"),
    ],
)
def test_verify_rejects(header: str | None, code: str) -> None:
    with pytest.raises(Unauthorized) as info:
        messenger.verify_signature(b"{}", header, [ACME])
    assert info.value.code == code


def test_handshake(directory: TenantDirectory) -> None:
    query = {
        "hub.mode": "subscribe",
        "hub.verify_token": "ms-verify-globex-0123",
        "hub.challenge": "42",
    }
    assert messenger.verify_handshake(query, directory) == "42"
    for bad in ({**query, "hub.verify_token": "nope"}, {**query, "hub.mode": "unsubscribe"}):
        with pytest.raises(Forbidden):
            messenger.verify_handshake(bad, directory)


# --- parsing ---------------------------------------------------------------------------------


def test_text(directory: TenantDirectory) -> None:
    [message] = parse("text.json", directory)
    assert isinstance(message, InboundMessage)
    assert (message.tenant_id, message.channel, message.account_id, message.chat_id) == (
        "acme",
        "messenger",
        PAGE,
        USER,
    )
    assert message.platform_message_id == "m_text1"
    assert (message.kind, message.text) == (MessageKind.TEXT, "Does it come in another color?")
    assert message.timestamp == "2025-06-08T20:59:43.123000Z"
    assert message.conversation_key == f"acme:messenger:{PAGE}/{USER}"


def test_quick_reply_and_postback_are_choices(directory: TenantDirectory) -> None:
    [quick] = parse("quick_reply.json", directory)
    [postback] = parse("postback.json", directory)
    assert quick.kind is MessageKind.INTERACTIVE
    assert (quick.interactive.type, quick.interactive.id, quick.text) == (
        "quick_reply",
        "faq_shipping",
        "Shipping",
    )
    assert (postback.interactive.type, postback.interactive.id) == ("postback", "handoff")
    assert (postback.platform_message_id, postback.text) == ("m_pb1", "Talk to a human")


def test_attachments_location_sticker_fallback_and_reply(directory: TenantDirectory) -> None:
    [media] = parse("attachments.json", directory)
    assert media.kind is MessageKind.MEDIA
    assert [(a.type, a.url) for a in media.attachments] == [
        ("image", "https://scontent.example/photo.jpg"),
        ("document", "https://cdn.example/invoice.pdf"),
    ]
    [place] = parse("location.json", directory)
    assert (place.kind, place.location.latitude, place.location.longitude) == (
        MessageKind.LOCATION,
        52.52,
        13.405,
    )
    [sticker] = parse("sticker.json", directory)
    assert (sticker.attachments[0].type, sticker.attachments[0].id) == (
        "sticker",
        "369239263222822",
    )
    [link] = parse("fallback.json", directory)
    assert (link.kind, link.raw_type, link.text) == (MessageKind.UNSUPPORTED, "fallback", "look")
    [reply] = parse("reply.json", directory)
    assert reply.reply_to == "m_text1"


def test_receipts_are_statuses(directory: TenantDirectory) -> None:
    [echo] = parse("echo.json", directory)
    assert isinstance(echo, StatusUpdate)
    assert (echo.chat_id, echo.platform_message_id, echo.status) == (
        USER,
        "m_echo1",
        DeliveryStatus.SENT,
    )
    delivered = parse("delivery.json", directory)
    assert [(s.platform_message_id, s.status, s.up_to) for s in delivered] == [
        ("m_out1", DeliveryStatus.DELIVERED, None),
        ("m_out2", DeliveryStatus.DELIVERED, None),
    ]
    [watermark] = parse("delivery_watermark.json", directory)
    assert (watermark.status, watermark.up_to) == (DeliveryStatus.DELIVERED, "2025-06-08T21:00:00Z")
    [read] = parse("read.json", directory)
    assert (read.status, read.up_to, read.chat_id) == (
        DeliveryStatus.READ,
        "2025-06-08T21:00:10Z",
        USER,
    )
    assert read.platform_message_id == "read/1749416410000"


def test_events_we_do_not_use_are_ignored(directory: TenantDirectory) -> None:
    assert parse("reaction.json", directory) == []


def test_a_batch_keeps_payload_order(directory: TenantDirectory) -> None:
    items = parse("batch.json", directory)
    assert [type(i).__name__ for i in items] == ["InboundMessage", "InboundMessage", "StatusUpdate"]
    assert [getattr(i, "text", None) for i in items[:2]] == ["first", "second"]


def test_a_page_is_only_posted_for_by_its_own_app(directory: TenantDirectory) -> None:
    document = payload("messenger", "other_tenant.json")
    [message] = messenger.parse(document, directory, GLOBEX)
    assert message.tenant_id == "globex"
    with pytest.raises(Unauthorized):
        messenger.parse(document, directory, ACME)


@pytest.mark.parametrize(
    ("path", "value", "error"),
    [
        (("object",), "instagram", BadRequest),
        (("entry", 0, "id"), "999", Forbidden),
        (("entry", 0, "messaging", 0, "recipient", "id"), "999", BadRequest),
        (("entry", 0, "messaging", 0, "message", "mid"), 7, BadRequest),
        (("entry", 0, "messaging", 0, "message", "text"), ["x"], BadRequest),
        (("entry", 0, "messaging", 0, "timestamp"), "soon", BadRequest),
        (("entry", 0, "messaging", 0, "timestamp"), 10**30, BadRequest),
        (("entry", 0, "messaging", 0, "sender"), "me", BadRequest),
    ],
)
def test_malformed_events_are_named_4xx(
    directory: TenantDirectory, path: tuple[Any, ...], value: Any, error: type[Exception]
) -> None:
    document = replaced(payload("messenger", "text.json"), path, value)
    with pytest.raises(error):
        messenger.parse(document, directory, ACME)


# --- the handler -----------------------------------------------------------------------------


def ingress(directory: TenantDirectory, producer: RecordingProducer) -> Ingress:
    return Ingress(Settings(), directory, producer, MemoryDedupe())


def post(body: bytes, secret: str = "ms-app-secret-acme", path: str = "/") -> WebRequest:
    headers = {"X-Hub-Signature-256": messenger.sign(secret, body)}
    return WebRequest(method="POST", path=path, headers=headers, body=body)


def test_handle_publishes_messages_and_receipts_once(directory: TenantDirectory) -> None:
    producer = RecordingProducer()
    front = ingress(directory, producer)
    body = payload_bytes("messenger", "batch.json")

    first = messenger.handle(post(body), front)
    again = messenger.handle(post(body), front)

    assert (first.status, first.body) == (200, {"status": "ok", "published": 3, "duplicates": 0})
    assert again.body == {"status": "ok", "published": 0, "duplicates": 3}
    topics = [topic for topic, _ in producer.published]
    assert topics == ["chatbot.platform.messages.inbound"] * 2 + [
        "chatbot.platform.messages.status"
    ]


def test_handle_routes_methods_and_signatures(directory: TenantDirectory) -> None:
    front = ingress(directory, RecordingProducer())
    query = {
        "hub.mode": "subscribe",
        "hub.verify_token": "ms-verify-acme-0123",
        "hub.challenge": "c",
    }
    answer = messenger.handle(WebRequest("GET", "/", {}, b"", query), front)
    assert (answer.status, answer.body) == (200, "c")
    with pytest.raises(NotFound):
        messenger.handle(post(b"{}", path="/other"), front)
    with pytest.raises(MethodNotAllowed):
        messenger.handle(WebRequest("PUT", "/", {}, b""), front)
    with pytest.raises(Unauthorized):
        messenger.handle(post(payload_bytes("messenger", "text.json"), secret="wrong"), front)


# --- replies ---------------------------------------------------------------------------------


def reply(**changes: Any) -> Any:
    return outbound_message(channel="messenger", account_id=PAGE, chat_id=USER, **changes)


def render(
    message: Any, directory: TenantDirectory, last: timedelta | None = timedelta(hours=1)
) -> Any:
    account = directory.of("messenger")[PAGE]
    context = SendContext("https://graph.example/v21.0", NOW, NOW - last if last else None)
    return outbound.render(message, account, Settings(), context)


def test_a_reply_within_the_window_is_a_response_with_quick_replies(
    directory: TenantDirectory,
) -> None:
    options = (QuickReply("blue", "Blue"), QuickReply("green", "A much longer option title"))
    request = render(reply(text="Which colour?", quick_replies=options), directory)
    assert request.url == f"https://graph.example/v21.0/{PAGE}/messages"
    assert request.headers["Authorization"] == "Bearer ms-page-token-acme"
    assert request.json == {
        "recipient": {"id": USER},
        "messaging_type": "RESPONSE",
        "message": {
            "text": "Which colour?",
            "quick_replies": [
                {"content_type": "text", "title": "Blue", "payload": "blue"},
                {"content_type": "text", "title": "A much longer optio…", "payload": "green"},
            ],
        },
    }


def test_more_quick_replies_than_messenger_shows_become_text(directory: TenantDirectory) -> None:
    options = tuple(QuickReply(str(i), f"Option {i}") for i in range(14))
    message = render(reply(text="Pick one", quick_replies=options), directory).json["message"]
    assert "quick_replies" not in message
    assert message["text"].startswith("Pick one\n\n1. Option 0\n")


def test_outside_the_window_only_a_human_agent_may_answer(directory: TenantDirectory) -> None:
    with pytest.raises(Undeliverable) as info:
        render(reply(), directory, last=timedelta(hours=25))
    assert info.value.code == "outside_window"
    agent = render(reply(author=Author.AGENT), directory, last=timedelta(days=3)).json
    assert (agent["messaging_type"], agent["tag"]) == ("MESSAGE_TAG", "HUMAN_AGENT")
    with pytest.raises(Undeliverable):
        render(reply(author=Author.AGENT), directory, last=timedelta(days=8))
    with pytest.raises(Undeliverable):
        render(reply(), directory, last=None)


def test_a_page_without_a_token_does_not_load() -> None:
    document = messenger_tenants()
    document["tenants"][1]["messenger"][0].pop("page_access_token")
    with pytest.raises(TenantConfigError, match="page_access_token is required"):
        TenantDirectory.from_dict(document)


def test_interpret_the_send_api_answer() -> None:
    assert outbound.interpret(200, {"recipient_id": USER, "message_id": "m_1"}, 1) == "m_1"
    with pytest.raises(RateLimited):
        outbound.interpret(400, {"error": {"code": 613, "message": "calls"}}, 30)
    with pytest.raises(DependencyUnavailable):
        outbound.interpret(400, {"error": {"code": 1200, "message": "temporary"}}, 1)
    with pytest.raises(DependencyUnavailable):  # a 2xx without an id: maybe sent, so retried
        outbound.interpret(200, {}, 1)
    with pytest.raises(Undeliverable) as info:
        outbound.interpret(400, {"error": {"code": 551, "message": "not available"}}, 1)
    assert (info.value.code, info.value.http_status) == ("551", 400)


# --- the sandbox -----------------------------------------------------------------------------


def test_the_sandbox_speaks_the_send_api() -> None:
    body = {"recipient": {"id": USER}, "messaging_type": "RESPONSE", "message": {"text": "hi"}}
    status, answer, _ = sandbox.answer(body, SandboxState())
    assert (
        status == 200 and answer["recipient_id"] == USER and answer["message_id"].startswith("m_")
    )
    assert sandbox.answer({"recipient": {"id": USER}}, SandboxState())[0] == 400
    assert sandbox.failure(429, None, 7) == (
        429,
        {
            "error": {
                "message": "(#613) sandbox failure",
                "type": "OAuthException",
                "code": 613,
                "fbtrace_id": "SANDBOX",
            }
        },
        {"Retry-After": "7"},
    )
    assert (
        sandbox.credential(f"/messenger/v21.0/{PAGE}/messages", {"Authorization": "Bearer t"})
        == "t"
    )
    assert sandbox.credential(f"/v21.0/{PAGE}/messages", {"Authorization": "Bearer t"}) is None
    shown = sandbox.describe(
        {**body, "message": {"text": "hi", "quick_replies": [{"title": "Yes"}]}}
    )
    assert (shown.recipient, shown.text, shown.options) == (USER, "hi", ("Yes",))
