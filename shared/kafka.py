"""Kafka in binary content mode. The only module that touches kafka-python.

CloudEvents become Kafka records through ``cloudevents.kafka`` (``ce_*`` headers, JSON value,
key = the ``partitionkey`` extension = the conversation key) and come back the same way. The
producer waits for ``acks=all`` within a bound, so a webhook is acknowledged only once its
event is durable, and a broker outage becomes :class:`DependencyUnavailable` (HTTP 503).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cloudevents.http import CloudEvent
from cloudevents.kafka import KafkaMessage, from_binary, to_binary

from shared.errors import DependencyUnavailable, describe
from shared.settings import Settings

# Errors after which only a new producer (new producer id, new sequence numbers) can succeed.
_PRODUCER_STATE_ERRORS = frozenset(
    {"UnknownProducerIdError", "OutOfOrderSequenceNumberError", "InvalidProducerEpochError"}
)


def to_record(event: CloudEvent) -> KafkaMessage:
    message = to_binary(event, data_marshaller=_marshal)
    key = message.key
    return KafkaMessage(
        message.headers, key.encode() if isinstance(key, str) else key, message.value
    )


def from_record(
    headers: Sequence[tuple[str, bytes]], key: bytes | str | None, value: bytes | str
) -> Any:
    """A CloudEvent from a consumed record's parts (kafka-python gives headers as pairs)."""
    event = from_binary(KafkaMessage(dict(headers), key, value), data_unmarshaller=json.loads)
    if isinstance(event.get("partitionkey"), bytes):
        event["partitionkey"] = event["partitionkey"].decode()
    return event


def _marshal(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


class EventProducer:
    """A lazily created, thread-safe producer (created in the worker, after gunicorn forks)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._producer: Any = None
        self._lock = threading.Lock()

    def _client(self) -> Any:
        with self._lock:
            if self._producer is None:
                from kafka import KafkaProducer  # lazy: ~100 ms of imports

                timeout_ms = int(self._settings.kafka_ack_timeout_s * 1000)
                self._producer = KafkaProducer(
                    bootstrap_servers=list(self._settings.kafka_brokers),
                    client_id=self._settings.service_name,
                    acks="all",
                    linger_ms=0,
                    max_block_ms=timeout_ms,
                    request_timeout_ms=timeout_ms,
                    delivery_timeout_ms=timeout_ms + 1000,
                    bootstrap_timeout_ms=timeout_ms,
                    retry_backoff_ms=100,
                    reconnect_backoff_max_ms=1000,
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
                return
            except Exception as exc:
                # A producer whose broker lost its producer id (a restart) or that never
                # bootstrapped cannot recover: replace it, and retry once if time is left.
                # After a plain timeout the producer keeps reconnecting on its own.
                fatal = type(exc).__name__ in _PRODUCER_STATE_ERRORS
                if fatal or type(exc).__name__ == "NoBrokersAvailable":
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


def ensure_topics(brokers: Sequence[str], topics: Sequence[str], partitions: int = 3) -> None:
    """Create missing topics (local stack and tests; production topics are provisioned)."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=list(brokers), client_id="chat-service-admin")
    try:
        existing = set(admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another process won the race
                admin.create_topics(
                    [NewTopic(t, num_partitions=partitions, replication_factor=1) for t in missing]
                )
    finally:
        admin.close()


@dataclass(frozen=True)
class ConsumedRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    headers: dict[str, bytes]
    value: bytes

    def event(self) -> Any:
        return from_record(list(self.headers.items()), self.key, self.value)


def read_topic(
    brokers: Sequence[str], topic: str, *, min_records: int = 0, timeout_s: float = 5.0
) -> list[ConsumedRecord]:
    """Every record on ``topic`` from the beginning, without a consumer group (tools, tests).

    Polls until ``min_records`` are read or ``timeout_s`` passes; with ``min_records=0`` it
    reads until one poll comes back empty.
    """
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=list(brokers),
        enable_auto_commit=False,
        fetch_max_wait_ms=20,
        consumer_timeout_ms=int(timeout_s * 1000),
    )
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        records: list[ConsumedRecord] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=200)
            for messages in batch.values():
                records.extend(
                    ConsumedRecord(
                        m.topic, m.partition, m.offset, m.key, dict(m.headers or []), m.value
                    )
                    for m in messages
                )
            if min_records and len(records) >= min_records:
                break
            if not min_records and not batch:
                break
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        consumer.close()


def follow_topics(
    brokers: Sequence[str],
    topics: Sequence[str],
    on_record: Callable[[ConsumedRecord], None],
    stop: threading.Event,
    *,
    from_beginning: bool = True,
) -> None:
    """Hand every record arriving on ``topics`` to ``on_record`` until ``stop`` is set.

    No consumer group and no commits (a watching tool, not a processor). Starts at the
    beginning or at the end of each partition; Tansu reports the end as the first offset of
    the last batch + 1, so on Tansu "the end" may replay a few records — fine for watching.
    """
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=list(brokers),
        client_id="chat-service-watch",
        enable_auto_commit=False,
        fetch_max_wait_ms=20,
    )
    try:
        assigned = [
            TopicPartition(topic, partition)
            for topic in topics
            for partition in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(assigned)
        if from_beginning:
            consumer.seek_to_beginning(*assigned)
        else:
            consumer.seek_to_end(*assigned)
        while not stop.is_set():
            for messages in consumer.poll(timeout_ms=200).values():
                for m in messages:
                    on_record(
                        ConsumedRecord(
                            m.topic, m.partition, m.offset, m.key, dict(m.headers or []), m.value
                        )
                    )
    finally:
        consumer.close()


# --- The local KafkaSource: a consumer-group member with manual commits, and a raw producer.

Partition = tuple[str, int]  # (topic, partition): kafka-python's TopicPartition stays in here


@dataclass(frozen=True)
class TimedRecord(ConsumedRecord):
    timestamp_ms: int = 0  # the record's create time (Knative stamps wrapped events with it)


class GroupConsumer:
    """One member of a consumer group on ``topics``, committing only what it is told to.

    Settings for a quick group join and low latency on Tansu (with default settings a join
    takes ~23 s, and the broker does not wake waiting fetches). ``initial_offset`` applies only
    to a group without a committed offset; Tansu breaks ``latest``, so use ``earliest`` there.
    ``on_revoked`` runs inside :meth:`poll` when a rebalance takes partitions away: every
    partition's work must be finished (or abandoned) before it returns.
    """

    def __init__(
        self,
        brokers: Sequence[str],
        group_id: str,
        topics: Sequence[str],
        *,
        client_id: str,
        initial_offset: str = "earliest",
        on_revoked: Callable[[list[Partition]], None] | None = None,
    ) -> None:
        from kafka import KafkaConsumer
        from kafka.consumer.subscription_state import ConsumerRebalanceListener

        class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
            def on_partitions_revoked(self, revoked: Any) -> None:
                if on_revoked is not None:
                    on_revoked([(tp.topic, tp.partition) for tp in revoked])

            def on_partitions_assigned(self, assigned: Any) -> None:
                pass

        self._consumer = KafkaConsumer(
            bootstrap_servers=list(brokers),
            group_id=group_id,
            client_id=client_id,
            enable_auto_commit=False,
            auto_offset_reset=initial_offset,
            session_timeout_ms=6000,
            heartbeat_interval_ms=1000,
            fetch_max_wait_ms=20,
            max_poll_records=100,
        )
        self._consumer.subscribe(list(topics), listener=_Listener())

    def poll(self, timeout_s: float) -> dict[Partition, list[TimedRecord]]:
        batches = self._consumer.poll(timeout_ms=int(timeout_s * 1000))
        return {
            (tp.topic, tp.partition): [
                TimedRecord(
                    m.topic,
                    m.partition,
                    m.offset,
                    m.key,
                    dict(m.headers or []),
                    m.value,
                    m.timestamp or 0,
                )
                for m in messages
            ]
            for tp, messages in batches.items()
        }

    def pause(self, partition: Partition) -> None:
        from kafka import TopicPartition

        self._consumer.pause(TopicPartition(*partition))

    def resume(self, partition: Partition) -> None:
        from kafka import TopicPartition

        self._consumer.resume(TopicPartition(*partition))

    def commit(self, next_offsets: dict[Partition, int]) -> None:
        """Commit ``next_offsets`` (the offset to read next = last handled + 1) synchronously."""
        from kafka import TopicPartition
        from kafka.structs import OffsetAndMetadata

        if next_offsets:
            self._consumer.commit(
                {
                    TopicPartition(*partition): OffsetAndMetadata(offset, "", -1)
                    for partition, offset in next_offsets.items()
                }
            )

    def close(self) -> None:
        # No autocommit: only what the caller committed counts.
        self._consumer.close(autocommit=False)


class RecordProducer:
    """Produces raw records (headers, key and value as they are) and waits for ``acks=all``."""

    def __init__(self, brokers: Sequence[str], *, client_id: str, timeout_s: float = 5.0):
        self._brokers = list(brokers)
        self._client_id = client_id
        self._timeout_s = timeout_s
        self._producer: Any = None
        self._lock = threading.Lock()

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
                    from kafka import KafkaProducer

                    timeout_ms = int(self._timeout_s * 1000)
                    self._producer = KafkaProducer(
                        bootstrap_servers=self._brokers,
                        client_id=self._client_id,
                        acks="all",
                        linger_ms=0,
                        max_block_ms=timeout_ms,
                        request_timeout_ms=timeout_ms,
                        delivery_timeout_ms=timeout_ms + 1000,
                    )
                producer = self._producer
            future = producer.send(topic, key=key, value=value, headers=list(headers))
            future.get(timeout=self._timeout_s)
        except Exception as exc:
            raise DependencyUnavailable(
                f"Kafka did not acknowledge the record: {describe(exc)}", dependency="kafka"
            ) from exc

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.close(timeout=1)
                self._producer = None
