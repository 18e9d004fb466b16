"""A sandbox of the channel APIs, so a local stack's replies go somewhere you can see.

Run it standalone with ``python -m shared.devstack.sandbox --host 127.0.0.1 --port 8790`` and
set ``CHANNEL_API_BASES`` to :func:`api_bases` of its URL (``whatsapp=http://127.0.0.1:8790/
v21.0,slack=…``). Each channel with an API declares how the sandbox stands in for it
(``SPEC.sandbox``: its paths, credential, success answer and error shapes); the sandbox serves
every registered one under its ``base_path``.

``GET /calls`` lists every call (channel, method, path with secrets masked, headers without
``Authorization``, a ``credential`` fingerprint, JSON body, time, response status and body);
``DELETE /calls`` clears them. ``POST /fail`` with ``{"channel": "<name>"|"*", "status":
500|429|400, "times": n, "retry_after": s, "error": "…"}`` makes the next ``n`` calls fail that
way, in the platform's error shape; ``DELETE /fail`` drops the rules. ``GET /health`` →
``{"status": "ok"}``. Development only: no TLS, no limits.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from shared.channels.contract import Answer, SandboxApi, SandboxState
from shared.channels.registry import specs
from shared.devstack import servers

MAX_BODY = 1024 * 1024


def apis() -> dict[str, SandboxApi]:
    """Every registered channel the sandbox stands in for, by name."""
    return {spec.name: spec.sandbox for spec in specs() if spec.sandbox is not None}


def api_bases(url: str) -> dict[str, str]:
    """Each channel's API base on the sandbox at ``url``."""
    url = url.rstrip("/")
    return {name: f"{url}{api.base_path}" for name, api in apis().items()}


def api_bases_setting(url: str) -> dict[str, str]:
    """The setting that sends every channel's replies to the sandbox at ``url``."""
    pairs = ",".join(f"{name}={base}" for name, base in api_bases(url).items())
    return {"CHANNEL_API_BASES": pairs}


class Sandbox:
    """The recorded calls and the pending failure rules, shared by the handler threads."""

    def __init__(self) -> None:
        self.state = SandboxState()
        self.lock = threading.Lock()
        self.calls: list[dict[str, Any]] = []
        self.failures: list[dict[str, Any]] = []

    def next_failure(self, channel: str) -> dict[str, Any] | None:
        with self.lock:
            for rule in self.failures:
                if rule["channel"] in (channel, "*"):
                    rule["times"] -= 1
                    if rule["times"] <= 0:
                        self.failures.remove(rule)
                    return rule
        return None


def failure(api: SandboxApi, rule: dict[str, Any]) -> Answer:
    """The failure a rule asks for, in the platform's error shape."""
    error = rule.get("error")
    wait = rule.get("retry_after")
    return api.failure(
        int(rule["status"]),
        None if error is None else str(error),
        None if wait is None else int(wait),
    )


def fingerprint(credential: str) -> str | None:
    """Enough of the token's SHA-256 for a test to tell which one was sent, never the token."""
    return hashlib.sha256(credential.encode()).hexdigest()[:12] if credential else None


def shown(path: str) -> str:
    """A request path as recorded and logged: with any channel's secret masked."""
    for api in apis().values():
        path = api.shown_path(path)
    return path


class Handler(BaseHTTPRequestHandler):
    server_version = "ChannelSandbox/1"
    sandbox: Sandbox  # set on the subclass made by make_server

    def do_GET(self) -> None:
        if self.path == "/calls":
            with self.sandbox.lock:
                self._reply(200, list(self.sandbox.calls))
        elif self.path == "/health":
            self._reply(200, {"status": "ok"})
        else:
            self._reply(404, {"error": "not_found", "path": shown(self.path)})

    def do_DELETE(self) -> None:
        with self.sandbox.lock:
            if self.path == "/calls":
                self.sandbox.calls.clear()
            elif self.path == "/fail":
                self.sandbox.failures.clear()
            else:
                return self._reply(404, {"error": "not_found", "path": shown(self.path)})
        self._reply(200, {"status": "cleared"})

    def do_POST(self) -> None:
        body = self._body()
        if self.path == "/fail":
            return self._add_failure(body)
        route = self._route()
        if route is None:
            return self._reply(404, {"error": "not_found", "path": shown(self.path)})
        channel, credential, api = route
        rule = self.sandbox.next_failure(channel) if credential else None
        if not credential:
            answer = api.unauthorized()
        elif rule is not None:
            answer = failure(api, rule)
        else:  # a body that is not a JSON object fails the API's own field checks
            answer = api.answer(body if isinstance(body, dict) else {}, self.sandbox.state)
        self._record(channel, credential, body, answer)
        self._reply(*answer)

    def _route(self) -> tuple[str, str, SandboxApi] | None:
        headers = dict(self.headers.items())
        for channel, api in apis().items():
            credential = api.credential(self.path, headers)
            if credential is not None:
                return channel, credential, api
        return None

    def _add_failure(self, body: Any) -> None:
        channels = (*apis(), "*")
        if not isinstance(body, dict) or body.get("channel") not in channels:
            return self._reply(400, {"error": "bad_rule", "channels": list(channels)})
        rule = {"status": 500, "times": 1, "retry_after": None, "error": None, **body}
        with self.sandbox.lock:
            self.sandbox.failures.append(rule)
        self._reply(201, rule)

    def _record(self, channel: str, credential: str, body: Any, answer: Answer) -> None:
        headers = {k: v for k, v in self.headers.items() if k.lower() != "authorization"}
        call = {
            "channel": channel,
            "method": self.command,
            "path": shown(self.path),
            "headers": headers,
            "credential": fingerprint(credential),
            "json": body,
            "time": time.time(),
            "status": answer[0],
            "response": answer[1],
        }
        with self.sandbox.lock:
            self.sandbox.calls.append(call)

    def _body(self) -> Any:
        length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return None

    def _reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # The default line has the raw path, and a Telegram path holds the bot token.
        sys.stderr.write(f"sandbox: {self.command} {shown(self.path)} {code}\n")


def make_server(host: str, port: int) -> ThreadingHTTPServer:
    handler = type("SandboxHandler", (Handler,), {"sandbox": Sandbox()})
    return ThreadingHTTPServer((host, port), handler)


def start(
    port: int | None = None, log_path: Path | None = None, root: Path | None = None
) -> servers.Server:
    """The sandbox as a child process (for the local stack and the tests)."""
    return servers.start_module(
        "sandbox", "shared.devstack.sandbox", port, log_path, root=root, url="http://{host}:{port}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8790)
    options = parser.parse_args(argv)
    server = make_server(options.host, options.port)
    print(f"channel sandbox on http://{options.host}:{options.port}", flush=True)
    with server, contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
