"""The embedded MongoDB as the local stack runs it (standalone: no oplog) and the counts the
stack's size warning reads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.devstack import dependencies, devdata, servers

pytestmark = pytest.mark.integration


@pytest.fixture
def standalone(tmp_path: Path) -> Iterator[servers.Server]:
    server = servers.start_mongodb(data_dir=tmp_path / "mongodb", standalone=True)
    yield server
    server.stop()


def test_documents_are_counted_across_databases_and_a_standalone_server_keeps_no_oplog(
    standalone: servers.Server,
) -> None:
    from pymongo import MongoClient

    client: MongoClient[dict[str, Any]] = MongoClient(standalone.url)
    try:
        client["chat_service"]["messages"].insert_many([{"n": i} for i in range(30)])
        client["chat_service"]["audit"].insert_many([{"n": i} for i in range(20)])
        client["other"]["things"].insert_one({"n": 0})
        assert client.admin.command("hello").get("setName") is None  # not a replica set
    finally:
        client.close()
    size = devdata.measure(standalone.url)
    assert size.documents == 51
    assert size.oplog_entries == 0
    assert size.warning() is None


def test_the_stack_starts_its_mongodb_fresh_unless_told_to_keep_the_data(tmp_path: Path) -> None:
    from pymongo import MongoClient

    def started(keep: bool) -> dependencies.Dependency:
        return dependencies.mongodb({}, tmp_path, tmp_path, standard_ports=False, keep_data=keep)

    first = started(keep=False)
    assert first.server is not None
    try:
        client: MongoClient[dict[str, Any]] = MongoClient(first.url)
        client["chat_service"]["messages"].insert_one({"kept": True})
        client.close()
    finally:
        first.server.stop()
    for keep, expected in ((True, 1), (False, 0)):
        again = started(keep)
        assert again.server is not None
        try:
            assert devdata.measure(again.url).documents == expected
        finally:
            again.server.stop()
