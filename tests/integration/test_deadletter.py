"""``python -m shared.ops.deadletter`` against a real broker, on dead letters written by the
local KafkaSource dispatcher (a sink answering 400), on the test's own topics."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from shared.caching import clear_all
from shared.events import MESSAGE_RECEIVED, message_received
from shared.kafka import ConsumedRecord, EventProducer, TimedRecord, read_to_end, read_topic
from shared.kafkasource.manifests import KafkaSource
from shared.kafkasource.runner import Dispatcher, ensure_source_topics
from shared.ops import deadletter
from shared.settings import Settings
from tests.builders import inbound_message
from tests.integration.kafkasource_support import RecordingSink, scoped_sources

pytestmark = pytest.mark.integration

POISON = message_received(inbound_message(platform_message_id="wamid.poison", text="poison"))
LATER = message_received(inbound_message(platform_message_id="wamid.later", text="later"))
POISON_ID, LATER_ID = POISON["id"], LATER["id"]
WIRED = ("message-processor", "audit-logger")  # both read the inbound topic


@dataclass(frozen=True)
class Scene:
    prefix: str
    brokers: list[str]
    sources: dict[str, KafkaSource]
    poison: ConsumedRecord  # the record the dispatcher failed to deliver
    sink_url: str

    def topic(self, source: str) -> str:
        return self.sources[source].topics[0]

    def dead_letter_topic(self, source: str) -> str:
        topic = self.sources[source].delivery.dead_letter_topic
        assert topic is not None
        return topic

    def records_of(self, topic: str, event_id: str) -> list[TimedRecord]:
        """The event's records on ``topic``, in the order they were written."""
        records = [r for r in read_to_end(self.brokers, topic) if r.event()["id"] == event_id]
        return sorted(records, key=lambda r: (r.timestamp_ms, r.offset))


@pytest.fixture
def tool_env(
    kafka_brokers: str, topic_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """The command's settings: the test's broker and topic prefix."""
    monkeypatch.setenv("KAFKA_BROKERS", kafka_brokers)
    monkeypatch.setenv("TOPIC_PREFIX", topic_prefix)
    clear_all()
    yield
    clear_all()


@pytest.fixture
def scene(kafka_brokers: str, topic_prefix: str, tool_env: None) -> Scene:
    """A poison event and a later one on the inbound topic; message-processor's and
    audit-logger's sources deliver both to a sink that answers the poison 400."""
    brokers = kafka_brokers.split(",")
    sources = scoped_sources(topic_prefix)
    wired = [sources[name] for name in WIRED]
    ensure_source_topics(brokers, wired)
    inbound = sources["message-processor"].topics[0]
    producer = EventProducer(Settings(kafka_brokers=tuple(brokers)))
    try:
        producer.publish([(inbound, POISON), (inbound, LATER)])
    finally:
        producer.close()
    [poison] = [
        r for r in read_topic(brokers, inbound, min_records=2) if r.event()["id"] == POISON_ID
    ]

    with (
        RecordingSink({POISON_ID: [400] * len(WIRED)}) as sink,
        Dispatcher(wired, dict.fromkeys(WIRED, sink.url), brokers),
    ):
        # In order per partition: once both delivered the later event, the poison's dead
        # letters are written.
        sink.wait_until(lambda s: s.ids().count(LATER_ID) == len(WIRED), timeout_s=30)
    return Scene(topic_prefix, brokers, sources, poison, sink.url)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    status = deadletter.main(list(argv))
    out, err = capsys.readouterr()
    return status, out + err


def test_list_counts_each_dead_letter_topic(
    scene: Scene, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out = run(capsys, "list", "--json")

    assert status == 0
    topics = json.loads(out)["topics"]
    assert set(topics) == {scene.dead_letter_topic(name) for name in scene.sources}
    processor = topics[scene.dead_letter_topic("message-processor")]
    assert processor["oldest"] is not None and processor["oldest"] == processor["newest"]
    assert {k: v for k, v in processor.items() if k not in ("oldest", "newest")} == {
        "source": "message-processor",
        "count": 1,
        "by_error_code": {"400": 1},
        "by_error_dest": {scene.sink_url + "/": 1},
        "by_type": {MESSAGE_RECEIVED: 1},
        "error_data_samples": {"400": ['{"error": 400}']},
    }
    assert topics[scene.dead_letter_topic("audit-logger")]["count"] == 1
    assert topics[scene.dead_letter_topic("status-tracker")]["count"] == 0

    status, out = run(capsys, "list")
    assert status == 0
    row = ["message-processor", scene.dead_letter_topic("message-processor"), "1"]
    assert any(line.split()[:3] == row for line in out.splitlines())


def test_show_decodes_the_dead_letter(scene: Scene, capsys: pytest.CaptureFixture[str]) -> None:
    status, out = run(capsys, "show", POISON_ID, "--source", "message-processor", "--json")

    assert status == 0
    [letter] = json.loads(out)["dead_letters"]
    assert letter["key"] == (scene.poison.key or b"").decode()
    assert letter["attributes"]["id"] == POISON_ID
    assert letter["attributes"]["type"] == MESSAGE_RECEIVED
    assert letter["errors"] == {
        "knativeerrorcode": "400",
        "knativeerrordest": scene.sink_url + "/",
        "knativeerrordata": {"error": 400},
    }
    assert letter["data"] == json.loads(scene.poison.value)
    assert letter["replay_topic"] == scene.topic("message-processor")

    status, out = run(capsys, "show", POISON_ID)
    assert status == 0
    lines = [line.split(None, 1) for line in out.splitlines()]
    assert lines.count(["id", POISON_ID]) == len(WIRED)  # one dead letter per source
    assert ["knativeerrordata", '{"error": 400}'] in lines


def test_a_dry_run_produces_nothing_and_a_replay_restores_the_original_records(
    scene: Scene, capsys: pytest.CaptureFixture[str]
) -> None:
    inbound, audit = scene.topic("message-processor"), f"{scene.prefix}.audit"
    before = {topic: len(read_to_end(scene.brokers, topic)) for topic in (inbound, audit)}

    status, out = run(capsys, "replay", "--error-code", "400", "--dry-run")

    assert status == 0 and out.count("would replay") == len(WIRED)
    assert {topic: len(read_to_end(scene.brokers, topic)) for topic in (inbound, audit)} == before

    status, out = run(capsys, "replay", "--error-code", "4xx")

    assert status == 0
    assert f"→ {inbound}" in out and f"→ {audit}" in out  # the audit trail's own topic
    first, replayed = scene.records_of(inbound, POISON_ID)
    [to_audit] = scene.records_of(audit, POISON_ID)
    for record in (replayed, to_audit):
        assert (record.key, record.value, record.headers) == (first.key, first.value, first.headers)
        assert not [name for name in record.headers if name.startswith("ce_knativeerror")]
        assert record.event()["type"] == MESSAGE_RECEIVED
    assert replayed.partition == first.partition  # the same key: the conversation's partition


def test_a_replay_whose_filters_match_nothing_exits_1(
    tool_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out = run(capsys, "replay", "--id", "no-such-event")
    assert (status, out.strip()) == (1, "no dead letter matches")
