"""Per-tenant and per-end-user message limits in Redis: fixed one-minute windows, atomic.

One Lua script checks both counters and counts the message only when both allow it, so it is
atomic across processes, and a user who is over their limit does not use up the tenant's
budget (one noisy user must not silence a tenant's other users). The window number comes from
our clock and is part of the key, which then expires on its own.

Redis is a cache: when it is down the message is allowed (and the outage logged). Limiting
nobody for a while is better than answering nobody.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from shared.cache import redis_client
from shared.clock import Clock, system_clock
from shared.errors import describe

log = logging.getLogger(__name__)

WINDOW_S = 60

# KEYS: tenant counter, user counter. ARGV: tenant limit, user limit, ttl (a limit <= 0 is
# unlimited). Returns {0, 0} when counted, or {1|2, count} for the scope that refused.
_CHECK_AND_COUNT = """
local limits = {tonumber(ARGV[1]), tonumber(ARGV[2])}
for i = 1, 2 do
  local count = tonumber(redis.call('GET', KEYS[i]) or '0')
  if limits[i] > 0 and count >= limits[i] then
    return {i, count}
  end
end
for i = 1, 2 do
  if redis.call('INCR', KEYS[i]) == 1 then
    redis.call('EXPIRE', KEYS[i], tonumber(ARGV[3]))
  end
end
return {0, 0}
"""


class Scope(StrEnum):
    TENANT = "tenant"
    USER = "user"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    scope: Scope | None = None  # which limit refused
    retry_after_s: int = 0  # until the window ends
    degraded: bool = False  # Redis was unreachable: allowed without counting


class RateLimiter:
    def __init__(
        self,
        redis_url: str,
        *,
        tenant_per_min: int,
        user_per_min: int,
        clock: Clock = system_clock,
        prefix: str = "ratelimit",
    ) -> None:
        self._url = redis_url
        self._prefix = prefix
        self._tenant_limit = tenant_per_min
        self._user_limit = user_per_min
        self._clock = clock
        self._script: Any = None

    def check(self, tenant_id: str, channel: str, user_id: str) -> Decision:
        """Count one message from ``user_id`` if both limits allow it."""
        if self._tenant_limit <= 0 and self._user_limit <= 0:
            return Decision(allowed=True)
        now = self._clock()
        window = int(now // WINDOW_S)
        keys = [
            f"{self._prefix}:tenant:{tenant_id}:{window}",
            f"{self._prefix}:user:{tenant_id}:{channel}:{user_id}:{window}",
        ]
        try:
            scope_index, _count = self._check_and_count()(
                keys=keys, args=[self._tenant_limit, self._user_limit, WINDOW_S * 2]
            )
        except Exception as exc:
            log.warning("rate limit not checked: redis unavailable", extra={"error": describe(exc)})
            return Decision(allowed=True, degraded=True)
        if not scope_index:
            return Decision(allowed=True)
        retry_after = max(1, int((window + 1) * WINDOW_S - now))
        scope = Scope.TENANT if int(scope_index) == 1 else Scope.USER
        return Decision(allowed=False, scope=scope, retry_after_s=retry_after)

    def _check_and_count(self) -> Any:
        # register_script runs EVALSHA and falls back to EVAL after a Redis restart.
        if self._script is None:
            self._script = redis_client(self._url).register_script(_CHECK_AND_COUNT)
        return self._script
