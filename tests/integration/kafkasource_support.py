"""Helpers for the local KafkaSource tests: a scripted HTTP sink and test-scoped manifests.

The sink is a real threaded HTTP server on 127.0.0.1 that records every request and answers
from a script (statuses per CloudEvent id, 200 once a script runs out). The manifests are the
real ``kafka-sources/`` ones with the production topic prefix replaced by the test's prefix
(and, where a test needs it, shorter backoff), so tests do not see each other's records.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from shared.kafkasource import manifests
from shared.kafkasource.manifests import KafkaSource
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_PREFIX = Settings().topic_prefix

Answer = int | tuple[int, Mapping[str, str]]  # a status, or a status and response headers


@dataclass(frozen=True)
class SinkRequest:
    at: float  # time.monotonic()
    headers: dict[str, str]  # names lower-cased
    body: bytes

    @property
    def id(self) -> str:
        return self.headers.get("ce-id", "")

    def json(self) -> Any:
        return json.loads(self.body)


class RecordingSink:
    def __init__(self, script: Mapping[str, Sequence[Answer]] | None = None) -> None:
        self._script = {event_id: list(answers) for event_id, answers in (script or {}).items()}
        self._lock = threading.Lock()
        self.requests: list[SinkRequest] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, extra = sink._answer(SinkRequest(time.monotonic(), headers, body))
                payload = b"" if status < 300 else json.dumps({"error": status}).encode()
                self.send_response(status)
                for name, value in {**extra, "Content-Length": str(len(payload))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the test reads sink.requests

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _answer(self, request: SinkRequest) -> tuple[int, Mapping[str, str]]:
        with self._lock:
            self.requests.append(request)
            answers = self._script.get(request.id)
            answer: Answer = answers.pop(0) if answers else 200
        return (answer, {}) if isinstance(answer, int) else answer

    def ids(self) -> list[str]:
        with self._lock:
            return [request.id for request in self.requests]

    def attempts(self, event_id: str) -> list[SinkRequest]:
        with self._lock:
            return [request for request in self.requests if request.id == event_id]

    def wait_until(self, condition: Callable[[RecordingSink], bool], timeout_s: float = 20) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition(self):
            if time.monotonic() > deadline:
                raise AssertionError(f"sink condition not met in {timeout_s}s; got {self.ids()}")
            time.sleep(0.02)

    def __enter__(self) -> RecordingSink:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def scoped_sources(prefix: str, **delivery: Any) -> dict[str, KafkaSource]:
    """The real manifests on ``<prefix>.*`` topics, in a consumer group of their own.

    ``delivery`` overrides DeliverySpec fields (``retry``, ``backoff_delay_s`` …) so retry
    tests take milliseconds, not the production minute.
    """

    def topic(name: str) -> str:
        assert name.startswith(PRODUCTION_PREFIX + "."), name
        return prefix + name.removeprefix(PRODUCTION_PREFIX)

    sources = {}
    for source in manifests.load(ROOT / "kafka-sources"):
        dead_letter_topic = source.delivery.dead_letter_topic
        sources[source.name] = replace(
            source,
            topics=tuple(topic(t) for t in source.topics),
            consumer_group=f"{source.consumer_group}.{prefix}",
            delivery=replace(
                source.delivery,
                dead_letter_topic=topic(dead_letter_topic) if dead_letter_topic else None,
                **delivery,
            ),
        )
    return sources


class Commits:
    """Every commit the dispatcher makes: ``on_commit`` for :class:`Dispatcher`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.made: list[tuple[str, int, int]] = []

    def __call__(self, topic: str, partition: int, offset: int) -> None:
        with self._lock:
            self.made.append((topic, partition, offset))

    def of(self, topic: str, partition: int) -> list[int]:
        with self._lock:
            return [o for t, p, o in self.made if (t, p) == (topic, partition)]


def iter_ids(requests: Sequence[SinkRequest], key: str) -> Iterator[str]:
    """The event ids delivered for one partition key, in delivery order."""
    for request in requests:
        if request.json().get("conversation_key") == key:
            yield request.id
