"""The local sandbox's Messenger Send API: ``POST /messenger/{version}/{page_id}/messages``
with the Page token as bearer → ``{"recipient_id", "message_id": "m_…"}``; errors in the Graph
API's shape. (Under ``/messenger`` so it never shares a path with the WhatsApp Cloud API.)"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

from shared.channels.contract import Answer, Described, SandboxApi, SandboxState, bearer

VERSION = "v21.0"
PATH = re.compile(r"^/messenger/(v\d+\.\d+)/([^/]+)/messages$")


def credential(path: str, headers: Mapping[str, str]) -> str | None:
    if not PATH.match(path):
        return None
    return bearer(headers)


def graph_error(
    status: int, code: int, message: str, headers: dict[str, str] | None = None
) -> Answer:
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "SANDBOX"}
    return status, {"error": error}, headers or {}


def answer(body: dict[str, Any], state: SandboxState) -> Answer:
    del state
    recipient = (body.get("recipient") or {}).get("id")
    message = body.get("message") or {}
    if not recipient or not (message.get("text") or message.get("attachment")):
        return graph_error(400, 100, "(#100) The parameter recipient and message are required")
    if body.get("messaging_type") not in ("RESPONSE", "UPDATE", "MESSAGE_TAG"):
        return graph_error(400, 100, "(#100) Param messaging_type must be a valid type")
    return 200, {"recipient_id": str(recipient), "message_id": f"m_SANDBOX{uuid.uuid4().hex}"}, {}


def failure(status: int, error: str | None, retry_after: int | None) -> Answer:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    code = int(error) if error and error.isdigit() else {429: 613, 400: 100}.get(status, 2)
    return graph_error(status, code, f"(#{code}) sandbox failure", headers)


def unauthorized() -> Answer:
    return graph_error(401, 190, "Invalid OAuth access token")


def describe(body: dict[str, Any]) -> Described:
    message = body.get("message") or {}
    titles = tuple(
        str(q.get("title")) for q in message.get("quick_replies") or () if q.get("title")
    )
    recipient = str((body.get("recipient") or {}).get("id", "?"))
    return Described(recipient, str(message.get("text") or ""), titles)


API = SandboxApi(
    base_path=f"/messenger/{VERSION}",
    credential=credential,
    answer=answer,
    failure=failure,
    unauthorized=unauthorized,
    describe=describe,
)
