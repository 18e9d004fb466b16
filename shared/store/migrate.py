"""``python -m shared.store.migrate``: create the MongoDB indexes and print what exists.

The handlers create the same indexes on first use; running this before a deploy (the
bootstrap Job) makes the first event after a rollout not pay for index builds, and shows an
operator the result: ``created`` lists what this run added (empty on a second run).
Exit status: 0 done, 1 MongoDB unreachable or an index could not be created.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from shared.errors import ChatServiceError, describe
from shared.settings import Settings, get_settings
from shared.store.indexes import ensure_indexes
from shared.store.mongo import database, unavailable_as_503


def describe_index(index: dict[str, Any]) -> dict[str, Any]:
    """The parts of an index an operator checks: name, keys and the options that matter."""
    described: dict[str, Any] = {"name": index["name"], "keys": dict(index["key"])}
    for option in ("unique", "partialFilterExpression", "expireAfterSeconds"):
        if option in index:
            described[option] = index[option]
    return described


def migrate(settings: Settings) -> dict[str, Any]:
    """The indexes per collection after the run, and those the run created."""
    db = database(settings)
    before = _index_names(db)
    collections = ensure_indexes(db, audit_retention_days=settings.audit_retention_days)
    collections.setdefault("poison_events", [])
    indexes = {
        name: [describe_index(dict(index)) for index in db[name].list_indexes()]
        for name in sorted(collections)
    }
    created = sorted(
        f"{name}.{index['name']}"
        for name, listed in indexes.items()
        for index in listed
        if (name, index["name"]) not in before
    )
    return {"created": created, "indexes": indexes}


def _index_names(db: Any) -> set[tuple[str, str]]:
    with unavailable_as_503():
        return {
            (name, str(index["name"]))
            for name in db.list_collection_names()
            for index in db[name].list_indexes()
        }


def main(argv: list[str] | None = None) -> int:
    del argv  # no options: everything comes from the environment (MONGODB_URI, …)
    settings = get_settings()
    try:
        result = migrate(settings)
    except ChatServiceError as exc:
        print(f"migration failed: {exc.message}", file=sys.stderr)
        return 1
    except Exception as exc:  # an OperationFailure: print it, no traceback for an operator
        print(f"migration failed: {describe(exc)}", file=sys.stderr)
        return 1
    print(json.dumps({"database": settings.mongodb_database, **result}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
