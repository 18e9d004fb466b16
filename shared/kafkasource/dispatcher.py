"""The local KafkaSource: what Knative Eventing does for ``kafka-sources/*.yaml`` in a cluster.

One consumer-group member per KafkaSource reads its topics from the manifest's consumer group
and POSTs every record to the sink as an HTTP binary-mode CloudEvent, in order per partition:
each partition's fetched records queue in its lane, which one worker thread at a time delivers
one record at a time, so a retrying record holds its own partition only (Knative's "ordered").
Lanes take turns on the worker threads (``_TURN`` records at a time), so more busy partitions
than threads all progress. A partition keeps being fetched while its lane delivers; it is
paused once its lane holds ``_QUEUE_LIMIT`` records (memory) and resumed when half of them are
delivered. Pausing every partition for each batch made the next record of a conversation wait
for the fetch in flight when the partition was resumed.
The manifests' ``unordered`` is delivered in order too: a stronger guarantee, never a weaker one.

An offset is committed only once its record is settled: answered 2xx, or written to the
dead-letter topic after a non-retryable answer (poison) or after the manifest's retries.
Commits are made by the consumer thread (kafka-python consumers are not thread-safe) from the
progress the workers report. On stop, workers abandon retries and what is settled is
committed; a record abandoned half-way is delivered again next time. When a rebalance takes a
partition away, its worker is stopped and its uncommitted progress dropped: the new owner
delivers those records again (sinks dedupe on the event id, as the data-plane contract says).
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from shared import logs, metrics, tracing
from shared.dataclass import dataclass, field
from shared.errors import DependencyUnavailable, describe
from shared.kafka import GroupConsumer, Partition, TimedRecord
from shared.kafkasource import delivery
from shared.kafkasource.manifests import KafkaSource
from shared.kafkasource.oidc import TokenMinter

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 30.0  # per request, when the manifest sets no delivery.timeout
NAMESPACE = "default"  # the namespace in the source of wrapped (non-CloudEvent) records
_MAX_PARTITION_WORKERS = 16
# A partition is paused while this many of its records wait for its worker (memory bound).
_QUEUE_LIMIT = 500
# A worker hands its thread on after this many records (to the back of the queue), so that
# more busy partitions than threads take turns instead of waiting for a lane to run dry.
_TURN = 50
_POLL_S = 0.1
_LAG_EVERY_S = 5.0  # the lag gauge's refresh (reads the fetched high watermarks: no request)

CommitHook = Callable[[str, int, int], None]  # (topic, partition, next offset)


class DeadLetterWriter(Protocol):
    """Writes a record to a dead-letter topic and waits for the broker (a RecordProducer)."""

    def send(
        self,
        topic: str,
        key: bytes | None,
        headers: Sequence[tuple[str, bytes]],
        value: bytes | None,
    ) -> None: ...


@dataclass
class _Lane:
    """One partition's fetched records, delivered in order by at most one worker at a time."""

    records: collections.deque[TimedRecord] = field(default_factory=collections.deque)
    abort: threading.Event = field(default_factory=threading.Event)
    running: bool = False  # a worker is draining ``records``
    future: concurrent.futures.Future[None] | None = None  # the latest worker
    paused: bool = False  # fetching stopped: ``records`` reached _QUEUE_LIMIT


class SourceDispatcher:
    """Delivers one KafkaSource's records to its sink until :meth:`run`'s ``stop`` is set."""

    def __init__(
        self,
        source: KafkaSource,
        sink_url: str,
        brokers: Sequence[str],
        dead_letters: DeadLetterWriter,
        stop: threading.Event,
        *,
        on_commit: CommitHook | None = None,
        http_client: Any = None,
        minter: TokenMinter | None = None,
        gate: threading.Event | None = None,
    ) -> None:
        """``http_client``: an ``httpx.Client`` (a test seam); :meth:`run` makes one by default.
        ``gate``: deliveries wait until it is set (fetched records wait in their lanes); the
        consumer joins its group and fetches meanwhile."""
        self.source = source
        self.sink_url = sink_url
        self._brokers = list(brokers)
        self._dead_letters = dead_letters
        self._stop = stop
        self._on_commit = on_commit
        self._timeout_s = source.delivery.timeout_s or DEFAULT_TIMEOUT_S
        self._progress: dict[Partition, int] = {}  # next offset to commit, set by workers
        self._lanes: dict[Partition, _Lane] = {}
        self._lock = threading.Lock()
        self._http: Any = http_client
        self._minter = minter  # sender identity (OIDC), when the sinks verify it
        self._gate = gate
        self._committed: dict[Partition, int] = {}  # the next offset of each partition
        self._lag_at = 0.0

    def run(self) -> None:
        import httpx

        consumer = GroupConsumer(
            self._brokers,
            self.source.consumer_group,
            self.source.topics,
            client_id=f"kafkasource-{self.source.name}",
            initial_offset=self.source.initial_offset,
            on_revoked=self._on_revoked,
            fetch_wait_ms=self.source.local_fetch_wait_ms,
        )
        own_client = self._http is None
        if own_client:  # trust_env off: a proxy from the environment must not answer for sinks
            self._http = httpx.Client(trust_env=False)
        workers = concurrent.futures.ThreadPoolExecutor(
            _MAX_PARTITION_WORKERS, thread_name_prefix=f"kafkasource-{self.source.name}"
        )
        log.info("kafkasource started", extra=self._describe())
        try:
            while not self._stop.is_set():
                for partition, records in consumer.poll(_POLL_S).items():
                    self._queue(consumer, workers, partition, records)
                self._settle(consumer)
                self._measure_lag(consumer)
        finally:
            with self._lock:
                pending = list(self._lanes.values())
            for lane in pending:
                lane.abort.set()
            concurrent.futures.wait([lane.future for lane in pending if lane.future is not None])
            try:
                self._settle(consumer, stopping=True)  # commit what was settled before
            finally:
                consumer.close()
                workers.shutdown(wait=True)
                if own_client:
                    self._http.close()
                log.info("kafkasource stopped", extra=self._describe())

    def _queue(
        self,
        consumer: GroupConsumer,
        workers: concurrent.futures.Executor,
        partition: Partition,
        records: list[TimedRecord],
    ) -> None:
        """Queue fetched records in their partition's lane, starting its worker if none runs;
        pause the partition (on this thread: kafka-python's consumer is not thread-safe)
        when the lane is full."""
        with self._lock:
            lane = self._lanes.setdefault(partition, _Lane())
            lane.records.extend(records)
            if not lane.running:
                lane.running = True
                lane.future = workers.submit(self._drain, partition, lane, workers)
            pause = not lane.paused and len(lane.records) >= _QUEUE_LIMIT
            lane.paused = lane.paused or pause
        if pause:
            consumer.pause(partition)

    def _settle(self, consumer: GroupConsumer, *, stopping: bool = False) -> None:
        """Commit the workers' progress; resume partitions whose backlog has gone down; then
        raise if a worker failed (unless ``stopping``: what was settled is committed anyway)."""
        with self._lock:
            progress, self._progress = self._progress, {}
            workers = [lane.future for lane in self._lanes.values() if lane.future is not None]
            resumed = [
                p
                for p, lane in self._lanes.items()
                if lane.paused and len(lane.records) <= _QUEUE_LIMIT // 2
            ]
        if progress:
            try:
                consumer.commit(progress)
            except Exception as exc:  # a broker restart, a rebalance: commit on the next round
                log.warning("commit failed", extra={**self._describe(), "error": describe(exc)})
                with self._lock:
                    for partition, offset in progress.items():
                        self._progress.setdefault(partition, offset)  # newer progress wins
            else:
                with self._lock:
                    self._committed.update(progress)
                if self._on_commit is not None:
                    for (topic, number), offset in progress.items():
                        self._on_commit(topic, number, offset)
        for partition in resumed:
            with self._lock:
                lane = self._lanes.get(partition)
                if lane is not None:
                    lane.paused = False
            consumer.resume(partition)
        for future in [] if stopping else workers:
            failure = future.exception() if future.done() else None
            if failure is not None:
                # A bug, not a sink failure: going on would skip the lane's undelivered
                # records, so stop delivering; they are redelivered after a restart.
                raise RuntimeError(f"kafkasource {self.source.name}: a worker failed") from failure

    def _measure_lag(self, consumer: GroupConsumer) -> None:
        now = time.monotonic()
        if now - self._lag_at < _LAG_EVERY_S:
            return
        self._lag_at = now
        with self._lock:
            committed = dict(self._committed)
        metrics.dispatcher_lag.labels(self.source.name).set(consumer.lag(committed))

    def _on_revoked(self, partitions: list[Partition]) -> None:
        with self._lock:
            revoked = [self._lanes.pop(p) for p in partitions if p in self._lanes]
        for lane in revoked:
            lane.abort.set()
        concurrent.futures.wait(
            [lane.future for lane in revoked if lane.future is not None],
            timeout=self._timeout_s + 5,
        )
        with self._lock:
            for partition in partitions:
                self._progress.pop(partition, None)
                self._committed.pop(partition, None)
        if revoked:
            log.info("partitions revoked", extra={**self._describe(), "partitions": partitions})

    def _drain(
        self, partition: Partition, lane: _Lane, workers: concurrent.futures.Executor
    ) -> None:
        """Deliver the lane's records one at a time until it is empty or aborted; after
        ``_TURN`` records, carry on from the back of the workers' queue."""
        while self._gate is not None and not self._gate.wait(0.05) and not lane.abort.is_set():
            pass
        for delivered in range(_TURN + 1):
            with self._lock:
                if lane.abort.is_set() or not lane.records:
                    lane.running = False
                    return
                if delivered == _TURN:  # still running: the next worker picks the lane up
                    lane.future = workers.submit(self._drain, partition, lane, workers)
                    return
                record = lane.records[0]
            if not self.deliver(record, lane.abort):
                return  # abandoned: the lane is being dropped (revoked, or the stop)
            with self._lock:
                if self._lanes.get(partition) is not lane:
                    return  # revoked while delivering (past the wait): no longer ours to commit
                lane.records.popleft()
                self._progress[partition] = record.offset + 1

    def deliver(self, record: TimedRecord, abort: threading.Event) -> bool:
        """Deliver or dead-letter one record: True once settled, False if abandoned (``abort``)."""
        event = delivery.to_http(record, self.source.name, NAMESPACE)
        trace = tracing.parse(event.headers.get("traceparent"))
        token = logs.correlation_id.set(trace[0] if trace else event.id or "-")
        try:
            retries = 0
            while True:
                identity = self._minter.headers(self.source.sink_service) if self._minter else None
                outcome = delivery.post(self._http, self.sink_url, event, self._timeout_s, identity)
                if outcome.delivered:
                    log.info("delivered", extra=self._about(record, event, outcome, retries))
                    metrics.dispatcher_deliveries.labels(self.source.name, "delivered").inc()
                    return True
                if not outcome.retryable:
                    return self._dead_letter(record, event, outcome, abort, "not retryable")
                if abort.is_set():
                    return False
                if retries >= self.source.delivery.retry:
                    return self._dead_letter(record, event, outcome, abort, "retries exhausted")
                retries += 1
                metrics.dispatcher_deliveries.labels(self.source.name, "retried").inc()
                wait_s = delivery.wait_before_retry(self.source.delivery, retries, outcome)
                log.warning(
                    "delivery failed, retrying",
                    extra={**self._about(record, event, outcome, retries), "wait_s": wait_s},
                )
                if abort.wait(wait_s):
                    return False
        finally:
            logs.correlation_id.reset(token)

    def _dead_letter(
        self,
        record: TimedRecord,
        event: delivery.HttpEvent,
        outcome: delivery.Outcome,
        abort: threading.Event,
        reason: str,
    ) -> bool:
        about = {**self._about(record, event, outcome), "reason": reason}
        topic = self.source.delivery.dead_letter_topic
        if topic is None:  # Knative drops what fails without a dead-letter sink
            log.error("delivery failed, event dropped (no dead-letter sink)", extra=about)
            return True
        headers = delivery.dead_letter_headers(record, event, outcome, self.sink_url)
        failures = 0
        while True:
            try:
                self._dead_letters.send(topic, record.key, headers, record.value)
                log.error("delivery failed, event dead-lettered", extra={**about, "to": topic})
                name = self.source.name
                metrics.dispatcher_deliveries.labels(name, "dead_lettered").inc()
                metrics.dispatcher_dead_letters.labels(name, _code(outcome)).inc()
                return True
            except DependencyUnavailable as exc:
                failures += 1
                log.error("dead-letter write failed", extra={**about, "error": exc.message})
                if abort.wait(min(30.0, 0.5 * 2**failures)):
                    return False

    def _describe(self) -> dict[str, Any]:
        return {
            "kafkasource": self.source.name,
            "topics": list(self.source.topics),
            "consumer_group": self.source.consumer_group,
            "sink": self.sink_url,
        }

    def _about(
        self,
        record: TimedRecord,
        event: delivery.HttpEvent,
        outcome: delivery.Outcome,
        retries: int | None = None,
    ) -> dict[str, Any]:
        about: dict[str, Any] = {
            "kafkasource": self.source.name,
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "event_id": event.id,
            "event_type": event.type,
            "outcome": delivery.describe_outcome(outcome),
        }
        if retries is not None:
            about["retry"] = retries
        return about


def _code(outcome: delivery.Outcome) -> str:
    """The sink's HTTP status, or why there was none (a timeout, a refused connection)."""
    return str(outcome.status) if outcome.status else "no_response"
