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

    def seen(self, keys: Sequence[DedupeKey]) -> set[str]:
        return {k.key for k in keys if k.key in self.marked}

    def mark(self, keys: Iterable[DedupeKey]) -> bool:
        for k in keys:
            self.marked.setdefault(k.key, k.ttl_s)
        return True
