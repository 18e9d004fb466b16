"""Canonical test values, built one way for every test layer.

``inbound_message()`` is a WhatsApp text from acme's number (the ids of the saved payloads in
``tests/data``); pass any field to change it. ``deliver()`` POSTs a CloudEvent to a handler's
test client as KafkaSource does: HTTP binary content mode, through the SDK's ``to_binary``.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from shared.models import (
    Author,
    Channel,
    DeliveryStatus,
    InboundMessage,
    MessageKind,
    OutboundMessage,
    Sender,
    StatusUpdate,
)

TENANT = "acme"
WHATSAPP_NUMBER = "106540352242922"
WA_USER = "16505551234"


def inbound_message(**changes: Any) -> InboundMessage:
    message = InboundMessage(
        tenant_id=TENANT,
        channel=Channel("whatsapp"),
        account_id=WHATSAPP_NUMBER,
        chat_id=WA_USER,
        platform_message_id="wamid.1",
        sender=Sender(WA_USER, "Sheena"),
        kind=MessageKind.TEXT,
        timestamp="2025-06-08T20:59:43Z",
        text="hello",
    )
    return dataclasses.replace(message, **changes)


def outbound_message(**changes: Any) -> OutboundMessage:
    message = OutboundMessage(
        tenant_id=TENANT,
        channel=Channel("whatsapp"),
        account_id=WHATSAPP_NUMBER,
        chat_id=WA_USER,
        message_id="reply-1",
        text="hi",
        author=Author.BOT,
        created_at="2025-06-08T21:00:00Z",
    )
    return dataclasses.replace(message, **changes)


def status_update(status: DeliveryStatus, **changes: Any) -> StatusUpdate:
    update = StatusUpdate(
        tenant_id=TENANT,
        channel=Channel("whatsapp"),
        account_id=WHATSAPP_NUMBER,
        chat_id=WA_USER,
        platform_message_id="wamid.9",
        status=status,
        timestamp="2025-06-08T21:00:05Z",
    )
    return dataclasses.replace(update, **changes)


def deliver(
    client: FlaskClient,
    event: CloudEvent,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> TestResponse:
    """POST ``event`` in binary content mode (``ce-*`` headers, JSON body); ``body`` replaces
    the encoded data (a malformed delivery), ``headers`` add or replace headers."""
    encoded_headers, encoded_body = to_binary(event)
    sent = {**encoded_headers, **(headers or {})}
    data = body if body is not None else encoded_body
    return client.post("/", data=data, headers=sent)


def json_body(data: Any) -> bytes:
    return json.dumps(data).encode()
