"""The MongoDB indexes of docs/data-model.md, created by code and nowhere else.

``ensure_indexes`` is idempotent (creating an index that exists with the same spec is a no-op),
so every handler runs it once per process on first use (:func:`ensure_once`) and
``python -m shared.store.migrate`` runs it before a deploy. Index names are fixed here so a
test, an operator and the migration output all talk about the same thing.
"""

from __future__ import annotations

import threading
from typing import Any

from shared.dataclass import dataclass, field
from shared.store.mongo import unavailable_as_503

DAY_S = 86_400
# Only messages that carry a platform id are in the unique backstop: an outbound message has
# no provider id until it is sent, and many such documents must coexist.
HAS_PLATFORM_ID = {"channel_message_id": {"$type": "string"}}


@dataclass(frozen=True)
class IndexSpec:
    collection: str
    name: str
    keys: tuple[tuple[str, int], ...]
    options: dict[str, Any] = field(default_factory=dict)


def specs(audit_retention_days: int) -> tuple[IndexSpec, ...]:
    return (
        IndexSpec(
            "conversations",
            "tenant_channel_conversation_unique",
            (("tenant_id", 1), ("channel", 1), ("conversation_id", 1)),
            {"unique": True},
        ),
        IndexSpec(
            "conversations",
            "tenant_state_last_message",
            (("tenant_id", 1), ("state", 1), ("last_message_at", 1)),
        ),
        # The conversations API's list: newest first, its cursor is (updated_at, _id).
        IndexSpec(
            "conversations",
            "tenant_updated",
            (("tenant_id", 1), ("updated_at", -1), ("_id", -1)),
        ),
        # A GDPR export or erase finds the user's conversations by participant: without this
        # it read every conversation of the tenant's channel.
        IndexSpec(
            "conversations",
            "tenant_channel_participant",
            (("tenant_id", 1), ("channel", 1), ("participant.id", 1)),
        ),
        IndexSpec(
            "messages",
            "tenant_channel_message_id_unique",
            (("tenant_id", 1), ("channel", 1), ("channel_message_id", 1)),
            {"unique": True, "partialFilterExpression": HAS_PLATFORM_ID},
        ),
        IndexSpec(
            "messages",
            "tenant_conversation_created",
            (("tenant_id", 1), ("conversation_key", 1), ("created_at", 1)),
        ),
        IndexSpec(
            "audit",
            "recorded_at_ttl",
            (("recorded_at", 1),),
            {"expireAfterSeconds": audit_retention_days * DAY_S},
        ),
        # Statuses that arrived before their message's provider id was recorded: found by that
        # id, and dropped after WhatsApp's 7-day retry window (nothing will claim them then).
        IndexSpec(
            "pending_statuses",
            "tenant_channel_message_id",
            (("tenant_id", 1), ("channel", 1), ("channel_message_id", 1)),
        ),
        IndexSpec(
            "pending_statuses",
            "received_at_ttl",
            (("received_at", 1),),
            {"expireAfterSeconds": 7 * DAY_S},
        ),
        # poison_events needs no index beyond _id (`<service>|<event id>`): it is read by hand.
    )


def ensure_indexes(db: Any, *, audit_retention_days: int | None = None) -> dict[str, list[str]]:
    """Create every documented index; returns the index names per collection."""
    from pymongo.errors import OperationFailure

    if audit_retention_days is None:
        from shared.settings import get_settings

        audit_retention_days = get_settings().audit_retention_days
    created: dict[str, list[str]] = {}
    with unavailable_as_503():
        for spec in specs(audit_retention_days):
            try:
                db[spec.collection].create_index(list(spec.keys), name=spec.name, **spec.options)
            except OperationFailure as exc:
                # A changed AUDIT_RETENTION_DAYS makes the same TTL index conflict (MongoDB
                # says 85 IndexOptionsConflict, SecantusDB 86); collMod changes the TTL in
                # place, where dropping and rebuilding would leave a window without it.
                if exc.code not in (85, 86) or "expireAfterSeconds" not in spec.options:
                    raise
                db.command(
                    "collMod",
                    spec.collection,
                    index={
                        "name": spec.name,
                        "expireAfterSeconds": spec.options["expireAfterSeconds"],
                    },
                )
            created.setdefault(spec.collection, []).append(spec.name)
    return created


_ensured: set[tuple[int, str]] = set()
_lock = threading.Lock()


def ensure_once(db: Any) -> None:
    """:func:`ensure_indexes` once per process and database (a failure is retried next call)."""
    marker = (id(db.client), db.name)
    if marker in _ensured:
        return
    with _lock:
        if marker not in _ensured:
            ensure_indexes(db)
            _ensured.add(marker)
