"""CloudEvents for the canonical model: versioned types, deterministic ids, partition keys.

Event ids are derived from the platform's own message id, so a webhook the platform delivers
twice becomes the same event twice, and every consumer can dedupe on ``(source, id)``.
"""

from __future__ import annotations

import uuid
from typing import Any

from cloudevents.http import CloudEvent

from shared import tracing
from shared.models import InboundMessage, OutboundMessage, StatusUpdate

MESSAGE_RECEIVED = "com.chatbot.message.received.v1"
MESSAGE_STATUS = "com.chatbot.message.status.v1"
MESSAGE_OUTBOUND = "com.chatbot.message.outbound.v1"
TYPES = frozenset({MESSAGE_RECEIVED, MESSAGE_STATUS, MESSAGE_OUTBOUND})
# An extension attribute on a received message the webhook sent to the overflow topic: its
# sender was past their per-minute budget (shared.ingress). The processor stores it, unanswered.
OVERFLOW_ATTRIBUTE = "overflow"
OVERFLOW_RATE_LIMITED = "rate_limited"


def type_label(event_type: str) -> str:
    """An event type as a metric label: ours by name, anything else ``other`` (bounded)."""
    return event_type if event_type in TYPES else "other"


# Fixed namespace for uuid5 ids; changing it would break dedupe across a deploy.
_ID_NAMESPACE = uuid.UUID("7b8f1c52-3f0e-4c55-9a51-0c4c2b1de6a4")


def deterministic_id(*parts: str) -> str:
    """The same parts always give the same id; different parts practically never collide."""
    return str(uuid.uuid5(_ID_NAMESPACE, "\x1f".join(parts)))


def event_source(channel: str, account_id: str) -> str:
    return f"/chat-service/channels/{channel}/{account_id}"


def message_received(message: InboundMessage) -> CloudEvent:
    return _event(
        type_=MESSAGE_RECEIVED,
        id_=deterministic_id(
            "message",
            message.tenant_id,
            message.channel,
            message.account_id,
            message.platform_message_id,
        ),
        source=event_source(message.channel, message.account_id),
        subject=message.conversation_id,
        time=message.timestamp,
        tenant_id=message.tenant_id,
        partition_key=message.conversation_key,
        data=message.to_dict(),
    )


def status_changed(update: StatusUpdate) -> CloudEvent:
    # A status is identified by (message id, status): "sent" and "read" of one message are two
    # events, the same "read" delivered twice is one.
    return _event(
        type_=MESSAGE_STATUS,
        id_=deterministic_id(
            "status",
            update.tenant_id,
            update.channel,
            update.account_id,
            update.platform_message_id,
            update.status,
        ),
        source=event_source(update.channel, update.account_id),
        subject=update.conversation_id,
        time=update.timestamp,
        tenant_id=update.tenant_id,
        partition_key=update.conversation_key,
        data=update.to_dict(),
    )


def outbound_id(inbound_event_id: str, part: int = 0) -> str:
    """The id of the ``part``-th reply to an inbound event: the same on every redelivery, so a
    processor that runs twice publishes the same reply event and it is sent once."""
    return deterministic_id("outbound", inbound_event_id, str(part))


def message_outbound(message: OutboundMessage, source: str) -> CloudEvent:
    return _event(
        type_=MESSAGE_OUTBOUND,
        id_=message.message_id,
        source=source,
        subject=message.conversation_id,
        time=message.created_at,
        tenant_id=message.tenant_id,
        partition_key=message.conversation_key,
        data=message.to_dict(),
    )


def _event(
    *,
    type_: str,
    id_: str,
    source: str,
    subject: str,
    time: str,
    tenant_id: str,
    partition_key: str,
    data: dict[str, Any],
) -> CloudEvent:
    attributes = {
        "specversion": "1.0",
        "type": type_,
        "id": id_,
        "source": source,
        "subject": subject,
        "time": time,
        "datacontenttype": "application/json",
        "partitionkey": partition_key,
        "tenantid": tenant_id,
    }
    # The CloudEvents distributed-tracing extension: the span that published the event.
    traceparent = tracing.current.get()
    if traceparent:
        attributes["traceparent"] = traceparent
    return CloudEvent(attributes, data)
