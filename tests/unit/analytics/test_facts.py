"""Event → fact: what is kept, what is hashed, what is poison (no database)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import pytest
from cloudevents.http import CloudEvent

from shared import events
from shared.analytics.facts import MessageFact, StatusFact, fact_of
from shared.analytics.hashing import Hasher
from shared.errors import BadRequest, DependencyUnavailable
from shared.models import Author, DeliveryStatus, MessageKind, Sender, TemplateRef
from tests.builders import (
    WA_USER,
    WHATSAPP_NUMBER,
    inbound_message,
    outbound_message,
    status_update,
)

HASHER = Hasher(b"k" * 32)
NOW = datetime(2025, 6, 9, 12, 0, tzinfo=UTC)


def test_an_inbound_message_is_a_fact_without_personal_data() -> None:
    message = inbound_message(
        text="my card is 4111 1111 1111 1111", sender=Sender(WA_USER, "Sheena")
    )
    event = events.message_received(message)

    fact = fact_of(event, HASHER, NOW)

    assert fact == MessageFact(
        event_id=event["id"],
        tenant_id="acme",
        channel="whatsapp",
        direction="inbound",
        kind="text",
        author="user",
        handoff=False,
        conversation_hash=HASHER.conversation("acme", "whatsapp", f"{WHATSAPP_NUMBER}/{WA_USER}"),
        user_hash=HASHER.user("acme", "whatsapp", WA_USER),
        occurred_at=datetime(2025, 6, 8, 20, 59, 43, tzinfo=UTC),
        in_reply_to_at=None,
    )
    stored = json.dumps([str(v) for v in dataclasses.astuple(fact)])
    for personal in (WA_USER, "Sheena", "4111", "hello", "wamid"):
        assert personal not in stored


def test_a_reply_keeps_its_author_handoff_and_the_time_it_answers() -> None:
    reply = outbound_message(
        author=Author.AGENT,
        handoff=True,
        in_reply_to_at="2025-06-08T20:59:43Z",
        template=TemplateRef("hello_world"),
    )
    fact = fact_of(events.message_outbound(reply, "/test"), HASHER, NOW)

    assert isinstance(fact, MessageFact)
    assert (fact.direction, fact.author, fact.kind, fact.handoff, fact.user_hash) == (
        "outbound", "agent", "template", True, None,
    )  # fmt: skip
    assert fact.occurred_at == datetime(2025, 6, 8, 21, 0, tzinfo=UTC)
    assert fact.in_reply_to_at == datetime(2025, 6, 8, 20, 59, 43, tzinfo=UTC)
    assert fact.conversation_hash == HASHER.conversation(
        "acme", "whatsapp", f"{WHATSAPP_NUMBER}/{WA_USER}"
    )


def test_a_status_is_a_fact_about_a_hashed_message() -> None:
    update = status_update(DeliveryStatus.FAILED, errors=({"code": 131047, "title": "Re-engage"},))
    fact = fact_of(events.status_changed(update), HASHER, NOW)

    assert isinstance(fact, StatusFact)
    assert (fact.status, fact.error_code, fact.cumulative) == ("failed", "131047", False)
    assert fact.message_hash == HASHER.message("acme", "whatsapp", "wamid.9")
    assert "Re-engage" not in json.dumps([str(v) for v in dataclasses.astuple(fact)])


def test_an_unreadable_platform_time_is_the_time_it_is_recorded() -> None:
    event = events.message_received(inbound_message(timestamp="yesterday"))
    assert fact_of(event, HASHER, NOW).occurred_at == NOW


def test_hashes_are_keyed_per_tenant_and_kind() -> None:
    same_user = {HASHER.user(tenant, "whatsapp", WA_USER) for tenant in ("acme", "globex")}
    assert len(same_user) == 2  # one person at two tenants: unrelated
    assert HASHER.user("acme", "whatsapp", "x") != HASHER.conversation("acme", "whatsapp", "x")
    assert HASHER.user("acme", "whatsapp", "x") != HASHER.user("acme", "telegram", "x")
    assert Hasher(b"j" * 32).user("acme", "whatsapp", "x") != HASHER.user("acme", "whatsapp", "x")


def test_no_key_or_a_short_key_is_a_503_not_a_weak_hash() -> None:
    for key in ("", "short"):
        with pytest.raises(DependencyUnavailable, match="ANALYTICS_HASH_KEY"):
            Hasher.from_setting(key)


@pytest.mark.parametrize(
    ("event", "code"),
    [
        (CloudEvent({"type": "dev.knative.kafka.event", "source": "/k", "id": "1"}, b"x"),
         "unexpected_event_type"),
        (CloudEvent({"type": events.MESSAGE_RECEIVED, "source": "/s", "id": "2"}, {"kind": "x"}),
         "malformed_event"),
        (CloudEvent({"type": events.MESSAGE_STATUS, "source": "/s", "id": "3"}, "text"),
         "malformed_event"),
        (CloudEvent({"type": events.MESSAGE_RECEIVED, "source": "/s", "id": "4" * 300}, {}),
         "malformed_event"),
    ],
)  # fmt: skip
def test_what_can_never_be_a_fact_is_poison(event: CloudEvent, code: str) -> None:
    with pytest.raises(BadRequest) as raised:
        fact_of(event, HASHER, NOW)
    assert raised.value.code == code


def test_a_tenant_attribute_naming_another_tenant_is_poison() -> None:
    event = events.message_received(inbound_message(kind=MessageKind.MEDIA))
    event["tenantid"] = "globex"
    with pytest.raises(BadRequest, match="disagree"):
        fact_of(event, HASHER, NOW)
