"""Records to HTTP CloudEvents, answers to outcomes, and the retry/dead-letter state machine."""

from __future__ import annotations

import base64
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from cloudevents.http import CloudEvent

from shared.errors import DependencyUnavailable
from shared.kafka import TimedRecord, to_record
from shared.kafkasource import delivery
from shared.kafkasource import dispatcher as dispatcher_module
from shared.kafkasource.delivery import Outcome
from shared.kafkasource.dispatcher import SourceDispatcher
from shared.kafkasource.manifests import Delivery, KafkaSource

SINK = "http://sink.local/"


def ce_record(event_id: str = "e1", offset: int = 7) -> TimedRecord:
    event = CloudEvent(
        {
            "type": "com.chatbot.message.received.v1",
            "source": "/chat-service/channels/whatsapp/1065",
            "id": event_id,
            "time": "2026-01-02T03:04:05Z",
            "datacontenttype": "application/json",
            "partitionkey": "acme:whatsapp:1065/4915",
            "tenantid": "acme",
        },
        {"text": "hallo"},
    )
    message = to_record(event)
    assert isinstance(message.key, bytes) and isinstance(message.value, bytes)
    return TimedRecord("in", 1, offset, message.key, dict(message.headers), message.value, 0)


def plain_record() -> TimedRecord:
    headers = {"X-Trace_Id": b"abc", "Content-Type": b"Text/Plain"}
    return TimedRecord("in", 2, 42, b"k1", headers, b"hello", 1_700_000_000_000)


def test_cloudevent_record_becomes_binary_mode_http() -> None:
    event = delivery.to_http(ce_record(), "message-processor", "default")
    assert event.headers == {
        "ce-specversion": "1.0",
        "ce-type": "com.chatbot.message.received.v1",
        "ce-source": "/chat-service/channels/whatsapp/1065",
        "ce-id": "e1",
        "ce-time": "2026-01-02T03:04:05Z",
        "ce-tenantid": "acme",
        "content-type": "application/json",
    }
    assert event.body == b'{"text":"hallo"}'


def test_other_record_is_wrapped_as_knative_does() -> None:
    event = delivery.to_http(plain_record(), "message-processor", "default")
    assert event.headers == {
        "ce-specversion": "1.0",
        "ce-id": "partition:2/offset:42",
        "ce-source": "/apis/v1/namespaces/default/kafkasources/message-processor#in",
        "ce-type": "dev.knative.kafka.event",
        "ce-subject": "partition:2#42",
        "ce-time": "2023-11-14T22:13:20Z",
        "ce-key": "k1",
        "ce-partitionkey": "k1",
        "ce-kafkaheaderxtraceid": "abc",
        "content-type": "text/plain",
    }
    assert event.body == b"hello"


@pytest.mark.parametrize(
    ("status", "delivered", "retryable"),
    [
        (200, True, False),
        (202, True, False),
        (400, False, False),
        (401, False, False),
        (413, False, False),
        (404, False, True),
        (409, False, True),
        (429, False, True),
        (500, False, True),
        (503, False, True),
        (None, False, True),
    ],
)
def test_outcomes_follow_the_data_plane_contract(
    status: int | None, delivered: bool, retryable: bool
) -> None:
    outcome = Outcome(status)
    assert (outcome.delivered, outcome.delivered or outcome.retryable) == (
        delivered,
        delivered or retryable,
    )


def test_retry_after() -> None:
    assert delivery.retry_after("5") == 5.0
    assert delivery.retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert delivery.retry_after("soon") is None
    assert delivery.retry_after(None) is None


def test_wait_before_retry_honours_a_longer_retry_after_up_to_the_cap() -> None:
    policy = Delivery(5, "exponential", 0.5, None)
    assert delivery.wait_before_retry(policy, 2, Outcome(503)) == 2.0
    assert delivery.wait_before_retry(policy, 2, Outcome(503, retry_after_s=7)) == 7.0
    assert delivery.wait_before_retry(policy, 2, Outcome(500, retry_after_s=7)) == 2.0
    assert delivery.wait_before_retry(policy, 1, Outcome(429, retry_after_s=3600)) == 60.0
    capped = replace(policy, retry_after_max_s=0.0)  # PT0S opts out of Retry-After
    assert delivery.wait_before_retry(capped, 1, Outcome(429, retry_after_s=9)) == 1.0


def test_post_reads_the_answer_and_survives_transport_errors() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.headers["ce-id"] == "e1"
        return httpx.Response(429, headers={"Retry-After": "3"}, content=b"slow down")

    event = delivery.to_http(ce_record(), "s", "default")
    with httpx.Client(transport=httpx.MockTransport(answer)) as client:
        assert delivery.post(client, SINK, event, 1.0) == Outcome(429, b"slow down", "", 3.0)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    with httpx.Client(transport=httpx.MockTransport(refuse)) as client:
        outcome = delivery.post(client, SINK, event, 1.0)
    assert outcome.status is None and "ConnectError" in outcome.error and outcome.retryable


def test_dead_letter_headers_keep_the_event_and_add_knative_errors() -> None:
    record = ce_record()
    event = delivery.to_http(record, "s", "default")
    headers = dict(delivery.dead_letter_headers(record, event, Outcome(400, b"{}"), SINK))
    assert {k: v for k, v in headers.items() if not k.startswith("ce_knative")} == record.headers
    assert headers["ce_knativeerrordest"] == SINK.encode()
    assert headers["ce_knativeerrorcode"] == b"400"
    assert base64.b64decode(headers["ce_knativeerrordata"]) == b"{}"

    no_answer = Outcome(None, error="ConnectTimeout: timed out")
    headers = dict(delivery.dead_letter_headers(record, event, no_answer, SINK))
    assert "ce_knativeerrorcode" not in headers
    assert base64.b64decode(headers["ce_knativeerrordata"]).startswith(b"dispatch error:")


def test_wrapped_record_is_dead_lettered_as_its_cloudevent() -> None:
    record = plain_record()
    event = delivery.to_http(record, "s", "default")
    headers = dict(delivery.dead_letter_headers(record, event, Outcome(400), SINK))
    assert headers["ce_type"] == b"dev.knative.kafka.event"
    assert headers["ce_id"] == b"partition:2/offset:42"
    assert headers["content-type"] == b"text/plain"


class FakeDeadLetters:
    def __init__(self, failures: int = 0) -> None:
        self.sent: list[tuple[str, bytes | None, dict[str, bytes], bytes | None]] = []
        self.failures = failures

    def send(self, topic: str, key: Any, headers: Any, value: Any) -> None:
        if self.failures:
            self.failures -= 1
            raise DependencyUnavailable("broker down", dependency="kafka")
        self.sent.append((topic, key, dict(headers), value))


def dispatcher(
    statuses: list[int],
    dead_letters: FakeDeadLetters,
    retry: int = 2,
    stop: threading.Event | None = None,
    on_commit: Any = None,
) -> Any:
    answers = iter(statuses)
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["ce-id"])
        return httpx.Response(next(answers))

    sink = answering(answer, dead_letters, retry, stop or threading.Event(), on_commit=on_commit)
    return sink, seen


def answering(
    answer: Any, dead_letters: FakeDeadLetters, retry: int, stop: threading.Event, **options: Any
) -> SourceDispatcher:
    """A dispatcher of source ``s`` whose sink answers with ``answer(request)``."""
    source = KafkaSource(
        "s", ("in",), "g", ("b:9092",), "earliest", "ordered", "fn",
        Delivery(retry, "linear", 0.001, "in.dlq"), Path("s.yaml"),
    )  # fmt: skip
    client = httpx.Client(transport=httpx.MockTransport(answer))
    return SourceDispatcher(
        source, SINK, ["b:9092"], dead_letters, stop, http_client=client, **options
    )


def test_retries_then_delivers() -> None:
    dead_letters = FakeDeadLetters()
    source, seen = dispatcher([503, 500, 200], dead_letters)
    assert source.deliver(ce_record(), threading.Event()) is True
    assert seen == ["e1"] * 3 and dead_letters.sent == []


def test_exhausted_retries_go_to_the_dead_letter_topic() -> None:
    dead_letters = FakeDeadLetters(failures=1)  # and a failed dead-letter write is retried
    source, seen = dispatcher([503, 503, 503], dead_letters)
    assert source.deliver(ce_record(), threading.Event()) is True
    assert len(seen) == 3
    ((topic, key, headers, _),) = dead_letters.sent
    assert (topic, key, headers["ce_knativeerrorcode"]) == (
        "in.dlq",
        b"acme:whatsapp:1065/4915",
        b"503",
    )


def test_poison_goes_to_the_dead_letter_topic_at_once() -> None:
    dead_letters = FakeDeadLetters()
    source, seen = dispatcher([400], dead_letters)
    assert source.deliver(ce_record(), threading.Event()) is True
    assert seen == ["e1"] and dead_letters.sent[0][2]["ce_knativeerrorcode"] == b"400"


def test_an_aborted_delivery_is_not_settled() -> None:
    dead_letters = FakeDeadLetters()
    source, _ = dispatcher([503], dead_letters)
    abort = threading.Event()
    abort.set()
    assert source.deliver(ce_record(), abort) is False
    assert dead_letters.sent == []


class FakeConsumer:
    """A GroupConsumer stand-in: one batch, and a first commit that fails."""

    made: ClassVar[list[FakeConsumer]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.batches = [{("in", 1): [ce_record("e1", 7), ce_record("e2", 8)]}]
        self.commits: list[dict[tuple[str, int], int]] = []
        self.failures = 1
        self.paused: list[tuple[str, int]] = []
        self.resumed: list[tuple[str, int]] = []
        self.closed = False
        FakeConsumer.made.append(self)

    def lag(self, next_offsets: dict[tuple[str, int], int]) -> int:
        return 0

    def poll(self, timeout_s: float) -> dict[tuple[str, int], list[TimedRecord]]:
        time.sleep(0.005)
        return self.batches.pop(0) if self.batches else {}

    def pause(self, partition: tuple[str, int]) -> None:
        self.paused.append(partition)

    def resume(self, partition: tuple[str, int]) -> None:
        self.resumed.append(partition)

    def commit(self, offsets: dict[tuple[str, int], int]) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("the group coordinator moved")
        self.commits.append(dict(offsets))

    def close(self) -> None:
        self.closed = True


def run_consumer_loop(monkeypatch: pytest.MonkeyPatch) -> tuple[FakeConsumer, list[str], Any]:
    """Run the loop over FakeConsumer's batch until a commit is made: the consumer, the event
    ids the sink saw, the commits reported."""
    monkeypatch.setattr(dispatcher_module, "GroupConsumer", FakeConsumer)
    FakeConsumer.made.clear()
    committed: list[tuple[str, int, int]] = []
    stop = threading.Event()
    source, seen = dispatcher(
        [200, 200], FakeDeadLetters(), stop=stop, on_commit=lambda *c: committed.append(c)
    )
    runner = threading.Thread(target=source.run)
    runner.start()
    deadline = time.monotonic() + 5
    while not committed and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    runner.join(5)
    (consumer,) = FakeConsumer.made
    return consumer, seen, committed


def test_the_consumer_loop_delivers_and_commits_without_pausing_a_short_backlog(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    consumer, seen, committed = run_consumer_loop(monkeypatch)

    assert seen == ["e1", "e2"]
    assert consumer.paused == consumer.resumed == []  # the partition is fetched meanwhile
    assert consumer.commits == [{("in", 1): 9}]  # the failed commit was made again
    assert committed == [("in", 1, 9)] and consumer.closed


def test_a_partition_is_paused_while_its_backlog_is_full_and_resumed_once_it_drains(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dispatcher_module, "_QUEUE_LIMIT", 2)
    consumer, seen, committed = run_consumer_loop(monkeypatch)

    assert seen == ["e1", "e2"]
    assert consumer.paused == consumer.resumed == [("in", 1)]
    assert committed == [("in", 1, 9)]


class TwoPartitions(FakeConsumer):
    """One record on each of two partitions; commits never fail."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batches = [{("in", 1): [ce_record("e1", 7)], ("in", 2): [ce_record("boom", 3)]}]
        self.failures = 0


def test_a_failed_worker_stops_the_source_and_what_was_delivered_is_still_committed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dispatcher_module, "GroupConsumer", TwoPartitions)
    FakeConsumer.made.clear()

    def answer(request: httpx.Request) -> httpx.Response:
        if request.headers["ce-id"] == "boom":
            raise ValueError("a bug in the delivery path")  # not an HTTP failure
        return httpx.Response(200)

    sink = answering(answer, FakeDeadLetters(), 2, threading.Event())
    with pytest.raises(RuntimeError, match="a worker failed"):
        sink.run()

    (consumer,) = FakeConsumer.made
    committed = {p: o for commit in consumer.commits for p, o in commit.items()}
    assert committed == {("in", 1): 8} and consumer.closed  # the failed record: not committed


class BusyPartitions(FakeConsumer):
    """Two partitions of three records each, fetched in one poll; commits never fail."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batches = [
            {
                ("in", 1): [ce_record(f"a{n}", n) for n in range(3)],
                ("in", 2): [ce_record(f"b{n}", n) for n in range(3)],
            }
        ]
        self.failures = 0


def test_busy_partitions_take_turns_on_fewer_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    # One thread, turns of one record: each partition's lane goes to the back of the queue
    # after each record instead of holding the thread until it runs dry. In order per partition.
    monkeypatch.setattr(dispatcher_module, "GroupConsumer", BusyPartitions)
    monkeypatch.setattr(dispatcher_module, "_MAX_PARTITION_WORKERS", 1)
    monkeypatch.setattr(dispatcher_module, "_TURN", 1)
    FakeConsumer.made.clear()
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["ce-id"])
        return httpx.Response(200)

    stop, gate = threading.Event(), threading.Event()  # held until both lanes are queued
    sink = answering(answer, FakeDeadLetters(), 2, stop, gate=gate)
    runner = threading.Thread(target=sink.run)
    runner.start()
    deadline = time.monotonic() + 5
    while len(sink._lanes) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    gate.set()
    while len(seen) < 6 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    runner.join(5)

    assert seen == ["a0", "b0", "a1", "b1", "a2", "b2"]
