"""analytics-sink: every message, reply and delivery status as one fact row in PostgreSQL.

Its KafkaSource reads the inbound, outbound and status topics in a consumer group of its own.
Each event becomes one row (:mod:`shared.analytics.facts`) inserted with
``ON CONFLICT (event_id) DO NOTHING``: a redelivery, or a replay from the dead-letter topic,
finds the row and is done (200, ``duplicate``) without counting twice. PostgreSQL down or the
schema missing → 503 and the KafkaSource retries; an event that can never be a fact → 400
(poison, dead-lettered; not stored in MongoDB, which this handler does not use).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from shared.analytics import db
from shared.analytics.facts import Fact, fact_of
from shared.analytics.hashing import Hasher
from shared.caching import per_process
from shared.errors import BadRequest, describe
from shared.handlers import EventFunction
from shared.settings import get_settings

_INSERTS: dict[str, str] = {}


def insert_statement(fact: Fact) -> str:
    """``INSERT … ON CONFLICT (event_id) DO NOTHING`` for the fact's table and fields."""
    table = type(fact).table
    statement = _INSERTS.get(table)
    if statement is None:
        names = [f.name for f in dataclasses.fields(fact)]
        statement = (
            f"INSERT INTO {table} ({', '.join(names)}) "  # noqa: S608 (names are our fields)
            f"VALUES ({', '.join('%s' for _ in names)}) ON CONFLICT (event_id) DO NOTHING"
        )
        _INSERTS[table] = statement
    return statement


class AnalyticsSink:
    def __init__(
        self, pool: Any, hasher: Hasher | None = None, clock: Callable[[], datetime] | None = None
    ):
        self._pool = pool
        self._hasher = hasher
        self._clock = clock or (lambda: datetime.now(UTC))

    def record(self, event: Any) -> str:
        """Store the event's fact: ``"recorded"``, or ``"duplicate"`` if it is there already."""
        hasher = self._hasher or Hasher.from_setting(get_settings().analytics_hash_key)
        fact = fact_of(event, hasher, self._clock())
        values = dataclasses.astuple(fact)
        import psycopg

        with db.unavailable_as_503(), db.connection(self._pool) as conn:
            try:
                cursor = conn.execute(insert_statement(fact), values)
            except psycopg.DataError as exc:
                # A value PostgreSQL refuses (a NUL byte in an id): retrying cannot change it.
                raise BadRequest(
                    f"the fact cannot be stored: {describe(exc)}", code="unstorable_event"
                ) from exc
            inserted = cursor.rowcount == 1
        return "recorded" if inserted else "duplicate"


@per_process
def get_sink() -> AnalyticsSink:
    """The process's sink on the configured database (connects on the first event)."""
    return AnalyticsSink(db.get_pool())


def health() -> dict[str, bool]:
    return {db.DEPENDENCY: db.reachable(db.get_pool())}


FUNCTION = EventFunction(
    name="analytics-sink",
    handler=lambda: get_sink().record,
    health=health,
    required=(db.DEPENDENCY,),
    # An event that cannot be a fact is answered 400 and kept, whole, on the dead-letter topic;
    # this handler has no MongoDB to keep it in.
    poison="dead-letter",
    uses=("core", "postgres"),
)
