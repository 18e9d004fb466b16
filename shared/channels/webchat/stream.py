"""The widget's live stream: ``GET /stream``, Server-Sent Events (HTML Living Standard,
"Server-sent events").

Each message is one event: ``id:`` its stream position (a cursor of :mod:`.read`),
``event: message`` and ``data:`` the message as ``GET /messages`` lists it. Live replies come
from the Redis pub/sub channel the outbound dispatcher publishes on
(:func:`.outbound.pubsub_channel`).

Nothing lost, nothing twice, across any number of reconnects:

1. Subscribe first and wait until Redis confirms the subscription. The dispatcher publishes a
   reply only after it is stored, so every reply is either stored already (step 2 finds it)
   or published while we listen (step 3 gets it).
2. Replay from storage everything after the position the client had: ``Last-Event-ID`` (the
   header a reconnecting ``EventSource`` sends) or ``?last_event_id=``; none: the whole
   conversation.
3. Then live. A reply both replayed and published meanwhile is sent once (by message id).
   ``id:`` never goes backwards — a reply that arrives out of order is sent with the latest
   position — so a reconnect never replays what the client has.

A comment line every ``WEBCHAT_STREAM_HEARTBEAT_S`` finds a gone client (the write fails) and
keeps idle connections open through proxies. After ``WEBCHAT_STREAM_MAX_S`` (or when the
token expires, or after a replay of :data:`REPLAY_LIMIT` messages) the server ends the
response and the browser reconnects by itself with ``Last-Event-ID``. A stream holds one
gunicorn thread for as long as it is open: that is what the maximum bounds.

The token may come as ``?token=`` because ``EventSource`` cannot send an Authorization header.
Redis or MongoDB unreachable at the start → 503: ``EventSource`` gives up on a non-200, and
the widget falls back to polling ``GET /messages``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Generator, Sequence
from typing import Any, Protocol

from shared import metrics
from shared.cache import redis_client
from shared.channels.webchat.access import conversation_id, conversation_key_of, visitor
from shared.channels.webchat.account import CHANNEL
from shared.channels.webchat.outbound import pubsub_channel
from shared.channels.webchat.read import Cursor, Message, from_reply, get_history, optional_cursor
from shared.clock import Clock
from shared.errors import DependencyUnavailable, describe
from shared.ingress import Ingress
from shared.web import WebRequest, WebResponse

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/event-stream; charset=utf-8"
REPLAY_LIMIT = 500  # messages replayed by one response; the reconnect continues from there
RECONNECT_MS = 2000  # the browser's wait before it reconnects (the `retry:` field)
SUBSCRIBE_TIMEOUT_S = 2.0
LAST_EVENT_ID = "last_event_id"


class Subscription(Protocol):
    def next_payload(self, timeout_s: float) -> bytes | None:
        """The next message published, or None when none came within ``timeout_s``."""

    def close(self) -> None: ...


class RedisSubscription:
    """One pub/sub channel on its own Redis connection, confirmed before it is returned."""

    def __init__(self, redis_url: str, channel: str, clock: Clock) -> None:
        try:
            self._pubsub = redis_client(redis_url).pubsub()
            self._pubsub.subscribe(channel)
            deadline = clock() + SUBSCRIBE_TIMEOUT_S
            while (left := deadline - clock()) > 0:
                message = self._pubsub.get_message(timeout=left)
                if message is not None and message["type"] == "subscribe":
                    return
        except Exception as exc:  # any Redis failure: no live stream now
            self.close()
            raise DependencyUnavailable(
                f"Redis unavailable: {describe(exc)}", dependency="redis"
            ) from exc
        self.close()
        raise DependencyUnavailable("Redis did not confirm the subscription", dependency="redis")

    def next_payload(self, timeout_s: float) -> bytes | None:
        message = self._pubsub.get_message(timeout=max(0.0, timeout_s))
        if message is None or message["type"] != "message":
            return None
        data: bytes = message["data"]
        return data

    def close(self) -> None:
        pubsub = getattr(self, "_pubsub", None)
        if pubsub is not None:
            try:
                pubsub.close()
            except Exception as exc:  # the connection may be gone already
                log.debug("pub/sub close failed", extra={"error": describe(exc)})


def event(position: Cursor, message: Message) -> str:
    # JSON escapes line breaks inside strings, so `data:` is always one line (and ASCII: a lone
    # surrogate in a text cannot break the stream's encoding).
    data = json.dumps(message.body, separators=(",", ":"))
    return f"id: {position.encode()}\nevent: message\ndata: {data}\n\n"


def comment(text: str) -> str:
    return f": {text}\n\n"


def events(
    backlog: Sequence[Message],
    *,
    replay_complete: bool,
    start: Cursor | None,
    subscription: Subscription,
    conversation_key: str,
    clock: Clock,
    heartbeat_s: float,
    ends_at: float,
) -> Generator[str, None, None]:
    """The response body: ``retry:``, the replayed backlog, then live replies until ``ends_at``.

    Closes the subscription however it ends, including when the client goes away (the server
    closes the generator when a write fails).
    """
    try:
        yield f"retry: {RECONNECT_MS}\n\n"
        position, sent = start, set()
        for replayed in backlog:
            position = replayed.cursor if position is None else max(position, replayed.cursor)
            sent.add(replayed.id)
            yield event(position, replayed)
        if not replay_complete:
            yield comment("more to replay: reconnect with Last-Event-ID")
            return
        next_beat = clock() + heartbeat_s
        while (now := clock()) < ends_at:
            if now >= next_beat:
                yield comment("heartbeat")
                next_beat = now + heartbeat_s
                continue
            payload = subscription.next_payload(min(next_beat, ends_at) - now)
            message = _reply(payload, conversation_key) if payload is not None else None
            if message is None or message.id in sent:
                continue
            sent.add(message.id)
            position = message.cursor if position is None else max(position, message.cursor)
            yield event(position, message)
        yield comment("stream closed: reconnect with Last-Event-ID")
    finally:
        subscription.close()


def _reply(payload: bytes, conversation_key: str) -> Message | None:
    try:
        data: Any = json.loads(payload)
    except ValueError:
        log.warning("web chat pub/sub message is not JSON: skipped")
        return None
    return from_reply(data, conversation_key) if isinstance(data, dict) else None


def stream(request: WebRequest, ingress: Ingress) -> WebResponse:
    claims, cors = visitor(request, ingress, token_in_query=True)
    # The header is what EventSource sends when it reconnects, so it is the latest position.
    resume = request.header("Last-Event-ID") or request.query.get(LAST_EVENT_ID)
    start = optional_cursor(resume, LAST_EVENT_ID)
    settings, clock = ingress.settings, ingress.clock
    channel = pubsub_channel(claims.tenant_id, conversation_id(claims))
    subscription = RedisSubscription(settings.redis_url, channel, clock)  # before the replay
    key = conversation_key_of(claims)
    try:
        page = get_history().page(claims.tenant_id, key, start, REPLAY_LIMIT)
    except BaseException:
        subscription.close()
        raise
    metrics.ingress_requests.labels(CHANNEL, "stream").inc()
    body = events(
        page.messages,
        replay_complete=not page.has_more,
        start=start,
        subscription=subscription,
        conversation_key=key,
        clock=clock,
        heartbeat_s=settings.webchat_stream_heartbeat_s,
        # A stream lives no longer than its token: the reconnect needs a valid one.
        ends_at=min(clock() + settings.webchat_stream_max_s, claims.expires_at),
    )
    headers = {
        **cors,
        "Content-Type": CONTENT_TYPE,
        "Cache-Control": "no-store",
        "X-Accel-Buffering": "no",  # proxies that buffer responses must not hold events back
    }
    return WebResponse(200, body, headers)
