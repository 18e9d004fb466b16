"""Round trips per bot turn: MongoDB commands, Redis requests and Kafka produces, per step.

One turn per channel, from the inbound event to the reply sent and its delivery status
recorded (message-processor, outbound-dispatcher, status-tracker: shared/perf/botturn.py), then
the same events redelivered; counted in this process where they leave it
(shared/perf/roundtrips.py). The counts are deterministic: no time is measured here.

    .venv/bin/python scripts/bench/roundtrips.py [--channels whatsapp,slack] [--out FILE]

``section(...)`` is what ``scripts/bench/run.py`` calls with the servers it started.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from shared.perf.botturn import BUDGET, REDELIVERY_BUDGET, STEPS, TARGET, Turn, turn_env
from shared.perf.roundtrips import Tally

KINDS = ("mongodb", "redis", "kafka")


def section(
    kafka_brokers: str | None = None,
    redis_url: str | None = None,
    mongodb_uri: str | None = None,
    *,
    channels: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Count one turn per channel (every registered one by default), print the table, return
    it as JSON-ready data. A server not given by URL is started for the run and stopped after;
    the reference MCP engine and Security Hub and the channel sandbox always are (child
    processes). The functions run in this process, on a database and topics of their own,
    with the environment changed only while they run."""
    from shared.channels.registry import NAMES

    chosen = list(channels or NAMES)
    print("Round trips per bot turn: message-processor (one message.received), outbound-")
    print("dispatcher (its reply, to the channel sandbox), status-tracker (a delivered status).")
    print("MongoDB: commands (command monitoring); Redis: requests written (a pipeline, MULTI")
    print("or script call is one); Kafka: records produced. Warm process; a new conversation.")
    with _servers(kafka_brokers, redis_url, mongodb_uri) as env, _environment(env):
        turns, first = _count(chosen)
    result = {
        "target": TARGET,
        "budget": BUDGET,
        "redelivery_budget": REDELIVERY_BUDGET,
        "first_turn_of_a_process": _tally_dict(first),
        "channels": {turn.channel: _turn_dict(turn) for turn in turns},
    }
    _print(turns, first)
    return result


def _count(channels: list[str]) -> tuple[list[Turn], Turn]:
    from pymongo import MongoClient

    from shared.perf.botturn import Handlers, run_turn
    from shared.perf.roundtrips import RoundTrips
    from shared.settings import get_settings

    settings = get_settings()
    with RoundTrips() as trips:
        handlers = Handlers()
        client: Any = MongoClient(settings.mongodb_uri, tz_aware=True)
        db = client[settings.mongodb_database]
        try:
            # The first turn of a process also creates the indexes and opens connections.
            first = run_turn(handlers, trips, db, "dev", channels[0])
            turns = [run_turn(handlers, trips, db, "dev", channel) for channel in channels]
        finally:
            client.drop_database(settings.mongodb_database)
            client.close()
    return turns, first


@contextmanager
def _servers(
    kafka_brokers: str | None, redis_url: str | None, mongodb_uri: str | None
) -> Iterator[dict[str, str]]:
    from shared.devstack import sandbox, servers
    from shared.devstack.devtenant import ensure_dev_tenant
    from shared.grpc.channel import close_channels
    from shared.kafka import ensure_topics
    from shared.refservers import mcp_engine, security_hub

    with ExitStack() as stack:

        def started(server: servers.Server) -> str:
            stack.callback(server.stop)
            return server.url

        kafka = kafka_brokers or started(servers.start_kafka())
        redis = redis_url or started(servers.start_redis())
        mongodb = mongodb_uri or started(servers.start_mongodb())
        channel_api = started(sandbox.start())
        engine = started(servers.start_module("mcp-engine", mcp_engine.__name__, None, None))
        hub = started(servers.start_module("security-hub", security_hub.__name__, None, None))
        stack.callback(close_channels)
        prefix = f"bench.roundtrips.{uuid.uuid4().hex[:8]}"
        suffixes = ("messages.inbound", "messages.outbound", "messages.status")
        ensure_topics(kafka.split(","), [f"{prefix}.{suffix}" for suffix in suffixes])
        yield turn_env(
            kafka_brokers=kafka,
            redis_url=redis,
            mongodb_uri=mongodb,
            database=f"roundtrips_{uuid.uuid4().hex[:8]}",
            topic_prefix=prefix,
            tenants=ensure_dev_tenant({}, {}),
            engine_url=engine,
            hub_url=hub,
            sandbox_url=channel_api,
        ) | {"LOG_LEVEL": "WARNING"}


@contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    """``env`` over the process environment for the block, and the per-process objects made
    from it forgotten before and after."""
    from shared.caching import clear_all
    from shared.store.mongo import close_clients

    saved = dict(os.environ)
    os.environ.update(env)
    for name in ("TENANTS_FILE", "EVENTING_OIDC_AUDIENCE"):
        os.environ.pop(name, None)
    clear_all()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        clear_all()
        close_clients()


def _tally_dict(turn: Turn) -> dict[str, Any]:
    return {
        "steps": {name: tally.to_dict() for name, tally in turn.steps.items()},
        "total": turn.total().to_dict(),
    }


def _turn_dict(turn: Turn) -> dict[str, Any]:
    redelivered = {name: tally.to_dict() for name, tally in turn.redelivered.items()}
    return {
        **_tally_dict(turn),
        "redelivery": {"steps": redelivered, "total": turn.redelivery_total().to_dict()},
        "within_target": _within(turn.total(), TARGET),
        "within_budget": _within(turn.total(), BUDGET),
        "redelivery_within_budget": _within(turn.redelivery_total(), REDELIVERY_BUDGET),
    }


def _print(turns: list[Turn], first: Turn) -> None:
    rows: list[list[str]] = []

    def add(channel: str, step: str, counts: dict[str, int], note: str = "") -> None:
        rows.append([channel, step, *(str(counts[kind]) for kind in KINDS), note])

    for turn in turns:
        for step in STEPS:
            if step in turn.steps:
                add(turn.channel, step, turn.steps[step].counts())
        verdicts = [
            f"target {_limits(TARGET)} {_verdict(turn.total(), TARGET)}",
            f"budget {_limits(BUDGET)} {_verdict(turn.total(), BUDGET)}",
        ]
        add(turn.channel, "turn", turn.total().counts(), ", ".join(verdicts))
        again = turn.redelivery_total()
        note = f"budget {_limits(REDELIVERY_BUDGET)} {_verdict(again, REDELIVERY_BUDGET)}"
        add(turn.channel, "redelivery of all three", again.counts(), note)
    add(first.channel, "first turn of a process", first.total().counts(), "indexes, connections")
    headers = ["channel", "step", "MongoDB", "Redis", "Kafka", ""]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    for line in (headers, ["-" * w for w in widths], *rows):
        cells = [
            c.rjust(w) if 2 <= i <= 4 else c.ljust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ]
        print("  ".join(cells).rstrip())
    print()
    print("target: issue 11's, at most 6 MongoDB / 4 Redis round trips per turn; budget: what")
    print("tests/integration/test_roundtrips.py holds a turn to (each round trip and why:")
    print("docs/architecture.md, Round trips); redelivery: MongoDB/Redis/Kafka.")
    print()
    print("What each round trip is (first turn on " + turns[0].channel + "):")
    for step in STEPS:
        tally = turns[0].steps.get(step)
        if tally is not None:
            for kind in KINDS:
                for label in getattr(tally, kind):
                    print(f"  {step:<20} {kind:<8} {label}")
    print()


def _within(tally: Tally, limits: dict[str, int]) -> bool:
    counts = tally.counts()
    return all(counts[kind] <= limit for kind, limit in limits.items())


def _verdict(tally: Tally, limits: dict[str, int]) -> str:
    return "PASS" if _within(tally, limits) else "FAIL"


def _limits(limits: dict[str, int]) -> str:
    return "/".join(f"{limit}" for limit in limits.values())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--channels", default="", help="comma-separated (default: every one)")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    result = section(channels=[c for c in args.channels.split(",") if c] or None)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
