"""In-process stand-ins for Kafka and Redis, for unit tests only."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from shared.errors import DependencyUnavailable
from shared.idempotency import DedupeKey


class RecordingProducer:
    def __init__(self, *, fail: bool = False) -> None:
        self.published: list[tuple[str, Any]] = []
        self.fail = fail

    def publish(self, events: Sequence[tuple[str, Any]]) -> None:
        if self.fail:
            raise DependencyUnavailable("broker down (fake)", dependency="kafka")
        self.published.extend(events)


class MemoryDedupe:
    def __init__(self) -> None:
        self.marked: dict[str, int] = {}
        self.counts: dict[str, int] = {}

    def read(
        self, keys: Sequence[DedupeKey], counts: Sequence[str] = ()
    ) -> tuple[set[str], dict[str, int]]:
        seen = {k.key for k in keys if k.key in self.marked}
        return seen, {c: self.counts[c] for c in counts if c in self.counts}

    def mark(self, keys: Iterable[DedupeKey], counts: Sequence[str] = ()) -> bool:
        for k in keys:
            self.marked.setdefault(k.key, k.ttl_s)
        for counter in counts:
            self.counts[counter] = self.counts.get(counter, 0) + 1
        return True
