"""Dead letters in memory: decoding Knative's error extensions, grouping, filters, the replay's
record and topic, and the command on records handed to it instead of a broker."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cloudevents.http import CloudEvent

from shared.caching import clear_all
from shared.errors import DependencyUnavailable
from shared.kafka import TimedRecord, to_record
from shared.kafkasource import delivery, manifests
from shared.kafkasource.delivery import Outcome
from shared.ops import deadletter, dlq
from shared.ops.dlq import DeadLetter, Selection

ROOT = Path(__file__).resolve().parents[3]
SOURCES = manifests.load(ROOT / "kafka-sources")
INBOUND = "chatbot.platform.messages.inbound"
DLQ = "chatbot.platform.dlq.message-processor"
AUDIT_DLQ = "chatbot.platform.dlq.audit-logger"
SINK = "http://message-processor.chat-service.svc.cluster.local/"
KEY = "acme:whatsapp:1065/4915"
RECEIVED = "com.chatbot.message.received.v1"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
POISON = b'{"error":"malformed_event","message":"the event data is not a message"}'


def original(event_id: str, *, event_type: str = RECEIVED, offset: int = 0) -> TimedRecord:
    event = CloudEvent(
        {
            "type": event_type,
            "source": "/chat-service/channels/whatsapp/1065",
            "id": event_id,
            "time": "2026-03-01T11:59:00Z",
            "datacontenttype": "application/json",
            "partitionkey": KEY,
            "tenantid": "acme",
        },
        {"conversation_key": KEY, "text": f"message {event_id}"},
    )
    message = to_record(event)
    assert isinstance(message.key, bytes) and isinstance(message.value, bytes)
    return TimedRecord(INBOUND, 1, offset, message.key, dict(message.headers), message.value)


def dead_letter(
    event_id: str,
    outcome: Outcome = Outcome(400, POISON),  # noqa: B008 (a frozen value)
    *,
    at: datetime = T0,
    topic: str = DLQ,
    source: str = "message-processor",
    event_type: str = RECEIVED,
    offset: int = 0,
) -> DeadLetter:
    """A dead letter with the headers the dispatcher writes (Knative's, in binary mode)."""
    record = original(event_id, event_type=event_type, offset=offset)
    event = delivery.to_http(record, source, "default")
    headers = delivery.dead_letter_headers(record, event, outcome, SINK)
    timestamp_ms = int(at.timestamp() * 1000)
    letter = TimedRecord(topic, 0, offset, record.key, dict(headers), record.value, timestamp_ms)
    return DeadLetter(source, letter)


# --- decoding


def test_the_error_extensions_are_decoded_and_kept_apart_from_the_attributes() -> None:
    letter = dead_letter("e1")

    assert (letter.id, letter.type, letter.error_code) == ("e1", RECEIVED, "400")
    assert letter.error_dest == SINK
    assert letter.error_data == POISON  # knativeerrordata is base64 on the record
    assert dlq.readable(letter.error_data)["error"] == "malformed_event"
    assert not [name for name in letter.attributes if name.startswith("knativeerror")]
    assert letter.attributes["tenantid"] == "acme"
    assert letter.content_type == "application/json"
    assert letter.time == T0


def test_a_dead_letter_without_an_answer_has_no_code_and_the_dispatch_error() -> None:
    letter = dead_letter("e1", Outcome(None, error="ReadTimeout: timed out"))

    assert letter.error_code == dlq.NO_CODE
    assert letter.error_data == b"dispatch error: ReadTimeout: timed out"


def test_error_data_that_is_not_base64_is_kept_as_it_is() -> None:
    letter = dead_letter("e1")
    headers = {**letter.record.headers, "ce_knativeerrordata": b"not base64!"}
    broken = DeadLetter(letter.source, TimedRecord(**{**vars(letter.record), "headers": headers}))
    assert broken.error_data == b"not base64!"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (b'{"a": 1}', {"a": 1}),
        (b"plain text", "plain text"),
        (b"\xff\xfe", "base64://4="),
        (None, None),
    ],
)
def test_bytes_are_shown_as_json_text_or_base64(raw: bytes | None, shown: Any) -> None:
    assert dlq.readable(raw) == shown


# --- list: grouping


def test_a_topic_summary_counts_by_code_destination_and_type_with_samples() -> None:
    letters = [
        dead_letter("e1", at=T0 + timedelta(minutes=5)),
        dead_letter("e2", at=T0),
        dead_letter("e3", Outcome(503, b'{"error":"dependency_unavailable"}'), at=T0),
        dead_letter("e4", Outcome(None, error="ConnectError: refused"), event_type="x.v1"),
    ]

    summary = dlq.summarise("message-processor", letters).to_json()

    assert summary == {
        "source": "message-processor",
        "count": 4,
        "oldest": "2026-03-01T12:00:00.000Z",
        "newest": "2026-03-01T12:05:00.000Z",
        "by_error_code": {"400": 2, "503": 1, "none": 1},
        "by_error_dest": {SINK: 4},
        "by_type": {RECEIVED: 3, "x.v1": 1},
        "error_data_samples": {
            "400": [POISON.decode()],  # the same body twice is one sample
            "503": ['{"error":"dependency_unavailable"}'],
            "none": ["dispatch error: ConnectError: refused"],
        },
    }


def test_an_empty_topic_has_no_times() -> None:
    summary = dlq.summarise("status-tracker", []).to_json()
    assert (summary["count"], summary["oldest"], summary["newest"]) == (0, None, None)


def test_samples_are_one_line_and_short() -> None:
    sample = dlq.sample_text(b"x" * 500 + b"\n")
    assert len(sample) == dlq.SAMPLE_CHARS and sample.endswith("…")
    assert dlq.sample_text(b'{\n  "a": 1\n}') == '{ "a": 1 }'


# --- replay: filters


def test_an_empty_selection_takes_every_dead_letter() -> None:
    assert not Selection().narrowed
    assert Selection().matches(dead_letter("e1"))


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        (Selection(ids=frozenset({"e1", "e3"})), ["e1", "e3"]),
        (Selection(types=frozenset({"x.v1"})), ["e4"]),
        (Selection(error_codes=("400",)), ["e1"]),
        (Selection(error_codes=("5xx",)), ["e2", "e3"]),
        (Selection(error_codes=("4xx", "none")), ["e1", "e4"]),
        (Selection(since=T0 + timedelta(minutes=1)), ["e2", "e3", "e4"]),  # at or after
        (Selection(until=T0 + timedelta(minutes=2)), ["e1", "e2"]),  # before
        (Selection(error_codes=("5xx",), until=T0 + timedelta(minutes=2)), ["e2"]),  # all apply
    ],
)
def test_filters_combine(selection: Selection, expected: list[str]) -> None:
    letters = [
        dead_letter("e1", at=T0),
        dead_letter("e2", Outcome(503), at=T0 + timedelta(minutes=1)),
        dead_letter("e3", Outcome(502), at=T0 + timedelta(minutes=2)),
        dead_letter(
            "e4", Outcome(None, error="x"), at=T0 + timedelta(minutes=3), event_type="x.v1"
        ),
    ]
    assert selection.narrowed
    assert [letter.id for letter in letters if selection.matches(letter)] == expected


@pytest.mark.parametrize("text", ["400", "5XX", " none ", "429"])
def test_error_code_patterns(text: str) -> None:
    assert dlq.error_code_pattern(text) == text.strip().lower()


@pytest.mark.parametrize("text", ["4x", "40", "6xx", "timeout", ""])
def test_bad_error_code_patterns(text: str) -> None:
    with pytest.raises(ValueError, match="a status such as 400"):
        dlq.error_code_pattern(text)


# --- replay: the record and its topic


def test_a_replay_is_the_original_record_without_the_error_extensions() -> None:
    record = original("e1")
    letter = dead_letter("e1")

    assert dict(letter.replay_headers()) == record.headers
    assert [name for name, _ in letter.replay_headers()] == list(record.headers)  # order kept
    assert (letter.record.key, letter.record.value) == (record.key, record.value)
    restored = TimedRecord(INBOUND, 0, 0, record.key, dict(letter.replay_headers()), record.value)
    assert restored.event()["id"] == "e1"


def test_an_event_dead_lettered_twice_is_replayed_once() -> None:
    letters = [dead_letter("e1"), dead_letter("e2"), dead_letter("e1", Outcome(503), offset=5)]
    unique, repeats = dlq.distinct(letters)
    assert [letter.id for letter in unique] == ["e1", "e2"] and repeats == 1
    assert unique[0].error_code == "400"  # the first one is kept


def test_a_single_topic_source_replays_to_its_topic() -> None:
    assert dlq.replay_topic(dead_letter("e1"), SOURCES) == INBOUND


def test_the_audit_logger_replays_to_the_topic_only_it_reads() -> None:
    letter = dead_letter("e1", topic=AUDIT_DLQ, source="audit-logger")
    assert dlq.replay_topic(letter, SOURCES) == "chatbot.platform.audit"


def test_a_wrapped_record_replays_to_the_topic_knative_recorded() -> None:
    raw = TimedRecord("chatbot.platform.messages.status", 0, 3, b"k", {"x-trace": b"t"}, b"hi")
    event = delivery.to_http(raw, "audit-logger", "default")
    headers = delivery.dead_letter_headers(raw, event, Outcome(500), SINK)
    letter = DeadLetter("audit-logger", TimedRecord(AUDIT_DLQ, 0, 0, b"k", dict(headers), b"hi"))

    assert letter.type == delivery.KAFKA_EVENT_TYPE
    assert dlq.replay_topic(letter, SOURCES) == "chatbot.platform.messages.status"


def test_a_source_without_a_topic_of_its_own_replays_to_its_event_types_topic() -> None:
    for event_type, topic in (
        (RECEIVED, INBOUND),
        ("com.chatbot.message.status.v1", "chatbot.platform.messages.status"),
    ):
        letter = dead_letter(
            "e1", topic="chatbot.platform.dlq.analytics-sink", source="analytics-sink",
            event_type=event_type,
        )  # fmt: skip
        assert dlq.replay_topic(letter, SOURCES) == topic


def test_a_source_without_a_topic_of_its_own_cannot_replay_a_foreign_type() -> None:
    audit = next(s for s in SOURCES if s.name == "audit-logger")
    shared_only = [*SOURCES, _with(audit, name="second-trail")]
    letter = dead_letter("e1", topic=AUDIT_DLQ, source="audit-logger", event_type="com.example.x")
    with pytest.raises(dlq.ReplayError, match="no unambiguous target"):
        dlq.replay_topic(letter, shared_only)
    with pytest.raises(dlq.ReplayError, match="no KafkaSource"):
        dlq.replay_topic(dead_letter("e1", source="gone"), SOURCES)


def test_topics_move_under_topic_prefix_as_the_wiring_moves_them() -> None:
    moved, strays = dlq.deployed(SOURCES, "chatbot.staging")
    processor = next(s for s in moved if s.name == "message-processor")
    assert processor.topics == (
        "chatbot.staging.messages.inbound",
        "chatbot.staging.messages.overflow",
    )
    assert processor.delivery.dead_letter_topic == "chatbot.staging.dlq.message-processor"
    assert strays == []
    assert dlq.deployed(SOURCES, dlq.MANIFEST_PREFIX) == (list(SOURCES), [])

    odd = _with(SOURCES[0], topics=("legacy.inbound",))
    assert dlq.deployed([odd], "chatbot.staging")[1] == ["legacy.inbound"]


def _with(source: manifests.KafkaSource, **changes: Any) -> manifests.KafkaSource:
    return replace(source, **changes)


# --- the command, on records handed to it


class FakeKafka:
    """``read_to_end`` and ``RecordProducer`` of :mod:`shared.ops.deadletter`, in memory."""

    def __init__(self, topics: dict[str, list[DeadLetter]]) -> None:
        self.topics = {topic: [x.record for x in letters] for topic, letters in topics.items()}
        self.sent: list[tuple[str, bytes | None, list[tuple[str, bytes]], bytes | None]] = []
        self.down = False

    def read_to_end(self, brokers: Sequence[str], topic: str) -> list[TimedRecord]:
        if self.down:
            raise DependencyUnavailable("Kafka unreachable: NoBrokersAvailable", dependency="kafka")
        return self.topics.get(topic, [])

    def producer(self, brokers: Sequence[str], *, client_id: str) -> FakeKafka:
        return self

    def send(
        self,
        topic: str,
        key: bytes | None,
        headers: Sequence[tuple[str, bytes]],
        value: bytes | None,
    ) -> None:
        self.sent.append((topic, key, list(headers), value))

    def close(self) -> None:
        pass


@pytest.fixture
def kafka(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKafka]:
    fake = FakeKafka(
        {
            DLQ: [dead_letter("e1"), dead_letter("e2", Outcome(503), at=T0 + timedelta(hours=1))],
            AUDIT_DLQ: [dead_letter("e1", topic=AUDIT_DLQ, source="audit-logger")],
        }
    )
    monkeypatch.delenv("TOPIC_PREFIX", raising=False)
    monkeypatch.setenv("KAFKA_BROKERS", "kafka.test:9092")
    monkeypatch.setattr(deadletter, "read_to_end", fake.read_to_end)
    monkeypatch.setattr(deadletter, "RecordProducer", fake.producer)
    clear_all()  # the settings are read once per process
    yield fake
    clear_all()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = deadletter.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_list_json_has_every_dead_letter_topic(
    kafka: FakeKafka, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(capsys, "list", "--json")

    topics = json.loads(out)["topics"]
    assert status == 0
    assert set(topics) == {f"chatbot.platform.dlq.{s.name}" for s in SOURCES}
    assert topics[DLQ]["count"] == 2 and topics[DLQ]["by_error_code"] == {"400": 1, "503": 1}
    assert topics[AUDIT_DLQ]["source"] == "audit-logger"
    assert topics["chatbot.platform.dlq.status-tracker"]["count"] == 0


def test_list_prints_a_table_and_each_topics_errors(
    kafka: FakeKafka, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(capsys, "list", "--source", "message-processor")

    lines = out.splitlines()
    assert status == 0
    assert lines[0].split() == ["SOURCE", "DEAD-LETTER", "TOPIC", "COUNT", "OLDEST", "NEWEST"]
    assert lines[1].split() == [
        "message-processor",
        DLQ,
        "2",
        "2026-03-01T12:00:00.000Z",
        "2026-03-01T13:00:00.000Z",
    ]
    assert any(line.split()[:2] == ["400", "1"] and "malformed_event" in line for line in lines)
    assert any(line.split() == [RECEIVED, "2"] for line in lines)


def test_show_decodes_one_event(kafka: FakeKafka, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "show", "e1", "--source", "message-processor", "--json")

    [letter] = json.loads(out)["dead_letters"]
    assert status == 0
    assert letter["attributes"]["id"] == "e1"
    assert letter["errors"] == {
        "knativeerrorcode": "400",
        "knativeerrordest": SINK,
        "knativeerrordata": json.loads(POISON),
    }
    assert letter["data"] == {"conversation_key": KEY, "text": "message e1"}
    assert (letter["key"], letter["replay_topic"]) == (KEY, INBOUND)

    status, out, _ = run(capsys, "show", "e1")  # both topics hold one
    assert status == 0
    lines = [line.split() for line in out.splitlines()]
    assert lines.count(["knativeerrorcode", "400"]) == 2
    assert ["replay", "to", INBOUND] in lines
    assert ["replay", "to", "chatbot.platform.audit"] in lines


def test_show_of_an_unknown_id_exits_1(
    kafka: FakeKafka, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run(capsys, "show", "nope")
    assert status == 1 and "no dead letter with id nope" in err


def test_replay_produces_the_original_records_to_the_source_topic(
    kafka: FakeKafka, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(capsys, "replay", "--error-code", "4xx")

    assert status == 0
    assert [(topic, key) for topic, key, _, _ in kafka.sent] == [
        (INBOUND, KEY.encode()),
        ("chatbot.platform.audit", KEY.encode()),
    ]
    _, _, headers, value = kafka.sent[0]
    assert dict(headers) == original("e1").headers and value == original("e1").value
    assert out.splitlines()[-1] == "2 replayed"
    assert f"→ {INBOUND}" in out.splitlines()[0]


def test_a_dry_run_produces_nothing(kafka: FakeKafka, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "replay", "--dry-run", "--source", "message-processor")

    assert status == 0 and kafka.sent == []
    assert [line.split()[:2] for line in out.splitlines()[:2]] == [["would", "replay"]] * 2
    assert out.splitlines()[-1] == "2 would be replayed (dry run: nothing produced)"


def test_replay_with_filters_that_match_nothing_exits_1(
    kafka: FakeKafka, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(capsys, "replay", "--id", "nope", "other")
    assert (status, out.strip(), kafka.sent) == (1, "no dead letter matches", [])


def test_replay_of_an_empty_topic_without_filters_is_done(
    kafka: FakeKafka, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(capsys, "replay", "--source", "status-tracker")
    assert (status, out.strip()) == (0, "no dead letters")


def test_kafka_unreachable_exits_1(kafka: FakeKafka, capsys: pytest.CaptureFixture[str]) -> None:
    kafka.down = True
    status, _, err = run(capsys, "list")
    assert status == 1 and "Kafka unreachable" in err and "kafka.test:9092" in err


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["list", "--source", "nope"],
        ["replay", "--error-code", "4x"],
        ["replay", "--since", "yesterday"],
        ["show"],
    ],
)
def test_usage_errors_exit_2(kafka: FakeKafka, argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        deadletter.main(argv)
    assert exit_.value.code == 2


def test_unreadable_manifests_exit_2(
    kafka: FakeKafka, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run(capsys, "list", "--manifests", str(tmp_path))
    assert status == 2 and "kustomization.yaml" in err


def test_topic_prefix_moves_the_topics_read_and_written(
    kafka: FakeKafka, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TOPIC_PREFIX", "chatbot.staging")
    clear_all()
    kafka.topics = {"chatbot.staging.dlq.message-processor": kafka.topics[DLQ]}

    status, _, _ = run(capsys, "replay", "--id", "e2")

    assert status == 0
    assert [topic for topic, *_ in kafka.sent] == ["chatbot.staging.messages.inbound"]
