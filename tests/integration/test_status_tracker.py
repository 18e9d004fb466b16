"""status-tracker on a real MongoDB-protocol server, with statuses posted as KafkaSource does
(binary-mode CloudEvents), and the dispatcher picking up statuses that overtook its send."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from shared.events import message_outbound, status_changed
from shared.models import Author, Channel, DeliveryStatus, OutboundMessage, StatusUpdate
from shared.outbound.dispatcher import Dispatcher
from shared.outbound.send import ChannelApi
from shared.settings import get_settings
from shared.status import HOLDING, StatusTracker
from shared.store.messages import outbound_document
from shared.tenants import get_directory
from tests.builders import deliver, json_body
from tests.integration.outbound_support import (  # noqa: F401
    channel_api_fixture,
    db_fixture,
    outbound_env_fixture,
    sandbox_url_fixture,
)

pytestmark = pytest.mark.integration

SENT, DELIVERED, READ, FAILED = (
    DeliveryStatus.SENT,
    DeliveryStatus.DELIVERED,
    DeliveryStatus.READ,
    DeliveryStatus.FAILED,
)
PHONE_NUMBER_ID, WA_ID = "106540352242922", "16505551234"


def reply(message_id: str = "out-1") -> OutboundMessage:
    return OutboundMessage(
        tenant_id="acme",
        channel=Channel("whatsapp"),
        account_id=PHONE_NUMBER_ID,
        chat_id=WA_ID,
        message_id=message_id,
        text="Your order has shipped.",
        author=Author.BOT,
        created_at="2025-06-09T12:00:00Z",
    )


def sent_message(db: Any, wamid: str, message_id: str = "out-1") -> None:
    """An outbound message the dispatcher has sent and recorded."""
    document = outbound_document(reply(message_id), datetime.now(UTC))
    document["delivery"] |= {"state": "sent", "attempts": 1, "provider_message_id": wamid}
    db.messages.insert_one({**document, "channel_message_id": wamid})


def status(
    wamid: str, value: DeliveryStatus, tenant_id: str = "acme", **extra: Any
) -> StatusUpdate:
    return StatusUpdate(
        tenant_id=tenant_id,
        channel=Channel("whatsapp"),
        account_id=PHONE_NUMBER_ID,
        chat_id=WA_ID,
        platform_message_id=wamid,
        status=value,
        timestamp="2025-06-09T12:00:05Z",
        **extra,
    )


def post(client: FlaskClient, update: StatusUpdate) -> TestResponse:
    return deliver(client, status_changed(update))


def delivery(db: Any, message_id: str = "out-1") -> dict[str, Any]:
    found: dict[str, Any] = db.messages.find_one({"_id": message_id, "tenant_id": "acme"})
    return dict(found["delivery"])


@pytest.fixture
def tracker(make_client: Callable[[str], FlaskClient], outbound_env: Any) -> FlaskClient:
    return make_client("status-tracker")


def test_out_of_order_and_duplicated_statuses_end_read(tracker: FlaskClient, db: Any) -> None:
    sent_message(db, "wamid.A")

    codes = [
        post(tracker, status("wamid.A", value)).status_code
        for value in (READ, DELIVERED, SENT, READ, DELIVERED, SENT)
    ]

    assert codes == [200] * 6
    assert delivery(db)["state"] == "read"


def test_delivered_then_read_in_order(tracker: FlaskClient, db: Any) -> None:
    sent_message(db, "wamid.B")

    post(tracker, status("wamid.B", DELIVERED))
    assert delivery(db)["state"] == "delivered"
    post(tracker, status("wamid.B", READ))
    assert delivery(db)["state"] == "read"


def test_failed_is_recorded_with_the_platform_error_but_not_after_read(
    tracker: FlaskClient, db: Any
) -> None:
    sent_message(db, "wamid.C", "out-c")
    sent_message(db, "wamid.D", "out-d")
    errors = ({"code": 131026, "title": "Message undeliverable"},)

    post(tracker, status("wamid.C", FAILED, errors=errors))
    post(tracker, status("wamid.D", READ))
    post(tracker, status("wamid.D", FAILED, errors=errors))

    failed = delivery(db, "out-c")
    assert failed["state"] == "failed"
    assert failed["error"]["code"] == "131026"
    assert delivery(db, "out-d")["state"] == "read"


def test_unknown_provider_id_is_held_once(tracker: FlaskClient, db: Any) -> None:
    for _ in range(2):
        assert post(tracker, status("wamid.UNKNOWN", DELIVERED)).status_code == 200

    [held] = db[HOLDING].find({"tenant_id": "acme"})
    assert held["channel_message_id"] == "wamid.UNKNOWN"
    assert held["status"] == "delivered"
    assert db.messages.count_documents({}) == 0


def test_another_tenants_status_never_touches_the_message(tracker: FlaskClient, db: Any) -> None:
    sent_message(db, "wamid.E")

    assert post(tracker, status("wamid.E", READ, tenant_id="globex")).status_code == 200

    assert delivery(db)["state"] == "sent"
    assert db[HOLDING].count_documents({"tenant_id": "globex"}) == 1


def test_poison_status_event_is_400(tracker: FlaskClient, db: Any) -> None:
    event = status_changed(status("wamid.F", READ))

    response = deliver(tracker, event, body=json_body({"tenant_id": "acme"}))

    assert response.status_code == 400
    assert db.poison_events.count_documents({"service": "status-tracker"}) == 1


def test_statuses_that_overtook_the_send_are_applied_when_it_is_recorded(
    outbound_env: Any, db: Any
) -> None:
    """The race the holding area exists for: the platform's receipts arrive before the
    dispatcher has written the provider id. The dispatcher applies them right after."""
    tracker = StatusTracker(db)
    assert tracker.apply(status("wamid.EARLY", DELIVERED)) == "held"
    assert tracker.apply(status("wamid.EARLY", SENT)) == "held"

    def graph_api(_: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json={"messaging_product": "whatsapp", "messages": [{"id": "wamid.EARLY"}]}
        )

    db.conversations.insert_one(
        {
            "_id": reply().conversation_key,
            "tenant_id": "acme",
            "channel": "whatsapp",
            "conversation_id": reply().conversation_id,
            "last_inbound_at": datetime.now(UTC),
        }
    )
    api = ChannelApi(2.0, client=httpx.Client(transport=httpx.MockTransport(graph_api)))
    dispatcher = Dispatcher(get_settings(), get_directory(), db, api)

    outcome = dispatcher.handle(message_outbound(reply(), "/chat-service/test"))

    assert outcome == "sent"
    assert delivery(db)["state"] == "delivered"
    assert db[HOLDING].count_documents({}) == 0


def test_health_requires_mongodb(tracker: FlaskClient) -> None:
    response = tracker.get("/api/v2/health")

    assert response.status_code == 200
    assert response.json is not None and response.json["dependencies"] == {"mongodb": "up"}


def test_a_cumulative_receipt_moves_every_sent_reply_up_to_its_time(
    tracker: FlaskClient, db: Any
) -> None:
    """Messenger's watermark: every message sent before it is delivered (or read)."""
    sent_message(db, "mid.1", "out-1")
    sent_message(db, "mid.2", "out-2")
    sent_message(db, "mid.3", "out-3")
    db.messages.update_one(
        {"_id": "out-3"}, {"$set": {"created_at": datetime(2025, 6, 9, 13, 0, tzinfo=UTC)}}
    )
    db.messages.update_one({"_id": "out-2"}, {"$set": {"delivery.state": "pending"}})
    other = outbound_document(dataclasses.replace(reply("out-4"), chat_id="999"), datetime.now(UTC))
    other["delivery"]["state"] = "sent"
    db.messages.insert_one(other)

    read = status("watermark:1", READ, up_to="2025-06-09T12:30:00Z")
    assert post(tracker, read).status_code == 200

    states = {d["_id"]: d["delivery"]["state"] for d in db.messages.find()}
    # Before the watermark and sent → read; not yet sent, later, or another chat → untouched.
    assert states == {"out-1": "read", "out-2": "pending", "out-3": "sent", "out-4": "sent"}
    assert post(tracker, read).status_code == 200  # a repeated receipt changes nothing
    assert {d["_id"]: d["delivery"]["state"] for d in db.messages.find()} == states


def test_a_cumulative_failure_is_poison(tracker: FlaskClient, db: Any) -> None:
    failed = status("watermark:2", FAILED, up_to="2025-06-09T12:30:00Z")
    assert post(tracker, failed).status_code == 400
