"""Every KafkaSource of a manifest directory delivering at once, each on its own thread.

The manifests' ``bootstrapServers`` name the cluster's brokers; locally the brokers come from
the caller (``KAFKA_BROKERS`` or the local stack), so one set of manifests serves both.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from types import TracebackType

from shared.kafka import RecordProducer, ensure_topics
from shared.kafkasource.dispatcher import CommitHook, SourceDispatcher
from shared.kafkasource.manifests import KafkaSource
from shared.kafkasource.oidc import TokenMinter

log = logging.getLogger(__name__)


class Dispatcher:
    """Start with :meth:`start`, stop with :meth:`stop` (or use it as a context manager).

    Sources whose sink Service has no URL in ``sink_urls`` are skipped with a warning (a
    function that is not running locally). A source whose thread fails stops them all: a
    dispatcher that silently stopped delivering one topic would look like a hung handler.
    """

    def __init__(
        self,
        sources: Sequence[KafkaSource],
        sink_urls: Mapping[str, str],
        brokers: Sequence[str],
        *,
        on_commit: CommitHook | None = None,
        minter: TokenMinter | None = None,
        gate: threading.Event | None = None,
    ) -> None:
        """``gate``: no delivery before it is set (see :class:`SourceDispatcher`)."""
        self.brokers = list(brokers)
        self.stopping = threading.Event()
        self.failed: list[str] = []
        self._dead_letters = RecordProducer(self.brokers, client_id="kafkasource-dead-letters")
        self.sources = [
            SourceDispatcher(
                source,
                sink_urls[source.sink_service].rstrip("/") + "/",
                self.brokers,
                self._dead_letters,
                self.stopping,
                on_commit=on_commit,
                minter=minter,
                gate=gate,
            )
            for source in sources
            if source.sink_service in sink_urls
        ]
        for source in sources:
            if source.sink_service not in sink_urls:
                log.warning(
                    "kafkasource skipped: no URL for its sink",
                    extra={"kafkasource": source.name, "sink_service": source.sink_service},
                )
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        ensure_source_topics(self.brokers, [s.source for s in self.sources])
        for source in self.sources:
            thread = threading.Thread(
                target=self._run, args=(source,), name=f"kafkasource-{source.source.name}"
            )
            thread.start()
            self._threads.append(thread)

    def _run(self, source: SourceDispatcher) -> None:
        try:
            source.run()
        except Exception:
            log.exception("kafkasource failed", extra={"kafkasource": source.source.name})
            self.failed.append(source.source.name)
            self.stopping.set()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Until every source stopped (True) or ``timeout_s`` passed (False)."""
        for thread in self._threads:
            thread.join(timeout_s)
        return not any(thread.is_alive() for thread in self._threads)

    def stop(self, timeout_s: float = 60.0) -> None:
        """Stop polling, abandon retries, commit what is settled, close."""
        self.stopping.set()
        self.wait(timeout_s)
        self._dead_letters.close()

    def __enter__(self) -> Dispatcher:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def ensure_source_topics(brokers: Sequence[str], sources: Sequence[KafkaSource]) -> None:
    """Create the topics the sources read and their dead-letter topics where missing.

    In a cluster a KafkaSink's controller creates its topic; locally this does."""
    topics = {topic for source in sources for topic in source.topics}
    topics |= {s.delivery.dead_letter_topic for s in sources if s.delivery.dead_letter_topic}
    if topics:
        ensure_topics(brokers, sorted(topics))
