"""The local sandbox's WhatsApp Cloud API: ``POST /{version}/{phone_number_id}/messages`` with a
bearer token → ``{"messaging_product", "contacts", "messages": [{"id": "wamid…"}]}``; errors in
the Graph API's shape (``{"error": {"message", "type", "code", "fbtrace_id"}}``)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

from shared.channels.contract import Answer, Described, SandboxApi, SandboxState, bearer

VERSION = "v21.0"
PATH = re.compile(r"^/(v\d+\.\d+)/([^/]+)/messages$")


def credential(path: str, headers: Mapping[str, str]) -> str | None:
    if not PATH.match(path):
        return None
    return bearer(headers)


def answer(body: dict[str, Any], state: SandboxState) -> Answer:
    del state
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


def graph_error(
    status: int, code: int, message: str, headers: dict[str, str] | None = None
) -> Answer:
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "SANDBOX"}
    return status, {"error": error}, headers or {}


def failure(status: int, error: str | None, retry_after: int | None) -> Answer:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    code = int(error) if error and error.isdigit() else {429: 130429, 400: 100}.get(status, 1)
    return graph_error(status, code, f"(#{code}) sandbox failure", headers)


def unauthorized() -> Answer:
    return graph_error(401, 190, "Invalid OAuth access token")


def describe(body: dict[str, Any]) -> Described:
    """A text, interactive (buttons or list) or template message."""
    text: Any = (body.get("text") or {}).get("body")
    interactive = body.get("interactive") or {}
    if not text and interactive:
        text = (interactive.get("body") or {}).get("text")
    if not text and isinstance(body.get("template"), dict):
        text = f"(template {body['template'].get('name')})"
    action = interactive.get("action") or {}
    titles = [b.get("reply", {}).get("title") for b in action.get("buttons") or ()]
    titles += [r.get("title") for s in action.get("sections") or () for r in s.get("rows") or ()]
    return Described(str(body.get("to", "?")), str(text or ""), tuple(str(t) for t in titles if t))


API = SandboxApi(
    base_path=f"/{VERSION}",
    credential=credential,
    answer=answer,
    failure=failure,
    unauthorized=unauthorized,
    describe=describe,
)
