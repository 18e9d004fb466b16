"""Objects made once per process: settings, the tenant directory, each handler's clients.

:func:`per_process` wraps a function without arguments: its first call makes the object, every
later call returns it. The first calls may come at once (gunicorn threads serving the first
requests together), so the object is made under a lock, once — not a Kafka producer per thread
that raced for it. :func:`clear_all` forgets every such object (a test that changes the
environment calls it, instead of keeping a list of caches by hand).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from shared.dataclass import dataclass

T = TypeVar("T")

_UNSET: object = object()


@dataclass(frozen=True)
class CacheInfo:
    currsize: int  # 1 once the object is made (functools' name, which the tests read)


class PerProcess(Generic[T]):
    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._lock = threading.Lock()
        self._value: object = _UNSET
        functools.update_wrapper(self, make)

    def __call__(self) -> T:
        value = self._value
        if value is _UNSET:
            with self._lock:
                if self._value is _UNSET:
                    self._value = self._make()
                value = self._value
        return value  # type: ignore[return-value]

    def cache_clear(self) -> None:
        with self._lock:
            self._value = _UNSET

    def cache_info(self) -> CacheInfo:
        return CacheInfo(0 if self._value is _UNSET else 1)


_CACHES: list[PerProcess[object]] = []


def per_process(make: Callable[[], T]) -> PerProcess[T]:
    cached = PerProcess(make)
    _CACHES.append(cached)  # type: ignore[arg-type]
    return cached


def clear_all() -> None:
    """Forget every per-process object (the next call makes it again from the environment)."""
    for cached in _CACHES:
        cached.cache_clear()
