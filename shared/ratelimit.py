"""Message limits in Redis: fixed one-minute windows, several counters checked atomically.

One Lua script checks every counter of a decision and counts the message only when all of them
allow it, so it is atomic across processes, and a sender who is over their own limit does not
use up the shared budget (one noisy user must not silence a tenant's other users). The window
number comes from our clock and is part of the key, which then expires on its own.

Two limiters use it:

- :class:`RateLimiter`, the bot's turns per tenant and per end user. A channel may have a
  tenant budget of its own (``channel_tenant_per_min``): web chat's anonymous visitors count
  against theirs only, so a flood of them cannot silence the tenant's WhatsApp, Slack or
  Telegram users.
- :class:`ConversationLimiter`, web chat messages at the door, per conversation and per
  client address.

Redis is a cache: when it is down the message is allowed (and the outage logged). Limiting
nobody for a while is better than answering nobody.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from shared.cache import redis_client
from shared.clock import Clock, system_clock
from shared.dataclass import dataclass
from shared.errors import describe

log = logging.getLogger(__name__)

WINDOW_S = 60

# KEYS: the counters. ARGV: their limits, then the keys' ttl. Returns {0, 0} when counted, or
# {i, count} for the first counter that refused.
_CHECK_AND_COUNT = """
local n = #KEYS
for i = 1, n do
  local count = tonumber(redis.call('GET', KEYS[i]) or '0')
  if count >= tonumber(ARGV[i]) then
    return {i, count}
  end
end
for i = 1, n do
  if redis.call('INCR', KEYS[i]) == 1 then
    redis.call('EXPIRE', KEYS[i], tonumber(ARGV[n + 1]))
  end
end
return {0, 0}
"""


class Scope(StrEnum):
    TENANT = "tenant"
    USER = "user"
    CONVERSATION = "conversation"
    CLIENT = "client"


@dataclass(frozen=True)
class Limit:
    """One counter: what it limits, its key (without prefix and window) and its budget."""

    scope: Scope
    key: str
    per_min: int  # <= 0: unlimited, not counted


@dataclass(frozen=True)
class Decision:
    allowed: bool
    scope: Scope | None = None  # which limit refused
    retry_after_s: int = 0  # until the window ends
    degraded: bool = False  # Redis was unreachable: allowed without counting


class Counters:
    """The counters of one limiter (``prefix``) in Redis."""

    def __init__(self, redis_url: str, *, clock: Clock = system_clock, prefix: str) -> None:
        self._url = redis_url
        self._prefix = prefix
        self._clock = clock
        self._script: Any = None

    def keys(self, limits: Sequence[Limit], slot: str, window: int) -> list[str]:
        """The counters' keys. One script reads and writes them all: on a Redis Cluster its
        keys must live in one slot, so they share the hash tag ``{<slot>}`` (the tenant, or
        the site)."""
        return [f"{self._prefix}:{{{slot}}}:{limit.key}:{window}" for limit in limits]

    def count(self, limits: Sequence[Limit], slot: str) -> Decision:
        """Count one message against every limit if all of them allow it."""
        counted = [limit for limit in limits if limit.per_min > 0]
        if not counted:
            return Decision(allowed=True)
        now = self._clock()
        window = int(now // WINDOW_S)
        keys = self.keys(counted, slot, window)
        try:
            index, _count = self._check_and_count()(
                keys=keys, args=[*(limit.per_min for limit in counted), WINDOW_S * 2]
            )
        except Exception as exc:
            log.warning("rate limit not checked: redis unavailable", extra={"error": describe(exc)})
            return Decision(allowed=True, degraded=True)
        if not index:
            return Decision(allowed=True)
        refused = counted[int(index) - 1]
        retry_after = max(1, int((window + 1) * WINDOW_S - now))
        return Decision(allowed=False, scope=refused.scope, retry_after_s=retry_after)

    def _check_and_count(self) -> Any:
        # register_script runs EVALSHA and falls back to EVAL after a Redis restart.
        if self._script is None:
            self._script = redis_client(self._url).register_script(_CHECK_AND_COUNT)
        return self._script


class RateLimiter:
    """Bot turns (or new sessions: ``prefix``) per tenant and per user of a channel."""

    def __init__(
        self,
        redis_url: str,
        *,
        tenant_per_min: int,
        user_per_min: int,
        clock: Clock = system_clock,
        prefix: str = "ratelimit",
        channel_tenant_per_min: Mapping[str, int] | None = None,
    ) -> None:
        self._tenant_limit = tenant_per_min
        self._user_limit = user_per_min
        self._channel_tenant = dict(channel_tenant_per_min or {})
        self._counters = Counters(redis_url, clock=clock, prefix=prefix)

    def limits(self, tenant_id: str, channel: str, user_id: str) -> tuple[Limit, Limit]:
        """The tenant's budget (the channel's own where it has one) and the user's."""
        own = self._channel_tenant.get(str(channel))
        tenant = (
            Limit(Scope.TENANT, f"tenant:{tenant_id}", self._tenant_limit)
            if own is None
            else Limit(Scope.TENANT, f"tenant:{tenant_id}:{channel}", own)
        )
        user = Limit(Scope.USER, f"user:{tenant_id}:{channel}:{user_id}", self._user_limit)
        return tenant, user

    def check(self, tenant_id: str, channel: str, user_id: str) -> Decision:
        """Count one message from ``user_id`` if both limits allow it."""
        return self._counters.count(self.limits(tenant_id, channel, user_id), slot=tenant_id)


class ConversationLimiter:
    """Web chat messages per conversation and per client address of a site.

    The client limit spans all of that address's conversations (sessions are cheap to open);
    it is per site so that a busy shared address (an office behind one NAT) on one tenant's
    site does not use up another tenant's.
    """

    def __init__(
        self,
        redis_url: str,
        *,
        per_conversation: int,
        per_client: int,
        clock: Clock = system_clock,
        prefix: str = "webchat-messages",
    ) -> None:
        self._per_conversation = per_conversation
        self._per_client = per_client
        self._counters = Counters(redis_url, clock=clock, prefix=prefix)

    def limits(self, conversation_key: str, site_key: str, client: str) -> tuple[Limit, Limit]:
        return (
            Limit(Scope.CONVERSATION, f"conversation:{conversation_key}", self._per_conversation),
            Limit(Scope.CLIENT, f"client:{site_key}:{client}", self._per_client),
        )

    def check(self, conversation_key: str, site_key: str, client: str) -> Decision:
        return self._counters.count(self.limits(conversation_key, site_key, client), slot=site_key)
