"""A real MongoDB-protocol server for integration tests, and a fresh database per test.

pytest loads fixtures only from conftest.py files and the test module itself, so a test module
imports ``mongodb_server_fixture`` and ``mongodb_fixture`` (the fixtures are named
``mongodb_server`` and ``mongodb``, so a test's parameter does not redefine the import).
``MONGODB_URI`` points the suite at an external server; otherwise one SecantusDB (in-memory
storage) is started for the session. Every test gets its own database (``MONGODB_DATABASE``),
so tests never see each other's documents or indexes.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from shared.devstack import servers


@pytest.fixture(scope="session", name="mongodb_server")
def mongodb_server_fixture() -> Iterator[str]:
    external = os.environ.get("MONGODB_URI")
    if external:
        yield external
        return
    server = servers.start_mongodb()
    yield server.url
    server.stop()


@pytest.fixture(name="mongodb")
def mongodb_fixture(mongodb_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The test's own database; the function under test reads the same one from the env."""
    from pymongo import MongoClient

    name = f"test_{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("MONGODB_URI", mongodb_server)
    monkeypatch.setenv("MONGODB_DATABASE", name)
    client: Any = MongoClient(mongodb_server, tz_aware=True, serverSelectionTimeoutMS=5000)
    try:
        yield client[name]
        client.drop_database(name)
    finally:
        client.close()
