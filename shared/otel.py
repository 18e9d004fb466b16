"""OpenTelemetry export of our spans, imported only when an OTLP endpoint is configured.

The SDK reads the standard variables itself (``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, ``OTEL_EXPORTER_OTLP_HEADERS``,
``OTEL_SERVICE_NAME``, ``OTEL_TRACES_SAMPLER``…; see
https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/). Spans are
exported over OTLP/HTTP (protobuf) in batches from a background thread, created lazily in the
worker process so a gunicorn fork never inherits it. The service name defaults to Knative's
``K_SERVICE``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_KINDS = {
    "server": SpanKind.SERVER,
    "client": SpanKind.CLIENT,
    "consumer": SpanKind.CONSUMER,
    "producer": SpanKind.PRODUCER,
    "internal": SpanKind.INTERNAL,
}


class Exporter:
    def __init__(self, provider: TracerProvider) -> None:
        self._provider = provider
        self._tracer = provider.get_tracer("chat-service")
        self._propagator = TraceContextTextMapPropagator()

    @classmethod
    def from_environment(cls) -> Exporter:
        name = os.environ.get("OTEL_SERVICE_NAME") or os.environ.get("K_SERVICE") or "chat-service"
        provider = TracerProvider(resource=Resource.create({"service.name": name}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        return cls(provider)

    @contextmanager
    def span(self, name: str, parent: str | None, kind: str) -> Iterator[str]:
        context = self._propagator.extract({"traceparent": parent}) if parent else None
        with self._tracer.start_as_current_span(
            name, context=context, kind=_KINDS.get(kind, SpanKind.INTERNAL)
        ) as current:
            ids: Any = current.get_span_context()
            yield f"00-{ids.trace_id:032x}-{ids.span_id:016x}-{int(ids.trace_flags):02x}"

    def flush(self) -> None:
        self._provider.force_flush()

    def shutdown(self) -> None:
        self._provider.shutdown()
