"""What the analytics tests share: events built from the canonical test values, and reading
the fact tables back (the analytics-sink function itself: ``start_sink`` in conftest)."""

from __future__ import annotations

from typing import Any

from cloudevents.http import CloudEvent

from shared import events
from shared.models import InboundMessage, OutboundMessage, StatusUpdate


def event_of(item: InboundMessage | OutboundMessage | StatusUpdate) -> CloudEvent:
    if isinstance(item, InboundMessage):
        return events.message_received(item)
    if isinstance(item, OutboundMessage):
        return events.message_outbound(item, "/chat-service/message-processor")
    return events.status_changed(item)


def rows(url: str, table: str, order: str = "event_id") -> list[dict[str, Any]]:
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()


def count(url: str, table: str) -> int:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])
