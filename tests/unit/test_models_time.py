"""When a user's message was sent, as history orders it (shared.store.messages.sent_at)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.store.messages import sent_at

SECOND = datetime(2026, 3, 1, 12, 0, 7, tzinfo=UTC)  # a platform's whole-second stamp


def test_within_the_platforms_second_our_receipt_orders_it() -> None:
    received = SECOND + timedelta(milliseconds=420)
    assert sent_at(SECOND, received) == received


def test_a_late_redelivery_keeps_its_own_second() -> None:
    assert sent_at(SECOND, SECOND + timedelta(hours=3)) == SECOND + timedelta(milliseconds=999)


def test_never_before_the_platforms_time() -> None:
    assert sent_at(SECOND, SECOND - timedelta(seconds=2)) == SECOND
