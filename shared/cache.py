"""The Redis client, created on first use.

Redis is a cache here: losing it must never lose a message, so callers decide what an outage
means for them (ingress dedupe degrades to "let the consumers dedupe on the event id").
"""

from __future__ import annotations

import threading
from typing import Any

_clients: dict[str, Any] = {}
_lock = threading.Lock()


def redis_client(url: str) -> Any:
    """One connection pool per URL and process; short timeouts so an outage fails fast."""
    with _lock:
        client = _clients.get(url)
        if client is None:
            import redis  # lazy: keeps cold start short

            client = redis.Redis.from_url(
                url,
                socket_connect_timeout=0.5,
                socket_timeout=1.0,
                health_check_interval=30,
            )
            _clients[url] = client
        return client


def redis_reachable(url: str) -> bool:
    try:
        return bool(redis_client(url).ping())
    except Exception:
        return False
