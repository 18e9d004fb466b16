"""Writes to several collections in one round trip (shared/store/bulk.py) on a real
MongoDB-protocol server: per-update results, the guard that stops the rest, the same outcome
one command at a time (a server older than MongoDB 8.0), and the turn's answer built on it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.store import bulk
from shared.store.bulk import Update, update_all
from shared.store.messages import MessageStore
from tests.builders import inbound_message, outbound_message

pytestmark = pytest.mark.integration

NOW = datetime(2025, 6, 8, 21, 0, tzinfo=UTC)


@pytest.fixture(params=["one command", "one by one"])
def db(request: pytest.FixtureRequest, mongodb: Any) -> Iterator[Any]:
    """The test's database, written through ``bulkWrite`` or, as for a server without it, one
    command per update."""
    one_by_one = request.param == "one by one"
    if one_by_one:
        bulk._without_bulk_write.add(id(mongodb.client))
    try:
        yield mongodb
    finally:
        bulk._without_bulk_write.discard(id(mongodb.client))


def commands(db: Any, updates: list[Update]) -> tuple[bulk.Outcome, list[str]]:
    """The outcome, and the commands that went to the server (through a client of its own,
    watched by a command listener, written the same way as ``db``)."""
    from pymongo import MongoClient, monitoring

    seen: list[str] = []

    class Listener(monitoring.CommandListener):
        def started(self, event: monitoring.CommandStartedEvent) -> None:
            seen.append(event.command_name)

        def succeeded(self, event: monitoring.CommandSucceededEvent) -> None: ...

        def failed(self, event: monitoring.CommandFailedEvent) -> None: ...

    host, port = db.client.address
    watched: Any = MongoClient(host, port, event_listeners=[Listener()], tz_aware=True)
    one_by_one = id(db.client) in bulk._without_bulk_write
    if one_by_one:
        bulk._without_bulk_write.add(id(watched))
    try:
        outcome = update_all(watched[db.name], updates)
        return outcome, list(seen)  # before close() ends the client's sessions
    finally:
        bulk._without_bulk_write.discard(id(watched))
        watched.close()


def test_updates_to_several_collections_answer_for_each(db: Any) -> None:
    db.a.insert_many([{"_id": 1, "tenant_id": "t", "n": 0}, {"_id": 2, "tenant_id": "t"}])
    db.b.insert_many([{"_id": "x", "tenant_id": "t", "k": "p"}, {"_id": "y", "tenant_id": "t"}])
    updates = [
        Update("a", {"_id": 1, "tenant_id": "t"}, {"$inc": {"n": 1}}),
        Update("a", {"_id": 3, "tenant_id": "t"}, {"$setOnInsert": {"n": 9}}, upsert=True),
        Update("b", {"tenant_id": "t"}, {"$set": {"seen": True}}, many=True),
        Update("b", {"tenant_id": "nobody"}, {"$set": {"seen": True}}, many=True),
    ]

    outcome, sent = commands(db, updates)

    assert outcome.stopped_at is None
    assert [(a.matched, a.upserted) for a in outcome.applied] == [
        (1, False),
        (0, True),
        (2, False),
        (0, False),
    ]
    assert db.a.find_one({"_id": 1})["n"] == 1 and db.a.find_one({"_id": 3})["n"] == 9
    assert db.b.count_documents({"seen": True}) == 2
    one_by_one = id(db.client) in bulk._without_bulk_write
    assert sent == (["update"] * 4 if one_by_one else ["bulkWrite"])


def test_a_guard_that_does_not_match_stops_every_update_after_it(db: Any) -> None:
    db.a.insert_one({"_id": "m", "tenant_id": "t", "state": "replying"})
    db.b.insert_one({"_id": "c", "tenant_id": "t", "n": 0})
    updates = [
        Update("b", {"_id": "c", "tenant_id": "t"}, {"$inc": {"n": 1}}),
        # The guard: the document is there but not in a state it may move from.
        Update(
            "a",
            {"_id": "m", "tenant_id": "t", "state": {"$in": ["stored", "screened"]}},
            {"$set": {"state": "replying"}},
            upsert=True,
        ),
        Update("a", {"_id": "reply", "tenant_id": "t"}, {"$setOnInsert": {"x": 1}}, upsert=True),
        Update("b", {"_id": "c", "tenant_id": "t"}, {"$inc": {"n": 10}}),
    ]

    outcome = update_all(db, updates)

    assert outcome.stopped_at == 1
    assert [(a.matched, a.upserted) for a in outcome.applied] == [(1, False)]
    assert outcome.matched(0) == 1 and outcome.matched(3) == 0
    assert db.b.find_one({"_id": "c"})["n"] == 1  # the one before the guard ran
    assert db.a.find_one({"_id": "reply"}) is None


def test_an_answer_whose_checkpoint_moved_on_writes_nothing(db: Any) -> None:
    store, message = MessageStore(db), inbound_message()
    store.insert_inbound("event-1", message, NOW)
    db.messages.update_one({"_id": "event-1"}, {"$set": {"processing.state": "skipped"}})
    db.conversations.insert_one(
        {"_id": message.conversation_key, "tenant_id": message.tenant_id, "message_count": 1}
    )
    reply = outbound_message(message_id="reply-1")

    stored = store.reply(
        message,
        "event-1",
        from_states=("stored", "screened"),
        fields={"processing.replies": [reply.to_dict()]},
        replies=[reply],
        handoff=False,
        now=NOW,
    )

    assert stored is False
    assert db.messages.find_one({"_id": "reply-1"}) is None
    assert db.messages.find_one({"_id": "event-1"})["processing"]["state"] == "skipped"
    assert db.conversations.find_one({"_id": message.conversation_key})["message_count"] == 1


def test_an_answer_to_a_message_erased_meanwhile_leaves_nothing_behind(db: Any) -> None:
    store, message = MessageStore(db), inbound_message()
    reply = outbound_message(message_id="reply-1")

    stored = store.reply(
        message,
        "erased-event",
        from_states=("stored", "screened"),
        fields={},
        replies=[reply],
        handoff=False,
        now=NOW,
    )

    assert stored is False
    assert db.messages.count_documents({}) == 0


def test_an_answer_stores_the_checkpoint_the_replies_the_count_and_the_handoff(db: Any) -> None:
    store, message = MessageStore(db), inbound_message()
    store.insert_inbound("event-1", message, NOW)
    db.conversations.insert_one(
        {
            "_id": message.conversation_key,
            "tenant_id": message.tenant_id,
            "state": "open",
            "message_count": 1,
        }
    )
    replies = [outbound_message(message_id=f"reply-{n}") for n in range(2)]

    stored = store.reply(
        message,
        "event-1",
        from_states=("stored", "screened"),
        fields={"processing.intent": "human"},
        replies=replies,
        handoff=True,
        now=NOW,
    )

    assert stored is True
    processing = db.messages.find_one({"_id": "event-1"})["processing"]
    assert processing["state"] == "replying" and processing["intent"] == "human"
    for reply in replies:
        document = db.messages.find_one({"_id": reply.message_id, "tenant_id": "acme"})
        assert document["inbound_id"] == "event-1"
        assert document["delivery"]["state"] == "pending"
    conversation = db.conversations.find_one({"_id": message.conversation_key})
    assert conversation["message_count"] == 3 and conversation["state"] == "handoff"


def test_an_answer_without_replies_ends_the_turn(db: Any) -> None:
    store, message = MessageStore(db), inbound_message()
    store.insert_inbound("event-1", message, NOW)

    stored = store.reply(
        message,
        "event-1",
        from_states=("stored", "screened"),
        fields={},
        replies=[],
        handoff=False,
        now=NOW,
    )

    assert stored is True
    assert db.messages.find_one({"_id": "event-1"})["processing"]["state"] == "replied"
    assert db.messages.count_documents({}) == 1
