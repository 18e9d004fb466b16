"""A client interceptor on every gRPC channel: each call timed and counted, the trace passed on.

The duration covers the whole call as the caller sees it, the channel's own retries on
UNAVAILABLE included, and ends in the call's final status code (``OK``, ``UNAVAILABLE``,
``DEADLINE_EXCEEDED``, …). The current ``traceparent`` goes out as call metadata, where a
gRPC server reads it as it would the HTTP header of the same name.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

import grpc

from shared import metrics, tracing


class _Details(NamedTuple):
    method: str
    timeout: float | None
    metadata: Any
    credentials: Any
    wait_for_ready: bool | None
    compression: Any


class _CallDetails(_Details, grpc.ClientCallDetails):
    pass


class Observed(grpc.UnaryUnaryClientInterceptor):
    def __init__(self, dependency: str) -> None:
        self.dependency = dependency

    def intercept_unary_unary(
        self, continuation: Callable[[Any, Any], Any], details: Any, request: Any
    ) -> Any:
        method = str(details.method).rsplit("/", 1)[-1]
        started = time.perf_counter()
        call = continuation(_with_trace(details), request)
        code = call.code()  # waits for the unary call to end (the caller blocks on it anyway)
        name = code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"
        metrics.dependency_seconds.labels(self.dependency, method, name).observe(
            time.perf_counter() - started
        )
        return call


def _with_trace(details: Any) -> Any:
    outgoing = tracing.outgoing()
    if not outgoing:
        return details
    metadata = [*(details.metadata or ()), *outgoing.items()]
    return _CallDetails(
        details.method,
        details.timeout,
        metadata,
        details.credentials,
        getattr(details, "wait_for_ready", None),
        getattr(details, "compression", None),
    )
