"""Updates to several collections in one round trip (docs/architecture.md, "Round trips").

MongoDB 8.0's ``bulkWrite`` command takes writes to any namespaces in one request and, asked
for verbose results, answers for each write. Ordered, it runs them in order and stops at the
first error, which makes a *guard*: an upsert whose filter holds the ``_id`` of a document that
exists but does not match collides with that ``_id`` (E11000), and nothing after it runs. The
turn's writes use it to store the replies only if their checkpoint move was theirs.

A server older than 8.0 gets the same writes one command each (more round trips, the same
effect): pymongo refuses the client-level bulk write before sending it, and the refusal is
remembered for the process.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.store.mongo import unavailable_as_503

DUPLICATE_KEY = 11000
_without_bulk_write: set[int] = set()  # clients (by id) whose server has no bulkWrite


@dataclass(frozen=True)
class Update:
    collection: str
    filter: Mapping[str, Any]
    update: Mapping[str, Any]
    upsert: bool = False
    many: bool = False


@dataclass(frozen=True)
class Applied:
    matched: int  # documents the filter matched (0 for an upsert that inserted)
    upserted: bool


@dataclass(frozen=True)
class Outcome:
    applied: tuple[Applied, ...]  # one per update that ran, in order
    stopped_at: int | None = None  # the update whose duplicate key stopped the rest

    def matched(self, index: int) -> int:
        """What update ``index`` matched; 0 when it did not run (stopped before it)."""
        return self.applied[index].matched if index < len(self.applied) else 0


def update_all(db: Any, updates: Sequence[Update]) -> Outcome:
    """Run ``updates`` in order, as one ``bulkWrite`` command where the server has it. A
    duplicate key stops the rest and is reported (``stopped_at``); other errors raise."""
    if not updates:
        return Outcome(())
    with unavailable_as_503():
        if id(db.client) not in _without_bulk_write:
            from pymongo.errors import InvalidOperation

            try:
                return _in_one_command(db, updates)
            except InvalidOperation as exc:
                if "8.0" not in str(exc):
                    raise
                _without_bulk_write.add(id(db.client))
        return _one_by_one(db, updates)


def _in_one_command(db: Any, updates: Sequence[Update]) -> Outcome:
    from pymongo import UpdateMany, UpdateOne
    from pymongo.errors import ClientBulkWriteException

    models = [
        (UpdateMany if u.many else UpdateOne)(
            dict(u.filter),
            dict(u.update),
            upsert=u.upsert,
            namespace=f"{db.name}.{u.collection}",
        )
        for u in updates
    ]
    try:
        result = db.client.bulk_write(models, ordered=True, verbose_results=True)
        return Outcome(_applied(result.update_results, len(updates)))
    except ClientBulkWriteException as exc:
        if isinstance(exc.error, Exception):  # the request itself failed (network, server)
            raise exc.error from exc
        errors: list[Any] = list(exc.write_errors or [])
        first: dict[str, Any] = dict(errors[0]) if errors else {}
        if first.get("code") != DUPLICATE_KEY or exc.write_concern_errors:
            raise
        stopped = int(first["idx"])
        partial = exc.partial_result
        done = _applied(partial.update_results if partial is not None else {}, stopped)
        return Outcome(done, stopped_at=stopped)


def _applied(results: Mapping[int, Any], count: int) -> tuple[Applied, ...]:
    out = []
    for index in range(count):
        result = results[index]
        upserted = result.upserted_id is not None
        out.append(Applied(0 if upserted else int(result.matched_count), upserted))
    return tuple(out)


def _one_by_one(db: Any, updates: Sequence[Update]) -> Outcome:
    from pymongo.errors import DuplicateKeyError

    done: list[Applied] = []
    for index, u in enumerate(updates):
        collection = db[u.collection]
        write = collection.update_many if u.many else collection.update_one
        try:
            result = write(dict(u.filter), dict(u.update), upsert=u.upsert)
        except DuplicateKeyError:
            return Outcome(tuple(done), stopped_at=index)
        upserted = result.upserted_id is not None
        done.append(Applied(0 if upserted else int(result.matched_count), upserted))
    return Outcome(tuple(done))
