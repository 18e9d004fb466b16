"""The benchmark's wrk script against a real server: every thread sends its own pre-signed
bodies, the signature goes in the header named, and repeats are counted."""

from __future__ import annotations

import shutil
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from tests.unit.bench.support import bench_module

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed"),
]
wrk = bench_module("wrk")


class Recorder(BaseHTTPRequestHandler):
    seen: ClassVar[Counter[tuple[str, bytes]]] = Counter()
    lock: ClassVar[threading.Lock] = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with self.lock:
            self.seen[(self.headers.get("X-Signature", ""), body)] += 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    Recorder.seen = Counter()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def test_pre_signed_bodies_are_sent_as_written_and_repeats_counted(
    server: str, tmp_path: Path
) -> None:
    bodies = tmp_path / "bodies.txt"
    signed = [(f"sha256={i:04d}", f'{{"n": {i}}}'.encode()) for i in range(6)]
    assert wrk.write_bodies(bodies, signed) == 6
    result = wrk.run("t", server, bodies, "X-Signature", tmp_path, seconds=1, connections=2)
    assert result.requests > 6 and result.non_2xx == 0 and result.socket_errors == 0
    assert set(Recorder.seen) == set(signed)  # every body, with its own signature, only those
    # Each thread cycles through its 3; the script counts the requests it made, a few of which
    # were still in flight when the run ended.
    assert result.requests - 6 <= result.repeated <= result.requests
    assert 0 < result.p50_ms <= result.p99_ms <= result.max_ms


def test_a_multi_line_body_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="single line"):
        wrk.write_bodies(tmp_path / "b.txt", [("sig", b"{\n}")])
