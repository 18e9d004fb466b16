"""Print every call the channel sandbox records, so the bot's reply shows in ``make run``.

The event watcher shows the reply *event* on the outbound topic; this shows what the
outbound-dispatcher actually sent to the channel API, and what the API answered, e.g.
``reply → whatsapp 15550001234: Hello! How can I help? [Opening hours | Shipping]`` (the text,
then the buttons sent with it), or ``… — failed: HTTP 500`` for a failure the sandbox was told
to return. Polls ``GET /calls`` from a daemon thread of the stack.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared.channels.contract import Described

MAX_TEXT = 120
# Direct connections only: a proxy from the environment must not answer for localhost.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def describe(call: dict[str, Any]) -> Described:
    """Who the recorded request is for, its text and its buttons, as its channel reads them."""
    from shared.devstack.sandbox import apis

    body = call.get("json")
    api = apis().get(str(call.get("channel", "")))
    if api is None or not isinstance(body, dict):
        return Described("?", "")
    return api.describe(body)


def _outcome(call: dict[str, Any]) -> str:
    """Empty for a success; the HTTP status or the API's error otherwise."""
    status = call.get("status")
    response = call.get("response")
    response = response if isinstance(response, dict) else {}
    if isinstance(status, int) and status >= 300:
        return f" — failed: HTTP {status}"
    if response.get("ok") is False:  # Slack's errors are 200 with "ok": false
        return f" — failed: {response.get('error', 'not ok')}"
    return ""


def format_call(call: dict[str, Any]) -> str:
    described = describe(call)
    text = described.text
    if len(text) > MAX_TEXT:
        text = text[: MAX_TEXT - 1] + "…"
    clock = datetime.fromtimestamp(float(call.get("time") or 0)).strftime("%H:%M:%S")
    shown = json.dumps(text, ensure_ascii=False)[1:-1]  # newlines as \n: one call, one line
    if described.options:
        shown += " [" + " | ".join(described.options) + "]"
    recipient = described.recipient
    return f"{clock} reply → {call.get('channel', '?')} {recipient}: {shown}{_outcome(call)}"


class ReplyWatcher:
    def __init__(
        self, calls_url: str, emit: Callable[[str], None], *, interval_s: float = 0.5
    ) -> None:
        self._url = calls_url
        self._emit = emit
        self._interval_s = interval_s
        self._seen = 0
        self._failing = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reply-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 3.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                with _opener.open(self._url, timeout=2) as response:
                    calls = json.loads(response.read())
            except (OSError, ValueError) as exc:
                if not self._failing:  # once per outage, not every half second
                    self._emit(f"reply watcher: {self._url}: {exc}; retrying")
                self._failing = True
                continue
            self._failing = False
            self.show(calls)

    def show(self, calls: list[dict[str, Any]]) -> None:
        if len(calls) < self._seen:  # the calls were cleared (DELETE /calls)
            self._seen = 0
        for call in calls[self._seen :]:
            self._emit(format_call(call))
        self._seen = len(calls)
