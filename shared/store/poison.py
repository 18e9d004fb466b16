"""Poison events: what a handler answered 400, kept in ``poison_events`` for inspection.

A 400 tells KafkaSource never to retry, so without this record the event would only survive
on the dead-letter topic. ``_id`` = ``<service>|<event id>``: the same poison delivered twice
is one record (the first one is kept). Use :func:`recorder` as ``eventfn.run``'s ``on_poison``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from shared.errors import BadRequest
from shared.store.mongo import database, unavailable_as_503

PoisonSink = Callable[[Any, BadRequest], None]


def poison_document(service: str, event: Any, error: BadRequest, now: datetime) -> dict[str, Any]:
    attributes = {key: str(value) for key, value in _attributes(event).items()}
    data = event.data if hasattr(event, "data") else None
    tenant_id = attributes.get("tenantid")
    if tenant_id is None and isinstance(data, dict) and isinstance(data.get("tenant_id"), str):
        tenant_id = data["tenant_id"]
    if isinstance(data, bytes | bytearray):
        # Undecodable bodies are what poison usually is; keep them readable, never lose them.
        data = bytes(data).decode("utf-8", errors="replace")
    return {
        "_id": f"{service}|{attributes.get('id', '')}",
        "tenant_id": tenant_id,
        "service": service,
        "event": {"attributes": attributes, "data": data},
        "error": {"code": error.code, "message": error.message},
        "recorded_at": now,
    }


class PoisonStore:
    def __init__(self, db: Any) -> None:
        self._poison = db["poison_events"]

    def record(self, service: str, event: Any, error: BadRequest, now: datetime) -> None:
        document = poison_document(service, event, error, now)
        key = {"_id": document.pop("_id"), "tenant_id": document["tenant_id"]}
        with unavailable_as_503():
            self._poison.update_one(key, {"$setOnInsert": document}, upsert=True)


def recorder(service: str) -> PoisonSink:
    """An ``on_poison`` sink writing to the configured database, connected on first poison."""

    def record(event: Any, error: BadRequest) -> None:
        from shared.settings import get_settings

        PoisonStore(database(get_settings())).record(service, event, error, datetime.now(UTC))

    return record


def _attributes(event: Any) -> dict[str, Any]:
    get_attributes = getattr(event, "get_attributes", None)
    if callable(get_attributes):
        return dict(get_attributes())
    return {}
