"""The delivery state machine, pure: forward-only, tolerant of duplicates and reordering."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from cloudevents.http import CloudEvent

from shared.errors import BadRequest
from shared.events import MESSAGE_STATUS, status_changed
from shared.models import Channel, DeliveryStatus, StatusUpdate
from shared.status import allowed_previous, moves_forward, parse_event, status_error

SENT, DELIVERED, READ, FAILED = (
    DeliveryStatus.SENT,
    DeliveryStatus.DELIVERED,
    DeliveryStatus.READ,
    DeliveryStatus.FAILED,
)


def fold(start: str | None, statuses: list[DeliveryStatus]) -> str | None:
    """What the conditional updates leave behind, one status after another."""
    state = start
    for status in statuses:
        if moves_forward(state, status):
            state = str(status)
    return state


def update(status: DeliveryStatus, errors: tuple[dict[str, Any], ...] = ()) -> StatusUpdate:
    return StatusUpdate(
        tenant_id="acme",
        channel=Channel("whatsapp"),
        account_id="106540352242922",
        chat_id="16505551234",
        platform_message_id="wamid.OUT1",
        status=status,
        timestamp="2025-06-09T12:00:00Z",
        errors=errors,
    )


def test_forward_moves() -> None:
    assert moves_forward("sent", DELIVERED)
    assert moves_forward("delivered", READ)
    assert moves_forward("sent", READ)  # WhatsApp may skip delivered
    assert moves_forward("sending", SENT)


def test_backward_and_repeated_moves_are_refused() -> None:
    assert not moves_forward("read", DELIVERED)
    assert not moves_forward("read", SENT)
    assert not moves_forward("delivered", DELIVERED)
    assert not moves_forward("read", READ)


def test_failed_only_before_delivery() -> None:
    assert moves_forward("sent", FAILED)
    assert not moves_forward("delivered", FAILED)
    assert not moves_forward("read", FAILED)
    assert not moves_forward("failed", FAILED)


def test_proof_of_delivery_moves_on_from_failed() -> None:
    assert moves_forward("failed", DELIVERED)
    assert moves_forward("failed", READ)
    assert not moves_forward("failed", SENT)


@pytest.mark.parametrize("order", list(itertools.permutations([SENT, DELIVERED, READ])))
def test_every_order_of_sent_delivered_read_ends_read(order: tuple[DeliveryStatus, ...]) -> None:
    assert fold("sent", [*order, *order]) == "read"  # and every status twice


def test_failed_late_after_read_is_ignored() -> None:
    assert fold("sent", [READ, FAILED, DELIVERED]) == "read"


def test_allowed_previous_is_the_update_filter() -> None:
    assert allowed_previous(READ) == (None, "pending", "sending", "sent", "delivered", "failed")
    assert allowed_previous(SENT) == (None, "pending", "sending")
    assert allowed_previous(FAILED) == (None, "pending", "sending", "sent")


def test_failed_status_error_keeps_the_platform_errors() -> None:
    errors = ({"code": 131026, "title": "Message undeliverable"},)

    assert status_error(update(FAILED, errors)) == {
        "code": "131026",
        "message": "Message undeliverable",
        "provider_errors": [{"code": 131026, "title": "Message undeliverable"}],
    }
    assert status_error(update(READ)) is None


def test_parse_event_round_trip() -> None:
    event = status_changed(update(READ))

    assert parse_event(event) == update(READ)


def test_parse_event_refuses_a_tenant_mismatch() -> None:
    event = status_changed(update(READ))
    event["tenantid"] = "globex"

    with pytest.raises(BadRequest) as caught:
        parse_event(event)

    assert caught.value.code == "tenant_mismatch"


@pytest.mark.parametrize(
    ("attributes", "data", "code"),
    [
        ({"type": "com.chatbot.message.received.v1"}, {}, "unexpected_event_type"),
        ({"type": MESSAGE_STATUS}, {"tenant_id": "acme"}, "malformed_event"),
        ({"type": MESSAGE_STATUS}, {**update(READ).to_dict(), "status": "lost"}, "malformed_event"),
    ],
)
def test_parse_event_poison(attributes: dict[str, str], data: dict[str, Any], code: str) -> None:
    event = CloudEvent({"source": "/test", "id": "e-1", **attributes}, data)

    with pytest.raises(BadRequest) as caught:
        parse_event(event)

    assert caught.value.code == code
