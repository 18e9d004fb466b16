"""Ingress dedupe marks in Redis: ``SET NX`` on the platform's id, with the platform's window.

The mark is written only after the event is durable in Kafka; a request that failed to publish
leaves no mark, so the platform's retry is published again. If Redis is unreachable the check
answers "not seen" and the mark is skipped: the event ids are deterministic, so consumers
dedupe on them and an outage of the cache costs a duplicate event, never a lost message.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from shared.cache import redis_client
from shared.dataclass import dataclass
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


def sender_count_key(
    channel: str, tenant_id: str, account_id: str, sender_id: str, window: int, span_s: int = 60
) -> str:
    """A sender's messages in window number ``window`` of ``span_s`` seconds, counted beside
    the marks: the same hash tag as :func:`dedupe_key`, so it is read with them in the same
    ``MGET``."""
    return f"senders:{{{channel}:{tenant_id}:{account_id}}}:{sender_id}:{span_s}:{window}"


class Deduplicator:
    def __init__(self, redis_url: str) -> None:
        self._url = redis_url

    def read(
        self, keys: Sequence[DedupeKey], counts: Sequence[str] = ()
    ) -> tuple[set[str], dict[str, int]]:
        """The keys already marked, and the counters ``counts`` (missing: absent), in one
        ``MGET``. Redis down → none and none."""
        if not keys and not counts:
            return set(), {}
        try:
            values = redis_client(self._url).mget([k.key for k in keys] + list(counts))
        except Exception as exc:
            log.warning("dedupe check skipped: redis unavailable", extra={"error": describe(exc)})
            return set(), {}
        marks, numbers = values[: len(keys)], values[len(keys) :]
        seen = {k.key for k, v in zip(keys, marks, strict=True) if v is not None}
        return seen, {c: int(v) for c, v in zip(counts, numbers, strict=True) if v is not None}

    def mark(self, keys: Iterable[DedupeKey], counts: Sequence[str] = ()) -> bool:
        """Mark keys as seen and add one to each of ``counts`` (a key may repeat; they expire
        after two minutes); False when Redis could not be written."""
        keys = list(keys)
        if not keys and not counts:
            return True
        try:
            pipe = redis_client(self._url).pipeline(transaction=False)
            for k in keys:
                pipe.set(k.key, b"1", nx=True, ex=k.ttl_s)
            for counter in counts:
                pipe.incr(counter)
                pipe.expire(counter, 120)
            pipe.execute()
        except Exception as exc:
            log.warning("dedupe mark skipped: redis unavailable", extra={"error": describe(exc)})
            return False
        return True
