"""The Flask adapter: a Flask request in, a :class:`WebRequest` to the channel, a response out.

Channel modules never see Flask; they take a :class:`WebRequest` and return a
:class:`WebResponse`, which keeps them testable without a server. This module also mounts
``GET /api/v2/health`` and ``/metrics`` on the functions-framework app and turns every
:class:`ChatServiceError` into its JSON error response, logged and counted.
"""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import flask
from werkzeug.exceptions import HTTPException

from shared import logs, metrics
from shared.dataclass import dataclass, field
from shared.errors import (
    ChatServiceError,
    DependencyUnavailable,
    MethodNotAllowed,
    PayloadTooLarge,
    RateLimited,
)
from shared.settings import get_settings

log = logging.getLogger(__name__)

# Readiness: the function's dependencies (503 when a required one is down, so Knative stops
# routing to it and senders retry). Liveness: the process answers at all, nothing else — a
# dependency outage must never make Kubernetes restart every pod.
HEALTH_PATH = "/api/v2/health"
LIVENESS_PATH = "/api/v2/health/live"


@dataclass(frozen=True)
class WebRequest:
    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    query: Mapping[str, str] = field(default_factory=dict)
    client: str = ""  # the caller's address as our own ingress proxy saw it

    def header(self, name: str) -> str | None:
        """A header by name, case-insensitively (HTTP header names are)."""
        wanted = name.lower()
        for key, value in self.headers.items():
            if key.lower() == wanted:
                return value
        return None


@dataclass(frozen=True)
class WebResponse:
    status: int
    body: Any = ""  # dict/list → JSON, str/bytes as is, an iterator of str/bytes streamed
    headers: Mapping[str, str] = field(default_factory=dict)


Handler = Callable[[WebRequest], WebResponse]


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> WebResponse:
    return WebResponse(status, body, dict(headers or {}))


def internal_error() -> WebResponse:
    """The answer to a bug: JSON like every other error, with nothing of the request in it."""
    return json_response(500, {"error": "internal_error", "message": "internal error"})


def error_response(exc: ChatServiceError) -> WebResponse:
    headers: dict[str, str] = {}
    if isinstance(exc, MethodNotAllowed) and exc.allowed:
        headers["Allow"] = ", ".join(exc.allowed)
    if isinstance(exc, PayloadTooLarge):
        headers["Connection"] = "close"  # the rest of the body was never read
    if isinstance(exc, RateLimited | DependencyUnavailable):
        headers["Retry-After"] = str(exc.retry_after_s)
    return WebResponse(exc.status, exc.to_dict(), headers)


def dispatch(
    request: flask.Request,
    handler: Handler,
    *,
    channel: str,
    error_headers: Callable[[ChatServiceError, Mapping[str, str]], Mapping[str, str]] | None = None,
) -> flask.Response:
    """Run one webhook request through ``handler``; every outcome is logged and counted.

    ``error_headers(exc, request headers)`` adds a channel's own headers to error responses
    (Slack's ``X-Slack-No-Retry``, web chat's CORS headers).
    """
    from shared import tracing

    parent = request.headers.get(tracing.HEADER)
    with (
        tracing.span(f"{channel} webhook", parent, kind="server"),
        logs.bound(channel=channel, request_id=request.headers.get("X-Request-Id")),
    ):
        return _dispatch(request, handler, channel=channel, error_headers=error_headers)


def _dispatch(
    request: flask.Request,
    handler: Handler,
    *,
    channel: str,
    error_headers: Callable[[ChatServiceError, Mapping[str, str]], Mapping[str, str]] | None,
) -> flask.Response:
    try:
        response = handler(_to_web_request(request))
    except ChatServiceError as exc:
        response = error_response(exc)
        if error_headers is not None:
            response = WebResponse(
                response.status,
                response.body,
                {**response.headers, **error_headers(exc, dict(request.headers.items()))},
            )
        metrics.ingress_rejections.labels(channel, str(exc.status), exc.code).inc()
        metrics.ingress_requests.labels(channel, "rejected").inc()
        level = logging.ERROR if exc.status >= 500 else logging.WARNING
        log.log(
            level,
            "request rejected",
            extra={
                "channel": channel,
                "status": exc.status,
                "error": exc.code,
                "reason": exc.message,
                "method": request.method,
                "path": request.path,
                "content_length": request.content_length,
            },
        )
    except Exception:  # a bug, not the caller's fault: still JSON, logged and counted
        log.exception("request failed", extra={"channel": channel, "path": request.path})
        metrics.ingress_requests.labels(channel, "error").inc()
        response = internal_error()
    return _to_flask_response(response)


def _to_web_request(request: flask.Request) -> WebRequest:
    return WebRequest(
        method=request.method,
        path=request.path,
        headers=dict(request.headers.items()),
        body=_read_body(request.environ, request.content_length, get_settings().max_body_bytes),
        query={k: v for k, v in request.args.items()},
        client=client_address(
            request.headers.get("X-Forwarded-For"),
            request.remote_addr or "",
            get_settings().trusted_proxy_hops,
        ),
    )


def client_address(forwarded: str | None, peer: str, trusted_hops: int) -> str:
    """The caller's address: the ``X-Forwarded-For`` entry ``trusted_hops`` from the right.

    Each proxy appends the address it received the request from, so the last ``trusted_hops``
    entries were written by our own proxies and the one the outermost of them wrote is the
    client; entries further left are whatever the caller sent. With fewer entries than that
    the request did not come through our proxies, and with ``trusted_hops`` 0 there are none:
    the socket's peer is all we know (werkzeug's ``ProxyFix`` decides the same way).
    """
    hops = [hop.strip() for hop in (forwarded or "").split(",")]
    if trusted_hops <= 0 or len(hops) < trusted_hops or not hops[-trusted_hops]:
        return peer
    return hops[-trusted_hops]


def _read_body(environ: dict[str, Any], declared: int | None, limit: int) -> bytes:
    """The body, read at most ``limit + 1`` bytes deep.

    Read from the WSGI input ourselves, before Flask opens its stream, and put back what was
    read: an oversized body is then never buffered, not by us and not by functions-framework's
    after-request hook that drains the body (with Flask's MAX_CONTENT_LENGTH that hook would
    raise again and turn the 413 into a 500).
    """
    raw = environ["wsgi.input"]
    if declared is not None and declared > limit:
        body = None
    elif declared is not None:
        body = raw.read(declared)
    elif environ.get("wsgi.input_terminated"):  # chunked: the server ends the stream
        body = raw.read(limit + 1)
    else:
        body = b""
    if body is None or len(body) > limit:
        environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(), "0"
        raise PayloadTooLarge(f"request body is over the {limit}-byte limit")
    environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
    return bytes(body)


def _to_flask_response(response: WebResponse) -> flask.Response:
    body = response.body
    headers = dict(response.headers)
    if isinstance(body, dict | list):
        payload: bytes | str | Iterable[str] | Iterable[bytes] = json.dumps(
            body, separators=(",", ":")
        )
        headers.setdefault("Content-Type", "application/json")
    else:
        # str or bytes, or an iterator of them: a stream, written out as it is produced.
        payload = body
        headers.setdefault("Content-Type", "text/plain; charset=utf-8")
    return flask.Response(payload, status=response.status, headers=headers)


def _metrics_exporter() -> Any:
    """Under several gunicorn workers each is its own process: ``/metrics`` then sums what
    every worker wrote to ``PROMETHEUS_MULTIPROC_DIR`` (set by the image), whichever worker
    answers the scrape. Without it (tests, one process) the default registry is served."""
    if os.environ.get(metrics.MULTIPROC_ENV):
        from prometheus_flask_exporter.multiprocess import MultiprocessInternalPrometheusMetrics

        return MultiprocessInternalPrometheusMetrics
    from prometheus_flask_exporter import PrometheusMetrics

    return PrometheusMetrics


def install(
    app: flask.Flask,
    service: str,
    health: Callable[[], dict[str, bool]],
    *,
    required: tuple[str, ...],
) -> None:
    """Mount health, liveness and metrics on the functions-framework app; configure logging.

    Called by a function's ``main.py`` at import, inside functions-framework's app context.
    Routes added here are static, so they win over the framework's catch-all ``/<path:path>``.
    Health answers 503 when a ``required`` dependency is down, "degraded" (200) when only an
    optional one is.
    """
    settings = get_settings()
    logs.configure(service, settings.log_level)

    exporter = _metrics_exporter()
    exporter(app, group_by="url_rule", default_labels={"service": service})

    @app.get(LIVENESS_PATH)
    def _alive() -> flask.Response:
        return _to_flask_response(json_response(200, {"status": "alive", "service": service}))

    @app.get(HEALTH_PATH)
    def _health() -> flask.Response:
        checks = health()
        ok = all(checks.get(name, False) for name in required)
        body = {
            "status": ("ok" if all(checks.values()) else "degraded") if ok else "unavailable",
            "service": service,
            "dependencies": {name: "up" if up else "down" for name, up in checks.items()},
        }
        return _to_flask_response(json_response(200 if ok else 503, body))

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> flask.Response:
        # Framework-level rejections (an unknown route, a request that is not a CloudEvent)
        # answer in the same JSON shape as ours. The framework's own description can echo the
        # request's headers and body, so the answer and the log carry only the status name.
        status = exc.code or 500
        code = (exc.name or "error").lower().replace(" ", "_")
        metrics.ingress_rejections.labels(service, str(status), code).inc()
        log.warning("request rejected", extra={"status": status, "error": code})
        return _to_flask_response(json_response(status, {"error": code, "message": exc.name}))
