"""The local KafkaSource dispatcher against a real broker and a real (scripted) HTTP sink."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cloudevents.http import CloudEvent

from shared.kafka import EventProducer, GroupConsumer, RecordProducer, read_topic
from shared.kafkasource import dispatcher as dispatcher_module
from shared.kafkasource.manifests import KafkaSource
from shared.kafkasource.runner import Dispatcher, ensure_source_topics
from shared.settings import Settings
from tests.integration.kafkasource_support import (
    PRODUCTION_PREFIX,
    ROOT,
    Answer,
    Commits,
    RecordingSink,
    iter_ids,
    scoped_sources,
)

pytestmark = pytest.mark.integration

KEY_A = "acme:whatsapp:1065/491700000001"
KEY_B = "acme:whatsapp:1065/491700000002"


def event(event_id: str, key: str = KEY_A) -> CloudEvent:
    return CloudEvent(
        {
            "type": "com.chatbot.message.received.v1",
            "source": "/chat-service/channels/whatsapp/1065",
            "id": event_id,
            "subject": key.split(":", 2)[2],
            "time": "2026-03-01T12:00:00Z",
            "datacontenttype": "application/json",
            "partitionkey": key,
            "tenantid": "acme",
        },
        {"conversation_key": key, "text": f"message {event_id}"},
    )


@pytest.fixture
def brokers(kafka_brokers: str) -> list[str]:
    return kafka_brokers.split(",")


@pytest.fixture
def producer(brokers: list[str]) -> Iterator[EventProducer]:
    producer = EventProducer(Settings(kafka_brokers=tuple(brokers)))
    yield producer
    producer.close()


@pytest.fixture
def processor_source(topic_prefix: str, brokers: list[str]) -> Callable[..., KafkaSource]:
    """message-processor's manifest on the test's topics, with test-sized delivery settings."""

    def make(**delivery: Any) -> KafkaSource:
        source = scoped_sources(topic_prefix, **delivery)["message-processor"]
        ensure_source_topics(brokers, [source])
        return source

    return make


def run(source: KafkaSource, sink: RecordingSink, brokers: list[str], commits: Commits) -> Any:
    return Dispatcher([source], {"message-processor": sink.url}, brokers, on_commit=commits)


def test_records_arrive_as_binary_mode_cloudevents_in_order_per_partition(
    processor_source: Callable[..., KafkaSource], producer: EventProducer, brokers: list[str]
) -> None:
    source = processor_source()
    topic = source.topics[0]  # the inbound topic (the overflow topic is the second)
    ids_a = [f"a{i}" for i in range(6)]
    ids_b = [f"b{i}" for i in range(6)]
    producer.publish([(topic, event(i, KEY_A if i[0] == "a" else KEY_B)) for i in ids_a + ids_b])

    commits = Commits()
    with RecordingSink() as sink, run(source, sink, brokers, commits):
        sink.wait_until(lambda s: len(s.requests) >= 12)

    assert list(iter_ids(sink.requests, KEY_A)) == ids_a
    assert list(iter_ids(sink.requests, KEY_B)) == ids_b
    first = sink.attempts("a0")[0]
    assert {k: v for k, v in first.headers.items() if k.startswith("ce-")} == {
        "ce-specversion": "1.0",
        "ce-type": "com.chatbot.message.received.v1",
        "ce-source": "/chat-service/channels/whatsapp/1065",
        "ce-id": "a0",
        "ce-subject": "1065/491700000001",
        "ce-time": "2026-03-01T12:00:00Z",
        "ce-tenantid": "acme",
    }
    assert first.headers["content-type"] == "application/json"
    assert first.json() == {"conversation_key": KEY_A, "text": "message a0"}
    records = read_topic(brokers, topic, min_records=12)
    for record in records:  # everything committed: the next offset of every partition
        assert max(commits.of(topic, record.partition)) >= record.offset + 1


def test_a_503_is_retried_with_backoff_and_the_offset_committed_once(
    processor_source: Callable[..., KafkaSource], producer: EventProducer, brokers: list[str]
) -> None:
    source = processor_source(backoff_delay_s=0.1)  # exponential: waits 0.2 s, then 0.4 s
    topic = source.topics[0]  # the inbound topic (the overflow topic is the second)
    producer.publish([(topic, event("e1"))])
    (record,) = read_topic(brokers, topic, min_records=1)

    commits = Commits()
    with RecordingSink({"e1": [503, 503]}) as sink, run(source, sink, brokers, commits):
        sink.wait_until(lambda s: len(s.attempts("e1")) == 3)
        time.sleep(0.5)  # room for a wrong extra delivery or commit to show

    attempts = [request.at for request in sink.attempts("e1")]
    assert len(attempts) == 3
    assert attempts[1] - attempts[0] >= 0.2 and attempts[2] - attempts[1] >= 0.4
    assert commits.of(topic, record.partition) == [record.offset + 1]
    assert read_topic(brokers, source.delivery.dead_letter_topic or "", timeout_s=1) == []


def test_a_400_is_dead_lettered_at_once_and_later_events_still_flow(
    processor_source: Callable[..., KafkaSource], producer: EventProducer, brokers: list[str]
) -> None:
    source = processor_source()
    topic = source.topics[0]  # the inbound topic (the overflow topic is the second)
    producer.publish([(topic, event("poison")), (topic, event("next"))])
    poison, _ = read_topic(brokers, topic, min_records=2)

    commits = Commits()
    with RecordingSink({"poison": [400]}) as sink, run(source, sink, brokers, commits):
        sink.wait_until(lambda s: "next" in s.ids())
        dead = read_topic(brokers, source.delivery.dead_letter_topic or "", min_records=1)

    assert sink.ids() == ["poison", "next"]  # no retry of the poison, nothing after it lost
    (letter,) = dead
    assert (letter.key, letter.value) == (poison.key, poison.value)
    assert {k: v for k, v in letter.headers.items() if not k.startswith("ce_knative")} == (
        poison.headers
    )
    assert letter.headers["ce_knativeerrorcode"] == b"400"
    assert letter.headers["ce_knativeerrordest"] == (sink.url + "/").encode()
    assert json.loads(base64.b64decode(letter.headers["ce_knativeerrordata"])) == {"error": 400}
    assert letter.event()["id"] == "poison"
    assert commits.of(topic, poison.partition)[-1] == poison.offset + 2


def test_exhausted_retries_are_dead_lettered(
    processor_source: Callable[..., KafkaSource], producer: EventProducer, brokers: list[str]
) -> None:
    source = processor_source(retry=2, backoff_delay_s=0.01)
    topic = source.topics[0]  # the inbound topic (the overflow topic is the second)
    producer.publish([(topic, event("e1"))])

    with RecordingSink({"e1": [503] * 10}) as sink, run(source, sink, brokers, Commits()):
        # The consumer group's join can take seconds on a loaded machine: wait for the
        # attempts before reading the dead-letter topic, not for a fixed time.
        sink.wait_until(lambda s: len(s.attempts("e1")) >= 3)
        dead = read_topic(
            brokers, source.delivery.dead_letter_topic or "", min_records=1, timeout_s=30
        )

    assert len(sink.attempts("e1")) == 3  # the first attempt and two retries
    assert dead[0].headers["ce_knativeerrorcode"] == b"503"
    assert dead[0].event()["id"] == "e1"


def test_a_restart_delivers_only_what_was_not_committed(
    processor_source: Callable[..., KafkaSource], producer: EventProducer, brokers: list[str]
) -> None:
    # e3 keeps failing while the first dispatcher stops: it must come again, e1/e2 must not.
    source = processor_source(retry=1000, backoff_policy="linear", backoff_delay_s=0.05)
    topic = source.topics[0]  # the inbound topic (the overflow topic is the second)
    producer.publish([(topic, event(i)) for i in ("e1", "e2", "e3")])

    with RecordingSink({"e3": [503] * 1000}) as sink, run(source, sink, brokers, Commits()):
        sink.wait_until(lambda s: len(s.attempts("e3")) >= 2)
    assert sink.ids()[:2] == ["e1", "e2"]

    with RecordingSink() as sink, run(source, sink, brokers, Commits()):
        sink.wait_until(lambda s: "e3" in s.ids())
        time.sleep(0.5)
    assert sink.ids() == ["e3"]


def test_a_record_that_is_no_cloudevent_is_wrapped_as_knative_does(
    processor_source: Callable[..., KafkaSource], brokers: list[str]
) -> None:
    source = processor_source()
    topic = source.topics[0]  # the inbound topic (the overflow topic is the second)
    raw = RecordProducer(brokers, client_id="test")
    raw.send(topic, b"k1", [("X-Trace", b"t-1"), ("content-type", b"text/plain")], b"hello")
    raw.close()
    (record,) = read_topic(brokers, topic, min_records=1)

    with RecordingSink() as sink, run(source, sink, brokers, Commits()):
        sink.wait_until(lambda s: len(s.requests) == 1)

    (request,) = sink.requests
    assert request.id == f"partition:{record.partition}/offset:{record.offset}"
    assert request.headers["ce-type"] == "dev.knative.kafka.event"
    assert request.headers["ce-source"] == (
        f"/apis/v1/namespaces/default/kafkasources/message-processor#{topic}"
    )
    assert (request.headers["ce-key"], request.headers["ce-kafkaheaderxtrace"]) == ("k1", "t-1")
    assert (request.headers["content-type"], request.body) == ("text/plain", b"hello")


def test_a_retrying_record_holds_its_own_partition_only(
    processor_source: Callable[..., KafkaSource], producer: EventProducer, brokers: list[str]
) -> None:
    source = processor_source(backoff_delay_s=0.5)  # waits 1 s, then 2 s
    topic = source.topics[0]  # the inbound topic (the overflow topic is the second)
    keys = [f"acme:webchat:site-acme/visitor-{n}" for n in range(8)]
    producer.publish(
        [(topic, event("slow", KEY_A))] + [(topic, event(f"k{n}", k)) for n, k in enumerate(keys)]
    )
    records = {r.event()["id"]: r for r in read_topic(brokers, topic, min_records=9)}
    slow = records["slow"]
    elsewhere = [i for i, r in records.items() if r.partition != slow.partition]
    behind = [i for i, r in records.items() if r.partition == slow.partition and i != "slow"]
    assert elsewhere, "8 keys over 3 partitions: some land beside the slow one"

    with RecordingSink({"slow": [503, 503]}) as sink, run(source, sink, brokers, Commits()):
        sink.wait_until(lambda s: len(s.attempts("slow")) == 3 and len(s.requests) == 11)

    first_retry, last_attempt = (r.at for r in sink.attempts("slow")[1:])
    assert all(sink.attempts(i)[0].at < first_retry for i in elsewhere)
    assert all(sink.attempts(i)[0].at > last_attempt for i in behind)


def test_the_command_delivers_and_stops_cleanly_on_sigterm(
    tmp_path: Path, topic_prefix: str, producer: EventProducer, brokers: list[str]
) -> None:
    # The real manifests, copied with the test's topics and groups (the command has no
    # override: in the local stack the manifests' topics are the functions' topics).
    for manifest in (ROOT / "kafka-sources").glob("*.yaml"):
        text = manifest.read_text().replace(f"{PRODUCTION_PREFIX}.", f"{topic_prefix}.")
        (tmp_path / manifest.name).write_text(text.replace("chat-service-", f"{topic_prefix}-"))
    sinks = tmp_path / "endpoints.json"
    with RecordingSink() as sink:
        sinks.write_text(json.dumps({"functions": {"message-processor": {"url": sink.url}}}))
        command = [sys.executable, "-m", "shared.kafkasource", "--manifests", str(tmp_path)]
        command += ["--sinks-from", str(sinks), "--brokers", ",".join(brokers)]
        command += ["--hold-until", str(tmp_path / "functions-healthy")]
        process = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True)
        try:
            producer.publish([(f"{topic_prefix}.messages.inbound", event("e1"))])
            (tmp_path / "functions-healthy").touch()
            sink.wait_until(lambda s: s.ids() == ["e1"], timeout_s=30)
        finally:
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=30)

    assert process.returncode == 0, stderr
    lines = [json.loads(line) for line in stderr.splitlines()]
    messages = {(line["message"], line.get("kafkasource")) for line in lines}
    assert ("delivered", "message-processor") in messages
    assert ("kafkasource stopped", "message-processor") in messages
    held = [line["message"] for line in lines if line["message"].startswith("deliveries ")]
    assert held == ["deliveries held", "deliveries released"]
    skipped = {
        line["kafkasource"] for line in lines if line["message"].startswith("kafkasource skipped")
    }
    assert skipped == {"outbound-dispatcher", "status-tracker", "audit-logger", "analytics-sink"}


def test_nothing_is_delivered_before_the_gate_opens(
    processor_source: Callable[..., KafkaSource], producer: EventProducer, brokers: list[str]
) -> None:
    # The local stack starts the dispatcher beside the functions: its consumers join and fetch
    # at once, and what they fetch waits in its lane until every function is healthy.
    source = processor_source()
    gate = threading.Event()
    commits = Commits()
    with RecordingSink() as sink:
        sinks = {"message-processor": sink.url}
        dispatcher = Dispatcher([source], sinks, brokers, on_commit=commits, gate=gate)
        with dispatcher:
            producer.publish([(source.topics[0], event("g1")), (source.topics[0], event("g2"))])
            source_dispatcher = dispatcher.sources[0]
            deadline = time.monotonic() + 30
            while _queued(source_dispatcher) < 2:
                assert time.monotonic() < deadline, "the records were never fetched"
                time.sleep(0.05)
            assert sink.requests == [] and commits.made == []
            gate.set()
            sink.wait_until(lambda s: s.ids() == ["g1", "g2"], timeout_s=30)


def _queued(source: Any) -> int:
    """Records fetched and waiting in the source's lanes (read under its lock)."""
    with source._lock:
        return sum(len(lane.records) for lane in source._lanes.values())


def test_a_consumer_joining_and_leaving_mid_load_stalls_no_partition(
    processor_source: Callable[..., KafkaSource], producer: EventProducer, brokers: list[str]
) -> None:
    # A rebalance revokes every partition (kafka-python's eager protocol) and hands some back.
    # A partition that was paused with a batch in flight must not stay paused when it comes
    # back, and must restart from its committed offset: nothing stalls, nothing is skipped.
    source = processor_source(backoff_delay_s=0.2)
    topic = source.topics[0]  # the inbound topic (the overflow topic is the second)
    keys = [f"acme:whatsapp:1065/4917000000{n:02d}" for n in range(12)]
    first = [f"r1-{n}" for n in range(36)]
    # Retries keep partitions paused with work in flight while the group changes.
    script: dict[str, list[Answer]] = {i: [503, 503] for i in first[::4]}
    second = [f"r2-{n}" for n in range(36)]
    commits = Commits()
    with RecordingSink(script) as sink, run(source, sink, brokers, commits):
        producer.publish([(topic, event(i, keys[n % 12])) for n, i in enumerate(first)])
        sink.wait_until(lambda s: len(set(s.ids())) >= 6)
        joiner = run(source, sink, brokers, Commits())
        joiner.start()
        sink.wait_until(lambda s: len(set(s.ids()) & set(first)) >= 24, timeout_s=40)
        joiner.stop()
        producer.publish([(topic, event(i, keys[n % 12])) for n, i in enumerate(second)])
        sink.wait_until(lambda s: set(first + second) <= set(s.ids()), timeout_s=60)


def recorded(name: str, calls: list[str]) -> Callable[[GroupConsumer, Any], None]:
    """GroupConsumer's ``name`` method, noting each call in ``calls``."""
    real = getattr(GroupConsumer, name)

    def method(self: GroupConsumer, partition: Any) -> None:
        calls.append(name)
        real(self, partition)

    return method


@pytest.mark.parametrize("queue_limit", [None, 20], ids=["default", "paused-by-backlog"])
def test_a_partition_holding_more_than_one_poll_of_records_is_drained(
    processor_source: Callable[..., KafkaSource],
    producer: EventProducer,
    brokers: list[str],
    queue_limit: int | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One conversation, so one partition, with a backlog of 450 records. With a small queue
    # limit the partition is paused while its backlog is long and resumed as it drains
    # (kafka-python parks what a paused partition had fetched): every record delivered once,
    # in order, either way.
    calls: list[str] = []
    for name in ("pause", "resume"):
        monkeypatch.setattr(GroupConsumer, name, recorded(name, calls))
    if queue_limit is not None:
        monkeypatch.setattr(dispatcher_module, "_QUEUE_LIMIT", queue_limit)
    source = processor_source()
    topic = source.topics[0]  # the inbound topic (the overflow topic is the second)
    ids = [f"m{n:04d}" for n in range(450)]
    producer.publish([(topic, event(i)) for i in ids])
    commits = Commits()
    with RecordingSink() as sink, run(source, sink, brokers, commits):
        sink.wait_until(lambda s: len(s.requests) >= len(ids), timeout_s=60)
        time.sleep(0.3)  # room for a wrong extra delivery to show

    assert list(iter_ids(sink.requests, KEY_A)) == ids
    if queue_limit is None:
        assert calls == []  # fetched while delivered: never paused
    else:
        assert calls.count("pause") >= 1 and calls.count("resume") == calls.count("pause")
