"""Web chat: our own channel, spoken by the widget embedded on a tenant's site.

- ``POST /sessions`` ``{"site_key", "name"?}`` starts a conversation and answers 201 with a
  visitor token (see :mod:`shared.channels.webchat.tokens`) bound to it. The visitor id is
  the server's: a body naming one is refused, so nobody can speak as another visitor (or mint
  a fresh per-user budget) by choosing an id.
- ``POST /sessions/resume`` with ``Authorization: Bearer <token>`` answers 200 with a new
  token for the same visitor and conversation: how a returning visitor keeps their identity
  and history, for as long as they hold a token that has not expired, up to
  ``WEBCHAT_SESSION_MAX_AGE_S`` after the session started. Then it answers 401
  ``session_expired`` (the widget starts a new session): a token that leaked cannot be kept
  alive for ever by resuming it. A token without a session start (issued before it existed,
  or by a replica not yet updated during a rollout) starts its session at its ``iat``.
- ``POST /messages`` with the token and ``{"client_message_id", "text", "attachments"?}``
  publishes one inbound message and answers 202. The client generates the id and resends with
  the same id until it gets an answer, so the id is the dedupe key. Limited per conversation
  and per client address (429 with ``Retry-After``).

The read side (``GET /messages``, ``GET /stream``) is in :mod:`.read` and :mod:`.stream`, the
widget's files in :mod:`.static`, the routes in :mod:`.routes`, CORS in :mod:`.cors`.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from typing import Any
from urllib.parse import urlsplit

from shared import metrics
from shared.channels._payload import (
    field,
    optional,
    parse_json_object,
    rfc3339,
    shape_errors_as_400,
    typed,
)
from shared.channels.webchat import access
from shared.channels.webchat import tokens as webchat_tokens
from shared.channels.webchat.account import CHANNEL, WebchatAccount
from shared.channels.webchat.cors import accounts, cors_headers
from shared.channels.webchat.tokens import IssuedToken, VisitorClaims
from shared.dataclass import dataclass
from shared.errors import BadRequest, Forbidden, RateLimited, Unauthorized
from shared.ingress import Ingress
from shared.models import InboundMessage, MediaRef, MessageKind, Sender
from shared.ratelimit import Decision
from shared.web import WebRequest, WebResponse, json_response

log = logging.getLogger(__name__)

SESSIONS_PATH = "/sessions"
RESUME_PATH = "/sessions/resume"
MESSAGES_PATH = "/messages"
# A widget retries an unanswered send for minutes; a day covers a tab left open overnight.
DEDUPE_WINDOW_S = 24 * 3600
CLIENT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")  # client_message_id
MAX_TEXT_CHARS = 4096
MAX_NAME_CHARS = 128
MAX_ATTACHMENTS = 10
MAX_URL_CHARS = 2048
ATTACHMENT_TYPES = frozenset({"image", "audio", "video", "document", "file"})


@dataclass(frozen=True)
class SessionRequest:
    site_key: str
    name: str | None = None


@dataclass(frozen=True)
class MessageRequest:
    client_message_id: str
    text: str | None
    attachments: tuple[MediaRef, ...] = ()


def parse_session(document: dict[str, Any]) -> SessionRequest:
    if "visitor_id" in document:
        raise BadRequest(
            "field 'visitor_id' is not accepted: the server chooses the visitor id (a "
            f"returning visitor presents their token to POST {RESUME_PATH})",
            code="invalid_field",
        )
    return SessionRequest(
        site_key=field(document, "site_key", ""),
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


def start_session(request: WebRequest, ingress: Ingress) -> WebResponse:
    document = parse_json_object(request.body)
    with shape_errors_as_400():
        session = parse_session(document)
    account = accounts(ingress.tenants).get(session.site_key)
    if account is None:
        raise Forbidden(f"unknown site_key {session.site_key}", code="unknown_account")
    cors = cors_headers(request.header("Origin"), account)
    _limit_sessions(account, request, ingress)
    issued = webchat_tokens.issue(
        account,
        now=ingress.clock(),
        ttl_s=ingress.settings.webchat_token_ttl_s,
        name=session.name,
        session_max_age_s=_session_max_age_s(ingress),
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
    return json_response(201, _session_body(issued), cors)


def resume_session(request: WebRequest, ingress: Ingress) -> WebResponse:
    """A new token for the visitor and conversation of a token that is still valid, while
    their session has time left."""
    claims, cors = access.visitor(request, ingress)
    now, ttl_s = ingress.clock(), ingress.settings.webchat_token_ttl_s
    max_age_s = _session_max_age_s(ingress)
    ends_at = claims.session_start + max_age_s
    if claims.expires_at >= ends_at and int(now) + ttl_s >= ends_at:
        # The session's end caps both tokens: a new one would not last longer (and the widget,
        # renewing before expiry, would ask again at once). Refused before it costs a slot of
        # the session budget or a signature.
        raise Unauthorized(
            "the session has reached its maximum age: start a new one", code="session_expired"
        )
    account = accounts(ingress.tenants)[claims.site_key]
    _limit_sessions(account, request, ingress)
    issued = webchat_tokens.issue(
        account,
        now=now,
        ttl_s=ttl_s,
        visitor_id=claims.visitor_id,
        name=claims.name,
        conversation_id=claims.conversation_id,
        session_started_at=claims.session_start,
        session_max_age_s=max_age_s,
    )
    metrics.ingress_requests.labels(CHANNEL, "session_resumed").inc()
    return json_response(200, _session_body(issued), cors)


def _session_max_age_s(ingress: Ingress) -> int:
    """``WEBCHAT_SESSION_MAX_AGE_S``, and never less than one token's lifetime: a session's
    first token is whole, whatever the setting (0 would sign tokens that had expired)."""
    settings = ingress.settings
    return max(settings.webchat_session_max_age_s, settings.webchat_token_ttl_s)


def _session_body(issued: IssuedToken) -> dict[str, str]:
    return {
        "token": issued.token,
        "conversation_id": issued.claims.conversation_id,
        "visitor_id": issued.claims.visitor_id,
        "expires_at": issued.expires_at_rfc3339,
    }


def _limit_sessions(account: WebchatAccount, request: WebRequest, ingress: Ingress) -> None:
    if ingress.session_limiter is not None:
        # Anyone may ask for a session: without this, one script could mint sessions (and so
        # per-user message budgets) without end.
        decision = ingress.session_limiter.check(account.site_key, CHANNEL, request.client)
        _refuse_over_limit(decision, "new sessions")


def post_message(request: WebRequest, ingress: Ingress) -> WebResponse:
    # The token is checked before the body is read: an anonymous caller learns nothing more.
    now = ingress.clock()
    claims, cors = access.visitor(request, ingress)
    document = parse_json_object(request.body)
    with shape_errors_as_400():
        message = parse_message(document)
    if ingress.message_limiter is not None:
        decision = ingress.message_limiter.check(
            access.conversation_key_of(claims), claims.site_key, request.client
        )
        _refuse_over_limit(decision, "messages")
    report = ingress.publish(CHANNEL, [to_inbound(message, claims, now)], ttl_s=DEDUPE_WINDOW_S)
    metrics.ingress_requests.labels(CHANNEL, report.outcome).inc()
    body = {
        "status": "accepted",
        "message_id": message.client_message_id,
        "conversation_id": claims.conversation_id,
        "duplicate": report.duplicates > 0,
    }
    return json_response(202, body, cors)


def _refuse_over_limit(decision: Decision, what: str) -> None:
    if not decision.allowed:
        raise RateLimited(
            f"too many {what} ({decision.scope} limit)", retry_after_s=decision.retry_after_s
        )


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
    if not _is_public_https_url(url):
        raise BadRequest(
            f"field '{path}.url' must be an https URL of a public host", code="invalid_field"
        )
    return MediaRef(
        type=media_type,
        id=url,
        url=url,
        mime_type=_optional_text(item, "mime_type", path, 255),
        filename=_optional_text(item, "filename", path, 255),
    )


# Names that never resolve to a public host (RFC 6761, RFC 6762, RFC 8375, cloud conventions).
_PRIVATE_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa", ".lan", ".intranet")


def _is_public_https_url(url: str) -> bool:
    """https, no credentials, a public host: the URL comes from an anonymous browser and may
    later be fetched by our own services, so nothing may point inside a network (a loopback,
    private or link-local address, a metadata service, a single-label or local name). Names
    are not resolved here: whatever fetches a URL must still refuse private addresses."""
    if len(url) > MAX_URL_CHARS:
        return False
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".").lower()
        port = parts.port  # a malformed port raises here
    except ValueError:  # an unclosed IPv6 bracket, a port that is no number
        return False
    if parts.scheme != "https" or not host or parts.username or parts.password or port == 0:
        return False
    try:
        return ipaddress.ip_address(host).is_global
    except ValueError:
        pass
    return "." in host and host != "localhost" and not host.endswith(_PRIVATE_SUFFIXES)
