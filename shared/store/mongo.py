"""The MongoDB client, created on first use, and the mapping of its outages to 503.

pymongo's ``MongoClient`` is not fork-safe, so it is created in the worker on first use,
never at import time.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from shared.errors import DependencyUnavailable, describe
from shared.settings import Settings

_clients: dict[str, Any] = {}
_lock = threading.Lock()


def client(uri: str) -> Any:
    with _lock:
        existing = _clients.get(uri)
        if existing is None:
            from pymongo import MongoClient  # lazy: keeps cold start short

            existing = MongoClient(
                uri,
                serverSelectionTimeoutMS=2000,
                connectTimeoutMS=2000,
                socketTimeoutMS=5000,
                retryWrites=True,
                tz_aware=True,
            )
            _clients[uri] = existing
        return existing


def close_clients() -> None:
    """Close and forget every client made so far; the next :func:`client` call makes a new one
    (a tool that registers pymongo listeners, which only clients made after it see)."""
    with _lock:
        made = list(_clients.values())
        _clients.clear()
    for existing in made:
        existing.close()


def database(settings: Settings) -> Any:
    return client(settings.mongodb_uri)[settings.mongodb_database]


@contextlib.contextmanager
def unavailable_as_503() -> Iterator[None]:
    """Connection-level pymongo failures become :class:`DependencyUnavailable` (retry later)."""
    from pymongo.errors import AutoReconnect, ConnectionFailure, ServerSelectionTimeoutError

    try:
        yield
    except (ServerSelectionTimeoutError, ConnectionFailure, AutoReconnect) as exc:
        raise DependencyUnavailable(
            f"MongoDB unavailable: {describe(exc)}", dependency="mongodb"
        ) from exc


def mongodb_reachable(uri: str) -> bool:
    try:
        client(uri).admin.command("ping")
        return True
    except Exception:
        return False
