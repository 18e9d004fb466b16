"""The local sandbox's Slack Web API: ``POST /api/chat.postMessage`` with a bearer token →
``{"ok": true, "channel", "ts", "message"}``; client errors as 200 with ``"ok": false``, rate
limits and outages as HTTP statuses, as Slack answers them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.channels.contract import Answer, Described, SandboxApi, SandboxState, bearer

PATH = "/api/chat.postMessage"


def credential(path: str, headers: Mapping[str, str]) -> str | None:
    return bearer(headers) if path == PATH else None


def answer(body: dict[str, Any], state: SandboxState) -> Answer:
    if not body.get("channel"):
        return 200, {"ok": False, "error": "channel_not_found"}, {}
    if not body.get("text") and not body.get("blocks"):
        return 200, {"ok": False, "error": "no_text"}, {}
    ts = f"{state.unique_time():.6f}"  # seconds with six decimals, unique within a channel
    message = {"type": "message", "user": "U0SANDBOX", "bot_id": "B0SANDBOX", "ts": ts}
    message |= {k: body[k] for k in ("text", "blocks", "thread_ts") if k in body}
    return 200, {"ok": True, "channel": body["channel"], "ts": ts, "message": message}, {}


def failure(status: int, error: str | None, retry_after: int | None) -> Answer:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    # Slack's client errors are 200 with "ok": false; rate limits and outages are HTTP.
    name = error or {429: "ratelimited", 400: "channel_not_found"}.get(status, "fatal_error")
    return (200 if status == 400 else status), {"ok": False, "error": name}, headers


def unauthorized() -> Answer:
    return 200, {"ok": False, "error": "not_authed"}, {}


def describe(body: dict[str, Any]) -> Described:
    """chat.postMessage: the text, and the buttons of its actions blocks."""
    titles = [
        (element.get("text") or {}).get("text")
        for block in body.get("blocks") or ()
        for element in block.get("elements") or ()
    ]
    options = tuple(str(t) for t in titles if t)
    return Described(str(body.get("channel", "?")), str(body.get("text") or ""), options)


API = SandboxApi(
    base_path="/api",
    credential=credential,
    answer=answer,
    failure=failure,
    unauthorized=unauthorized,
    describe=describe,
)
