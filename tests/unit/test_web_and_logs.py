from __future__ import annotations

import io
import json
import logging

import pytest

from shared import errors, logs, tracing
from shared.web import WebRequest, client_address, error_response


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


# Knative with Kourier: the gateway appends the client's address, the activator (when it is in
# the path) the gateway's, queue-proxy the one before it. Entries left of those are the
# caller's own words.
@pytest.mark.parametrize(
    ("forwarded", "hops", "client"),
    [
        ("203.0.113.7, 10.0.0.5", 2, "203.0.113.7"),  # gateway → queue-proxy
        ("198.51.100.1, 203.0.113.7, 10.0.0.5", 2, "203.0.113.7"),  # a forged first entry
        ("198.51.100.1, 203.0.113.7, 10.0.0.5, 10.0.1.9", 3, "203.0.113.7"),  # + activator
        ("203.0.113.7", 1, "203.0.113.7"),
        (" 2001:db8::1 ,10.0.0.5 ", 2, "2001:db8::1"),
        ("10.0.0.5", 2, "127.0.0.1"),  # fewer entries than proxies: not through them
        (None, 2, "127.0.0.1"),
        ("", 1, "127.0.0.1"),
        ("203.0.113.7, , 10.0.0.5", 2, "127.0.0.1"),  # an empty entry is no address
        ("198.51.100.1, 203.0.113.7", 0, "127.0.0.1"),  # no proxies of ours: the peer
    ],
)
def test_the_client_address_is_the_entry_our_outermost_proxy_wrote(
    forwarded: str | None, hops: int, client: str
) -> None:
    assert client_address(forwarded, "127.0.0.1", hops) == client


def test_traceparent_parsing_and_child_spans() -> None:
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert tracing.parse(parent) == ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "01")
    for bad in (None, "", "garbage", "00-" + "0" * 32 + "-00f067aa0ba902b7-01", "01-x-y-z"):
        assert tracing.parse(bad) is None
    child = tracing.parse(tracing.child_of(parent))
    assert child is not None and child[0] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert child[1] != "00f067aa0ba902b7"
    fresh = tracing.parse(tracing.child_of("not a traceparent"))
    assert fresh is not None and fresh[0] != "4bf92f3577b34da6a3ce929d0e0e4736"


def test_a_span_sets_the_correlation_id_and_the_outgoing_header() -> None:
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert tracing.outgoing() == {}
    with tracing.span("work", parent) as traceparent:
        assert logs.correlation_id.get() == "4bf92f3577b34da6a3ce929d0e0e4736"
        assert tracing.outgoing() == {"traceparent": traceparent}
        with tracing.span("inner") as inner:  # the current span is the parent
            assert inner.split("-")[1] == "4bf92f3577b34da6a3ce929d0e0e4736"
            assert inner != traceparent
    assert logs.correlation_id.get() == "-" and tracing.outgoing() == {}


def test_bound_fields_are_on_every_line_until_the_block_ends() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter("svc"))
    logger = logging.getLogger("test.bound")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with logs.bound(channel="slack", event_id="e-1", tenant=None):
            logger.warning("first")
            logs.annotate(tenant="acme")
            logger.warning("second")
        logs.annotate(tenant="ignored outside a block")
        logger.warning("after")
    finally:
        logger.removeHandler(handler)
    first, second, after = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["channel"] == "slack" and first["event_id"] == "e-1" and "tenant" not in first
    assert second["tenant"] == "acme"
    assert "channel" not in after and "tenant" not in after


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


def test_a_dependency_outage_keeps_its_details_in_the_log() -> None:
    exc = errors.DependencyUnavailable(
        "Kafka unavailable: NoBrokersAvailable (kafka-0.kafka.svc:9092)", dependency="kafka"
    )
    response = error_response(exc)
    assert response.status == 503
    assert "kafka-0" not in json.dumps(response.body)
    assert response.body == {"error": "dependency_unavailable", "message": errors.UNAVAILABLE}
    assert "kafka-0.kafka.svc:9092" in exc.message  # what the log line says


def test_an_echoed_value_is_truncated() -> None:
    exc = errors.Forbidden("unknown site_key " + "k" * 200_000, code="unknown_account")
    body = json.dumps(error_response(exc).body)
    assert len(body) < errors.MAX_MESSAGE_CHARS + 200
    assert exc.message.endswith("…") and len(exc.message) <= errors.MAX_MESSAGE_CHARS
