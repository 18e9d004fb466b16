"""WhatsApp Cloud API webhooks.

Follows Meta's webhook docs (developers.facebook.com/docs/graph-api/webhooks/getting-started
and the WhatsApp Cloud API webhook payload reference):

- ``GET`` is the subscription handshake: ``hub.mode=subscribe`` and a matching
  ``hub.verify_token`` are answered with ``hub.challenge``; anything else gets 403.
- ``POST`` carries ``X-Hub-Signature-256: sha256=<hex>``, HMAC-SHA256 of the raw body keyed
  with the App Secret. It is checked on the raw bytes (re-serialised JSON would not match).
- One POST batches entries → changes → ``value.messages[]`` (inbound) and
  ``value.statuses[]`` (receipts for what we sent). Meta retries for up to 7 days.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from shared import metrics
from shared.channels._payload import (
    allow,
    constant_time_equal,
    coordinate,
    field,
    hmac_sha256_hex,
    optional,
    optional_list,
    parse_json_object,
    shape_errors_as_400,
    typed,
    unix_field,
)
from shared.channels._webhook import candidates, items, publish, signed_by
from shared.channels.whatsapp.account import WhatsAppAccount
from shared.errors import BadRequest, Forbidden, NotFound, Unauthorized
from shared.ingress import Ingress
from shared.models import (
    Channel,
    DeliveryStatus,
    InboundMessage,
    InteractiveReply,
    Location,
    MediaRef,
    MessageKind,
    Reaction,
    Sender,
    StatusUpdate,
)
from shared.tenants import Secret, TenantDirectory
from shared.web import WebRequest, WebResponse

log = logging.getLogger(__name__)

CHANNEL = Channel("whatsapp")
SIGNATURE_HEADER = "X-Hub-Signature-256"
RETRY_WINDOW_S = 7 * 24 * 3600  # Meta retries a webhook for up to 7 days
MEDIA_TYPES = frozenset({"image", "audio", "video", "document", "sticker"})
PATHS = frozenset({"/", "/webhook"})


def sign(app_secret: str, body: bytes) -> str:
    return "sha256=" + hmac_sha256_hex(app_secret, body)


def verify_signature(body: bytes, header: str | None, app_secrets: Iterable[Secret]) -> Secret:
    """The App Secret that signed ``body``; :class:`Unauthorized` when none did."""
    if not header:
        raise Unauthorized(f"missing {SIGNATURE_HEADER} header", code="missing_signature")
    if not header.startswith("sha256="):
        raise Unauthorized(f"{SIGNATURE_HEADER} must start with sha256=", code="bad_signature")
    return signed_by(app_secrets, header, lambda secret: sign(secret.reveal(), body))


def verify_handshake(query: dict[str, str] | Any, tenants: TenantDirectory) -> str:
    """The challenge to echo when Meta's subscription handshake carries a known verify token."""
    token = query.get("hub.verify_token") or ""
    if query.get("hub.mode") != "subscribe" or not token:
        raise Forbidden("not a subscription handshake", code="bad_handshake")
    known = [a.verify_token.reveal() for a in accounts(tenants).values()]
    if not any([constant_time_equal(token, candidate) for candidate in known]):
        raise Forbidden("verify token does not match", code="bad_verify_token")
    return str(query.get("hub.challenge") or "")


def parse(
    document: dict[str, Any], tenants: TenantDirectory, signed_by: Secret | None = None
) -> list[InboundMessage | StatusUpdate]:
    """Every message and status in a (verified) webhook body, in payload order.

    ``signed_by`` is the App Secret that signed the body: each change's phone number must
    belong to an account of that app, so one tenant's app cannot post for another's number.
    """
    if document.get("object") != "whatsapp_business_account":
        raise BadRequest(
            f"object must be 'whatsapp_business_account', got {document.get('object')!r}",
            code="wrong_object",
        )
    items: list[InboundMessage | StatusUpdate] = []
    for e, entry in enumerate(field(document, "entry", "", list)):
        typed(entry, f"entry[{e}]", dict)
        for c, change in enumerate(field(entry, "changes", f"entry[{e}]", list)):
            path = f"entry[{e}].changes[{c}]"
            typed(change, path, dict)
            if optional(change, "field") != "messages":
                log.info("change ignored", extra={"field": optional(change, "field")})
                continue
            value = field(change, "value", path, dict)
            items.extend(_parse_value(value, f"{path}.value", tenants, signed_by))
    return items


def _parse_value(
    value: dict[str, Any], path: str, tenants: TenantDirectory, signed_by: Secret | None
) -> list[InboundMessage | StatusUpdate]:
    metadata = field(value, "metadata", path, dict)
    phone_number_id = field(metadata, "phone_number_id", f"{path}.metadata")
    account = accounts(tenants).get(phone_number_id)
    if account is None:
        raise Forbidden(f"unknown phone_number_id {phone_number_id}", code="unknown_account")
    if signed_by is not None and account.app_secret != signed_by:
        raise Unauthorized(
            f"phone_number_id {phone_number_id} is not signed by its own app", code="bad_signature"
        )
    names = _names(optional_list(value, "contacts", path, dict), f"{path}.contacts")
    items: list[InboundMessage | StatusUpdate] = []
    for i, message in enumerate(optional_list(value, "messages", path, dict)):
        items.append(_message(message, f"{path}.messages[{i}]", account, names))
    for i, status in enumerate(optional_list(value, "statuses", path, dict)):
        items.append(_status(status, f"{path}.statuses[{i}]", account))
    return items


def _names(contacts: list[dict[str, Any]], path: str) -> dict[str, str | None]:
    """Each sender's profile name by wa_id (a contact without a wa_id names nobody)."""
    names: dict[str, str | None] = {}
    for i, contact in enumerate(contacts):
        where = f"{path}[{i}]"
        wa_id = optional(contact, "wa_id", str, where)
        profile = optional(contact, "profile", dict, where)
        name = optional(profile, "name", str, f"{where}.profile")
        if wa_id is not None:
            names[wa_id] = name
    return names


def _message(
    message: dict[str, Any], path: str, account: WhatsAppAccount, names: dict[str, str | None]
) -> InboundMessage:
    wa_id = field(message, "from", path)
    raw_type = field(message, "type", path)
    context = optional(message, "context", dict, path)
    common: dict[str, Any] = {
        "tenant_id": account.tenant_id,
        "channel": CHANNEL,
        "account_id": account.phone_number_id,
        "chat_id": wa_id,
        "platform_message_id": field(message, "id", path),
        "sender": Sender(id=wa_id, name=names.get(wa_id)),
        "timestamp": unix_field(message, "timestamp", path),
        "reply_to": optional(context, "id", str, f"{path}.context"),
        "raw_type": raw_type,
    }
    where = f"{path}.{raw_type}"
    if raw_type == "text":
        return InboundMessage(
            kind=MessageKind.TEXT,
            text=field(field(message, "text", path, dict), "body", where),
            **common,
        )
    if raw_type in MEDIA_TYPES:
        media = field(message, raw_type, path, dict)
        ref = MediaRef(
            type=raw_type,
            id=field(media, "id", where),
            mime_type=optional(media, "mime_type", str, where),
            caption=optional(media, "caption", str, where),
            filename=optional(media, "filename", str, where),
            sha256=optional(media, "sha256", str, where),
        )
        return InboundMessage(
            kind=MessageKind.MEDIA, text=ref.caption, attachments=(ref,), **common
        )
    if raw_type == "location":
        loc = field(message, "location", path, dict)
        location = Location(
            latitude=coordinate(loc, "latitude", where, 90),
            longitude=coordinate(loc, "longitude", where, 180),
            name=optional(loc, "name", str, where),
            address=optional(loc, "address", str, where),
        )
        return InboundMessage(kind=MessageKind.LOCATION, location=location, **common)
    if raw_type == "interactive":
        body = field(message, "interactive", path, dict)
        reply_type = field(body, "type", where)
        reply = field(body, reply_type, where, dict)
        choice = InteractiveReply(
            type=reply_type,
            id=field(reply, "id", f"{where}.{reply_type}"),
            title=optional(reply, "title", str, f"{where}.{reply_type}"),
        )
        return InboundMessage(
            kind=MessageKind.INTERACTIVE, text=choice.title, interactive=choice, **common
        )
    if raw_type == "button":  # a quick-reply button on a template message
        button = field(message, "button", path, dict)
        choice = InteractiveReply(
            type="button",
            id=optional(button, "payload", str, where) or "",
            title=optional(button, "text", str, where),
        )
        return InboundMessage(
            kind=MessageKind.INTERACTIVE, text=choice.title, interactive=choice, **common
        )
    if raw_type == "reaction":
        reaction = field(message, "reaction", path, dict)
        return InboundMessage(
            kind=MessageKind.REACTION,
            reaction=Reaction(
                emoji=optional(reaction, "emoji", str, where) or "",
                message_id=field(reaction, "message_id", where),
            ),
            **common,
        )
    if raw_type == "contacts":
        cards = field(message, "contacts", path, list)
        for i, card in enumerate(cards):
            typed(card, f"{where}[{i}]", dict)
        return InboundMessage(kind=MessageKind.CONTACTS, raw={"contacts": cards}, **common)
    if raw_type == "order":
        return InboundMessage(
            kind=MessageKind.ORDER, raw={"order": field(message, "order", path, dict)}, **common
        )
    if raw_type == "system":
        system = field(message, "system", path, dict)
        return InboundMessage(
            kind=MessageKind.SYSTEM,
            text=optional(system, "body", str, where),
            raw={"system": system},
            **common,
        )
    # "unsupported" and any type Meta adds later: kept, with the raw type and its details.
    raw = {k: v for k, v in message.items() if k not in ("from", "id", "timestamp", "type")}
    return InboundMessage(kind=MessageKind.UNSUPPORTED, raw=raw, **common)


def _status(status: dict[str, Any], path: str, account: WhatsAppAccount) -> StatusUpdate:
    raw_status = field(status, "status", path)
    try:
        state = DeliveryStatus(raw_status)
    except ValueError as exc:
        raise BadRequest(
            f"field '{path}.status' is not a known status", code="invalid_field"
        ) from exc
    return StatusUpdate(
        tenant_id=account.tenant_id,
        channel=CHANNEL,
        account_id=account.phone_number_id,
        chat_id=field(status, "recipient_id", path),
        platform_message_id=field(status, "id", path),
        status=state,
        timestamp=unix_field(status, "timestamp", path),
        errors=tuple(optional_list(status, "errors", path, dict)),
    )


def handle(request: WebRequest, ingress: Ingress) -> WebResponse:
    if request.path not in PATHS:
        raise NotFound(f"no route {request.path}")
    allow(request.method, "GET", "POST")
    if request.method == "GET":
        challenge = verify_handshake(request.query, ingress.tenants)
        metrics.ingress_requests.labels(CHANNEL, "handshake").inc()
        return WebResponse(200, challenge)
    secrets = candidates(
        request.body, named_accounts, accounts(ingress.tenants), lambda a: a.app_secret
    )
    app_secret = verify_signature(request.body, request.header(SIGNATURE_HEADER), secrets)
    document = parse_json_object(request.body)
    with shape_errors_as_400():
        items = parse(document, ingress.tenants, app_secret)
    return publish(ingress, CHANNEL, items, ttl_s=RETRY_WINDOW_S)


def named_accounts(document: Any) -> list[object]:
    """The phone number ids an (unverified) webhook names: ``entry[].changes[].value.metadata``."""
    found: list[object] = []
    for entry in items(document, "entry"):
        for change in items(entry, "changes"):
            value = change.get("value") if isinstance(change, dict) else None
            metadata = value.get("metadata") if isinstance(value, dict) else None
            if isinstance(metadata, dict) and isinstance(metadata.get("phone_number_id"), str):
                found.append(metadata["phone_number_id"])
    return found


def accounts(tenants: TenantDirectory) -> Mapping[str, WhatsAppAccount]:
    return tenants.of(CHANNEL)
