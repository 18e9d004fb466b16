"""The embedded MongoDB-protocol server as the dev stack launches it (shared/devstack/mongod.py):
a write whose filter names an ``_id`` starts from that document instead of scanning the
collection, and still applies the whole filter."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pymongo
import pytest

from shared.devstack import mongod, servers


@pytest.fixture(scope="module")
def messages() -> Iterator[Any]:
    server = servers.start_mongodb(standalone=True)
    client: Any = pymongo.MongoClient(server.url)
    try:
        collection = client["probe"]["messages"]
        collection.insert_many(
            [{"_id": f"m{n}", "tenant_id": "acme", "state": "pending"} for n in range(50)]
        )
        yield collection
    finally:
        client.close()
        server.stop()


def test_a_write_by_id_applies_the_rest_of_the_filter(messages: Any) -> None:
    other_tenant = messages.find_one_and_update(
        {"_id": "m1", "tenant_id": "globex"}, {"$set": {"state": "sending"}}
    )
    assert other_tenant is None and messages.find_one({"_id": "m1"})["state"] == "pending"

    claimed = messages.find_one_and_update(
        {"_id": "m1", "tenant_id": "acme", "$or": [{"state": "pending"}, {"state": None}]},
        {"$set": {"state": "sending"}},
        return_document=pymongo.ReturnDocument.AFTER,
    )
    assert claimed is not None and claimed["state"] == "sending"
    again = messages.find_one_and_update(
        {"_id": "m1", "state": {"$in": ["pending"]}}, {"$set": {"state": "x"}}
    )
    assert again is None and messages.count_documents({"state": "sending"}) == 1
    assert messages.update_one({"_id": "m2", "state": "pending"}, {"$set": {"state": "sent"}})
    assert messages.find_one({"_id": "m2"})["state"] == "sent"


def test_the_candidates_of_a_filter_with_an_id_are_looked_up_by_id() -> None:
    asked: list[dict[str, Any]] = []

    def picker(self: Any, db: str, coll: str, filter: dict[str, Any], **kw: Any) -> Any:
        asked.append(filter)
        return [7] if list(filter) == ["_id"] else None  # the _id index; nothing else

    pick = mongod._by_id_first(picker)
    # What secantusdb writes a matched findAndModify with: the picker gave up on it (a scan).
    assert pick(None, "db", "messages", {"_id": "m1", "$and": [{"state": "pending"}]}) == [7]
    assert asked == [{"_id": "m1"}]
    assert pick(None, "db", "messages", {"_id": {"$in": ["a"]}, "x": 1}) is None  # not an equality
    assert pick(None, "db", "messages", {"state": "pending"}) is None
