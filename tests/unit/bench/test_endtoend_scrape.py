"""How the end-to-end benchmark reads a handler's ``/metrics``: both families of its request
histogram from one scrape, POSTs only."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.unit.bench.support import bench_module

endtoend = bench_module("endtoend")
run = bench_module("run")
REQUESTS_COUNT = "flask_http_request_duration_seconds_count"

METRICS = """\
# HELP flask_http_request_duration_seconds Flask HTTP request duration in seconds
# TYPE flask_http_request_duration_seconds histogram
flask_http_request_duration_seconds_count{method="POST",path="/",status="200"} 7.0
flask_http_request_duration_seconds_sum{method="POST",path="/",status="200"} 0.35
flask_http_request_duration_seconds_count{method="POST",path="/",status="503"} 1.0
flask_http_request_duration_seconds_sum{method="POST",path="/",status="503"} 0.05
flask_http_request_duration_seconds_count{method="GET",path="/metrics",status="200"} 40.0
flask_http_request_duration_seconds_sum{method="GET",path="/metrics",status="200"} 2.0
"""


@pytest.fixture
def metrics_url() -> Iterator[tuple[str, list[str]]]:
    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            body = METRICS.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/metrics", requests
    finally:
        server.shutdown()
        server.server_close()


def test_a_handlers_posts_come_from_one_scrape(metrics_url: tuple[str, list[str]]) -> None:
    url, requests = metrics_url
    seconds, count = endtoend._served(url)
    assert (round(seconds, 3), count) == (0.4, 8.0)  # both POST series, not the scrapes
    assert requests == ["/metrics"]


def test_a_server_that_does_not_answer_has_no_samples() -> None:
    found = endtoend._scrape("http://127.0.0.1:9/metrics", "a_total", "b_sum")
    assert found == {"a_total": {}, "b_sum": {}}


def test_a_counter_is_read_by_its_total_and_labels(metrics_url: tuple[str, list[str]]) -> None:
    url, _ = metrics_url
    found = endtoend._scrape(url, REQUESTS_COUNT)
    assert found[REQUESTS_COUNT][(("method", "GET"), ("path", "/metrics"), ("status", "200"))] == 40


def test_the_stacks_start_time_says_what_ran_beside_it() -> None:
    assert run._meanwhile(None, None) == ""
    assert run._meanwhile(object(), None) == "round trips counted"
    assert run._meanwhile(object(), object()) == ("round trips counted and worker memory measured")
