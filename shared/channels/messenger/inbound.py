"""Facebook Messenger Platform webhooks.

Follows Meta's Messenger Platform webhook docs (developers.facebook.com/docs/messenger-platform/
webhooks and the webhook events reference):

- ``GET`` is the subscription handshake: ``hub.mode=subscribe`` and a matching
  ``hub.verify_token`` are answered with ``hub.challenge``; anything else gets 403.
- ``POST`` carries ``X-Hub-Signature-256: sha256=<hex>``, HMAC-SHA256 of the raw body keyed with
  the App Secret, checked on the raw bytes.
- ``{"object": "page", "entry": [{"id": <page id>, "messaging": [event, …]}]}``; an event has
  ``sender.id`` (the person's page-scoped id, PSID), ``recipient.id`` (the Page), a timestamp
  in milliseconds, and one of ``message`` (text, quick reply, attachments; ``is_echo`` for a
  message the Page sent), ``postback`` (a button), ``delivery`` (``mids`` and/or a
  ``watermark``) or ``read`` (a ``watermark``: everything sent before it was read).
- Failed deliveries are retried (Graph API webhooks: for up to 36 hours); Messenger unsubscribes
  an app whose webhook keeps failing for an hour.
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
    rfc3339,
    shape_errors_as_400,
    typed,
)
from shared.channels._webhook import candidates, items, publish, signed_by
from shared.channels.messenger.account import MessengerAccount
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
    Sender,
    StatusUpdate,
)
from shared.tenants import Secret, TenantDirectory
from shared.web import WebRequest, WebResponse

log = logging.getLogger(__name__)

CHANNEL = Channel("messenger")
SIGNATURE_HEADER = "X-Hub-Signature-256"
RETRY_WINDOW_S = 36 * 3600  # Graph API webhooks are retried for up to 36 hours
PATHS = frozenset({"/", "/webhook"})
# Attachment type → MediaRef type ("file" is a document, as on the other channels).
MEDIA_TYPES = {"image": "image", "audio": "audio", "video": "video", "file": "document"}

Item = InboundMessage | StatusUpdate


def sign(app_secret: str, body: bytes) -> str:
    return "sha256=" + hmac_sha256_hex(app_secret, body)


def verify_signature(body: bytes, header: str | None, app_secrets: Iterable[Secret]) -> Secret:
    """The App Secret that signed ``body``; :class:`Unauthorized` when none did."""
    if not header:
        raise Unauthorized(f"missing {SIGNATURE_HEADER} header", code="missing_signature")
    if not header.startswith("sha256="):
        raise Unauthorized(f"{SIGNATURE_HEADER} must start with sha256=", code="bad_signature")
    return signed_by(app_secrets, header, lambda secret: sign(secret.reveal(), body))


def verify_handshake(query: Mapping[str, str], tenants: TenantDirectory) -> str:
    """The challenge to echo when the subscription handshake carries a known verify token."""
    token = query.get("hub.verify_token") or ""
    if query.get("hub.mode") != "subscribe" or not token:
        raise Forbidden("not a subscription handshake", code="bad_handshake")
    known = [a.verify_token.reveal() for a in accounts(tenants).values()]
    if not any([constant_time_equal(token, candidate) for candidate in known]):
        raise Forbidden("verify token does not match", code="bad_verify_token")
    return str(query.get("hub.challenge") or "")


def parse(
    document: dict[str, Any], tenants: TenantDirectory, signed_by: Secret | None = None
) -> list[Item]:
    """Every message and receipt in a (verified) webhook body, in payload order.

    ``signed_by`` is the App Secret that signed the body: each entry's Page must belong to an
    account of that app, so one tenant's app cannot post for another tenant's Page.
    """
    if document.get("object") != "page":
        raise BadRequest(
            f"object must be 'page', got {document.get('object')!r}", code="wrong_object"
        )
    items: list[Item] = []
    for e, entry in enumerate(field(document, "entry", "", list)):
        path = f"entry[{e}]"
        typed(entry, path, dict)
        page_id = str(field(entry, "id", path, (str, int)))
        account = accounts(tenants).get(page_id)
        if account is None:
            raise Forbidden(f"unknown page id {page_id}", code="unknown_account")
        if signed_by is not None and account.app_secret != signed_by:
            raise Unauthorized(f"page {page_id} is not signed by its own app", code="bad_signature")
        for i, event in enumerate(optional_list(entry, "messaging", path, dict)):
            items.extend(_event(event, f"{path}.messaging[{i}]", account))
    return items


def _event(event: dict[str, Any], path: str, account: MessengerAccount) -> list[Item]:
    sender = _id(field(event, "sender", path, dict), f"{path}.sender")
    recipient = _id(field(event, "recipient", path, dict), f"{path}.recipient")
    message = optional(event, "message", dict, path)
    if message is not None and optional(message, "is_echo", bool, f"{path}.message"):
        # A message the Page sent (ours, or an agent's in the Page inbox): its "sent" receipt.
        _expect_page(sender, account, f"{path}.sender.id")
        return [_echo(message, event, path, account, user=recipient)]
    _expect_page(recipient, account, f"{path}.recipient.id")
    if message is not None:
        return [_message(message, event, path, account, user=sender)]
    if "postback" in event:
        return [_postback(field(event, "postback", path, dict), event, path, account, sender)]
    if "delivery" in event:
        return _delivery(field(event, "delivery", path, dict), event, path, account, sender)
    if "read" in event:
        return [_read(field(event, "read", path, dict), event, path, account, sender)]
    log.info("messenger event ignored", extra={"fields": sorted(event)})
    return []


def _id(party: dict[str, Any], path: str) -> str:
    return str(field(party, "id", path, (str, int)))


def _expect_page(page_id: str, account: MessengerAccount, where: str) -> None:
    if page_id != account.page_id:
        raise BadRequest(f"field '{where}' is not the entry's page", code="invalid_field")


def _millis(obj: Any, key: str, path: str) -> str:
    """A Messenger timestamp (milliseconds since the epoch) as RFC 3339."""
    value = field(obj, key, path, int)
    try:
        return rfc3339(value / 1000)
    except (OverflowError, OSError, ValueError) as exc:
        raise BadRequest(f"field '{path}.{key}' is not a time", code="invalid_field") from exc


def _common(
    event: dict[str, Any], path: str, account: MessengerAccount, user: str
) -> dict[str, Any]:
    return {
        "tenant_id": account.tenant_id,
        "channel": CHANNEL,
        "account_id": account.page_id,
        "chat_id": user,
        "timestamp": _millis(event, "timestamp", path),
    }


def _message(
    message: dict[str, Any], event: dict[str, Any], path: str, account: MessengerAccount, user: str
) -> InboundMessage:
    where = f"{path}.message"
    text = optional(message, "text", str, where)
    common = {
        **_common(event, path, account, user),
        "platform_message_id": field(message, "mid", where),
        "sender": Sender(id=user),
        "reply_to": optional(optional(message, "reply_to", dict, where), "mid", str, where),
    }
    quick_reply = optional(message, "quick_reply", dict, where)
    if quick_reply is not None:
        choice = InteractiveReply(
            type="quick_reply",
            id=field(quick_reply, "payload", f"{where}.quick_reply"),
            title=text,
        )
        return InboundMessage(
            kind=MessageKind.INTERACTIVE,
            text=text,
            interactive=choice,
            raw_type="quick_reply",
            **common,
        )
    attachments = optional_list(message, "attachments", where, dict)
    if attachments:
        return _attachments(attachments, text, f"{where}.attachments", common)
    if text is not None:
        return InboundMessage(kind=MessageKind.TEXT, text=text, raw_type="text", **common)
    raw = {k: v for k, v in message.items() if k != "mid"}
    return InboundMessage(kind=MessageKind.UNSUPPORTED, raw=raw, raw_type="unknown", **common)


def _attachments(
    attachments: list[dict[str, Any]], text: str | None, path: str, common: dict[str, Any]
) -> InboundMessage:
    kinds = [field(a, "type", f"{path}[{i}]") for i, a in enumerate(attachments)]
    if kinds == ["location"]:
        payload = field(attachments[0], "payload", f"{path}[0]", dict)
        where = f"{path}[0].payload.coordinates"
        point = field(payload, "coordinates", f"{path}[0].payload", dict)
        location = Location(
            latitude=coordinate(point, "lat", where, 90),
            longitude=coordinate(point, "long", where, 180),
            name=optional(payload, "title", str, f"{path}[0].payload"),
        )
        return InboundMessage(
            kind=MessageKind.LOCATION, location=location, raw_type="location", **common
        )
    if all(kind in MEDIA_TYPES for kind in kinds):
        refs = tuple(
            _media(a, kind, f"{path}[{i}]")
            for i, (a, kind) in enumerate(zip(attachments, kinds, strict=True))
        )
        return InboundMessage(
            kind=MessageKind.MEDIA, text=text, attachments=refs, raw_type=kinds[0], **common
        )
    # fallback (a shared link), template, product, … : kept, with what Messenger sent.
    return InboundMessage(
        kind=MessageKind.UNSUPPORTED,
        text=text,
        raw={"attachments": attachments},
        raw_type=kinds[0],
        **common,
    )


def _media(attachment: dict[str, Any], kind: str, path: str) -> MediaRef:
    payload = field(attachment, "payload", path, dict)
    where = f"{path}.payload"
    url = optional(payload, "url", str, where)
    sticker = optional(payload, "sticker_id", (str, int), where)
    identifier = str(sticker) if sticker is not None else url
    if not identifier:
        raise BadRequest(f"missing field '{where}.url'", code="missing_field")
    return MediaRef(
        type="sticker" if sticker is not None else MEDIA_TYPES[kind],
        id=identifier,
        url=url,
    )


def _postback(
    postback: dict[str, Any], event: dict[str, Any], path: str, account: MessengerAccount, user: str
) -> InboundMessage:
    where = f"{path}.postback"
    common = _common(event, path, account, user)
    title = optional(postback, "title", str, where)
    # A postback has a mid on current API versions; before, the person and time identify it.
    mid = optional(postback, "mid", str, where) or f"postback/{user}/{event.get('timestamp')}"
    choice = InteractiveReply(type="postback", id=field(postback, "payload", where), title=title)
    return InboundMessage(
        platform_message_id=mid,
        sender=Sender(id=user),
        kind=MessageKind.INTERACTIVE,
        text=title,
        interactive=choice,
        raw_type="postback",
        **common,
    )


def _status(
    account: MessengerAccount,
    user: str,
    message_id: str,
    status: DeliveryStatus,
    when: str,
    *,
    up_to: str | None = None,
) -> StatusUpdate:
    return StatusUpdate(
        tenant_id=account.tenant_id,
        channel=CHANNEL,
        account_id=account.page_id,
        chat_id=user,
        platform_message_id=message_id,
        status=status,
        timestamp=when,
        up_to=up_to,
    )


def _echo(
    message: dict[str, Any], event: dict[str, Any], path: str, account: MessengerAccount, user: str
) -> StatusUpdate:
    mid = field(message, "mid", f"{path}.message")
    return _status(account, user, mid, DeliveryStatus.SENT, _millis(event, "timestamp", path))


def _delivery(
    delivery: dict[str, Any], event: dict[str, Any], path: str, account: MessengerAccount, user: str
) -> list[Item]:
    """Per-message receipts where ``mids`` are given; else everything up to the watermark."""
    where = f"{path}.delivery"
    watermark = _millis(delivery, "watermark", where)
    mids = optional_list(delivery, "mids", where, str)
    if mids:
        return [_status(account, user, mid, DeliveryStatus.DELIVERED, watermark) for mid in mids]
    receipt = f"delivered/{delivery['watermark']}"  # identifies the receipt, not a message
    return [_status(account, user, receipt, DeliveryStatus.DELIVERED, watermark, up_to=watermark)]


def _read(
    read: dict[str, Any], event: dict[str, Any], path: str, account: MessengerAccount, user: str
) -> StatusUpdate:
    where = f"{path}.read"
    watermark = _millis(read, "watermark", where)
    receipt = f"read/{read['watermark']}"  # identifies the receipt, not a message
    return _status(account, user, receipt, DeliveryStatus.READ, watermark, up_to=watermark)


def handle(request: WebRequest, ingress: Ingress) -> WebResponse:
    if request.path not in PATHS:
        raise NotFound(f"no route {request.path}")
    allow(request.method, "GET", "POST")
    if request.method == "GET":
        challenge = verify_handshake(request.query, ingress.tenants)
        metrics.ingress_requests.labels(CHANNEL, "handshake").inc()
        return WebResponse(200, challenge)
    secrets = candidates(
        request.body, named_pages, accounts(ingress.tenants), lambda a: a.app_secret
    )
    app_secret = verify_signature(request.body, request.header(SIGNATURE_HEADER), secrets)
    document = parse_json_object(request.body)
    with shape_errors_as_400():
        items = parse(document, ingress.tenants, app_secret)
    return publish(ingress, CHANNEL, items, ttl_s=RETRY_WINDOW_S)


def named_pages(document: Any) -> list[object]:
    """The Page ids an (unverified) webhook names: ``entry[].id``."""
    return [
        entry.get("id")
        for entry in items(document, "entry")
        if isinstance(entry, dict) and isinstance(entry.get("id"), str | int)
    ]


def accounts(tenants: TenantDirectory) -> Mapping[str, MessengerAccount]:
    return tenants.of(CHANNEL)
