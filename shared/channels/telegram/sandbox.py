"""The local sandbox's Telegram Bot API: ``POST /bot<token>/sendMessage`` →
``{"ok": true, "result": {"message_id", "chat", "date", "text"}}``; errors as
``{"ok": false, "error_code", "description"}`` (with ``parameters.retry_after`` on 429). The bot
token is in the path, so recorded paths mask it."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

from shared.channels.contract import Answer, Described, SandboxApi, SandboxState

PATH = re.compile(r"^/bot([^/]*)/sendMessage$")


def credential(path: str, headers: Mapping[str, str]) -> str | None:
    del headers
    match = PATH.match(path)
    return match.group(1) if match else None


def shown_path(path: str) -> str:
    return PATH.sub("/bot***/sendMessage", path)


def answer(body: dict[str, Any], state: SandboxState) -> Answer:
    if body.get("chat_id") in (None, ""):
        return error(400, "Bad Request: chat_id is empty")
    if not body.get("text"):
        return error(400, "Bad Request: message text is empty")
    result = {
        "message_id": state.number(),
        "from": {"id": 7000000000, "is_bot": True, "first_name": "Sandbox"},
        "chat": {"id": body["chat_id"], "type": "private"},
        "date": int(time.time()),
        "text": body["text"],
    }
    if "reply_markup" in body:
        result["reply_markup"] = body["reply_markup"]
    return 200, {"ok": True, "result": result}, {}


def error(
    status: int,
    description: str,
    retry_after: int | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return status, body, headers or {}


def failure(status: int, error_text: str | None, retry_after: int | None) -> Answer:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    described = {
        429: f"Too Many Requests: retry after {retry_after or 1}",
        400: "Bad Request: chat not found",
    }
    description = error_text or described.get(status, "Internal Server Error")
    wait = int(retry_after or 1) if status == 429 else None
    return error(status, description, wait, headers)


def unauthorized() -> Answer:
    return error(401, "Unauthorized")


def describe(body: dict[str, Any]) -> Described:
    """sendMessage: the text, and the inline keyboard's buttons."""
    keyboard = (body.get("reply_markup") or {}).get("inline_keyboard") or ()
    titles = tuple(str(b.get("text")) for row in keyboard for b in row if b.get("text"))
    return Described(str(body.get("chat_id", "?")), str(body.get("text") or ""), titles)


API = SandboxApi(
    base_path="",
    credential=credential,
    answer=answer,
    failure=failure,
    unauthorized=unauthorized,
    describe=describe,
    shown_path=shown_path,
)
