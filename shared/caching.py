"""Objects made once per process: settings, the tenant directory, each handler's clients.

:func:`per_process` is ``functools.cache`` for a function without arguments that also records
the cache, so :func:`clear_all` forgets every such object at once (a test that changes the
environment calls it, instead of keeping a list of caches by hand).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_CACHES: list[Any] = []


def per_process(make: Callable[[], T]) -> functools._lru_cache_wrapper[T]:
    cached = functools.lru_cache(maxsize=1)(make)
    _CACHES.append(cached)
    return cached


def clear_all() -> None:
    """Forget every per-process object (the next call makes it again from the environment)."""
    for cached in _CACHES:
        cached.cache_clear()
