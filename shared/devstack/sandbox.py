"""A sandbox of the three channel APIs, so a local stack's replies go somewhere you can see.

Run it standalone with ``python -m shared.devstack.sandbox --host 127.0.0.1 --port 8790`` and
set ``WHATSAPP_API_BASE=http://127.0.0.1:8790/v21.0``, ``SLACK_API_BASE=http://127.0.0.1:8790
/api``, ``TELEGRAM_API_BASE=http://127.0.0.1:8790`` (:func:`api_bases`). It speaks each API's
request/response shapes: ``POST /{version}/{phone_number_id}/messages`` (WhatsApp Cloud API,
bearer token) → ``{"messaging_product", "contacts", "messages": [{"id"}]}``; ``POST
/api/chat.postMessage`` (Slack, bearer token) → ``{"ok": true, "channel", "ts", "message"}``,
errors as 200 with ``"ok": false``; ``POST /bot<token>/sendMessage`` (Telegram Bot API) →
``{"ok": true, "result": {"message_id", "chat", "date", "text"}}``.

``GET /calls`` lists every call (channel, method, path with the Telegram token masked, headers
without ``Authorization``, a ``credential`` fingerprint, JSON body, time, response status and
body); ``DELETE /calls`` clears them. ``POST /fail`` with ``{"channel": "whatsapp"|"slack"|
"telegram"|"*", "status": 500|429|400, "times": n, "retry_after": s, "error": "…"}`` makes the
next ``n`` calls fail that way, in the platform's error shape; ``DELETE /fail`` drops the
rules. ``GET /health`` → ``{"status": "ok"}``. Development only: no TLS, no limits.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import json
import re
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from shared.devstack import servers

MAX_BODY = 1024 * 1024
WHATSAPP_PATH = re.compile(r"^/(v\d+\.\d+)/([^/]+)/messages$")
SLACK_PATH = "/api/chat.postMessage"
TELEGRAM_PATH = re.compile(r"^/bot([^/]*)/sendMessage$")
Headers = dict[str, str]
Answer = tuple[int, dict[str, Any], Headers]  # status, body, extra headers


def api_bases(url: str) -> dict[str, str]:
    """The settings that send every channel's replies to the sandbox at ``url``."""
    url = url.rstrip("/")
    return {
        "WHATSAPP_API_BASE": f"{url}/v21.0",
        "SLACK_API_BASE": f"{url}/api",
        "TELEGRAM_API_BASE": url,
    }


class Sandbox:
    """The recorded calls and the pending failure rules, shared by the handler threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[dict[str, Any]] = []
        self.failures: list[dict[str, Any]] = []
        # Seeded from the clock so a restarted sandbox does not hand out ids it gave before.
        self.counter = itertools.count(int(time.time() * 10) % 10**9)
        self.last_ts = 0.0

    def next_failure(self, channel: str) -> dict[str, Any] | None:
        with self.lock:
            for rule in self.failures:
                if rule["channel"] in (channel, "*"):
                    rule["times"] -= 1
                    if rule["times"] <= 0:
                        self.failures.remove(rule)
                    return rule
        return None

    def slack_ts(self) -> str:
        """Slack's ``ts``: seconds with six decimals, unique within a channel (here: at all)."""
        with self.lock:
            self.last_ts = max(time.time(), self.last_ts + 0.000001)
            return f"{self.last_ts:.6f}"


def whatsapp(body: dict[str, Any], sandbox: Sandbox) -> Answer:
    if body.get("messaging_product") != "whatsapp" or not body.get("to"):
        return graph_error(400, 100, "(#100) Invalid parameter: messaging_product and to")
    to = str(body["to"])
    return (
        200,
        {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to}],
            "messages": [{"id": f"wamid.SANDBOX{uuid.uuid4().hex.upper()}"}],
        },
        {},
    )


def slack(body: dict[str, Any], sandbox: Sandbox) -> Answer:
    if not body.get("channel"):
        return 200, {"ok": False, "error": "channel_not_found"}, {}
    if not body.get("text") and not body.get("blocks"):
        return 200, {"ok": False, "error": "no_text"}, {}
    ts = sandbox.slack_ts()
    message = {"type": "message", "user": "U0SANDBOX", "bot_id": "B0SANDBOX", "ts": ts}
    message |= {k: body[k] for k in ("text", "blocks", "thread_ts") if k in body}
    return 200, {"ok": True, "channel": body["channel"], "ts": ts, "message": message}, {}


def telegram(body: dict[str, Any], sandbox: Sandbox) -> Answer:
    if body.get("chat_id") in (None, ""):
        return telegram_error(400, "Bad Request: chat_id is empty")
    if not body.get("text"):
        return telegram_error(400, "Bad Request: message text is empty")
    result = {
        "message_id": next(sandbox.counter),
        "from": {"id": 7000000000, "is_bot": True, "first_name": "Sandbox"},
        "chat": {"id": body["chat_id"], "type": "private"},
        "date": int(time.time()),
        "text": body["text"],
    }
    if "reply_markup" in body:
        result["reply_markup"] = body["reply_markup"]
    return 200, {"ok": True, "result": result}, {}


def graph_error(status: int, code: int, message: str, headers: Headers | None = None) -> Answer:
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "SANDBOX"}
    return status, {"error": error}, headers or {}


def telegram_error(
    status: int, description: str, retry_after: int | None = None, headers: Headers | None = None
) -> Answer:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return status, body, headers or {}


def failure(channel: str, rule: dict[str, Any]) -> Answer:
    """The failure a rule asks for, in the platform's error shape."""
    status, error, wait = int(rule["status"]), rule.get("error"), rule.get("retry_after")
    headers = {"Retry-After": str(wait)} if wait is not None else {}
    if channel == "whatsapp":
        code = int(str(error)) if str(error).isdigit() else {429: 130429, 400: 100}.get(status, 1)
        return graph_error(status, code, f"(#{code}) sandbox failure", headers)
    if channel == "slack":
        # Slack's client errors are 200 with "ok": false; rate limits and outages are HTTP.
        name = error or {429: "ratelimited", 400: "channel_not_found"}.get(status, "fatal_error")
        return (200 if status == 400 else status), {"ok": False, "error": name}, headers
    described = {
        429: f"Too Many Requests: retry after {wait or 1}",
        400: "Bad Request: chat not found",
    }
    description = error or described.get(status, "Internal Server Error")
    retry_after = int(wait or 1) if status == 429 else None
    return telegram_error(status, description, retry_after, headers)


def fingerprint(credential: str) -> str | None:
    """Enough of the token's SHA-256 for a test to tell which one was sent, never the token."""
    return hashlib.sha256(credential.encode()).hexdigest()[:12] if credential else None


def unauthorized(channel: str) -> Answer:
    if channel == "whatsapp":
        return graph_error(401, 190, "Invalid OAuth access token")
    if channel == "slack":
        return 200, {"ok": False, "error": "not_authed"}, {}
    return telegram_error(401, "Unauthorized")


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
            self._reply(404, {"error": "not_found", "path": self.path})

    def do_DELETE(self) -> None:
        with self.sandbox.lock:
            if self.path == "/calls":
                self.sandbox.calls.clear()
            elif self.path == "/fail":
                self.sandbox.failures.clear()
            else:
                return self._reply(404, {"error": "not_found", "path": self.path})
        self._reply(200, {"status": "cleared"})

    def do_POST(self) -> None:
        body = self._body()
        if self.path == "/fail":
            return self._add_failure(body)
        route = self._route()
        if route is None:
            return self._reply(404, {"error": "not_found", "path": self.path})
        channel, credential, api = route
        rule = self.sandbox.next_failure(channel) if credential else None
        if not credential:
            answer = unauthorized(channel)
        elif rule is not None:
            answer = failure(channel, rule)
        else:  # a body that is not a JSON object fails the API's own field checks
            answer = api(body if isinstance(body, dict) else {}, self.sandbox)
        self._record(channel, credential, body, answer)
        self._reply(*answer)

    def _route(self) -> tuple[str, str, Any] | None:
        auth = self.headers.get("Authorization", "")
        bearer = auth[len("Bearer ") :].strip() if auth.startswith("Bearer ") else ""
        if WHATSAPP_PATH.match(self.path):
            return "whatsapp", bearer, whatsapp
        if self.path == SLACK_PATH:
            return "slack", bearer, slack
        match = TELEGRAM_PATH.match(self.path)
        if match:
            return "telegram", match.group(1), telegram
        return None

    def _add_failure(self, body: Any) -> None:
        channels = ("whatsapp", "slack", "telegram", "*")
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
            "path": TELEGRAM_PATH.sub("/bot***/sendMessage", self.path),
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
        path = TELEGRAM_PATH.sub("/bot***/sendMessage", self.path)
        sys.stderr.write(f"sandbox: {self.command} {path} {code}\n")


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
