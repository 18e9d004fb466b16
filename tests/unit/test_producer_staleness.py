"""A producer whose acknowledgements keep timing out while the broker answers is replaced, and
so is one that holds a fatal Kafka error.

After a broker loses its state (a memory-backed broker restarted, a cluster rebuilt under the
same address) it no longer knows the producer's id, and kafka-python retries with it until
every send times out. Found by the fault matrix (tests/reliability): webhooks answered 503 for
over a minute after the broker was back.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest

from shared.errors import DependencyUnavailable
from shared.kafka import producers
from shared.kafka.producers import STALE_AFTER_TIMEOUTS, _Staleness, broken_producer


class KafkaTimeoutError(Exception):  # the name kafka-python's exception has
    pass


def test_timeouts_in_a_row_while_the_broker_answers_mean_a_stale_producer() -> None:
    with socket.socket() as broker:
        broker.bind(("127.0.0.1", 0))
        broker.listen()
        staleness = _Staleness([f"127.0.0.1:{broker.getsockname()[1]}"])
        verdicts = [staleness.stale_after(KafkaTimeoutError()) for _ in range(STALE_AFTER_TIMEOUTS)]
    assert verdicts == [False] * (STALE_AFTER_TIMEOUTS - 1) + [True]


def test_a_success_resets_the_count_and_other_errors_do_not_count() -> None:
    with socket.socket() as broker:
        broker.bind(("127.0.0.1", 0))
        broker.listen()
        staleness = _Staleness([f"127.0.0.1:{broker.getsockname()[1]}"])
        for _ in range(STALE_AFTER_TIMEOUTS - 1):
            assert not staleness.stale_after(KafkaTimeoutError())
        staleness.succeeded()
        assert not staleness.stale_after(KafkaTimeoutError())
        assert not staleness.stale_after(ValueError())


def test_a_broker_that_is_down_is_waited_for_not_blamed_on_the_producer() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    staleness = _Staleness([f"127.0.0.1:{port}"])  # nothing listens there
    assert not any(
        staleness.stale_after(KafkaTimeoutError()) for _ in range(3 * STALE_AFTER_TIMEOUTS)
    )


def test_a_fatal_kafka_error_means_a_broken_producer_a_timeout_does_not() -> None:
    from kafka import errors

    # What kafka-python raises, for every send, once an InitProducerId failed for good.
    fatal = errors.KafkaError("Unexpected error in InitProducerIdResponse: UnknownError")
    assert broken_producer(fatal)
    assert broken_producer(errors.UnknownProducerIdError())
    assert not broken_producer(errors.KafkaTimeoutError())
    assert not broken_producer(errors.KafkaConnectionError())  # retriable: it reconnects
    assert not broken_producer(ValueError("ours"))


def test_a_broken_producer_is_replaced_before_the_next_send(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[FakeProducer] = []

    def new_producer(*_args: object) -> FakeProducer:
        made.append(FakeProducer(broken=not made))  # the first is broken, the next works
        return made[-1]

    monkeypatch.setattr(producers, "new_producer", new_producer)
    producer = producers.RecordProducer(["127.0.0.1:9"], client_id="test")
    with pytest.raises(DependencyUnavailable, match="InitProducerId"):
        producer.send("topic", None, [], b"one")
    assert made[0].closed
    producer.send("topic", None, [], b"two")
    assert [p.sent for p in made] == [[], [b"two"]]


class FakeProducer:
    """kafka-python's producer as far as RecordProducer uses it."""

    def __init__(self, *, broken: bool) -> None:
        self.broken, self.closed = broken, False
        self.sent: list[bytes] = []

    def send(self, topic: str, **record: Any) -> FakeProducer:
        from kafka import errors

        if self.broken:
            raise errors.KafkaError("Unexpected error in InitProducerIdResponse: UnknownError")
        self.sent.append(record["value"])
        return self

    def get(self, timeout: float) -> None:
        return None

    def close(self, timeout: float) -> None:
        self.closed = True
