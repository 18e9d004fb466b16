"""OpenTelemetry export: off (and not even imported) without an endpoint; with one, our spans
reach an OTLP/HTTP collector with the very ids the ``traceparent`` headers carry."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from shared import tracing

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class Collector(ThreadingHTTPServer):
    """An OTLP/HTTP receiver: records every ``POST /v1/traces`` body."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Receive)
        self.requests: list[tuple[str, str, bytes]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Receive(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:  # http.server's name for the handler of POST
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.requests.append((self.path, self.headers.get("Content-Type", ""), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_spans_are_exported_with_the_propagated_ids(
    collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "message-processor")
    tracing.reset()
    try:
        with (
            tracing.span("message-processor handle", PARENT, kind="consumer") as outer,
            tracing.span("mcp-engine call", kind="client") as inner,
        ):
            assert tracing.outgoing() == {"traceparent": inner}
        tracing._otel().flush()
    finally:
        tracing.reset()

    assert collector.requests
    path, content_type, _ = collector.requests[0]
    assert path == "/v1/traces" and content_type == "application/x-protobuf"
    spans = {}
    for *_, body in collector.requests:
        request = ExportTraceServiceRequest.FromString(body)
        for resource in request.resource_spans:
            names = {a.key: a.value.string_value for a in resource.resource.attributes}
            assert names["service.name"] == "message-processor"
            for scope in resource.scope_spans:
                spans.update({span.name: span for span in scope.spans})
    trace, parent_span = PARENT.split("-")[1:3]
    handle, call = spans["message-processor handle"], spans["mcp-engine call"]
    assert handle.trace_id.hex() == call.trace_id.hex() == trace
    assert handle.parent_span_id.hex() == parent_span
    assert call.parent_span_id == handle.span_id
    assert handle.span_id.hex() == outer.split("-")[2] and call.span_id.hex() == inner.split("-")[2]


def test_without_an_endpoint_opentelemetry_is_never_imported() -> None:
    script = (
        "import sys\n"
        "from shared import tracing\n"
        f"with tracing.span('work', {PARENT!r}) as t:\n"
        "    assert t.split('-')[1] == '4bf92f3577b34da6a3ce929d0e0e4736'\n"
        "loaded = [m for m in sys.modules if m.startswith(('opentelemetry', 'shared.otel'))]\n"
        "assert not loaded, loaded\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
