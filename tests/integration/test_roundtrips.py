"""Round trips per bot turn on real servers: MongoDB-protocol, Redis, a Kafka-protocol broker,
the reference MCP engine and Security Hub, and the channel sandbox. The counts are
deterministic (what leaves the process, shared/perf/roundtrips.py), so they are asserted
exactly against the budget; no time is measured."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from shared.channels.registry import NAMES
from shared.devstack import servers
from shared.devstack.devtenant import ensure_dev_tenant
from shared.kafka import ensure_topics
from shared.perf.botturn import (
    BUDGET,
    DISPATCHER,
    PROCESSOR,
    REDELIVERY_BUDGET,
    TRACKER,
    Handlers,
    run_turn,
    turn_env,
)
from shared.perf.roundtrips import RoundTrips
from tests.integration.outbound_support import sandbox_url_fixture  # noqa: F401

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def grpc_services() -> Iterator[tuple[str, str]]:
    """The reference MCP engine and Security Hub, as the local stack runs them."""
    from shared.grpc.channel import close_channels

    engine = servers.start_module("mcp-engine", "shared.refservers.mcp_engine", None, None)
    hub = servers.start_module("security-hub", "shared.refservers.security_hub", None, None)
    yield engine.url, hub.url
    close_channels()
    hub.stop()
    engine.stop()


@pytest.fixture
def db(
    monkeypatch: pytest.MonkeyPatch,
    function_env: dict[str, str],
    mongodb: Any,
    mongodb_server: str,
    kafka_brokers: str,
    topic_prefix: str,
    grpc_services: tuple[str, str],
    sandbox_url: str,
) -> Any:
    """The three functions' environment (the dev tenant: an account on every channel)."""
    ensure_topics(kafka_brokers.split(","), [f"{topic_prefix}.messages.outbound"])
    env = turn_env(
        kafka_brokers=kafka_brokers,
        redis_url=function_env["REDIS_URL"],
        mongodb_uri=mongodb_server,
        database=mongodb.name,
        topic_prefix=topic_prefix,
        tenants=ensure_dev_tenant({}, {}),
        engine_url=grpc_services[0],
        hub_url=grpc_services[1],
        sandbox_url=sandbox_url,
    )
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return mongodb


@pytest.mark.parametrize("channel", NAMES)
def test_a_turn_stays_within_the_round_trip_budget(db: Any, channel: str) -> None:
    with RoundTrips() as trips:
        handlers = Handlers()
        run_turn(handlers, trips, db, "dev", channel)  # the process's first: indexes, connections
        turn = run_turn(handlers, trips, db, "dev", channel)

    counts = turn.total().counts()
    assert counts["mongodb"] <= BUDGET["mongodb"], turn.total().mongodb
    assert counts["redis"] <= BUDGET["redis"], turn.total().redis
    assert counts["kafka"] == 1  # the reply, once
    processor = turn.steps[PROCESSOR]
    # Every Redis call of the processor is one request: the limits' script, the context read
    # with the breaker's state, the session update.
    assert processor.redis == [
        "EVALSHA",
        "PIPELINE LRANGE HGETALL EXISTS GET",
        "MULTI RPUSH LTRIM EXPIRE HSET EXPIRE EXEC",
    ]
    # The message stored, the conversation counted, the answer (checkpoint, outbound
    # documents, reply count) in one bulkWrite.
    assert processor.mongodb == [
        "findAndModify messages",
        "findAndModify conversations",
        "bulkWrite",
    ]
    assert turn.steps[TRACKER].mongodb == ["update messages"]
    # Sending is a claim, then the send's record with the inbound `replied` and the look for
    # statuses that overtook it, in one bulkWrite.
    assert turn.steps[DISPATCHER].mongodb == ["findAndModify messages", "bulkWrite"]


@pytest.mark.parametrize("channel", ["whatsapp", "webchat"])
def test_a_redelivered_turn_is_cheap_and_changes_nothing(db: Any, channel: str) -> None:
    with RoundTrips() as trips:
        handlers = Handlers()
        turn = run_turn(handlers, trips, db, "dev", channel)  # checks the outcome after each

    again = turn.redelivery_total().counts()
    assert all(again[kind] <= limit for kind, limit in REDELIVERY_BUDGET.items()), again
    assert turn.redelivered[PROCESSOR].mongodb == ["findAndModify messages"]
    assert db.messages.count_documents({"direction": "outbound"}) == 1
    conversation = db.conversations.find_one({"channel": channel})
    assert conversation["message_count"] == 2


class _NoServerHasIt(dict[int, float]):
    """``shared.store.bulk``'s memory of servers without ``bulkWrite``, saying it of all."""

    def get(self, key: int, default: Any = None) -> float:
        return float("inf")


def test_without_bulk_write_a_turn_sends_one_command_per_update(
    db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A MongoDB older than 8.0 (or with its feature compatibility version still 7.0): the
    # same writes, one command each — the figure docs/architecture.md gives for such servers.
    from shared.store import bulk

    monkeypatch.setattr(bulk, "_without_bulk_write", _NoServerHasIt())
    with RoundTrips() as trips:
        handlers = Handlers()
        run_turn(handlers, trips, db, "dev", "whatsapp")
        turn = run_turn(handlers, trips, db, "dev", "whatsapp")

    assert turn.total().counts()["mongodb"] == 11
    assert "bulkWrite" not in turn.total().mongodb
