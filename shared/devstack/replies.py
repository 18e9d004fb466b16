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

MAX_TEXT = 120
# Direct connections only: a proxy from the environment must not answer for localhost.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _target(call: dict[str, Any]) -> str:
    body = call.get("json")
    body = body if isinstance(body, dict) else {}
    from shared.devstack.sandbox import apis

    api = apis().get(str(call.get("channel", "")))
    return str(body.get(api.recipient_field, "?")) if api else "?"


def _text(body: Any) -> str:
    """The text of a WhatsApp (text or interactive), Slack or Telegram message body."""
    if not isinstance(body, dict):
        return ""
    text = body.get("text")
    if isinstance(text, dict):  # WhatsApp: {"type": "text", "text": {"body": …}}
        text = text.get("body")
    if not text and isinstance(body.get("interactive"), dict):
        text = (body["interactive"].get("body") or {}).get("text")
    if not text and isinstance(body.get("template"), dict):
        text = f"(template {body['template'].get('name')})"
    return str(text or "")


def _options(body: Any) -> list[str]:
    """The titles of the buttons sent with the text (WhatsApp, Slack, Telegram shapes)."""
    if not isinstance(body, dict):
        return []
    titles: list[Any] = []
    action = (body.get("interactive") or {}).get("action") or {}
    titles += [b.get("reply", {}).get("title") for b in action.get("buttons") or ()]
    titles += [r.get("title") for s in action.get("sections") or () for r in s.get("rows") or ()]
    for block in body.get("blocks") or ():
        titles += [(e.get("text") or {}).get("text") for e in block.get("elements") or ()]
    keyboard = (body.get("reply_markup") or {}).get("inline_keyboard") or ()
    titles += [button.get("text") for row in keyboard for button in row]
    return [str(t) for t in titles if t]


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
    text = _text(call.get("json"))
    if len(text) > MAX_TEXT:
        text = text[: MAX_TEXT - 1] + "…"
    clock = datetime.fromtimestamp(float(call.get("time") or 0)).strftime("%H:%M:%S")
    shown = json.dumps(text, ensure_ascii=False)[1:-1]  # newlines as \n: one call, one line
    options = _options(call.get("json"))
    if options:
        shown += " [" + " | ".join(options) + "]"
    return f"{clock} reply → {call.get('channel', '?')} {_target(call)}: {shown}{_outcome(call)}"


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
