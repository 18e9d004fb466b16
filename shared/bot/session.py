"""The conversation's recent turns and session values, cached in Redis for the engine's context.

A list of JSON turns (most recent last, trimmed to ``MAX_TURNS``) and a small hash of session
values (the last intent the engine recognised), both per conversation key and expiring
``TTL_S`` after the last turn. MongoDB holds the real history; this is what the engine needs
on every turn without a query. Redis down → an empty context and a skipped update, never an
error: the bot answers with less context rather than not at all.

Given the engine's circuit breaker, the context read also reads its state (one pipeline: the
processor needs both just before it calls the engine).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from shared.bot.breaker import CircuitBreaker
from shared.bot.ports import ConversationContext, Turn
from shared.cache import redis_client
from shared.errors import describe

log = logging.getLogger(__name__)

MAX_TURNS = 20
TTL_S = 24 * 3600


def session_keys(conversation_key: str) -> tuple[str, str]:
    # Written in one MULTI: the hash tag keeps both in one slot of a Redis Cluster.
    tag = f"{{{conversation_key}}}"
    return f"session:{tag}:turns", f"session:{tag}:values"


class SessionCache:
    def __init__(
        self,
        redis_url: str,
        *,
        max_turns: int = MAX_TURNS,
        ttl_s: int = TTL_S,
        circuit: CircuitBreaker | None = None,
    ) -> None:
        self._url = redis_url
        self._max_turns = max_turns
        self._ttl_s = ttl_s
        self._circuit = circuit

    def context(self, tenant_id: str, channel: str, conversation_key: str) -> ConversationContext:
        empty = ConversationContext(tenant_id, channel, conversation_key)
        turns_key, values_key = session_keys(conversation_key)
        try:
            pipe = redis_client(self._url).pipeline(transaction=False)
            pipe.lrange(turns_key, 0, -1)
            pipe.hgetall(values_key)
            if self._circuit is not None:
                self._circuit.queue_state(pipe)
            raw_turns, raw_values, *circuit = pipe.execute()
        except Exception as exc:
            log.warning("session context unavailable", extra={"error": describe(exc)})
            return empty
        return ConversationContext(
            tenant_id,
            channel,
            conversation_key,
            history=tuple(t for t in (_turn(raw) for raw in raw_turns) if t is not None),
            session={_text(k): _text(v) for k, v in raw_values.items()},
            circuit=self._circuit.state_from(circuit) if self._circuit is not None else None,
        )

    def forget(self, conversation_keys: Sequence[str]) -> int:
        """Delete the conversations' turns and values (a GDPR erase); how many keys went."""
        names = [name for key in conversation_keys for name in session_keys(key)]
        if not names:
            return 0
        try:
            return int(redis_client(self._url).delete(*names))
        except Exception as exc:  # a cache: what is left expires within TTL_S
            log.warning("session context not erased", extra={"error": describe(exc)})
            return 0

    def record(
        self, conversation_key: str, turns: Sequence[Turn], values: dict[str, str] | None = None
    ) -> bool:
        """Append ``turns`` and set ``values``; False when Redis could not be written."""
        turns_key, values_key = session_keys(conversation_key)
        try:
            pipe = redis_client(self._url).pipeline(transaction=True)
            if turns:
                pipe.rpush(turns_key, *(_encode(turn) for turn in turns))
                pipe.ltrim(turns_key, -self._max_turns, -1)
            pipe.expire(turns_key, self._ttl_s)
            if values:
                pipe.hset(values_key, mapping=values)
            pipe.expire(values_key, self._ttl_s)
            pipe.execute()
        except Exception as exc:
            log.warning("session context not updated", extra={"error": describe(exc)})
            return False
        return True


def _encode(turn: Turn) -> str:
    return json.dumps({"role": turn.role, "text": turn.text}, ensure_ascii=False)


def _turn(raw: Any) -> Turn | None:
    # A corrupt or foreign entry is skipped: a cache must not break the bot turn.
    try:
        data = json.loads(raw)
        return Turn(role=str(data["role"]), text=str(data["text"]))
    except (ValueError, TypeError, KeyError):
        return None


def _text(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)
