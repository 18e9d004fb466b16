"""Slack Events API webhooks.

Follows Slack's docs (api.slack.com/authentication/verifying-requests-from-slack and
api.slack.com/apis/events-api):

- Every POST carries ``X-Slack-Request-Timestamp`` and ``X-Slack-Signature:
  v0=<hex>``, HMAC-SHA256 of ``"v0:" + timestamp + ":" + raw body`` keyed with the app's
  signing secret. A timestamp further than ``slack_max_clock_skew_s`` from now, in either
  direction, is refused so a captured request cannot be replayed later.
- ``url_verification`` (the Request URL handshake) carries no ``team_id``, so the signature is
  checked against every configured signing secret; after parsing, an ``event_callback``'s team
  must be an account whose secret is the one that matched.
- ``event_callback`` wraps one event. Slack retries an unacknowledged delivery up to three
  times within about an hour (``X-Slack-Retry-Num``), always with the same outer ``event_id``.
  But an app subscribed to both ``message.channels`` and ``app_mention`` receives one message
  as two events with different ids, so the ``platform_message_id`` we dedupe on is the message
  itself: ``<channel>/<ts>`` (an edit: ``<channel>/<ts>/edit/<edit event ts>``); the
  ``event_id`` is kept in ``raw``.
- Published: ``message`` (plain, ``file_share``, ``thread_broadcast``) and ``app_mention``.
  Edits (``message_changed`` whose inner message has ``edited``) are published with
  ``edited=True`` and the inner message's user and text; other ``message_changed`` events
  (link unfurls, thread reply counts on a parent) are not edits and are ignored.
- Ignored (200, nothing published): anything from a bot (``bot_id``, ``bot_message``, our own
  ``bot_user_id``) so our replies never loop back, and every other type or subtype.
- ``raw["ts"]`` keeps the Slack message id (the edited message's, for an edit), which is what
  a reply needs to start a thread.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from shared import metrics
from shared.channels._payload import (
    allow,
    field,
    hmac_sha256_hex,
    optional,
    optional_list,
    parse_json_object,
    shape_errors_as_400,
    unix_field,
)
from shared.channels._webhook import candidates, publish, signed_by
from shared.channels.slack.account import SlackAccount
from shared.clock import Clock
from shared.errors import BadRequest, ChatServiceError, Forbidden, NotFound, Unauthorized
from shared.ingress import Ingress
from shared.models import Channel, InboundMessage, MediaRef, MessageKind, Sender
from shared.tenants import Secret, TenantDirectory
from shared.web import WebRequest, WebResponse, json_response

log = logging.getLogger(__name__)

CHANNEL = Channel("slack")
SIGNATURE_HEADER = "X-Slack-Signature"
TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
MAX_TIMESTAMP_DIGITS = 12
RETRY_NUM_HEADER = "X-Slack-Retry-Num"
RETRY_REASON_HEADER = "X-Slack-Retry-Reason"
RETRY_WINDOW_S = 3600  # Slack's last retry comes about an hour after the first delivery
PATHS = frozenset({"/", "/events"})
EVENT_TYPES = frozenset({"message", "app_mention"})
# Message subtypes a person sends; the rest (joins, topic changes, deletions, ...) are ignored.
MESSAGE_SUBTYPES = frozenset({None, "file_share", "thread_broadcast"})


def sign(signing_secret: str, timestamp: str, body: bytes) -> str:
    return "v0=" + hmac_sha256_hex(signing_secret, b"v0:" + timestamp.encode() + b":" + body)


def verify_signature(
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    signing_secrets: Iterable[Secret],
    *,
    clock: Clock,
    max_skew_s: int,
) -> Secret:
    """The signing secret that signed ``body`` at ``timestamp``; :class:`Unauthorized` if none."""
    if not timestamp:
        raise Unauthorized(f"missing {TIMESTAMP_HEADER} header", code="missing_timestamp")
    if not signature:
        raise Unauthorized(f"missing {SIGNATURE_HEADER} header", code="missing_signature")
    # Slack sends whole seconds; anything else (signs, spaces, fractions, more digits than a
    # Unix time has for millennia) is not its header — and is refused before int() sees it.
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > MAX_TIMESTAMP_DIGITS:
        raise BadRequest(f"{TIMESTAMP_HEADER} is not a Unix time", code="bad_timestamp")
    if abs(clock() - int(timestamp)) > max_skew_s:
        raise Unauthorized(
            f"{TIMESTAMP_HEADER} is more than {max_skew_s}s from now", code="stale_timestamp"
        )
    if not signature.startswith("v0="):
        raise Unauthorized(f"{SIGNATURE_HEADER} must start with v0=", code="bad_signature")
    return signed_by(
        signing_secrets, signature, lambda secret: sign(secret.reveal(), timestamp, body)
    )


def parse(
    document: dict[str, Any], tenants: TenantDirectory, signed_by: Secret | None = None
) -> list[InboundMessage]:
    """The message in a (verified) ``event_callback`` body: one, or none if it is ignored.

    ``signed_by`` is the signing secret that signed the body: the team must be an account of
    that app, so one tenant's Slack app cannot post events for another tenant's workspace.
    """
    outer_type = field(document, "type", "")
    if outer_type != "event_callback":
        log.info("slack callback ignored", extra={"slack_type": outer_type})
        return []
    team_id = field(document, "team_id", "")
    account = accounts(tenants).get(team_id)
    if account is None:
        raise Forbidden(f"unknown team_id {team_id}", code="unknown_account")
    if signed_by is not None and account.signing_secret != signed_by:
        raise Unauthorized(f"team_id {team_id} is not signed by its own app", code="bad_signature")
    event_id = field(document, "event_id", "")
    event = field(document, "event", "", dict)
    message = _message(event, event_id, account)
    if message is None:
        log.info(
            "slack event ignored",
            extra={
                "event_id": event_id,
                "event_type": optional(event, "type"),
                "subtype": optional(event, "subtype"),
            },
        )
        return []
    return [message]


def _message(event: dict[str, Any], event_id: str, account: SlackAccount) -> InboundMessage | None:
    event_type = field(event, "type", "event")
    subtype = optional(event, "subtype", str, "event")
    if event_type not in EVENT_TYPES or _from_bot(event, account):
        return None
    edited = subtype == "message_changed"
    if edited:
        # The edit's text and author live in the inner message; only a real edit counts.
        body = field(event, "message", "event", dict)
        where = "event.message"
        if "edited" not in body or _from_bot(body, account):
            return None
        if optional(body, "subtype", str, where) not in MESSAGE_SUBTYPES:
            return None
    elif subtype in MESSAGE_SUBTYPES:
        body, where = event, "event"
    else:
        return None
    attachments = tuple(_file(f, f"{where}.files[{i}]") for i, f in enumerate(_files(body, where)))
    user = field(body, "user", where)
    channel = field(event, "channel", "event")
    ts = field(body, "ts", where)
    key = f"{channel}/{ts}/edit/{field(event, 'ts', 'event')}" if edited else f"{channel}/{ts}"
    return InboundMessage(
        tenant_id=account.tenant_id,
        channel=CHANNEL,
        account_id=account.team_id,
        chat_id=channel,
        platform_message_id=key,
        sender=Sender(id=user),
        kind=MessageKind.MEDIA if attachments else MessageKind.TEXT,
        # For an edit this is when the edit happened; raw["ts"] is the message edited.
        timestamp=unix_field(event, "ts", "event"),
        text=optional(body, "text", str, where) or None,
        attachments=attachments,
        thread_id=optional(body, "thread_ts", str, where) or None,
        edited=edited,
        raw_type=f"{event_type}.{subtype}" if subtype else event_type,
        raw={"ts": ts, "event_id": event_id},
    )


def _from_bot(message: dict[str, Any], account: SlackAccount) -> bool:
    user = optional(message, "user")
    return (
        optional(message, "bot_id") is not None
        or optional(message, "subtype") == "bot_message"
        or (bool(account.bot_user_id) and user == account.bot_user_id)
    )


def _files(message: dict[str, Any], where: str) -> list[dict[str, Any]]:
    return optional_list(message, "files", where, dict)


def _file(file: Any, path: str) -> MediaRef:
    # Only the id is certain: a file hidden by the workspace's plan limits carries nothing else.
    return MediaRef(
        type="file",
        id=field(file, "id", path),
        mime_type=optional(file, "mimetype", str, path),
        filename=optional(file, "name", str, path),
        url=optional(file, "url_private", str, path),
    )


def error_headers(exc: ChatServiceError) -> dict[str, str]:
    """Slack retries every non-2xx answer; a request that can never succeed says so.

    Signature failures are left retryable: Slack signs each retry afresh, so a clock that was
    briefly off does not lose the event.
    """
    return {"X-Slack-No-Retry": "1"} if exc.status in _NEVER_RETRY else {}


_NEVER_RETRY = frozenset({400, 404, 405, 413})


def handle(request: WebRequest, ingress: Ingress) -> WebResponse:
    """Verify, parse and publish one Events API request. Slack wants an answer within 3 s, so
    nothing here is slower than the one Kafka produce (and none at all for a retry seen before).
    """
    if request.path not in PATHS:
        raise NotFound(f"no route {request.path}")
    allow(request.method, "POST")
    secrets = candidates(
        request.body, named_team, accounts(ingress.tenants), lambda a: a.signing_secret
    )
    signing_secret = verify_signature(
        request.body,
        request.header(TIMESTAMP_HEADER),
        request.header(SIGNATURE_HEADER),
        secrets,
        clock=ingress.clock,
        max_skew_s=ingress.settings.slack_max_clock_skew_s,
    )
    document = parse_json_object(request.body)
    if field(document, "type", "") == "url_verification":
        challenge = field(document, "challenge", "")
        metrics.ingress_requests.labels(CHANNEL, "handshake").inc()
        return json_response(200, {"challenge": challenge})
    retry = request.header(RETRY_NUM_HEADER)
    if retry is not None:
        log.info(
            "slack retry",
            extra={"retry_num": retry, "retry_reason": request.header(RETRY_REASON_HEADER)},
        )
    with shape_errors_as_400():
        items = parse(document, ingress.tenants, signing_secret)
    return publish(ingress, CHANNEL, items, ttl_s=RETRY_WINDOW_S)


def named_team(document: Any) -> list[object]:
    """The workspace an (unverified) Events API request names (``team_id``; a url_verification
    names none)."""
    team = document.get("team_id") if isinstance(document, dict) else None
    return [team] if isinstance(team, str) else []


def accounts(tenants: TenantDirectory) -> Mapping[str, SlackAccount]:
    return tenants.of(CHANNEL)
