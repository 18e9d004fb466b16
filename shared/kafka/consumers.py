"""Consumers: plain readers for tools and tests, and a consumer-group member with manual
commits for the local KafkaSource dispatcher."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from shared.errors import DependencyUnavailable, describe
from shared.kafka.records import ConsumedRecord, Partition, TimedRecord

log = logging.getLogger(__name__)


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


def read_to_end(
    brokers: Sequence[str], topic: str, *, timeout_s: float = 10.0
) -> list[TimedRecord]:
    """Every record on ``topic`` up to its end when called, with their timestamps (tools).

    Unlike :func:`read_topic`, a slow first fetch is not taken for the end: each partition is
    read until it reaches the end offset asked for at the start. A topic that does not exist
    has no records (none is created). Raises :class:`DependencyUnavailable` when the brokers do
    not answer or the end is not reached within ``timeout_s``, so "nothing there" is never a
    guess.
    """
    from kafka import KafkaConsumer, TopicPartition

    timeout_ms = int(timeout_s * 1000)
    try:
        consumer = KafkaConsumer(
            bootstrap_servers=list(brokers),
            client_id="chat-service-tools",
            enable_auto_commit=False,
            allow_auto_create_topics=False,
            fetch_max_wait_ms=20,
            bootstrap_timeout_ms=timeout_ms,
            request_timeout_ms=timeout_ms,
        )
    except Exception as exc:
        raise DependencyUnavailable(
            f"Kafka unreachable: {describe(exc)}", dependency="kafka"
        ) from exc
    try:
        assigned = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        if not assigned:
            return []
        consumer.assign(assigned)
        ends = consumer.end_offsets(assigned)
        consumer.seek_to_beginning(*assigned)
        records: list[TimedRecord] = []
        deadline = time.monotonic() + timeout_s
        # Tansu reports the end as the first offset of the last batch + 1; fetches return
        # whole batches, so a position at or past that end has read the last batch too.
        while any(consumer.position(tp) < ends[tp] for tp in assigned):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: the end was not reached within {timeout_s:g}s")
            for messages in consumer.poll(timeout_ms=200).values():
                records.extend(_timed(m) for m in messages)
        return sorted(records, key=lambda r: (r.partition, r.offset))
    except Exception as exc:
        raise DependencyUnavailable(
            f"Kafka did not return {topic}: {describe(exc)}", dependency="kafka"
        ) from exc
    finally:
        consumer.close()


def _timed(m: Any) -> TimedRecord:
    """A kafka-python ConsumerRecord as a TimedRecord (timestamp: the record's create time)."""
    return TimedRecord(
        m.topic, m.partition, m.offset, m.key, dict(m.headers or []), m.value, m.timestamp or 0
    )


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


class GroupConsumer:
    """One member of a consumer group on ``topics``, committing only what it is told to.

    Settings for a quick group join and low latency on Tansu (with default settings a join
    takes ~23 s; it answers a JoinGroup after half the session timeout, 3 s here, and wakes a
    waiting fetch when records arrive only if its wait is 100 ms or less: see the callers'
    ``fetch_wait_ms``). ``initial_offset`` applies only to a group without a committed offset;
    Tansu breaks ``latest``, so use ``earliest`` there. ``on_revoked`` runs when a rebalance
    takes partitions away (on kafka-python's IO thread, while :meth:`poll` waits): every
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
        fetch_wait_ms: int = 20,
    ) -> None:
        from kafka import KafkaConsumer
        from kafka.consumer.subscription_state import ConsumerRebalanceListener

        outer = self
        self._initial_offset = initial_offset
        self._reassigned: list[Any] = []

        class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
            def on_partitions_revoked(self, revoked: Any) -> None:
                if on_revoked is not None:
                    on_revoked([(tp.topic, tp.partition) for tp in revoked])

            def on_partitions_assigned(self, assigned: Any) -> None:
                # Runs on kafka-python's IO thread, where blocking calls are refused: the
                # restart itself happens in poll(), on the caller's thread.
                outer._reassigned = list(assigned)

        self._consumer = KafkaConsumer(
            bootstrap_servers=list(brokers),
            group_id=group_id,
            client_id=client_id,
            enable_auto_commit=False,
            auto_offset_reset=initial_offset,
            session_timeout_ms=6000,
            heartbeat_interval_ms=1000,
            fetch_max_wait_ms=fetch_wait_ms,
            # Every poll takes all that was fetched (bounded by max_partition_fetch_bytes).
            # With a smaller cap, kafka-python 3.0 parks the rest of a partition's fetch when
            # the partition is paused, and never unparks it after resume() once an empty
            # fetch of another partition holds its "next records" slot: the partition is
            # never fetched again (tests/integration/test_kafkasource_dispatcher.py).
            max_poll_records=sys.maxsize,
        )
        self._consumer.subscribe(list(topics), listener=_Listener())

    def _restart(self, assigned: list[Any]) -> None:
        """Every partition of a new assignment starts over from its committed offset, unpaused.

        A rebalance revokes every partition first (the eager protocol), and the caller abandons
        what it had in flight; kafka-python keeps a kept partition's paused flag and fetch
        position across the reassignment, so without this it would never be fetched again, or
        resume past records that were fetched but never delivered."""
        for tp in assigned:
            self._consumer.resume(tp)
            committed = self._consumer.committed(tp)
            if committed is not None:
                self._consumer.seek(tp, committed)
            elif self._initial_offset == "latest":
                self._consumer.seek_to_end(tp)
            else:
                self._consumer.seek_to_beginning(tp)

    def poll(self, timeout_s: float) -> dict[Partition, list[TimedRecord]]:
        batches = self._consumer.poll(timeout_ms=int(timeout_s * 1000))
        reassigned, self._reassigned = self._reassigned, []
        if reassigned:
            self._restart(reassigned)
            # Fetched before the restart, from wherever the old position was: fetched again.
            batches = {tp: m for tp, m in batches.items() if tp not in set(reassigned)}
        return {
            (tp.topic, tp.partition): [_timed(m) for m in messages]
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

    def lag(self, next_offsets: dict[Partition, int]) -> int:
        """Records of the assigned partitions not yet handled: each partition's high
        watermark (as the last fetch reported it) minus ``next_offsets`` (what the caller
        committed), or minus the fetch position where the caller has committed nothing."""
        total = 0
        for tp in self._consumer.assignment():
            end = self._consumer.highwater(tp)
            if end is None:  # nothing fetched yet: unknown, not zero
                continue
            position = next_offsets.get((tp.topic, tp.partition))
            if position is None:
                position = self._position(tp)
            if position is not None:
                total += max(0, end - position)
        return total

    def _position(self, tp: Any) -> int | None:
        try:
            return int(self._consumer.position(tp, timeout_ms=100))
        except Exception as exc:  # no position yet (an offset reset in progress): next time
            log.debug("no position yet", extra={"partition": str(tp), "error": describe(exc)})
            return None

    def close(self) -> None:
        # No autocommit: only what the caller committed counts.
        self._consumer.close(autocommit=False)
