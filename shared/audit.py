"""The audit trail: every CloudEvent on every topic, recorded once, kept for a retention period.

Append-only: one document per event in ``audit`` (docs/data-model.md), never updated. The
``_id`` is ``<source>|<id>|<type>``: CloudEvents makes ``source`` + ``id`` unique per event,
so a redelivery is a duplicate key and a no-op; ``type`` guards against a producer that reuses
an id across event types. (The topic cannot be part of it: a KafkaSource delivers a binary-mode
CloudEvent with its own attributes only, and nothing names the topic it came from.)

Retention is the TTL index on ``recorded_at`` (``AUDIT_RETENTION_DAYS``), created with every
other documented index by :mod:`shared.store.indexes` on first use.

The trail says *that* something happened, not *what was said*: ``data`` keeps the event's ids,
kinds, states and times, the sender's id (not their name), and of a message body only its
SHA-256 and length (:func:`summary`). So redacted text, contact cards and locations do not
outlive their redaction here for the retention period.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from shared.caching import per_process
from shared.errors import BadRequest, describe
from shared.handlers import EventFunction
from shared.settings import get_settings
from shared.store import indexes
from shared.store.mongo import database, mongodb_reachable, unavailable_as_503

Clock = Callable[[], datetime]
# Attributes with a field of their own; the others (datacontenttype, partitionkey, tenantid,
# traceparent, …) are kept under `attributes`.
_OWN_FIELDS = frozenset({"id", "source", "type", "subject", "time", "specversion", "data"})


def audit_id(source: str, event_id: str, event_type: str) -> str:
    return f"{source}|{event_id}|{event_type}"


def audit_document(event: Any, recorded_at: datetime) -> dict[str, Any]:
    attributes: dict[str, Any] = dict(event.get_attributes())
    data = event.data
    tenant_id = attributes.get("tenantid")
    if tenant_id is None and isinstance(data, dict) and isinstance(data.get("tenant_id"), str):
        tenant_id = data["tenant_id"]  # events without the extension (e.g. hand-made ones)
    source, event_id, event_type = (str(attributes.get(k, "")) for k in ("source", "id", "type"))
    return {
        "_id": audit_id(source, event_id, event_type),
        # None for events that belong to no tenant (records Knative wraps as kafka events).
        "tenant_id": tenant_id,
        "type": event_type,
        "event_id": event_id,
        "source": source,
        "subject": attributes.get("subject"),
        "time": _time(attributes.get("time")),
        "attributes": {k: str(v) for k, v in attributes.items() if k not in _OWN_FIELDS},
        "data": summary(data),
        "recorded_at": recorded_at,
    }


# What the trail keeps of an event's data: identifiers, kinds, states and times.
_KEPT = frozenset(
    {
        "tenant_id",
        "channel",
        "account_id",
        "chat_id",
        "conversation_id",
        "conversation_key",
        "platform_message_id",
        "message_id",
        "in_reply_to",
        "reply_to",
        "thread_id",
        "kind",
        "raw_type",
        "edited",
        "author",
        "status",
        "up_to",
        "timestamp",
        "created_at",
        "in_reply_to_at",
    }
)


def summary(data: Any) -> Any:
    """The event data without its content: ids and metadata, a hash and the size of the rest."""
    if isinstance(data, bytes | bytearray):
        return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    if isinstance(data, str):
        return {"size": len(data), "sha256": hashlib.sha256(data.encode()).hexdigest()}
    if not isinstance(data, dict):
        return None
    kept: dict[str, Any] = {k: v for k, v in data.items() if k in _KEPT}
    sender = data.get("sender")
    if isinstance(sender, dict) and "id" in sender:
        kept["sender"] = {"id": sender["id"]}
    text = data.get("text")
    if isinstance(text, str):
        kept["text_sha256"] = hashlib.sha256(text.encode()).hexdigest()
        kept["text_length"] = len(text)
    attachments = data.get("attachments")
    if isinstance(attachments, list):
        kept["attachments"] = len(attachments)
    errors = data.get("errors")
    if isinstance(errors, list):  # a failed delivery's provider codes
        kept["error_codes"] = [e.get("code") for e in errors if isinstance(e, dict)]
    return kept


def _time(value: Any) -> datetime | None:
    """The event's ``time`` as a BSON date (UTC); None when absent or not RFC 3339."""
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class AuditLog:
    def __init__(self, db: Any, clock: Clock | None = None) -> None:
        self._db = db
        self._clock = clock or (lambda: datetime.now(UTC))

    def record(self, event: Any) -> str:
        """Insert the event's audit document: ``"recorded"``, or ``"duplicate"`` if it exists."""
        from bson.errors import InvalidDocument
        from pymongo.errors import DocumentTooLarge, DuplicateKeyError

        document = audit_document(event, self._clock())
        with unavailable_as_503():
            indexes.ensure_once(self._db)
            try:
                self._db["audit"].insert_one(document)
            except DuplicateKeyError:
                return "duplicate"
            except (InvalidDocument, DocumentTooLarge) as exc:
                # It can never be stored as it is: poison (400), kept on the dead-letter topic.
                raise BadRequest(f"event cannot be audited: {describe(exc)}") from exc
        return "recorded"


@per_process
def get_audit_log() -> AuditLog:
    """The process's audit log on the configured database (connects on first insert)."""
    return AuditLog(database(get_settings()))


def health() -> dict[str, bool]:
    return {"mongodb": mongodb_reachable(get_settings().mongodb_uri)}


FUNCTION = EventFunction(
    name="audit-logger",
    handler=lambda: get_audit_log().record,
    health=health,
    required=("mongodb",),
    # No poison store: an event the trail cannot take is answered 400 and kept, whole, on the
    # dead-letter topic (writing it to MongoDB is what just failed).
    poison="dead-letter",
    uses=("core", "mongodb"),
)
