"""analytics-sink against a real PostgreSQL, driven as KafkaSource drives it: one fact per
event however often it is delivered, 400 for poison, 503 while PostgreSQL is unreachable, and
the GDPR erase of one user's rows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from cloudevents.http import CloudEvent
from flask.testing import FlaskClient

from shared.analytics import erase_user, get_pool
from shared.analytics.hashing import Hasher
from shared.devstack.servers import free_port
from shared.models import (
    Author,
    Channel,
    DeliveryStatus,
    InboundMessage,
    OutboundMessage,
    Sender,
    StatusUpdate,
)
from tests.builders import (
    WA_USER,
    WHATSAPP_NUMBER,
    deliver,
    inbound_message,
    outbound_message,
    status_update,
)
from tests.integration.analytics_support import count, event_of, rows
from tests.integration.conftest import ANALYTICS_HASH_KEY

pytestmark = pytest.mark.integration

HASHER = Hasher(ANALYTICS_HASH_KEY.encode())


def test_an_event_delivered_twice_is_one_fact(
    start_sink: Callable[..., FlaskClient], analytics_db: str
) -> None:
    client = start_sink()
    event = event_of(inbound_message())

    assert deliver(client, event).status_code == 200
    assert deliver(client, event).status_code == 200  # redelivery: done, not an error

    (row,) = rows(analytics_db, "message_facts")
    assert datetime.now(UTC) - row.pop("recorded_at") < timedelta(minutes=1)
    assert row == {
        "event_id": event["id"],
        "tenant_id": "acme",
        "channel": "whatsapp",
        "direction": "inbound",
        "kind": "text",
        "author": "user",
        "handoff": False,
        "conversation_hash": HASHER.conversation(
            "acme", "whatsapp", f"{WHATSAPP_NUMBER}/{WA_USER}"
        ),
        "user_hash": HASHER.user("acme", "whatsapp", WA_USER),
        "occurred_at": datetime(2025, 6, 8, 20, 59, 43, tzinfo=UTC),
        "in_reply_to_at": None,
        "day": datetime(2025, 6, 8).date(),
    }


def test_replies_and_statuses_are_facts_once_each(
    start_sink: Callable[..., FlaskClient], analytics_db: str
) -> None:
    client = start_sink()
    reply = outbound_message(in_reply_to_at="2025-06-08T20:59:43Z", author=Author.FALLBACK)
    statuses = [status_update(s) for s in (DeliveryStatus.SENT, DeliveryStatus.READ)]
    delivered: list[OutboundMessage | StatusUpdate] = [reply, *statuses, reply, *statuses]
    for item in delivered:  # everything delivered twice
        assert deliver(client, event_of(item)).status_code == 200

    (fact,) = rows(analytics_db, "message_facts")
    assert (fact["direction"], fact["author"], fact["user_hash"]) == ("outbound", "fallback", None)
    assert fact["in_reply_to_at"] == datetime(2025, 6, 8, 20, 59, 43, tzinfo=UTC)
    assert sorted(r["status"] for r in rows(analytics_db, "status_facts")) == ["read", "sent"]


def test_poison_is_400_and_stores_nothing(
    start_sink: Callable[..., FlaskClient], analytics_db: str
) -> None:
    client = start_sink()
    wrapped = CloudEvent(
        {"id": "partition:0/offset:1", "source": "/k", "type": "dev.knative.kafka.event"}
    )
    assert (
        deliver(client, wrapped, body=b"x", headers={"content-type": "text/plain"}).status_code
        == 400
    )

    broken = event_of(inbound_message())
    response = deliver(client, broken, body=b'{"tenant_id": "acme"}')
    assert (response.status_code, response.get_json()["error"]) == (400, "malformed_event")

    nul = event_of(inbound_message(tenant_id="ac\x00me"))
    nul["tenantid"] = "ac\x00me"
    assert deliver(client, nul).status_code == 400  # PostgreSQL text cannot hold NUL
    assert count(analytics_db, "message_facts") == 0


def test_postgres_unreachable_is_503_and_the_retry_stores_it_once(
    start_sink: Callable[..., FlaskClient], analytics_db: str
) -> None:
    dead = start_sink(
        POSTGRES_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/x", POSTGRES_TIMEOUT_S="1"
    )
    event = event_of(inbound_message())

    response = deliver(dead, event)
    assert (response.status_code, response.get_json()["error"]) == (503, "dependency_unavailable")
    health = dead.get("/api/v2/health")
    assert (health.status_code, health.get_json()["dependencies"]) == (503, {"postgres": "down"})

    back = start_sink(POSTGRES_URL=analytics_db)  # PostgreSQL is back: the KafkaSource retries
    assert deliver(back, event).status_code == 200
    assert deliver(back, event).status_code == 200
    assert count(analytics_db, "message_facts") == 1


def test_without_the_hash_key_events_wait(
    start_sink: Callable[..., FlaskClient], analytics_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANALYTICS_HASH_KEY")
    response = deliver(start_sink(), event_of(inbound_message()))
    assert (response.status_code, response.get_json()["error"]) == (503, "dependency_unavailable")
    assert count(analytics_db, "message_facts") == 0


def test_health_is_ok_with_postgres_up(start_sink: Callable[..., FlaskClient]) -> None:
    response = start_sink().get("/api/v2/health")
    assert (response.status_code, response.get_json()) == (
        200,
        {"status": "ok", "service": "analytics-sink", "dependencies": {"postgres": "up"}},
    )


def test_erase_user_removes_their_rows_and_nothing_else(
    start_sink: Callable[..., FlaskClient], analytics_db: str
) -> None:
    client = start_sink()
    slack = {"channel": Channel("slack"), "account_id": "T0001ACME", "chat_id": "C0GENERAL"}
    other = "16505550000"
    items: list[InboundMessage | OutboundMessage | StatusUpdate] = [
        # Sheena's own WhatsApp conversation: her message, our reply, its statuses.
        inbound_message(platform_message_id="w1"),
        outbound_message(message_id="r1", in_reply_to_at="2025-06-08T20:59:43Z"),
        status_update(DeliveryStatus.DELIVERED),
        # Another user's WhatsApp conversation.
        inbound_message(platform_message_id="w2", chat_id=other, sender=Sender(other)),
        outbound_message(message_id="r2", chat_id=other),
        status_update(DeliveryStatus.READ, chat_id=other, platform_message_id="wamid.x"),
        # A Slack channel shared by U1 and U2: only U1's own message goes.
        inbound_message(platform_message_id="s1", sender=Sender("U1"), **slack),
        inbound_message(platform_message_id="s2", sender=Sender("U2"), **slack),
        outbound_message(message_id="r3", **slack),
    ]
    for item in items:
        assert deliver(client, event_of(item)).status_code == 200
    before = {r["event_id"] for r in rows(analytics_db, "message_facts")}

    assert erase_user(get_pool(), "acme", "whatsapp", WA_USER) == 3
    assert erase_user(get_pool(), "acme", "slack", "U1") == 1
    assert erase_user(get_pool(), "acme", "slack", "U1") == 0  # nothing left of them

    left = {r["event_id"] for r in rows(analytics_db, "message_facts")}
    kept = [event_of(i)["id"] for i in (items[3], items[4], items[7], items[8])]
    assert left == set(kept) and left < before
    assert [r["status"] for r in rows(analytics_db, "status_facts")] == ["read"]


def test_erase_user_also_erases_the_conversations_named(
    start_sink: Callable[..., FlaskClient], analytics_db: str
) -> None:
    """A conversation of the user's with only our messages left (their own were erased by
    platform retention, say) goes when the caller names it, as the API's erase does."""
    client = start_sink()
    assert deliver(client, event_of(outbound_message(message_id="r9"))).status_code == 200
    key = f"acme:whatsapp:{WHATSAPP_NUMBER}/{WA_USER}"

    with pytest.raises(ValueError, match="not of acme:slack:"):
        erase_user(get_pool(), "acme", "slack", WA_USER, conversation_keys=[key])
    assert erase_user(get_pool(), "acme", "whatsapp", WA_USER, conversation_keys=[key]) == 1
    assert count(analytics_db, "message_facts") == 0
