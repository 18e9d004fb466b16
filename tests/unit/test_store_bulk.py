"""When the server cannot take a ``bulkWrite`` (shared/store/bulk.py), the same updates go one
command each: a server older than 8.0 (pymongo refuses before sending), or an 8.0 server whose
feature compatibility version is still 7.0 (the server refuses the command). In-process
stand-ins for the client; the real server's behaviour is in tests/integration/test_store_bulk.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from pymongo.errors import ClientBulkWriteException, InvalidOperation, OperationFailure

from shared.store import bulk
from shared.store.bulk import Update, update_all


class Client:
    def __init__(self, refusal: Exception) -> None:
        self.refusal = refusal
        self.bulk_writes = 0

    def bulk_write(self, *args: Any, **kwargs: Any) -> Any:
        self.bulk_writes += 1
        raise self.refusal


class Collection:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def update_one(self, filter: dict[str, Any], update: Any, upsert: bool = False) -> Any:
        self.calls.append(("update_one", filter))
        return SimpleNamespace(matched_count=1, upserted_id=None)

    def update_many(self, filter: dict[str, Any], update: Any, upsert: bool = False) -> Any:
        self.calls.append(("update_many", filter))
        return SimpleNamespace(matched_count=2, upserted_id=None)


class Database:
    def __init__(self, client: Client) -> None:
        self.client, self.name = client, "db"
        self.collections: dict[str, Collection] = {}

    def __getitem__(self, name: str) -> Collection:
        return self.collections.setdefault(name, Collection())


@pytest.fixture(autouse=True)
def forget() -> Iterator[None]:
    yield
    bulk._without_bulk_write.clear()


UPDATES = [
    Update("a", {"_id": 1}, {"$set": {"x": 1}}),
    Update("b", {"k": 2}, {"$set": {"y": 1}}, many=True),
]


def server_refused(code: int) -> ClientBulkWriteException:
    """As pymongo 4.20 reports a command the server refused: its OperationFailure as the
    top-level error, nothing run."""
    error = OperationFailure("BulkWrite is not supported", code=code)
    details = {"error": error, "writeErrors": [], "writeConcernErrors": []}
    return ClientBulkWriteException(details, True)


@pytest.mark.parametrize(
    "refusal",
    [
        InvalidOperation("MongoClient.bulk_write requires MongoDB server version 8.0+."),
        server_refused(115),  # CommandNotSupported: FCV 7.0
        server_refused(59),  # CommandNotFound
    ],
    ids=["older than 8.0", "fcv 7.0", "no such command"],
)
def test_without_the_command_the_updates_go_one_by_one_and_that_is_remembered(
    refusal: Exception,
) -> None:
    client = Client(refusal)
    db = Database(client)

    first = update_all(db, UPDATES)
    second = update_all(db, UPDATES)

    assert [(a.matched, a.upserted) for a in first.applied] == [(1, False), (2, False)]
    assert second == first
    assert client.bulk_writes == 1  # asked once, then believed for a while
    assert db["a"].calls == [("update_one", {"_id": 1})] * 2
    assert db["b"].calls == [("update_many", {"k": 2})] * 2


def test_the_command_is_tried_again_after_a_while(monkeypatch: pytest.MonkeyPatch) -> None:
    client = Client(server_refused(115))
    db = Database(client)
    update_all(db, UPDATES)
    now = time.monotonic()
    monkeypatch.setattr(time, "monotonic", lambda: now + bulk.RECHECK_S + 1)

    update_all(db, UPDATES)

    assert client.bulk_writes == 2  # after a rolling upgrade's last step, it is used


def test_other_errors_are_not_taken_for_a_missing_command() -> None:
    failure = OperationFailure("not authorized", code=13)
    details = {"error": failure, "writeErrors": [], "writeConcernErrors": []}
    db = Database(Client(ClientBulkWriteException(details, True)))

    with pytest.raises(OperationFailure, match="not authorized") as raised:
        update_all(db, UPDATES)

    assert raised.type is OperationFailure  # the server's own error, not the bulk's wrapper
    assert db.collections == {} and bulk._without_bulk_write == {}
