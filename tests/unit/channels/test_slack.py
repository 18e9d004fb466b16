"""Slack Events API: the signature verifier, the parser on saved payloads, and the handler."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pytest

from shared.channels import slack
from shared.clock import frozen
from shared.errors import BadRequest, ChatServiceError
from shared.ingress import Ingress
from shared.models import Channel, InboundMessage, MediaRef, MessageKind, Sender
from shared.settings import Settings
from shared.tenants import Secret, TenantDirectory
from shared.web import WebRequest, WebResponse, error_response
from tests.conftest import TENANTS, payload, payload_bytes
from tests.unit.channels.mutate import replaced
from tests.unit.fakes import MemoryDedupe, RecordingProducer

# The published vector from slack_sdk's signature tests (see the brief's protocols.md).
VECTOR_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
VECTOR_TIMESTAMP = "1531420618"
VECTOR_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow"
    b"&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner"
    b"&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands"
    b"%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
VECTOR_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"

SECRET = "slack-signing-acme"
OTHER_SECRET = "slack-signing-globex"
NOW = 1749417200


def verify(
    body: bytes = VECTOR_BODY,
    timestamp: str | None = VECTOR_TIMESTAMP,
    signature: str | None = VECTOR_SIGNATURE,
    secrets: Iterable[str] = (VECTOR_SECRET,),
    now: float = 1531420618,
) -> Secret:
    return slack.verify_signature(
        body,
        timestamp,
        signature,
        [Secret(s) for s in secrets],
        clock=frozen(now),
        max_skew_s=300,
    )


def rejected(excinfo: pytest.ExceptionInfo[ChatServiceError]) -> tuple[int, str]:
    return excinfo.value.status, excinfo.value.code


# --- verifier ---------------------------------------------------------------------------------


def test_published_vector_is_accepted() -> None:
    assert slack.sign(VECTOR_SECRET, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE
    assert verify() == Secret(VECTOR_SECRET)


def test_returns_the_secret_that_matched_among_several() -> None:
    assert verify(secrets=("another-secret", VECTOR_SECRET, "third")) == Secret(VECTOR_SECRET)


@pytest.mark.parametrize("offset", [-300, 0, 300])
def test_timestamp_inside_the_window_is_accepted(offset: int) -> None:
    assert verify(now=1531420618 + offset) == Secret(VECTOR_SECRET)


@pytest.mark.parametrize("offset", [-301, 301, -86400, 86400])
def test_stale_timestamp_in_either_direction_is_refused(offset: int) -> None:
    with pytest.raises(ChatServiceError) as excinfo:
        verify(now=1531420618 + offset)
    assert rejected(excinfo) == (401, "stale_timestamp")


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"body": VECTOR_BODY + b"&text=hi"}, "bad_signature"),
        ({"secrets": ("not-the-secret",)}, "bad_signature"),
        ({"secrets": ()}, "bad_signature"),
        ({"signature": VECTOR_SIGNATURE.replace("v0=", "v1=")}, "bad_signature"),
        ({"signature": VECTOR_SIGNATURE[3:]}, "bad_signature"),
        ({"signature": None}, "missing_signature"),
        ({"signature": ""}, "missing_signature"),
        ({"timestamp": None}, "missing_timestamp"),
    ],
)
def test_bad_signatures_are_refused(change: dict[str, Any], code: str) -> None:
    with pytest.raises(ChatServiceError) as excinfo:
        verify(**change)
    assert rejected(excinfo) == (401, code)


@pytest.mark.parametrize(
    "timestamp",
    ["yesterday", "1531420618.0", "-1531420618", " 1531420618", "1" * 13, "9" * 5000],
)
def test_a_timestamp_that_is_no_unix_time_is_a_bad_request(timestamp: str) -> None:
    # Slack sends whole seconds as ASCII digits: anything else is not its request. A 5,000-digit
    # value is refused before it is converted (Python refuses int() of over 4,300 digits).
    with pytest.raises(ChatServiceError) as excinfo:
        verify(timestamp=timestamp)
    assert rejected(excinfo) == (400, "bad_timestamp")


# --- parse ------------------------------------------------------------------------------------


def parse_one(name: str, tenants: TenantDirectory) -> InboundMessage:
    [message] = slack.parse(payload("slack", name), tenants, Secret(SECRET))
    return message


def test_direct_message(tenants: TenantDirectory) -> None:
    message = parse_one("message_im.json", tenants)

    assert message == InboundMessage(
        tenant_id="acme",
        channel=Channel("slack"),
        account_id="T0001ACME",
        chat_id="D0ACMEDM01",
        platform_message_id="D0ACMEDM01/1749416383.000200",
        sender=Sender(id="U0CUSTOMER"),
        kind=MessageKind.TEXT,
        timestamp="2025-06-08T20:59:43.000200Z",
        text="Hi, is my order on its way?",
        raw_type="message",
        raw={"ts": "1749416383.000200", "event_id": "Ev08IMMSG001"},
    )
    assert message.conversation_key == "acme:slack:T0001ACME/D0ACMEDM01"


def test_app_mention(tenants: TenantDirectory) -> None:
    message = parse_one("app_mention.json", tenants)

    assert message.raw_type == "app_mention"
    assert message.chat_id == "C0ACMEGEN1"
    assert message.platform_message_id == "C0ACMEGEN1/1749416500.000300"
    assert message.text == "<@U0BOTACME> what are your opening hours?"
    assert message.sender == Sender(id="U0CUSTOMER")
    assert message.thread_id is None


def test_file_share_becomes_media_with_every_file(tenants: TenantDirectory) -> None:
    message = parse_one("file_share.json", tenants)

    assert message.kind == MessageKind.MEDIA
    assert message.raw_type == "message.file_share"
    assert message.text == "Here is the invoice"
    assert message.attachments == (
        MediaRef(
            type="file",
            id="F0INVOICE1",
            mime_type="application/pdf",
            filename="invoice-1042.pdf",
            url="https://files.slack.com/files-pri/T0001ACME-F0INVOICE1/invoice-1042.pdf",
        ),
        MediaRef(
            type="file",
            id="F0PHOTO002",
            mime_type="image/jpeg",
            filename="parcel.jpg",
            url="https://files.slack.com/files-pri/T0001ACME-F0PHOTO002/parcel.jpg",
        ),
    )


def test_threaded_reply_keeps_its_thread(tenants: TenantDirectory) -> None:
    message = parse_one("thread_reply.json", tenants)

    assert message.thread_id == "1749416500.000300"
    assert message.raw == {"ts": "1749417100.000900", "event_id": "Ev08THREAD01"}
    assert message.timestamp == "2025-06-08T21:11:40.000900Z"


def test_thread_broadcast_is_a_message(tenants: TenantDirectory) -> None:
    document = payload("slack", "thread_reply.json")
    document["event"]["subtype"] = "thread_broadcast"

    [message] = slack.parse(document, tenants, Secret(SECRET))

    assert message.raw_type == "message.thread_broadcast"
    assert message.thread_id == "1749416500.000300"


def test_edit_carries_the_new_text_and_the_edited_message_id(tenants: TenantDirectory) -> None:
    message = parse_one("message_changed.json", tenants)

    assert message.edited is True
    assert message.raw_type == "message.message_changed"
    assert message.text == "Hi, is my order #1042 on its way?"
    assert message.sender == Sender(id="U0CUSTOMER")
    assert message.chat_id == "D0ACMEDM01"
    assert message.platform_message_id == "D0ACMEDM01/1749416383.000200/edit/1749416900.000700"
    assert message.timestamp == "2025-06-08T21:08:20.000700Z"  # when the edit happened
    assert message.raw["ts"] == "1749416383.000200"  # the message that was edited


def test_message_changed_without_an_edit_is_ignored(tenants: TenantDirectory) -> None:
    document = payload("slack", "message_changed.json")
    del document["event"]["message"]["edited"]  # e.g. Slack attached a link unfurl

    assert slack.parse(document, tenants, Secret(SECRET)) == []


def test_edit_of_a_bot_message_is_ignored(tenants: TenantDirectory) -> None:
    document = payload("slack", "message_changed.json")
    document["event"]["message"]["user"] = "U0BOTACME"

    assert slack.parse(document, tenants, Secret(SECRET)) == []


@pytest.mark.parametrize(
    "name", ["bot_message.json", "message_bot_id.json", "message_own_bot.json"]
)
def test_bot_messages_are_ignored(name: str, tenants: TenantDirectory) -> None:
    assert slack.parse(payload("slack", name), tenants, Secret(SECRET)) == []


@pytest.mark.parametrize(
    "event",
    [
        {"type": "message", "subtype": "channel_join", "user": "U1", "channel": "C1", "ts": "1.0"},
        {"type": "message", "subtype": "message_deleted", "channel": "C1", "ts": "1.0"},
        {"type": "reaction_added", "user": "U1", "reaction": "thumbsup", "event_ts": "1.0"},
    ],
)
def test_other_events_are_ignored(event: dict[str, Any], tenants: TenantDirectory) -> None:
    document = payload("slack", "message_im.json") | {"event": event}

    assert slack.parse(document, tenants, Secret(SECRET)) == []


def test_other_callback_types_are_ignored(tenants: TenantDirectory) -> None:
    document = {"type": "app_rate_limited", "team_id": "T0001ACME", "minute_rate_limited": 1}

    assert slack.parse(document, tenants, Secret(SECRET)) == []


def test_unknown_team_is_forbidden(tenants: TenantDirectory) -> None:
    document = payload("slack", "message_im.json") | {"team_id": "T9UNKNOWN"}

    with pytest.raises(ChatServiceError) as excinfo:
        slack.parse(document, tenants, Secret(SECRET))
    assert rejected(excinfo) == (403, "unknown_account")


def test_team_signed_by_another_app_is_refused(tenants: TenantDirectory) -> None:
    with pytest.raises(ChatServiceError) as excinfo:
        slack.parse(payload("slack", "message_im.json"), tenants, Secret(OTHER_SECRET))
    assert rejected(excinfo) == (401, "bad_signature")


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ((), "type"),
        ((), "team_id"),
        ((), "event_id"),
        ((), "event"),
        (("event",), "channel"),
        (("event",), "user"),
        (("event",), "ts"),
        (("event",), "type"),
    ],
)
def test_missing_fields_are_named(
    path: tuple[str, ...], name: str, tenants: TenantDirectory
) -> None:
    document = payload("slack", "message_im.json")
    target = document
    for key in path:
        target = target[key]
    del target[name]

    with pytest.raises(ChatServiceError) as excinfo:
        slack.parse(document, tenants, Secret(SECRET))
    assert rejected(excinfo) == (400, "missing_field")
    assert f"'{'.'.join((*path, name))}'" in excinfo.value.message


def test_timestamp_that_is_not_a_time_is_refused(tenants: TenantDirectory) -> None:
    document = payload("slack", "message_im.json")
    document["event"]["ts"] = "soon"

    with pytest.raises(ChatServiceError) as excinfo:
        slack.parse(document, tenants, Secret(SECRET))
    assert rejected(excinfo) == (400, "invalid_field")


@pytest.mark.parametrize(
    ("name", "path", "value", "where"),
    [
        ("message_im.json", ("type",), ["event_callback"], "'type'"),
        ("message_im.json", ("team_id",), 1, "'team_id'"),
        ("message_im.json", ("event_id",), True, "'event_id'"),
        ("message_im.json", ("event",), [], "'event'"),
        ("message_im.json", ("event", "type"), {"t": "message"}, "'event.type'"),
        ("message_im.json", ("event", "subtype"), ["file_share"], "'event.subtype'"),
        ("message_im.json", ("event", "subtype"), {"a": 1}, "'event.subtype'"),
        ("message_im.json", ("event", "text"), {"text": "hi"}, "'event.text'"),
        ("message_im.json", ("event", "text"), 42, "'event.text'"),
        ("message_im.json", ("event", "user"), ["U0CUSTOMER"], "'event.user'"),
        ("message_im.json", ("event", "channel"), 7, "'event.channel'"),
        ("message_im.json", ("event", "ts"), ["1749416383.000200"], "'event.ts'"),
        ("thread_reply.json", ("event", "thread_ts"), 1749416500.0003, "'event.thread_ts'"),
        ("thread_reply.json", ("event", "thread_ts"), ["1"], "'event.thread_ts'"),
        ("file_share.json", ("event", "files"), {"id": "F1"}, "'event.files'"),
        ("file_share.json", ("event", "files"), "F0INVOICE1", "'event.files'"),
        ("file_share.json", ("event", "files", 0), "F0INVOICE1", "'event.files[0]'"),
        ("file_share.json", ("event", "files", 0, "id"), 5, "'event.files[0].id'"),
        ("file_share.json", ("event", "files", 1, "name"), ["a.jpg"], "'event.files[1].name'"),
        ("file_share.json", ("event", "files", 1, "mimetype"), 1, "'event.files[1].mimetype'"),
        (
            "file_share.json",
            ("event", "files", 1, "url_private"),
            {},
            "'event.files[1].url_private'",
        ),
        ("message_changed.json", ("event", "message"), "edited", "'event.message'"),
        (
            "message_changed.json",
            ("event", "message", "subtype"),
            ["file_share"],
            "'event.message.subtype'",
        ),
        ("message_changed.json", ("event", "message", "text"), ["hi"], "'event.message.text'"),
        ("message_changed.json", ("event", "message", "user"), 1, "'event.message.user'"),
        ("message_changed.json", ("event", "message", "ts"), False, "'event.message.ts'"),
    ],
)
def test_wrongly_typed_fields_are_named(
    name: str, path: tuple[str | int, ...], value: Any, where: str, tenants: TenantDirectory
) -> None:
    document = replaced(payload("slack", name), path, value)

    with pytest.raises(ChatServiceError) as excinfo:
        slack.parse(document, tenants, Secret(SECRET))
    assert rejected(excinfo) == (400, "invalid_field")
    assert f"field {where} has the wrong type" in excinfo.value.message


def test_absent_optional_fields_are_fine(tenants: TenantDirectory) -> None:
    document = payload("slack", "file_share.json")
    document["event"]["files"] = [{"id": "F0HIDDEN01", "name": None}]
    del document["event"]["text"]

    [message] = slack.parse(document, tenants, Secret(SECRET))
    assert message.text is None
    assert message.attachments == (MediaRef(type="file", id="F0HIDDEN01"),)


# --- handle -----------------------------------------------------------------------------------


@pytest.fixture
def producer() -> RecordingProducer:
    return RecordingProducer()


@pytest.fixture
def ingress(producer: RecordingProducer) -> Ingress:
    return Ingress(
        settings=Settings(),
        tenants=TenantDirectory.from_dict(TENANTS),
        producer=producer,
        dedupe=MemoryDedupe(),
        clock=frozen(NOW),
    )


def request(
    body: bytes,
    *,
    secret: str = SECRET,
    timestamp: int = NOW,
    method: str = "POST",
    path: str = "/",
    extra: dict[str, str] | None = None,
) -> WebRequest:
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": slack.sign(secret, str(timestamp), body),
        **(extra or {}),
    }
    return WebRequest(method=method, path=path, headers=headers, body=body)


def respond(req: WebRequest, ingress: Ingress) -> WebResponse:
    """What the web adapter would answer: errors become their status and JSON body."""
    try:
        return slack.handle(req, ingress)
    except ChatServiceError as exc:
        return error_response(exc)


def test_signed_message_is_published(ingress: Ingress, producer: RecordingProducer) -> None:
    response = respond(request(payload_bytes("slack", "message_im.json")), ingress)

    assert (response.status, response.body) == (
        200,
        {"status": "ok", "published": 1, "duplicates": 0},
    )
    [(topic, event)] = producer.published
    assert topic == "chatbot.platform.messages.inbound"
    assert event["partitionkey"] == "acme:slack:T0001ACME/D0ACMEDM01"
    assert event["source"] == "/chat-service/channels/slack/T0001ACME"
    assert event.data["platform_message_id"] == "D0ACMEDM01/1749416383.000200"


def test_retries_of_a_seen_event_are_not_produced_again(
    ingress: Ingress, producer: RecordingProducer
) -> None:
    body = payload_bytes("slack", "app_mention.json")
    retries = [{}, {"X-Slack-Retry-Num": "1"}, {"X-Slack-Retry-Num": "2"}]

    bodies = [respond(request(body, extra=h), ingress).body for h in retries]

    assert [(b["published"], b["duplicates"]) for b in bodies] == [(1, 0), (0, 1), (0, 1)]
    assert len(producer.published) == 1


@pytest.mark.parametrize("path", ["/", "/events"])
def test_url_verification_answers_the_challenge(
    path: str, ingress: Ingress, producer: RecordingProducer
) -> None:
    body = payload_bytes("slack", "url_verification.json")

    # No team in the handshake: any configured app's secret is good enough.
    response = respond(request(body, secret=OTHER_SECRET, path=path), ingress)

    assert (response.status, response.body) == (
        200,
        {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"},
    )
    assert producer.published == []


def test_bot_message_is_acknowledged_and_dropped(
    ingress: Ingress, producer: RecordingProducer
) -> None:
    response = respond(request(payload_bytes("slack", "message_bot_id.json")), ingress)

    assert (response.status, response.body) == (
        200,
        {"status": "ok", "published": 0, "duplicates": 0},
    )
    assert producer.published == []


def signed_with_bad_signature(body: bytes) -> WebRequest:
    good = request(body)
    return WebRequest(
        good.method, good.path, {**good.headers, "X-Slack-Signature": "v0=" + "0" * 64}, body
    )


@pytest.mark.parametrize(
    ("make", "status", "code"),
    [
        (signed_with_bad_signature, 401, "bad_signature"),
        (lambda b: request(b, timestamp=NOW - 301), 401, "stale_timestamp"),
        (lambda b: request(b, timestamp=NOW + 301), 401, "stale_timestamp"),
        (lambda b: WebRequest("POST", "/", {}, b), 401, "missing_timestamp"),
        (lambda b: request(b"{not json"), 400, "malformed_json"),
        (lambda b: request(b"[]"), 400, "malformed_json"),
        (lambda b: request(json.dumps({"team_id": "T0001ACME"}).encode()), 400, "missing_field"),
        (lambda b: request(b, secret=OTHER_SECRET), 401, "bad_signature"),
        (lambda b: request(b, method="GET"), 405, "method_not_allowed"),
        (lambda b: request(b, path="/other"), 404, "not_found"),
    ],
)
def test_bad_requests_are_refused_and_nothing_is_published(
    make: Any, status: int, code: str, ingress: Ingress, producer: RecordingProducer
) -> None:
    response = respond(make(payload_bytes("slack", "message_im.json")), ingress)

    assert response.status == status
    assert response.body["error"] == code
    assert producer.published == []


def test_wrongly_typed_event_is_a_400_that_slack_does_not_retry(
    ingress: Ingress, producer: RecordingProducer
) -> None:
    document = payload("slack", "message_im.json")
    document["event"]["subtype"] = ["message_changed"]  # unhashable: once a TypeError, a 500

    response = respond(request(json.dumps(document).encode()), ingress)

    assert response.status == 400
    assert response.body == {
        "error": "invalid_field",
        "message": "field 'event.subtype' has the wrong type",
    }
    assert slack.error_headers(BadRequest("x")) == {"X-Slack-No-Retry": "1"}
    assert producer.published == []


def test_wrong_method_names_the_allowed_one(ingress: Ingress) -> None:
    response = respond(request(b"", method="PUT"), ingress)

    assert (response.status, response.headers) == (405, {"Allow": "POST"})


def test_unknown_team_signed_by_a_known_app_is_forbidden(
    ingress: Ingress, producer: RecordingProducer
) -> None:
    document = payload("slack", "message_im.json") | {"team_id": "T9UNKNOWN"}

    response = respond(request(json.dumps(document).encode()), ingress)

    assert (response.status, response.body["error"]) == (403, "unknown_account")
    assert producer.published == []


def test_retry_of_an_event_never_published_is_published(
    ingress: Ingress, producer: RecordingProducer
) -> None:
    # The first delivery may have failed before Kafka acknowledged it: the retry must count.
    body = payload_bytes("slack", "thread_reply.json")

    response = respond(request(body, extra={"X-Slack-Retry-Num": "1"}), ingress)

    assert response.body == {"status": "ok", "published": 1, "duplicates": 0}
    assert len(producer.published) == 1


def test_one_message_delivered_as_two_events_gets_one_reply(
    ingress: Ingress, producer: RecordingProducer
) -> None:
    # An app subscribed to message.channels and app_mention gets the same message twice, with
    # two event ids: the message (channel and ts) is what is deduped, not the delivery.
    mention = payload("slack", "app_mention.json")
    as_message = json.loads(json.dumps(mention))
    as_message["event"]["type"] = "message"
    as_message["event_id"] = "Ev08CHANNEL1"

    answers = [respond(request(json.dumps(d).encode()), ingress) for d in (mention, as_message)]

    assert [a.body["published"] for a in answers] == [1, 0]
    [(_, event)] = producer.published
    assert event.data["platform_message_id"] == "C0ACMEGEN1/1749416500.000300"
    assert event.data["raw"]["event_id"] == "Ev08MENTION1"
