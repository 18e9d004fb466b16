"""A Server-Sent Events client for tests, and the webchat function as a real server.

:class:`SseClient` reads a ``text/event-stream`` response on a thread of its own and hands
over what arrives, in order — events, comments, the end — so a test can wait for the next one
with a bound instead of blocking on the socket. The stream must go through a real server
(gunicorn, as in the container): a test client would not stream.
"""

from __future__ import annotations

import json
import os
import queue
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from shared.devstack import functions
from shared.devstack.servers import free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Event:
    id: str | None
    event: str
    data: str
    fields: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.data)


class SseClient:
    def __init__(self, url: str, headers: Mapping[str, str] | None = None) -> None:
        self._http = httpx.Client(trust_env=False, timeout=httpx.Timeout(10.0, read=60.0))
        self._received: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._opened = threading.Event()
        self.status: int | None = None
        self.headers: httpx.Headers | None = None
        self._thread = threading.Thread(target=self._read, args=(url, headers), daemon=True)
        self._thread.start()
        if not self._opened.wait(10):
            raise TimeoutError(f"no answer from {url}")

    def _read(self, url: str, headers: Mapping[str, str] | None) -> None:
        try:
            with self._http.stream("GET", url, headers=dict(headers or {})) as response:
                self.status, self.headers = response.status_code, response.headers
                self._opened.set()
                fields: dict[str, str] = {}
                for line in response.iter_lines():
                    if line.startswith(":"):
                        self._received.put(("comment", line[1:].strip()))
                    elif line:
                        name, _, value = line.partition(":")
                        value = value.removeprefix(" ")
                        fields[name] = f"{fields[name]}\n{value}" if name in fields else value
                    elif fields:
                        self._received.put(("event", fields))
                        fields = {}
        except Exception as exc:  # closed by the test, or a broken stream
            self._received.put(("error", exc))
        finally:
            self._received.put(("end", None))
            self._opened.set()

    def next(self, timeout_s: float) -> tuple[str, Any]:
        """The next thing that arrives: ("event", fields), ("comment", text) or ("end", None)."""
        try:
            return self._received.get(timeout=timeout_s)
        except queue.Empty:
            raise TimeoutError(f"nothing arrived within {timeout_s}s") from None

    def next_event(self, timeout_s: float) -> Event:
        """The next message event (comments and the ``retry:`` record skipped)."""
        while True:
            kind, value = self.next(timeout_s)
            if kind == "end":
                raise EOFError("the stream ended")
            if kind == "event" and "data" in value:
                return Event(value.get("id"), value.get("event", "message"), value["data"], value)

    def events_until_quiet(self, quiet_s: float) -> list[Event]:
        """Every message event until nothing arrives for ``quiet_s``."""
        found = []
        try:
            while True:
                found.append(self.next_event(quiet_s))
        except TimeoutError:
            return found

    def close(self) -> None:
        self._http.close()
        self._thread.join(timeout=5)


@contextmanager
def webchat_server(tmp_path: Path, **settings: str) -> Iterator[str]:
    """The webchat function served as its container serves it; its URL. ``settings`` are
    environment variables on top of the test's environment."""
    port = free_port()
    env = {**os.environ, "WORKERS": "1", "THREADS": "8", **settings}
    env.pop("TENANTS_FILE", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    process = functions.start("webchat", port, ROOT, env, tmp_path)
    try:
        functions.wait_healthy([process], timeout_s=30)
        yield process.url
    finally:
        process.send_stop()
        process.wait_stopped(10)
