"""Real servers for the outbound-dispatcher and status-tracker tests: MongoDB and the sandbox.

pytest only finds fixtures in conftest.py and the test module, so a test module imports these
(as ``*_fixture`` functions, so the import does not shadow the argument names).
MongoDB is the run's one server (``mongodb_server`` in conftest.py); every test gets its own
database. The channel API sandbox runs as a real
subprocess on a free port, with its calls and failure rules cleared before each test.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from shared.caching import clear_all
from shared.devstack import sandbox


@pytest.fixture(scope="session", name="sandbox_url")
def sandbox_url_fixture() -> Iterator[str]:
    server = sandbox.start()
    yield server.url
    server.stop()


@pytest.fixture(name="outbound_env")
def outbound_env_fixture(
    function_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    mongodb_server: str,
    sandbox_url: str,
) -> Iterator[dict[str, str]]:
    """The integration env plus MongoDB (a fresh database) and every channel API → sandbox."""
    env = {
        "MONGODB_URI": mongodb_server,
        "MONGODB_DATABASE": f"test_{uuid.uuid4().hex[:12]}",
        "CHANNEL_API_TIMEOUT_S": "2",
        **sandbox.api_bases_setting(sandbox_url),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    httpx.delete(f"{sandbox_url}/calls").raise_for_status()
    httpx.delete(f"{sandbox_url}/fail").raise_for_status()
    reset_caches()
    yield {**function_env, **env}
    reset_caches()


def reset_caches() -> None:
    clear_all()


@pytest.fixture(name="db")
def db_fixture(outbound_env: dict[str, str]) -> Iterator[Any]:
    """The test's database, as the function under test sees it."""
    from pymongo import MongoClient

    client: Any = MongoClient(outbound_env["MONGODB_URI"], tz_aware=True)
    try:
        yield client[outbound_env["MONGODB_DATABASE"]]
        client.drop_database(outbound_env["MONGODB_DATABASE"])
    finally:
        client.close()


class SandboxCalls:
    """The sandbox's control API, for a test."""

    def __init__(self, url: str) -> None:
        self.url = url

    def calls(self, channel: str | None = None) -> list[dict[str, Any]]:
        calls: list[dict[str, Any]] = httpx.get(f"{self.url}/calls").json()
        return [c for c in calls if channel is None or c["channel"] == channel]

    def fail(self, channel: str, status: int, times: int = 1, **extra: Any) -> None:
        rule = {"channel": channel, "status": status, "times": times, **extra}
        httpx.post(f"{self.url}/fail", content=json.dumps(rule)).raise_for_status()


@pytest.fixture(name="channel_api")
def channel_api_fixture(sandbox_url: str, outbound_env: dict[str, str]) -> SandboxCalls:
    return SandboxCalls(sandbox_url)
