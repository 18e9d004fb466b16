"""Ingress dedupe marks in Redis: ``SET NX`` on the platform's id, with the platform's window.

The mark is written only after the event is durable in Kafka; a request that failed to publish
leaves no mark, so the platform's retry is published again. If Redis is unreachable the check
answers "not seen" and the mark is skipped: the event ids are deterministic, so consumers
dedupe on them and an outage of the cache costs a duplicate event, never a lost message.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from shared.cache import redis_client
from shared.errors import describe

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DedupeKey:
    key: str
    ttl_s: int


def dedupe_key(
    channel: str, tenant_id: str, account_id: str, *platform_ids: str, ttl_s: int
) -> DedupeKey:
    """The mark of one platform item. One webhook's batch is one account's, and its marks are
    read (``MGET``) together: the hash tag ``{<channel>:<tenant>:<account>}`` keeps them in
    one slot of a Redis Cluster."""
    tag = f"{{{channel}:{tenant_id}:{account_id}}}"
    return DedupeKey(f"dedupe:{tag}:{':'.join(platform_ids)}", ttl_s)


class Deduplicator:
    def __init__(self, redis_url: str) -> None:
        self._url = redis_url

    def seen(self, keys: Sequence[DedupeKey]) -> set[str]:
        """The keys already marked. Redis down → none (see the module docstring)."""
        if not keys:
            return set()
        try:
            values = redis_client(self._url).mget([k.key for k in keys])
        except Exception as exc:
            log.warning("dedupe check skipped: redis unavailable", extra={"error": describe(exc)})
            return set()
        return {k.key for k, v in zip(keys, values, strict=True) if v is not None}

    def mark(self, keys: Iterable[DedupeKey]) -> bool:
        """Mark keys as seen; False when Redis could not be written."""
        keys = list(keys)
        if not keys:
            return True
        try:
            pipe = redis_client(self._url).pipeline(transaction=False)
            for k in keys:
                pipe.set(k.key, b"1", nx=True, ex=k.ttl_s)
            pipe.execute()
        except Exception as exc:
            log.warning("dedupe mark skipped: redis unavailable", extra={"error": describe(exc)})
            return False
        return True
