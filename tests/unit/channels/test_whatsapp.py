"""WhatsApp Cloud API: signature, handshake, parsing of every inbound type, the handler."""

from __future__ import annotations

import json

import pytest

from shared.channels import whatsapp
from shared.errors import BadRequest, Forbidden, MethodNotAllowed, NotFound, Unauthorized
from shared.ingress import Ingress
from shared.models import DeliveryStatus, InboundMessage, MessageKind, StatusUpdate
from shared.settings import Settings
from shared.tenants import Secret, TenantDirectory
from shared.web import WebRequest
from tests.conftest import payload, payload_bytes
from tests.unit.channels.mutate import replaced
from tests.unit.fakes import MemoryDedupe, RecordingProducer

ACME = Secret("wa-app-secret-acme")
GLOBEX = Secret("wa-app-secret-globex")


def test_sign_matches_the_rfc_hmac_sha256_vector() -> None:
    # HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog"), the textbook vector.
    assert whatsapp.sign("key", b"The quick brown fox jumps over the lazy dog") == (
        "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    )


def test_verify_accepts_a_frozen_vector_over_the_raw_body() -> None:
    body = payload_bytes("whatsapp", "text_message.json")
    header = "sha256=52e6612e5a80eaa73c6f1e02b613e443bcbe47bb81a41f5729388c0f7e483305"
    assert whatsapp.verify_signature(body, header, [GLOBEX, ACME]) == ACME


def test_reserialised_json_does_not_verify() -> None:
    # Meta signs the bytes it sent (unicode escaped); re-encoding the parsed JSON changes them.
    body = b'{"text":"\\u00e9t\\u00e9"}'
    header = whatsapp.sign(ACME.reveal(), body)
    reencoded = json.dumps(json.loads(body), ensure_ascii=False).encode()
    with pytest.raises(Unauthorized):
        whatsapp.verify_signature(reencoded, header, [ACME])


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "missing_signature"),
        ("", "missing_signature"),
        ("sha1=abc", "bad_signature"),
        ("sha256=" + "0" * 64, "bad_signature"),
    ],
)
def test_verify_rejects(header: str | None, code: str) -> None:
    with pytest.raises(Unauthorized) as info:
        whatsapp.verify_signature(b"{}", header, [ACME])
    assert info.value.code == code


def test_tampered_body_is_rejected() -> None:
    body = payload_bytes("whatsapp", "text_message.json")
    header = whatsapp.sign(ACME.reveal(), body)
    with pytest.raises(Unauthorized):
        whatsapp.verify_signature(body.replace(b"color", b"colour"), header, [ACME])


def test_handshake(tenants: TenantDirectory) -> None:
    query = {
        "hub.mode": "subscribe",
        "hub.verify_token": "wa-verify-acme-0123",
        "hub.challenge": "42",
    }
    assert whatsapp.verify_handshake(query, tenants) == "42"
    for bad in ({**query, "hub.verify_token": "nope"}, {**query, "hub.mode": "unsubscribe"}, {}):
        with pytest.raises(Forbidden):
            whatsapp.verify_handshake(bad, tenants)


def test_parse_text_message(tenants: TenantDirectory) -> None:
    [message] = whatsapp.parse(payload("whatsapp", "text_message.json"), tenants, ACME)
    assert isinstance(message, InboundMessage)
    assert message.tenant_id == "acme"
    assert message.kind is MessageKind.TEXT
    assert message.text == "Does it come in another color?"
    assert message.sender.name == "Sheena Nelson"
    assert message.conversation_key == "acme:whatsapp:106540352242922/16505551234"
    assert message.timestamp == "2025-06-08T20:59:43Z"


def test_parse_every_inbound_type(tenants: TenantDirectory) -> None:
    items = whatsapp.parse(payload("whatsapp", "all_message_types.json"), tenants, ACME)
    by_id = {i.platform_message_id[-2:]: i for i in items if isinstance(i, InboundMessage)}
    assert len(by_id) == 16

    assert by_id["01"].text == "hello"
    image = by_id["02"]
    assert image.kind is MessageKind.MEDIA and image.text == "my receipt"
    assert image.attachments[0].type == "image" and image.attachments[0].id == "1479537139650973"
    assert [by_id[i].attachments[0].type for i in ("03", "04", "05", "06")] == [
        "audio",
        "video",
        "document",
        "sticker",
    ]
    assert by_id["05"].attachments[0].filename == "invoice.pdf"
    location = by_id["07"].location
    assert location is not None and location.name == "Meta Headquarters"
    assert location.latitude == pytest.approx(37.483307)
    assert by_id["08"].kind is MessageKind.CONTACTS
    assert by_id["08"].raw["contacts"][0]["name"]["formatted_name"] == "Barbara Johnson"
    button = by_id["09"].interactive
    assert button is not None and (button.type, button.id, button.title) == (
        "button_reply",
        "opt-yes",
        "Yes please",
    )
    assert by_id["10"].interactive is not None and by_id["10"].interactive.id == "row-2"
    template_button = by_id["11"]
    assert template_button.interactive is not None
    assert template_button.interactive.id == "STOP_PROMOS"
    assert template_button.reply_to == "wamid.TEMPLATE01"
    reaction = by_id["12"].reaction
    assert reaction is not None and reaction.message_id == "wamid.OURREPLY01"
    assert by_id["13"].kind is MessageKind.ORDER and by_id["13"].raw["order"]["catalog_id"]
    assert by_id["14"].kind is MessageKind.SYSTEM and "changed" in (by_id["14"].text or "")
    unsupported = by_id["15"]
    assert unsupported.kind is MessageKind.UNSUPPORTED
    assert unsupported.raw_type == "unsupported"
    assert unsupported.raw["errors"][0]["code"] == 131051
    assert by_id["16"].reply_to == "wamid.OURREPLY01"


def test_parse_statuses(tenants: TenantDirectory) -> None:
    items = whatsapp.parse(payload("whatsapp", "statuses.json"), tenants, ACME)
    assert all(isinstance(i, StatusUpdate) for i in items)
    assert [(i.platform_message_id, i.status) for i in items if isinstance(i, StatusUpdate)] == [
        ("wamid.OURREPLY01", DeliveryStatus.SENT),
        ("wamid.OURREPLY01", DeliveryStatus.DELIVERED),
        ("wamid.OURREPLY01", DeliveryStatus.READ),
        ("wamid.OURREPLY02", DeliveryStatus.FAILED),
    ]
    failed = items[3]
    assert isinstance(failed, StatusUpdate) and failed.errors[0]["code"] == 131047


def test_parse_batch_splits_entries_and_changes(tenants: TenantDirectory) -> None:
    items = whatsapp.parse(payload("whatsapp", "batch.json"), tenants, ACME)
    kinds = [type(i).__name__ for i in items]
    assert kinds == ["InboundMessage", "InboundMessage", "StatusUpdate", "InboundMessage"]
    third = items[3]
    assert isinstance(third, InboundMessage) and third.sender.name == "Ola"


def test_account_signed_by_another_app_is_rejected(tenants: TenantDirectory) -> None:
    with pytest.raises(Unauthorized):
        whatsapp.parse(payload("whatsapp", "other_tenant.json"), tenants, ACME)
    [item] = whatsapp.parse(payload("whatsapp", "other_tenant.json"), tenants, GLOBEX)
    assert item.tenant_id == "globex"


@pytest.mark.parametrize(
    ("mutate", "code", "needle"),
    [
        (lambda d: d.update(object="page"), "wrong_object", "whatsapp_business_account"),
        (lambda d: d.pop("entry"), "missing_field", "entry"),
        (lambda d: d["entry"][0].update(changes="x"), "invalid_field", "entry[0].changes"),
        (
            lambda d: d["entry"][0]["changes"][0]["value"]["messages"][0].pop("id"),
            "missing_field",
            "entry[0].changes[0].value.messages[0].id",
        ),
        (
            lambda d: d["entry"][0]["changes"][0]["value"]["messages"][0]["text"].pop("body"),
            "missing_field",
            "messages[0].text.body",
        ),
        (
            lambda d: d["entry"][0]["changes"][0]["value"]["messages"][0].update(timestamp="x"),
            "invalid_field",
            "timestamp",
        ),
    ],
)
def test_malformed_payloads_name_the_problem(
    tenants: TenantDirectory, mutate: object, code: str, needle: str
) -> None:
    document = payload("whatsapp", "text_message.json")
    mutate(document)  # type: ignore[operator]
    with pytest.raises(BadRequest) as info:
        whatsapp.parse(document, tenants, ACME)
    assert info.value.code == code
    assert needle in info.value.message


def test_unknown_phone_number_is_forbidden(tenants: TenantDirectory) -> None:
    document = payload("whatsapp", "text_message.json")
    document["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = "999"
    with pytest.raises(Forbidden) as info:
        whatsapp.parse(document, tenants, ACME)
    assert info.value.code == "unknown_account"


def _ingress(tenants: TenantDirectory, producer: RecordingProducer) -> Ingress:
    return Ingress(Settings(), tenants, producer, MemoryDedupe())


def _post(body: bytes, secret: str = ACME.reveal(), path: str = "/") -> WebRequest:
    return WebRequest("POST", path, {"x-hub-signature-256": whatsapp.sign(secret, body)}, body)


def test_handle_publishes_messages_and_statuses_to_their_topics(tenants: TenantDirectory) -> None:
    producer = RecordingProducer()
    ingress = _ingress(tenants, producer)
    body = payload_bytes("whatsapp", "batch.json")

    response = whatsapp.handle(_post(body), ingress)

    assert response.status == 200
    assert response.body == {"status": "ok", "published": 4, "duplicates": 0}
    topics = [topic for topic, _ in producer.published]
    assert topics.count("chatbot.platform.messages.inbound") == 3
    assert topics.count("chatbot.platform.messages.status") == 1
    again = whatsapp.handle(_post(body), ingress)
    assert again.body == {"status": "ok", "published": 0, "duplicates": 4}
    assert len(producer.published) == 4


def test_handle_marks_nothing_when_the_broker_fails(tenants: TenantDirectory) -> None:
    from shared.errors import DependencyUnavailable

    dedupe = MemoryDedupe()
    ingress = Ingress(Settings(), tenants, RecordingProducer(fail=True), dedupe)
    with pytest.raises(DependencyUnavailable):
        whatsapp.handle(_post(payload_bytes("whatsapp", "text_message.json")), ingress)
    assert dedupe.marked == {}


def test_handle_routes_and_methods(tenants: TenantDirectory) -> None:
    ingress = _ingress(tenants, RecordingProducer())
    with pytest.raises(MethodNotAllowed) as info:
        whatsapp.handle(WebRequest("PUT", "/", {}, b""), ingress)
    assert info.value.allowed == ("GET", "POST")
    with pytest.raises(NotFound):
        whatsapp.handle(WebRequest("POST", "/elsewhere", {}, b""), ingress)
    query = {"hub.mode": "subscribe", "hub.verify_token": "wa-verify-globex", "hub.challenge": "c"}
    assert whatsapp.handle(WebRequest("GET", "/", {}, b"", query), ingress).body == "c"


# Every place the parser reads a value, given a value of the wrong type. Meta signs what it
# sends, so these would only come from a bug on either side; each must be a 400 naming the
# field, never a 500, and never an event with (say) a dict where a caption should be.
VALUE = ("entry", 0, "changes", 0, "value")
AT = "entry[0].changes[0].value"
MSG = (*VALUE, "messages")


@pytest.mark.parametrize(
    ("name", "path", "value", "where"),
    [
        ("text_message.json", ("entry", 0), [], "entry[0]"),
        ("text_message.json", ("entry", 0, "changes", 0), "messages", "entry[0].changes[0]"),
        ("text_message.json", (*VALUE, "metadata"), [], f"{AT}.metadata"),
        ("text_message.json", (*VALUE, "metadata", "phone_number_id"), 1065, "phone_number_id"),
        ("text_message.json", (*VALUE, "messages"), 5, f"{AT}.messages"),
        ("text_message.json", (*VALUE, "messages"), {"id": "x"}, f"{AT}.messages"),
        ("text_message.json", (*VALUE, "messages"), "hello", f"{AT}.messages"),
        ("text_message.json", (*MSG, 0), "hello", f"{AT}.messages[0]"),
        ("text_message.json", (*VALUE, "statuses"), 5, f"{AT}.statuses"),
        ("text_message.json", (*VALUE, "contacts"), {"wa_id": "1"}, f"{AT}.contacts"),
        ("text_message.json", (*VALUE, "contacts", 0), ["x"], f"{AT}.contacts[0]"),
        ("text_message.json", (*VALUE, "contacts", 0, "wa_id"), 1650, "contacts[0].wa_id"),
        ("text_message.json", (*VALUE, "contacts", 0, "profile"), "Sheena", "contacts[0].profile"),
        (
            "text_message.json",
            (*VALUE, "contacts", 0, "profile", "name"),
            {"first": "Sheena"},
            "contacts[0].profile.name",
        ),
        ("text_message.json", (*MSG, 0, "id"), True, "messages[0].id"),
        ("text_message.json", (*MSG, 0, "from"), 16505551234, "messages[0].from"),
        ("text_message.json", (*MSG, 0, "type"), ["text"], "messages[0].type"),
        ("text_message.json", (*MSG, 0, "timestamp"), [1], "messages[0].timestamp"),
        ("text_message.json", (*MSG, 0, "text"), "hello", "messages[0].text"),
        ("text_message.json", (*MSG, 0, "text", "body"), ["hi"], "messages[0].text.body"),
        ("text_message.json", (*MSG, 0, "context"), "wamid.X", "messages[0].context"),
        ("all_message_types.json", (*MSG, 15, "context", "id"), 5, "messages[15].context.id"),
        ("all_message_types.json", (*MSG, 1, "image"), "img", "messages[1].image"),
        ("all_message_types.json", (*MSG, 1, "image", "id"), 1479, "messages[1].image.id"),
        ("all_message_types.json", (*MSG, 1, "image", "caption"), {"t": 1}, "image.caption"),
        ("all_message_types.json", (*MSG, 1, "image", "mime_type"), 5, "image.mime_type"),
        ("all_message_types.json", (*MSG, 1, "image", "sha256"), ["a"], "image.sha256"),
        ("all_message_types.json", (*MSG, 4, "document", "filename"), ["a"], "document.filename"),
        ("all_message_types.json", (*MSG, 6, "location", "latitude"), "37.4", "location.latitude"),
        ("all_message_types.json", (*MSG, 6, "location", "longitude"), True, "location.longitude"),
        ("all_message_types.json", (*MSG, 6, "location", "name"), 1, "location.name"),
        ("all_message_types.json", (*MSG, 6, "location", "address"), {}, "location.address"),
        ("all_message_types.json", (*MSG, 7, "contacts"), {"name": "B"}, "messages[7].contacts"),
        ("all_message_types.json", (*MSG, 7, "contacts", 0), "Barbara", "messages[7].contacts[0]"),
        ("all_message_types.json", (*MSG, 8, "interactive"), "yes", "messages[8].interactive"),
        ("all_message_types.json", (*MSG, 8, "interactive", "type"), ["a"], "interactive.type"),
        (
            "all_message_types.json",
            (*MSG, 8, "interactive", "button_reply"),
            "opt-yes",
            "messages[8].interactive.button_reply",
        ),
        (
            "all_message_types.json",
            (*MSG, 8, "interactive", "button_reply", "title"),
            {"text": "Yes"},
            "messages[8].interactive.button_reply.title",
        ),
        (
            "all_message_types.json",
            (*MSG, 9, "interactive", "list_reply", "id"),
            2,
            "messages[9].interactive.list_reply.id",
        ),
        ("all_message_types.json", (*MSG, 10, "button"), ["STOP"], "messages[10].button"),
        ("all_message_types.json", (*MSG, 10, "button", "text"), ["Stop"], "button.text"),
        ("all_message_types.json", (*MSG, 10, "button", "payload"), {"p": 1}, "button.payload"),
        ("all_message_types.json", (*MSG, 11, "reaction", "emoji"), 1, "reaction.emoji"),
        ("all_message_types.json", (*MSG, 11, "reaction", "message_id"), [], "message_id"),
        ("all_message_types.json", (*MSG, 12, "order"), [], "messages[12].order"),
        ("all_message_types.json", (*MSG, 13, "system", "body"), {}, "messages[13].system.body"),
        ("statuses.json", (*VALUE, "statuses", 0), "sent", f"{AT}.statuses[0]"),
        ("statuses.json", (*VALUE, "statuses", 0, "status"), ["sent"], "statuses[0].status"),
        ("statuses.json", (*VALUE, "statuses", 0, "id"), False, "statuses[0].id"),
        ("statuses.json", (*VALUE, "statuses", 0, "recipient_id"), 1650, "recipient_id"),
        ("statuses.json", (*VALUE, "statuses", 3, "errors"), "boom", "statuses[3].errors"),
        ("statuses.json", (*VALUE, "statuses", 3, "errors"), {"code": 1}, "statuses[3].errors"),
        ("statuses.json", (*VALUE, "statuses", 3, "errors", 0), 131047, "statuses[3].errors[0]"),
    ],
)
def test_wrongly_typed_fields_are_named(
    tenants: TenantDirectory, name: str, path: tuple[str | int, ...], value: object, where: str
) -> None:
    document = replaced(payload("whatsapp", name), path, value)
    with pytest.raises(BadRequest) as info:
        whatsapp.parse(document, tenants, ACME)
    assert info.value.code == "invalid_field"
    assert where in info.value.message
    assert info.value.message.endswith("has the wrong type")


@pytest.mark.parametrize(
    ("key", "value"),
    [("latitude", 10**400), ("latitude", 91), ("longitude", -180.5), ("longitude", -(10**400))],
    ids=["huge latitude", "latitude over 90", "longitude under -180", "huge longitude"],
)
def test_coordinates_out_of_range_are_a_bad_request(
    tenants: TenantDirectory, key: str, value: object
) -> None:
    # JSON numbers have no size limit: float() of a 400-digit one raises OverflowError.
    document = replaced(
        payload("whatsapp", "all_message_types.json"), (*MSG, 6, "location", key), value
    )
    with pytest.raises(BadRequest) as info:
        whatsapp.parse(document, tenants, ACME)
    assert info.value.code == "invalid_field"
    assert f"location.{key}" in info.value.message


def test_absent_optional_fields_are_fine(tenants: TenantDirectory) -> None:
    document = payload("whatsapp", "all_message_types.json")
    value = document["entry"][0]["changes"][0]["value"]
    del value["contacts"]
    value["messages"][1]["image"] = {"id": "1479537139650973", "caption": None}
    value["statuses"] = None
    items = whatsapp.parse(document, tenants, ACME)
    image = items[1]
    assert isinstance(image, InboundMessage) and image.sender.name is None
    assert image.text is None and image.attachments[0].mime_type is None


def test_handle_answers_an_unforeseen_shape_with_400(
    tenants: TenantDirectory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The safety net: an error the field checks did not foresee is still the caller's 400."""

    def broken(*args: object) -> list[InboundMessage]:
        raise TypeError("unhashable type: 'list'")

    producer = RecordingProducer()
    monkeypatch.setattr(whatsapp.inbound, "parse", broken)
    with pytest.raises(BadRequest) as info:
        whatsapp.handle(
            _post(payload_bytes("whatsapp", "text_message.json")), _ingress(tenants, producer)
        )
    assert info.value.code == "invalid_payload"
    assert info.value.message == "payload has an unexpected shape: TypeError"
    assert producer.published == []


def test_handle_lets_named_errors_through_the_safety_net(tenants: TenantDirectory) -> None:
    document = payload("whatsapp", "text_message.json")
    document["entry"][0]["changes"][0]["value"]["messages"] = 5
    body = json.dumps(document).encode()
    with pytest.raises(BadRequest) as info:
        whatsapp.handle(_post(body), _ingress(tenants, RecordingProducer()))
    assert info.value.code == "invalid_field"
    assert "entry[0].changes[0].value.messages" in info.value.message
