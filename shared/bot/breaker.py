"""A circuit breaker around the MCP engine, its state shared by every processor through Redis.

Without it, each message during an engine outage waits for the gRPC deadline (and its
retries) before the fallback answers, on every replica. After ``failures`` consecutive
failures within ``window_s`` the circuit opens for ``open_s`` seconds: calls fail at once with
:class:`DependencyUnavailable`, so the processor answers from the fallback rules immediately
(or 503 when the fallback is off). When the open key expires, the next call tries the engine
again (half-open); one success closes the circuit.

Redis is a cache here too: if it is unreachable the breaker stays closed and every call goes
to the engine, as if there were no breaker.

The state is two keys read together (:meth:`CircuitBreaker.queue_state`), by the session cache
in the pipeline that reads the conversation's context (the processor needs both just before
the engine call), so a turn spends no round trip of its own on the breaker: a success resets
the failure count only when there was one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from shared import metrics
from shared.bot.ports import CircuitState, ConversationContext, Engine, EngineReply
from shared.cache import redis_client
from shared.errors import DependencyUnavailable, describe
from shared.models import InboundMessage

log = logging.getLogger(__name__)


class CircuitOpen(DependencyUnavailable):
    """The engine was not called: it failed too often just now."""


class CircuitBreaker:
    def __init__(
        self,
        engine: Engine,
        redis_url: str,
        *,
        name: str = "mcp-engine",
        failures: int = 5,
        window_s: int = 30,
        open_s: int = 15,
    ) -> None:
        self._engine = engine
        self._url = redis_url
        self._failures_key = f"breaker:{name}:failures"
        self._open_key = f"breaker:{name}:open"
        self._name = name
        self._threshold = failures
        self._window_s = window_s
        self._open_s = open_s

    def generate_reply(self, context: ConversationContext, message: InboundMessage) -> EngineReply:
        state = context.circuit or self.read_state()
        metrics.engine_breaker_open.set(1 if state.open else 0)
        if state.open:
            raise CircuitOpen(
                f"{self._name} circuit is open after repeated failures", dependency=self._name
            )
        try:
            reply = self._engine.generate_reply(context, message)
        except DependencyUnavailable:
            self._record_failure()
            raise
        if state.failures:  # nothing to reset otherwise
            self._record_success()
        return reply

    def is_open(self) -> bool:
        is_open = self.read_state().open
        metrics.engine_breaker_open.set(1 if is_open else 0)
        return is_open

    def read_state(self) -> CircuitState:
        """The shared state, in one round trip; closed when Redis cannot say."""
        try:
            pipe = redis_client(self._url).pipeline(transaction=False)
            self.queue_state(pipe)
            return self.state_from(pipe.execute())
        except Exception as exc:
            log.warning("breaker state unknown: redis unavailable", extra={"error": describe(exc)})
            return CircuitState(open=False, failures=0)

    def queue_state(self, pipe: Any) -> None:
        """Add the state's reads to a Redis pipeline (their results: :meth:`state_from`)."""
        pipe.exists(self._open_key)
        pipe.get(self._failures_key)

    def state_from(self, results: Sequence[Any]) -> CircuitState:
        """The state from the results of :meth:`queue_state`'s reads, in their order."""
        is_open, failures = results[:2]
        return CircuitState(open=bool(is_open), failures=int(failures or 0))

    def _record_failure(self) -> None:
        try:
            pipe = redis_client(self._url).pipeline(transaction=True)
            pipe.incr(self._failures_key)
            pipe.expire(self._failures_key, self._window_s)
            count = int(pipe.execute()[0])
            if count >= self._threshold:
                redis_client(self._url).set(self._open_key, b"1", ex=self._open_s)
                log.warning(
                    "circuit opened",
                    extra={"dependency": self._name, "failures": count, "open_s": self._open_s},
                )
        except Exception as exc:
            log.warning("breaker not updated: redis unavailable", extra={"error": describe(exc)})

    def _record_success(self) -> None:
        try:
            redis_client(self._url).delete(self._failures_key)
        except Exception as exc:
            log.warning("breaker not updated: redis unavailable", extra={"error": describe(exc)})
