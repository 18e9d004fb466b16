from __future__ import annotations

import io
import json
import logging

from shared import errors, logs
from shared.web import WebRequest, error_response


def test_errors_map_to_the_knative_and_platform_status_codes() -> None:
    cases = [
        (errors.BadRequest("x"), 400),
        (errors.Unauthorized("x"), 401),
        (errors.Forbidden("x"), 403),
        (errors.NotFound("x"), 404),
        (errors.MethodNotAllowed("x", allowed=("POST",)), 405),
        (errors.PayloadTooLarge("x"), 413),
        (errors.RateLimited("x", retry_after_s=3), 429),
        (errors.DependencyUnavailable("x", dependency="kafka"), 503),
    ]
    for exc, status in cases:
        response = error_response(exc)
        assert response.status == status
        assert response.body["error"] == exc.code
    assert error_response(cases[4][0]).headers["Allow"] == "POST"
    assert error_response(cases[6][0]).headers["Retry-After"] == "3"
    assert error_response(cases[7][0]).headers["Retry-After"] == "5"


def test_header_lookup_is_case_insensitive() -> None:
    request = WebRequest("POST", "/", {"X-Hub-Signature-256": "sig"}, b"")
    assert request.header("x-hub-signature-256") == "sig"
    assert request.header("missing") is None


def test_correlation_id_from_traceparent_or_request_id() -> None:
    trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert (
        logs.correlation_from_headers({"traceparent": trace}) == "4bf92f3577b34da6a3ce929d0e0e4736"
    )
    assert logs.correlation_from_headers({"X-Request-Id": "abc"}) == "abc"
    assert logs.correlation_from_headers({}) is None


def test_json_lines_carry_the_correlation_id() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter("svc"))
    logger = logging.getLogger("test.json")
    logger.addHandler(handler)
    logger.propagate = False
    token = logs.correlation_id.set("corr-1")
    try:
        logger.warning("hello %s", "world", extra={"channel": "slack"})
    finally:
        logs.correlation_id.reset(token)
        logger.removeHandler(handler)
    line = json.loads(stream.getvalue())
    assert line["message"] == "hello world"
    assert line["correlation_id"] == "corr-1"
    assert line["channel"] == "slack"
    assert line["service"] == "svc"
