"""Web chat: our own channel, spoken by the widget embedded on a tenant's site.

- ``POST /sessions`` ``{"site_key", "visitor_id"?, "name"?}`` starts a conversation and answers
  201 with a visitor token (see :mod:`shared.channels.webchat.tokens`) bound to it.
- ``POST /messages`` with ``Authorization: Bearer <token>`` and ``{"client_message_id", "text",
  "attachments"?}`` publishes one inbound message and answers 202. The client generates the id
  and resends with the same id until it gets an answer, so the id is the dedupe key.
- ``OPTIONS`` on both is the CORS preflight (Fetch Standard, "CORS protocol").

A site may list ``allowed_origins``; a browser request from any other origin is refused with
403. A request without ``Origin`` is not from a browser (e.g. a tenant's own server) and is let
through: the token, not the origin, is what authenticates a visitor.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from shared import metrics
from shared.channels._payload import (
    allow,
    field,
    optional,
    parse_json_object,
    rfc3339,
    shape_errors_as_400,
    typed,
)
from shared.channels.webchat import tokens as webchat_tokens
from shared.channels.webchat.account import WebchatAccount
from shared.channels.webchat.tokens import VisitorClaims
from shared.errors import BadRequest, ChatServiceError, Forbidden, NotFound, RateLimited
from shared.ingress import Ingress
from shared.models import Channel, InboundMessage, MediaRef, MessageKind, Sender
from shared.tenants import TenantDirectory
from shared.web import WebRequest, WebResponse, json_response

log = logging.getLogger(__name__)

CHANNEL = Channel("webchat")
SESSIONS_PATH = "/sessions"
MESSAGES_PATH = "/messages"
METHODS = ("POST", "OPTIONS")
# A widget retries an unanswered send for minutes; a day covers a tab left open overnight.
DEDUPE_WINDOW_S = 24 * 3600
CLIENT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")  # client_message_id and visitor_id
MAX_TEXT_CHARS = 4096
MAX_NAME_CHARS = 128
MAX_ATTACHMENTS = 10
MAX_URL_CHARS = 2048
ATTACHMENT_TYPES = frozenset({"image", "audio", "video", "document", "file"})
PREFLIGHT_MAX_AGE_S = 600


@dataclass(frozen=True)
class SessionRequest:
    site_key: str
    visitor_id: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class MessageRequest:
    client_message_id: str
    text: str | None
    attachments: tuple[MediaRef, ...] = ()


def parse_session(document: dict[str, Any]) -> SessionRequest:
    return SessionRequest(
        site_key=field(document, "site_key", ""),
        visitor_id=(
            _client_id(document, "visitor_id")
            if optional(document, "visitor_id") is not None
            else None
        ),
        name=_optional_text(document, "name", "", MAX_NAME_CHARS),
    )


def parse_message(document: dict[str, Any]) -> MessageRequest:
    client_message_id = _client_id(document, "client_message_id")
    attachments = _attachments(optional(document, "attachments"))
    if attachments and optional(document, "text") in (None, ""):
        text = None  # a picture may be sent without a caption
    else:
        text = field(document, "text", "")
        if len(text) > MAX_TEXT_CHARS:
            raise BadRequest(
                f"field 'text' is longer than {MAX_TEXT_CHARS} characters", code="invalid_field"
            )
    return MessageRequest(client_message_id, text, attachments)


def to_inbound(message: MessageRequest, visitor: VisitorClaims, now: float) -> InboundMessage:
    """The canonical message; tenant, site and conversation come from the verified token only."""
    kind = MessageKind.MEDIA if message.attachments else MessageKind.TEXT
    return InboundMessage(
        tenant_id=visitor.tenant_id,
        channel=CHANNEL,
        account_id=visitor.site_key,
        chat_id=visitor.conversation_id,
        # A client message id is only unique within its conversation (every widget may count
        # from 1), so the platform id that dedupe, event ids and storage key on includes it.
        platform_message_id=f"{visitor.conversation_id}/{message.client_message_id}",
        sender=Sender(id=visitor.visitor_id, name=visitor.name),
        kind=kind,
        timestamp=rfc3339(now),
        text=message.text,
        attachments=message.attachments,
        raw_type=kind.value,
        raw={"client_message_id": message.client_message_id},
    )


def cors_headers(origin: str | None, account: WebchatAccount) -> dict[str, str]:
    """CORS headers for a request to ``account``'s site; :class:`Forbidden` for a foreign origin."""
    if origin is None:
        return {}
    if account.allowed_origins and not _listed(origin, account.allowed_origins):
        raise Forbidden(
            f"origin {origin} is not allowed for site {account.site_key}",
            code="origin_not_allowed",
        )
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


def preflight(origin: str | None, tenants: TenantDirectory) -> WebResponse:
    """The answer to a CORS preflight.

    A preflight carries neither the body nor the token, so the site is not known yet: it passes
    when some site accepts the origin, and the real request is checked against its own site.
    """
    headers = {
        "Allow": ", ".join(METHODS),
        "Access-Control-Allow-Methods": "POST",
        "Access-Control-Allow-Headers": "Authorization, Content-Type",
        "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_S),
    }
    if origin is not None:
        if not _some_site_accepts(origin, tenants):
            raise Forbidden(
                f"origin {origin} is not allowed by any site", code="origin_not_allowed"
            )
        headers |= {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    return WebResponse(204, "", headers)


def error_cors_headers(
    exc: ChatServiceError, origin: str | None, tenants: TenantDirectory
) -> dict[str, str]:
    """CORS headers for an error answer, so the widget can read it (``token_expired`` means
    "start a new session"). Errors are often raised before the site is known, so the test is
    the preflight's; a refused origin gets none, and the browser reports a CORS failure.
    """
    if origin is None or exc.code == "origin_not_allowed":
        return {}
    if not _some_site_accepts(origin, tenants):
        return {}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


def handle(request: WebRequest, ingress: Ingress) -> WebResponse:
    if request.path not in (SESSIONS_PATH, MESSAGES_PATH):
        raise NotFound(f"no route {request.path}")
    allow(request.method, *METHODS)
    if request.method == "OPTIONS":
        return preflight(request.header("Origin"), ingress.tenants)
    if request.path == SESSIONS_PATH:
        return start_session(request, ingress)
    return post_message(request, ingress)


def start_session(request: WebRequest, ingress: Ingress) -> WebResponse:
    document = parse_json_object(request.body)
    with shape_errors_as_400():
        session = parse_session(document)
    account = accounts(ingress.tenants).get(session.site_key)
    if account is None:
        raise Forbidden(f"unknown site_key {session.site_key}", code="unknown_account")
    cors = cors_headers(request.header("Origin"), account)
    if ingress.session_limiter is not None:
        # Anyone may ask for a session, with any visitor id: without this, one script could
        # mint sessions (and so per-user message budgets) without end.
        decision = ingress.session_limiter.check(account.site_key, CHANNEL, request.client)
        if not decision.allowed:
            raise RateLimited(
                f"too many new sessions ({decision.scope} limit)",
                retry_after_s=decision.retry_after_s,
            )
    issued = webchat_tokens.issue(
        account,
        now=ingress.clock(),
        ttl_s=ingress.settings.webchat_token_ttl_s,
        visitor_id=session.visitor_id,
        name=session.name,
    )
    metrics.ingress_requests.labels(CHANNEL, "session").inc()
    log.info(
        "webchat session started",
        extra={
            "tenant_id": account.tenant_id,
            "site_key": account.site_key,
            "conversation_id": issued.claims.conversation_id,
        },
    )
    body = {
        "token": issued.token,
        "conversation_id": issued.claims.conversation_id,
        "visitor_id": issued.claims.visitor_id,
        "expires_at": issued.expires_at_rfc3339,
    }
    return json_response(201, body, cors)


def post_message(request: WebRequest, ingress: Ingress) -> WebResponse:
    # The token is checked before the body is read: an anonymous caller learns nothing more.
    now = ingress.clock()
    token = webchat_tokens.bearer_token(request.header("Authorization"))
    visitor = webchat_tokens.verify(token, ingress.tenants, now=now)
    cors = cors_headers(request.header("Origin"), accounts(ingress.tenants)[visitor.site_key])
    document = parse_json_object(request.body)
    with shape_errors_as_400():
        message = parse_message(document)
    report = ingress.publish(CHANNEL, [to_inbound(message, visitor, now)], ttl_s=DEDUPE_WINDOW_S)
    metrics.ingress_requests.labels(CHANNEL, report.outcome).inc()
    body = {
        "status": "accepted",
        "message_id": message.client_message_id,
        "conversation_id": visitor.conversation_id,
        "duplicate": report.duplicates > 0,
    }
    return json_response(202, body, cors)


def _some_site_accepts(origin: str, tenants: TenantDirectory) -> bool:
    sites = accounts(tenants).values()
    return any(not a.allowed_origins or _listed(origin, a.allowed_origins) for a in sites)


def _listed(origin: str, allowed: tuple[str, ...]) -> bool:
    # Browsers send a serialised origin (lower-case scheme and host, no path); configured
    # entries may carry a trailing slash or capitals, which would otherwise never match.
    return origin.lower() in {entry.rstrip("/").lower() for entry in allowed}


def _client_id(document: dict[str, Any], key: str) -> str:
    value: str = field(document, key, "")
    if not CLIENT_ID.fullmatch(value):
        raise BadRequest(
            f"field '{key}' must be 1-128 characters of A-Z a-z 0-9 _ . : -",
            code="invalid_field",
        )
    return value


def _optional_text(obj: Any, key: str, path: str, max_chars: int) -> str | None:
    value = optional(obj, key)
    if value is None:
        return None
    where = f"{path}.{key}" if path else key
    if not isinstance(value, str) or not 1 <= len(value) <= max_chars:
        raise BadRequest(
            f"field '{where}' must be a string of 1-{max_chars} characters", code="invalid_field"
        )
    return value


def _attachments(raw: Any) -> tuple[MediaRef, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > MAX_ATTACHMENTS:
        raise BadRequest(
            f"field 'attachments' must be a list of at most {MAX_ATTACHMENTS}",
            code="invalid_field",
        )
    return tuple(_attachment(item, f"attachments[{i}]") for i, item in enumerate(raw))


def _attachment(item: Any, path: str) -> MediaRef:
    typed(item, path, dict)
    media_type = field(item, "type", path)
    if media_type not in ATTACHMENT_TYPES:
        raise BadRequest(
            f"field '{path}.type' must be one of {', '.join(sorted(ATTACHMENT_TYPES))}",
            code="invalid_field",
        )
    url = field(item, "url", path)
    if not _is_https_url(url):
        raise BadRequest(f"field '{path}.url' must be an https URL", code="invalid_field")
    return MediaRef(
        type=media_type,
        id=url,
        url=url,
        mime_type=_optional_text(item, "mime_type", path, 255),
        filename=_optional_text(item, "filename", path, 255),
    )


def _is_https_url(url: str) -> bool:
    # Only https: the URL comes from a browser and may later be fetched by our own services.
    if len(url) > MAX_URL_CHARS:
        return False
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return False
    return parts.scheme == "https" and bool(parts.hostname)


def accounts(tenants: TenantDirectory) -> Mapping[str, WebchatAccount]:
    return tenants.of(CHANNEL)
