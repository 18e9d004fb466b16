"""The daily numbers of one tenant, read from the ``daily_report`` view.

:func:`daily_report` is what ``python -m shared.analytics report`` prints and what the
conversations API serves at ``GET /api/v2/chat/reports/daily``: one dict per UTC day and
channel that had messages or statuses, JSON-ready (the day as ``YYYY-MM-DD``, counts as
integers, rates and seconds as floats or ``None`` where there is nothing to divide).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from shared.analytics import db
from shared.errors import InvalidParameter

MAX_DAYS = 366

# The view's columns, in the order of the dicts returned (tenant_id is the caller's, left out).
COLUMNS = (
    "day",
    "channel",
    "conversations",
    "inbound_messages",
    "outbound_messages",
    "bot_messages",
    "fallback_messages",
    "agent_messages",
    "bot_resolved_conversations",
    "handoff_conversations",
    "unanswered_conversations",
    "bot_resolution_rate",
    "handoff_rate",
    "answered_messages",
    "p50_response_s",
    "p95_response_s",
    "reported_messages",
    "delivered_messages",
    "read_messages",
    "failed_messages",
    "delivery_ratio",
    "read_ratio",
)

_QUERY = (
    f"SELECT {', '.join(COLUMNS)} FROM daily_report "  # noqa: S608 (constant column names)
    "WHERE tenant_id = %(tenant)s AND day BETWEEN %(from)s AND %(to)s"
    " AND (%(channel)s::text IS NULL OR channel = %(channel)s)"
    " ORDER BY day, channel"
)


def daily_report(
    pool: Any, tenant_id: str, date_from: date, date_to: date, channel: str | None = None
) -> list[dict[str, Any]]:
    """One dict per (day, channel) of ``tenant_id`` from ``date_from`` to ``date_to``
    (both included, UTC days), ordered by day then channel. ``pool`` is a
    :class:`psycopg_pool.ConnectionPool` or a psycopg connection.

    :class:`~shared.errors.InvalidParameter` (400) for a range that ends before it starts or
    spans more than :data:`MAX_DAYS`; :class:`~shared.errors.DependencyUnavailable` (503)
    while PostgreSQL is down.
    """
    if date_to < date_from:
        raise InvalidParameter("to", "must not be before `from`")
    if (date_to - date_from).days >= MAX_DAYS:
        raise InvalidParameter("to", f"a report spans at most {MAX_DAYS} days")
    parameters = {"tenant": tenant_id, "from": date_from, "to": date_to, "channel": channel}
    with db.unavailable_as_503(), db.connection(pool) as conn:
        rows = conn.execute(_QUERY, parameters).fetchall()
    return [_row(row) for row in rows]


def _row(values: tuple[Any, ...]) -> dict[str, Any]:
    row = dict(zip(COLUMNS, values, strict=True))
    row["day"] = row["day"].isoformat()
    return row
