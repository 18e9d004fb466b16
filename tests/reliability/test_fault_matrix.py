"""The fault matrix: steady webhooks on every channel while one thing fails, then recovers.

The local stack runs against servers this test owns (Kafka-protocol broker, MongoDB-protocol
server with its data on disk, Redis, the MCP engine and the Security Hub), so it can kill them
and start them again on the same port. Each scenario: traffic for a few seconds, the fault for
a few more while traffic goes on, traffic after it clears, then the drain. Then, for every
webhook answered 2xx: exactly one reply at the channel sandbox (none lost, none twice), the
message stored once in MongoDB, and the scenario's poison event in its dead-letter topic. The
table (scenario, sent, accepted, replied, duplicates, lost, dead-lettered, recovery) is printed
and kept in test-artifacts/fault-matrix.txt.

Not here, and where it is: the engine down with the fallback off (retried until the engine is
back) is tests/e2e/test_engine_outage.py. The broker's data lives in memory (Tansu's memory
storage: the only one without an S3 server), so its scenario lets what was accepted drain
before the broker dies; webhooks during the outage get 503 and are retried by their platforms.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from shared.devstack import servers
from shared.devstack.dependencies import ensure_topics
from shared.kafka import read_topic
from shared.kafka.admin import DEFAULT_PARTITIONS
from shared.kafkasource import manifests
from tests.e2e.bot_support import telegram_key
from tests.reliability.faults import Load, Outcome, metrics, replies_by_recipient, wait_until
from tests.reliability.stack import ROOT, Matrix

pytestmark = [pytest.mark.e2e, pytest.mark.reliability]

# The scenario kills the MongoDB-protocol server: it runs as a replica set, whose oplog keeps
# every acknowledged write across a SIGKILL (standalone, the embedded server lost one).
MONGODB_STANDALONE = False
RATE = 6.0  # messages a second, over four channels
INBOUND_PARTITIONS = DEFAULT_PARTITIONS  # the local stack's topics
WARM_S, FAULT_S, AFTER_S = 2.0, 8.0, 3.0
DRAIN_S = 150.0  # the processor's retries (0.5 s doubling, 6 times) ride out ~30 s outages


# --- the faults --------------------------------------------------------------------------


Fault = Callable[[Matrix], contextlib.AbstractContextManager[None]]


@contextlib.contextmanager
def nothing(matrix: Matrix) -> Iterator[None]:
    yield


def sandbox_failing(status: int) -> Fault:
    @contextlib.contextmanager
    def fault(matrix: Matrix) -> Iterator[None]:
        rule = {"channel": "*", "status": status, "times": 12, "retry_after": 1}
        httpx.post(matrix.endpoints["sandbox"]["fail_url"], json=rule, timeout=5).raise_for_status()
        yield
        httpx.delete(matrix.endpoints["sandbox"]["fail_url"], timeout=5)

    return fault


def server_down(name: str, *, kill: bool = False) -> Fault:
    @contextlib.contextmanager
    def fault(matrix: Matrix) -> Iterator[None]:
        server = matrix.servers[name]
        if kill:
            server.proc.kill()
            server.proc.wait()
        else:
            server.stop()
        yield
        if name in ("mcp-engine", "security-hub"):
            module = f"shared.refservers.{name.replace('-', '_')}"
            restarted = servers.start_module(name, module, server.port, server.log_path, root=ROOT)
        else:
            restarted = servers.restart(server)
        matrix.servers[name] = restarted
        if name == "kafka":  # a broker with memory storage comes back empty
            ensure_topics(restarted.url, matrix.topics())

    return fault


@contextlib.contextmanager
def processor_killed(matrix: Matrix) -> Iterator[None]:
    """SIGKILL the processor's gunicorn worker mid-load, twice: gunicorn starts another (as
    Kubernetes restarts a container), and the requests it held are retried by KafkaSource."""
    master = int(matrix.endpoints["functions"]["message-processor"]["pid"])
    for _ in range(2):
        for worker in _children(master):
            os.kill(worker, signal.SIGKILL)
        time.sleep(FAULT_S / 2)
    yield


@contextlib.contextmanager
def dispatcher_restarted(matrix: Matrix) -> Iterator[None]:
    current = (
        matrix.dispatchers[-1].pid if matrix.dispatchers else matrix.endpoints["dispatcher"]["pid"]
    )
    os.kill(int(current), signal.SIGKILL)
    yield
    matrix.start_dispatcher()


@contextlib.contextmanager
def rebalanced(matrix: Matrix) -> Iterator[None]:
    """A second dispatcher joins every consumer group mid-load, then leaves."""
    joiner = matrix.start_dispatcher()
    yield
    joiner.send_signal(signal.SIGTERM)
    joiner.wait(timeout=60)
    matrix.dispatchers.remove(joiner)


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    return [int(p) for p in found.stdout.split()]


SCENARIOS: list[tuple[str, Fault]] = [
    ("baseline", nothing),
    ("channel API 500", sandbox_failing(500)),
    ("channel API 429", sandbox_failing(429)),
    ("Security Hub down", server_down("security-hub")),
    ("MCP engine down (fallback on)", server_down("mcp-engine")),
    ("Redis killed", server_down("redis", kill=True)),
    ("MongoDB killed", server_down("mongodb", kill=True)),
    ("message-processor SIGKILL", processor_killed),
    ("KafkaSource dispatcher killed", dispatcher_restarted),
    ("consumer rebalance", rebalanced),
    ("broker killed", server_down("kafka", kill=True)),
]


# --- one scenario ------------------------------------------------------------------------


def drained(matrix: Matrix, load: Load) -> dict[tuple[str, str], int]:
    answered: dict[tuple[str, str], int] = {}

    def done() -> bool:
        calls = httpx.get(matrix.endpoints["sandbox"]["calls_url"], timeout=10).json()
        answered.clear()
        answered.update(replies_by_recipient(calls))
        return all((s.channel, s.recipient) in answered for s in load.sent if s.accepted_at)

    wait_until("every accepted message answered", done, DRAIN_S)
    time.sleep(3)  # a reply sent twice would be sent just after the first: look once more
    done()
    return answered


def reply_times(matrix: Matrix) -> dict[tuple[str, str], float]:
    from shared.devstack.replies import describe

    first: dict[tuple[str, str], float] = {}
    for call in httpx.get(matrix.endpoints["sandbox"]["calls_url"], timeout=10).json():
        key = (call["channel"], describe(call).recipient)
        if call["status"] == 200:
            first.setdefault(key, float(call["time"]))
    return first


def poison(matrix: Matrix, scenario: str) -> bool:
    stack = matrix.stack
    [source] = [s for s in manifests.load(ROOT / "kafka-sources") if s.name == "message-processor"]
    topic = source.delivery.dead_letter_topic
    assert topic is not None
    key = telegram_key(stack.tenant["telegram"]["bot_id"], f"poison-{len(matrix.outcomes)}")
    event_id = stack.publish_poison(key)

    def found() -> bool:
        return any(
            r.headers.get("ce_id") == event_id.encode() for r in read_topic(stack.brokers, topic)
        )

    return wait_until(f"{scenario}: the poison event dead-lettered", found, 60)


def stored(matrix: Matrix, load: Load, direction: str = "inbound") -> int:
    """The scenario's messages in MongoDB: ``inbound`` (the users') or ``outbound`` (replies)."""
    import pymongo

    recipients = [s.recipient for s in load.sent if s.accepted_at]
    client: Any = pymongo.MongoClient(matrix.servers["mongodb"].url, tz_aware=True)
    try:
        database = client[matrix.endpoints.get("mongodb", {}).get("database", "chat_service")]
        return int(
            database.messages.count_documents(
                {"direction": direction, "chat_id": {"$in": recipients}}
            )
        )
    finally:
        client.close()


def replies_counted(matrix: Matrix) -> float:
    """message-processor's ``chat_messages_replied_total`` (all its workers: multiprocess)."""
    url = matrix.endpoints["functions"]["message-processor"]["url"].rstrip("/") + "/metrics"
    return metrics(url)("chat_messages_replied_total")


@pytest.mark.parametrize(("scenario", "fault"), SCENARIOS, ids=[name for name, _ in SCENARIOS])
def test_every_accepted_webhook_gets_exactly_one_reply(
    matrix: Matrix, scenario: str, fault: Fault
) -> None:
    httpx.delete(matrix.endpoints["sandbox"]["calls_url"], timeout=5)
    counted_before = replies_counted(matrix)
    load = Load(matrix.endpoints, scenario.split()[0].lower(), RATE).start()
    time.sleep(WARM_S)
    if scenario == "broker killed":
        # The broker's memory dies with it: what was accepted drains first (see the docstring).
        load.pause()
        wait_until("the accepted messages answered", lambda: _all_answered(matrix, load), 60)
        load.resume()
    with fault(matrix):
        faulted = time.time()
        time.sleep(FAULT_S)
    cleared = time.time()
    time.sleep(AFTER_S)
    load.stop()
    answered = drained(matrix, load)
    dead_lettered = poison(matrix, scenario)
    times = reply_times(matrix)

    accepted = [s for s in load.sent if s.accepted_at]
    replied = [s for s in accepted if answered.get((s.channel, s.recipient), 0) >= 1]
    twice = [s for s in accepted if answered.get((s.channel, s.recipient), 0) > 1]
    during = [s for s in accepted if s.first_at < cleared and (s.channel, s.recipient) in times]
    recovery = max((times[(s.channel, s.recipient)] - cleared for s in during), default=None)
    outcome = Outcome(
        scenario,
        sent=len(load.sent),
        accepted=len(accepted),
        replied=len(replied),
        duplicates=len(twice),
        lost=len(accepted) - len(replied),
        dead_lettered=int(dead_lettered),
        recovery_s=max(0.0, recovery) if recovery is not None else None,
        stored=stored(matrix, load),
    )
    matrix.outcomes.append(outcome)

    assert outcome.accepted == outcome.sent, [s.statuses for s in load.sent if not s.accepted_at]
    assert outcome.lost == 0, [s.tag for s in accepted if s not in replied]
    assert outcome.duplicates == 0, [s.tag for s in twice]
    assert outcome.dead_lettered == 1
    assert outcome.stored == outcome.accepted  # each accepted message stored exactly once
    # The counters agree with the database: the processor counted one reply per reply stored.
    # A reply is counted once the answer's write is acknowledged; a worker killed between the
    # two, or a write applied whose answer was lost (the server killed), counts one less —
    # at most once per turn in flight, one per partition of the inbound topic (ordered
    # delivery).
    counted = replies_counted(matrix) - counted_before
    replies_stored = stored(matrix, load, "outbound")
    assert replies_stored == outcome.accepted
    if scenario in ("message-processor SIGKILL", "MongoDB killed"):
        assert replies_stored - INBOUND_PARTITIONS <= counted <= replies_stored
    else:
        assert counted == replies_stored
    if scenario == "Security Hub down":
        # Fail closed: a message that arrived while the hub was down is answered only after
        # it is back (the reply waits for its screening), never unscreened in between.
        unscreened = [
            s.tag
            for s in accepted
            if faulted + 1.0 < s.first_at < cleared and times[(s.channel, s.recipient)] < cleared
        ]
        assert unscreened == []


def _all_answered(matrix: Matrix, load: Load) -> bool:
    calls = httpx.get(matrix.endpoints["sandbox"]["calls_url"], timeout=10).json()
    answered = replies_by_recipient(calls)
    return all((s.channel, s.recipient) in answered for s in list(load.sent) if s.accepted_at)
