"""``python -m shared.store.migrate``: create the MongoDB indexes and print what exists.

The handlers create the same indexes on first use; running this before a deploy makes the
first event after a rollout not pay for index builds, and shows an operator the result.
Exit status: 0 done, 1 MongoDB unreachable or an index could not be created.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from shared.errors import ChatServiceError, describe
from shared.settings import Settings, get_settings
from shared.store.indexes import ensure_indexes
from shared.store.mongo import database


def describe_index(index: dict[str, Any]) -> dict[str, Any]:
    """The parts of an index an operator checks: name, keys and the options that matter."""
    described: dict[str, Any] = {"name": index["name"], "keys": dict(index["key"])}
    for option in ("unique", "partialFilterExpression", "expireAfterSeconds"):
        if option in index:
            described[option] = index[option]
    return described


def migrate(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    db = database(settings)
    collections = ensure_indexes(db, audit_retention_days=settings.audit_retention_days)
    collections.setdefault("poison_events", [])
    return {
        name: [describe_index(dict(index)) for index in db[name].list_indexes()]
        for name in sorted(collections)
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
    print(json.dumps({"database": settings.mongodb_database, "indexes": result}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
