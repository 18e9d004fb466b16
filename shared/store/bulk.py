"""Updates to several collections in one round trip (docs/architecture.md, "Round trips").

MongoDB 8.0's ``bulkWrite`` command takes writes to any namespaces in one request and, asked
for verbose results, answers for each write. Ordered, it runs them in order and stops at the
first error, which makes a *guard*: an upsert whose filter holds the ``_id`` of a document that
exists but does not match collides with that ``_id`` (E11000), and nothing after it runs. The
turn's writes use it to store the replies only if their checkpoint move was theirs.

A server without the command gets the same writes one command each (more round trips, the
same effect): pymongo refuses the client-level bulk write before sending it to a server older
than 8.0, and an 8.0 server whose feature compatibility version is still 7.0 (a rolling
upgrade) refuses the command itself before running any of it. Either refusal is remembered
for a few minutes, then the command is tried again.

A ``bulkWrite`` stays a retryable write as long as it holds no multi-document update (pymongo
runs one with an ``update_many`` only once): the hot paths use single-document updates.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from shared.dataclass import dataclass
from shared.store.mongo import unavailable_as_503

DUPLICATE_KEY = frozenset({11000, 11001, 12582})  # what pymongo's DuplicateKeyError covers
# CommandNotFound, CommandNotSupported: the server has no bulkWrite (yet: FCV below 8.0).
NO_COMMAND = frozenset({59, 115})
RECHECK_S = 300.0
# Clients (by id) whose server has no bulkWrite, and until when to believe it.
_without_bulk_write: dict[int, float] = {}


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
        if _without_bulk_write.get(id(db.client), 0.0) < time.monotonic():
            try:
                return _in_one_command(db, updates)
            except _NoBulkWrite:
                _without_bulk_write[id(db.client)] = time.monotonic() + RECHECK_S
        return _one_by_one(db, updates)


class _NoBulkWrite(Exception):
    """The server refused the command before running any of it."""


def _in_one_command(db: Any, updates: Sequence[Update]) -> Outcome:
    from pymongo import UpdateMany, UpdateOne
    from pymongo.errors import ClientBulkWriteException, InvalidOperation

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
    except InvalidOperation as exc:  # pymongo's own check: a server older than 8.0
        if "8.0" in str(exc):
            raise _NoBulkWrite from exc
        raise
    except ClientBulkWriteException as exc:
        if _code(exc.error) in NO_COMMAND and exc.partial_result is None:
            raise _NoBulkWrite from exc
        if isinstance(exc.error, Exception):  # the request itself failed (network, server)
            raise exc.error from exc
        errors: list[Any] = list(exc.write_errors or [])
        first: dict[str, Any] = dict(errors[0]) if errors else {}
        if first.get("code") not in DUPLICATE_KEY or exc.write_concern_errors:
            raise
        stopped = int(first["idx"])
        partial = exc.partial_result
        done = _applied(partial.update_results if partial is not None else {}, stopped)
        return Outcome(done, stopped_at=stopped)


def _code(error: Any) -> int | None:
    """A top-level error's code: pymongo reports an exception, or the server's reply as is."""
    code = error.get("code") if isinstance(error, Mapping) else getattr(error, "code", None)
    return code if isinstance(code, int) else None


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
