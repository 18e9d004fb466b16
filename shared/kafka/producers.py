"""Producers: the webhooks' event producer (acks=all, bounded) and a raw record producer."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any

from cloudevents.http import CloudEvent
from cloudevents.kafka import KafkaMessage

from shared.errors import DependencyUnavailable, describe
from shared.kafka.records import to_record
from shared.settings import Settings

# Errors after which only a new producer (new producer id, new sequence numbers) can succeed.
_PRODUCER_STATE_ERRORS = frozenset(
    {"UnknownProducerIdError", "OutOfOrderSequenceNumberError", "InvalidProducerEpochError"}
)


def broken_producer(exc: BaseException) -> bool:
    """Whether the producer that raised ``exc`` cannot recover and must be replaced: it lost its
    producer id, or it holds a fatal, non-retriable Kafka error (kafka-python keeps raising it
    for every later send: an ``InitProducerId`` that failed while the broker restarted left
    one webhook answering 503 for over a minute in the fault matrix). A timeout is not: the
    producer reconnects on its own (see :class:`_Staleness` for when it does not)."""
    if type(exc).__name__ in _PRODUCER_STATE_ERRORS:
        return True
    kafka_error = any(t.__name__ == "KafkaError" for t in type(exc).__mro__)
    return kafka_error and not getattr(exc, "retriable", True)


def new_producer(brokers: Sequence[str], client_id: str, timeout_s: float) -> Any:
    """A producer that waits for every in-sync replica (``acks=all``) and gives up within
    ``timeout_s``, whether metadata, a connection or the acknowledgement is what is late."""
    from kafka import KafkaProducer  # lazy: ~100 ms of imports

    timeout_ms = int(timeout_s * 1000)
    return KafkaProducer(
        bootstrap_servers=list(brokers),
        client_id=client_id,
        acks="all",
        linger_ms=0,
        max_block_ms=timeout_ms,
        request_timeout_ms=timeout_ms,
        delivery_timeout_ms=timeout_ms + 1000,
        bootstrap_timeout_ms=timeout_ms,
        retry_backoff_ms=100,
        reconnect_backoff_max_ms=1000,
    )


# Acknowledgements that timed out in a row, while the broker still accepts connections, after
# which the producer is replaced: a broker that lost its state (a restart of a memory-backed
# broker, a cluster rebuilt under the same address) no longer knows the producer's id, and
# kafka-python keeps retrying with it instead of failing.
STALE_AFTER_TIMEOUTS = 3


class _Staleness:
    """Counts acknowledgement timeouts in a row; says when the producer should be replaced."""

    def __init__(self, brokers: Sequence[str]) -> None:
        self._brokers = list(brokers)
        self._timeouts = 0
        self._lock = threading.Lock()

    def succeeded(self) -> None:
        with self._lock:
            self._timeouts = 0

    def stale_after(self, exc: BaseException) -> bool:
        if type(exc).__name__ != "KafkaTimeoutError":
            return False
        with self._lock:
            self._timeouts += 1
            if self._timeouts < STALE_AFTER_TIMEOUTS:
                return False
            self._timeouts = 0
        return brokers_reachable(self._brokers)


class EventProducer:
    """A lazily created, thread-safe producer (created in the worker, after gunicorn forks)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._producer: Any = None
        self._lock = threading.Lock()
        self._staleness = _Staleness(settings.kafka_brokers)

    def _client(self) -> Any:
        with self._lock:
            if self._producer is None:
                self._producer = new_producer(
                    self._settings.kafka_brokers,
                    self._settings.service_name,
                    self._settings.kafka_ack_timeout_s,
                )
            return self._producer

    def publish(self, events: Sequence[tuple[str, CloudEvent]]) -> None:
        """Produce every event and wait until the broker acknowledged all of them."""
        if not events:
            return
        records = [(topic, to_record(event)) for topic, event in events]
        deadline = time.monotonic() + self._settings.kafka_ack_timeout_s
        for attempt in (1, 2):
            try:
                self._send_and_wait(records, deadline)
                self._staleness.succeeded()
                return
            except Exception as exc:
                # A producer whose broker lost its producer id (a restart), that holds a fatal
                # error or that never bootstrapped cannot recover: replace it, and retry once
                # if time is left.
                # After a plain timeout the producer keeps reconnecting on its own — unless
                # the timeouts go on while the broker answers (see STALE_AFTER_TIMEOUTS).
                fatal = broken_producer(exc)
                if (
                    fatal
                    or type(exc).__name__ == "NoBrokersAvailable"
                    or self._staleness.stale_after(exc)
                ):
                    self._discard()
                if attempt == 1 and fatal and time.monotonic() < deadline:
                    continue
                raise DependencyUnavailable(
                    f"Kafka did not acknowledge the event: {describe(exc)}", dependency="kafka"
                ) from exc

    def _send_and_wait(self, records: list[tuple[str, KafkaMessage]], deadline: float) -> None:
        producer = self._client()
        futures = [
            producer.send(
                topic, key=record.key, value=record.value, headers=list(record.headers.items())
            )
            for topic, record in records
        ]
        for future in futures:
            future.get(timeout=max(0.05, deadline - time.monotonic()))

    def _discard(self) -> None:
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):  # it is broken already; do not wait on it
                producer.close(timeout=0)

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.close(timeout=1)
                self._producer = None


def brokers_reachable(brokers: Sequence[str], timeout_s: float = 0.5) -> bool:
    """A cheap liveness probe: can we open a TCP connection to any broker?"""
    for broker in brokers:
        host, _, port = broker.rpartition(":")
        try:
            with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s):
                return True
        except (OSError, ValueError):
            continue
    return False


class RecordProducer:
    """Produces raw records (headers, key and value as they are) and waits for ``acks=all``."""

    def __init__(self, brokers: Sequence[str], *, client_id: str, timeout_s: float = 5.0):
        self._brokers = list(brokers)
        self._client_id = client_id
        self._timeout_s = timeout_s
        self._producer: Any = None
        self._lock = threading.Lock()
        self._staleness = _Staleness(self._brokers)

    def send(
        self,
        topic: str,
        key: bytes | None,
        headers: Sequence[tuple[str, bytes]],
        value: bytes | None,
    ) -> None:
        try:
            with self._lock:
                if self._producer is None:
                    self._producer = new_producer(self._brokers, self._client_id, self._timeout_s)
                producer = self._producer
            future = producer.send(topic, key=key, value=value, headers=list(headers))
            future.get(timeout=self._timeout_s)
            self._staleness.succeeded()
        except Exception as exc:
            if broken_producer(exc) or self._staleness.stale_after(exc):
                self._replace()
            raise DependencyUnavailable(
                f"Kafka did not acknowledge the record: {describe(exc)}", dependency="kafka"
            ) from exc

    def _replace(self) -> None:
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):  # broken already: do not wait on it
                producer.close(timeout=0)

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.close(timeout=1)
                self._producer = None
