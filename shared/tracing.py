"""W3C Trace Context through the whole path of a message, and OpenTelemetry export when asked.

One trace id follows a message: the webhook takes the caller's ``traceparent`` header (or
starts a trace), every CloudEvent it publishes carries it as the ``traceparent`` extension
attribute (the CloudEvents distributed-tracing extension; on Kafka the ``ce_traceparent``
header), the KafkaSource hands it to the handler as ``ce-traceparent``, and the handler passes
it on to the events it publishes, its gRPC calls (metadata) and its channel API calls (HTTP
header). The trace id is also every log line's ``correlation_id``, so ``grep <trace id>``
finds the message's whole path across functions.

Format (https://www.w3.org/TR/trace-context/#traceparent-header):
``00-<32 hex trace id>-<16 hex parent span id>-<2 hex flags>``.

OpenTelemetry is optional: with ``OTEL_EXPORTER_OTLP_ENDPOINT`` unset nothing of it is
imported (cold start stays as it is); with it set, each span is also exported over OTLP/HTTP
by the SDK (extra ``otel``), with the same ids as the propagated headers.
"""

from __future__ import annotations

import contextvars
import os
import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from shared import logs

HEADER = "traceparent"
_VALID = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_ZERO_TRACE, _ZERO_SPAN = "0" * 32, "0" * 16

current: contextvars.ContextVar[str | None] = contextvars.ContextVar("traceparent", default=None)


def parse(value: Any) -> tuple[str, str, str] | None:
    """(trace id, span id, flags) of a valid version-00 ``traceparent``, else None."""
    match = _VALID.match(str(value or "").strip().lower())
    if match is None or match.group(1) == _ZERO_TRACE or match.group(2) == _ZERO_SPAN:
        return None
    return match.group(1), match.group(2), match.group(3)


def child_of(parent: Any) -> str:
    """A new span in the parent's trace, or the first span of a new trace."""
    parsed = parse(parent)
    trace, flags = (parsed[0], parsed[2]) if parsed else (_random_hex(128), "01")
    return f"00-{trace}-{_random_hex(64)}-{flags}"


def _random_hex(bits: int) -> str:
    """A random non-zero id. Trace and span ids identify, they do not authenticate: the
    module's generator (reseeded in every forked worker) is enough, and half the cost of
    ``secrets``, whose system call per id was 6 % of a webhook's samples."""
    return f"{random.getrandbits(bits) or 1:0{bits // 4}x}"


def trace_id() -> str | None:
    parsed = parse(current.get())
    return parsed[0] if parsed else None


@contextmanager
def span(name: str, parent: Any = None, *, kind: str = "internal") -> Iterator[str]:
    """Run the block as a span under ``parent`` (default: the current span); yields its
    ``traceparent``. The trace id becomes the log lines' correlation id meanwhile."""
    parent = parent if parse(parent) else current.get()
    exporter = _otel()
    if exporter is None:
        with _current(child_of(parent)) as traceparent:
            yield traceparent
        return
    with exporter.span(name, parent, kind) as traceparent, _current(traceparent):
        yield traceparent


def outgoing() -> dict[str, str]:
    """Headers (or gRPC metadata) that carry the current span to a call we make."""
    traceparent = current.get()
    return {HEADER: traceparent} if traceparent else {}


@contextmanager
def _current(traceparent: str) -> Iterator[str]:
    token = current.set(traceparent)
    correlation = logs.correlation_id.set(traceparent.split("-")[1])
    try:
        yield traceparent
    finally:
        logs.correlation_id.reset(correlation)
        current.reset(token)


_exporter: Any = None
_checked = False


def _otel() -> Any:
    """The OpenTelemetry bridge when an OTLP endpoint is configured, else None (not imported)."""
    global _exporter, _checked
    if not _checked:
        if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
        ):
            from shared.otel import Exporter  # lazy: only when export is on

            _exporter = Exporter.from_environment()
        _checked = True
    return _exporter


def reset() -> None:
    """Forget the exporter choice (tests that change the environment)."""
    global _exporter, _checked
    if _exporter is not None:
        _exporter.shutdown()
    _exporter, _checked = None, False
