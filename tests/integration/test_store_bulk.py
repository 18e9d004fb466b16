"""Writes to several collections in one round trip (shared/store/bulk.py) on a real
MongoDB-protocol server: per-update results, the guard that stops the rest, the same outcome
one command at a time (a server older than MongoDB 8.0), and the turn's answer built on it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.models import InboundMessage, OutboundMessage
from shared.store import bulk
from shared.store.bulk import Update, update_all
from shared.store.messages import MessageStore, outbound_document
from tests.builders import inbound_message, outbound_message

pytestmark = pytest.mark.integration

NOW = datetime(2025, 6, 8, 21, 0, tzinfo=UTC)


def answer(
    store: MessageStore,
    message: InboundMessage,
    event_id: str = "event-1",
    *,
    from_states: tuple[str, ...] = ("stored", "screened"),
    fields: dict[str, Any] | None = None,
    replies: Sequence[OutboundMessage] = (),
    handoff: bool = False,
) -> bool:
    """``store.reply`` with this file's defaults: a fresh turn's answer at NOW."""
    return store.reply(
        message,
        event_id,
        from_states=from_states,
        fields=fields or {},
        replies=replies,
        handoff=handoff,
        now=NOW,
    )


@pytest.fixture(params=["one command", "one by one"])
def db(request: pytest.FixtureRequest, mongodb: Any) -> Iterator[Any]:
    """The test's database, written through ``bulkWrite`` or, as for a server without it, one
    command per update."""
    if request.param == "one by one":
        bulk._without_bulk_write[id(mongodb.client)] = float("inf")
    try:
        yield mongodb
    finally:
        bulk._without_bulk_write.pop(id(mongodb.client), None)


@contextmanager
def watched(db: Any) -> Iterator[tuple[Any, list[dict[str, Any]]]]:
    """``db`` through a client of its own whose commands are recorded (name and body), written
    the same way as ``db`` (one command, or one per update)."""
    from pymongo import MongoClient, monitoring

    seen: list[dict[str, Any]] = []

    class Listener(monitoring.CommandListener):
        def started(self, event: monitoring.CommandStartedEvent) -> None:
            seen.append({"name": event.command_name, **event.command})

        def succeeded(self, event: monitoring.CommandSucceededEvent) -> None: ...

        def failed(self, event: monitoring.CommandFailedEvent) -> None: ...

    host, port = db.client.address
    client: Any = MongoClient(host, port, event_listeners=[Listener()], tz_aware=True)
    if id(db.client) in bulk._without_bulk_write:
        bulk._without_bulk_write[id(client)] = float("inf")
    try:
        yield client[db.name], seen
    finally:
        bulk._without_bulk_write.pop(id(client), None)
        client.close()


def commands(db: Any, updates: list[Update]) -> tuple[bulk.Outcome, list[str]]:
    """The outcome, and the names of the commands that went to the server."""
    with watched(db) as (through, seen):
        outcome = update_all(through, updates)
        return outcome, [command["name"] for command in seen]


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
    # One command, or one per update; either way no multi-document update in a retryable
    # write is asked of the hot paths (they use single-document updates only).
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

    stored = answer(
        store, message, fields={"processing.replies": [reply.to_dict()]}, replies=[reply]
    )

    assert stored is False
    assert db.messages.find_one({"_id": "reply-1"}) is None
    assert db.messages.find_one({"_id": "event-1"})["processing"]["state"] == "skipped"
    assert db.conversations.find_one({"_id": message.conversation_key})["message_count"] == 1


def test_an_answer_to_a_message_erased_meanwhile_leaves_nothing_behind(db: Any) -> None:
    store, message = MessageStore(db), inbound_message()
    reply = outbound_message(message_id="reply-1")
    # A shared channel's conversation outlives one user's erase.
    db.conversations.insert_one(
        {"_id": message.conversation_key, "tenant_id": message.tenant_id, "message_count": 4}
    )

    stored = answer(store, message, "erased-event", replies=[reply])

    assert stored is False
    assert db.messages.count_documents({}) == 0
    assert db.conversations.find_one({"_id": message.conversation_key})["message_count"] == 4


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

    stored = answer(
        store, message, fields={"processing.intent": "human"}, replies=replies, handoff=True
    )

    assert stored is True
    processing = db.messages.find_one({"_id": "event-1"})["processing"]
    assert processing["state"] == "replying" and processing["intent"] == "human"
    for reply in replies:
        document = db.messages.find_one({"_id": reply.message_id, "tenant_id": "acme"})
        assert document["inbound_id"] == "event-1"
        assert document["turn_reply_ids"] == ["reply-0", "reply-1"]
        assert document["delivery"]["state"] == "pending"
    conversation = db.conversations.find_one({"_id": message.conversation_key})
    assert conversation["message_count"] == 3 and conversation["state"] == "handoff"


def test_an_answer_without_replies_ends_the_turn_and_may_still_hand_off(db: Any) -> None:
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

    stored = answer(store, message, replies=[], handoff=True)

    assert stored is True
    assert db.messages.find_one({"_id": "event-1"})["processing"]["state"] == "replied"
    assert db.messages.count_documents({}) == 1
    conversation = db.conversations.find_one({"_id": message.conversation_key})
    assert conversation["state"] == "handoff" and conversation["message_count"] == 1


def test_a_turn_left_replying_without_an_answer_mark_gets_its_answer_once(db: Any) -> None:
    # The previous version's `replying`: the replies in the checkpoint, no `processing.answer`,
    # the outbound document possibly created by its dispatcher already (and sent).
    store, message = MessageStore(db), inbound_message()
    store.insert_inbound("event-1", message, NOW)
    db.messages.update_one({"_id": "event-1"}, {"$set": {"processing.state": "replying"}})
    db.conversations.insert_one(
        {"_id": message.conversation_key, "tenant_id": message.tenant_id, "message_count": 1}
    )
    reply = outbound_message(message_id="reply-1")
    sent = outbound_document(reply, NOW)
    sent["delivery"]["state"] = "sent"
    db.messages.insert_one(sent)

    def finish() -> bool:
        return answer(store, message, from_states=("replying",), replies=[reply])

    assert finish() is True
    assert finish() is False

    assert db.conversations.find_one({"_id": message.conversation_key})["message_count"] == 2
    document = db.messages.find_one({"_id": "reply-1"})
    assert document["delivery"]["state"] == "sent" and "inbound_id" not in document


def test_recording_a_send_is_a_retryable_write(mongodb: Any) -> None:
    # Every update in the command is a single-document one: pymongo sends it with a
    # transaction number and retries it once on a failover, as it did the single update
    # before (a multi-document update would make it a write sent once).
    from shared.outbound.delivery import Deliveries

    with watched(mongodb) as (db, sent):
        deliveries = Deliveries(db)
        message = inbound_message()
        MessageStore(db).insert_inbound("event-1", message, NOW)
        reply = outbound_message(message_id="reply-1")
        answer(MessageStore(db), message, from_states=("stored",), replies=[reply])
        claim = deliveries.claim(reply, NOW, lease_s=30)
        del sent[:]

        recorded = deliveries.sent(reply, claim, "wamid.OUT", NOW)

    assert recorded.sent and recorded.held == 0
    [command] = [c for c in sent if c["name"] == "bulkWrite"]
    assert "txnNumber" in command
    assert all(not op.get("multi") for op in command["ops"])
    assert mongodb.messages.find_one({"_id": "event-1"})["processing"]["state"] == "replied"


def test_a_second_answer_to_the_same_message_is_refused(db: Any) -> None:
    store, message = MessageStore(db), inbound_message()
    store.insert_inbound("event-1", message, NOW)
    db.conversations.insert_one(
        {"_id": message.conversation_key, "tenant_id": message.tenant_id, "message_count": 1}
    )
    reply = outbound_message(message_id="reply-1")

    def answer_from(from_states: tuple[str, ...]) -> bool:
        return answer(store, message, from_states=from_states, replies=[reply])

    assert answer_from(("stored", "screened")) is True
    assert answer_from(("replying",)) is False  # a stored answer is never written twice
    assert db.conversations.find_one({"_id": message.conversation_key})["message_count"] == 2


class _AppliedButRefused:
    """The database, where the first update of ``messages`` is applied by the server but
    answered with a duplicate key error (seen on the embedded server under load)."""

    def __init__(self, db: Any) -> None:
        self._db = db
        self.client, self.name = db.client, db.name
        self.refused = 0

    def __getitem__(self, name: str) -> Any:
        collection = self._db[name]
        if name != "messages" or self.refused:
            return collection
        outer = self

        class Refusing:
            def update_one(self, *args: Any, **kwargs: Any) -> Any:
                from pymongo.errors import DuplicateKeyError

                collection.update_one(*args, **kwargs)
                outer.refused += 1
                raise DuplicateKeyError("E11000 duplicate key error, after the update applied")

            def __getattr__(self, attribute: str) -> Any:
                return getattr(collection, attribute)

        return Refusing()


def test_an_answer_applied_but_refused_is_recognised_by_its_mark(mongodb: Any) -> None:
    bulk._without_bulk_write[id(mongodb.client)] = float("inf")  # one command per update
    try:
        message = inbound_message()
        MessageStore(mongodb).insert_inbound("event-1", message, NOW)
        refusing = _AppliedButRefused(mongodb)
        reply = outbound_message(message_id="reply-1")

        stored = answer(MessageStore(refusing), message, replies=[reply])
    finally:
        bulk._without_bulk_write.pop(id(mongodb.client), None)

    assert stored is True and refusing.refused == 1
    assert mongodb.messages.find_one({"_id": "event-1"})["processing"]["state"] == "replying"
    assert mongodb.messages.find_one({"_id": "reply-1"})["inbound_id"] == "event-1"
