"""GET /stream of the webchat function served by gunicorn, as in its container, with Redis
and a MongoDB-protocol server: replies the outbound dispatcher sends (the real handler, the
way KafkaSource delivers to it) reach the stream within a second; a reconnect with
Last-Event-ID loses nothing and repeats nothing; heartbeats; the end of a stream."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from flask.testing import FlaskClient

from shared.channels.webchat import tokens as webchat_tokens
from shared.devstack.servers import free_port
from shared.events import message_outbound
from shared.models import OutboundMessage
from shared.tenants import TenantDirectory
from tests.builders import deliver
from tests.conftest import TENANTS
from tests.integration.outbound_support import (  # noqa: F401
    db_fixture,
    outbound_env_fixture,
    sandbox_url_fixture,
)
from tests.integration.sse_support import SseClient, webchat_server
from tests.integration.webchat_support import Visitor, reply, store_visitor_message, visitor_from

pytestmark = pytest.mark.integration

ACME_ORIGIN = "https://acme.example"
DELIVERY_BOUND_S = 1.0  # the requirement: a reply is on the stream within a second
Server = Callable[..., str]


@pytest.fixture
def start_server(outbound_env: dict[str, str], tmp_path: Path) -> Iterator[Server]:
    """Starts the webchat function with the test's environment (and ``settings`` on top)."""
    with ExitStack() as servers:

        def start(**settings: str) -> str:
            log_dir = tmp_path / f"server-{len(settings)}-{time.monotonic_ns()}"
            log_dir.mkdir()
            url: str = servers.enter_context(webchat_server(log_dir, **settings))
            return url

        yield start


@pytest.fixture
def server(start_server: Server) -> str:
    return start_server(WEBCHAT_STREAM_HEARTBEAT_S="0.5")


@pytest.fixture
def dispatcher(make_client: Callable[[str], FlaskClient], outbound_env: Any) -> FlaskClient:
    return make_client("outbound-dispatcher")


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=10) as client:
        yield client


@pytest.fixture
def streams() -> Iterator[list[SseClient]]:
    opened: list[SseClient] = []
    yield opened
    for stream in opened:
        stream.close()


def open_session(http: httpx.Client, server: str) -> Visitor:
    response = http.post(f"{server}/sessions", json={"site_key": "site-acme"})
    assert response.status_code == 201, response.text
    return visitor_from(response.json(), "site-acme", "acme")


def connect(
    streams: list[SseClient],
    server: str,
    visitor: Visitor,
    headers: dict[str, str] | None = None,
    **query: str,
) -> SseClient:
    url = f"{server}/stream?" + urlencode({"token": visitor.token, **query})
    stream = SseClient(url, headers)
    streams.append(stream)
    assert stream.status == 200
    kind, fields = stream.next(5)  # the first record: the stream is open and subscribed
    assert (kind, fields) == ("event", {"retry": "2000"})
    return stream


def dispatch(dispatcher: FlaskClient, message: OutboundMessage) -> None:
    """The reply through the real outbound-dispatcher: stored, marked sent, published."""
    response = deliver(dispatcher, message_outbound(message, "/chat-service/message-processor"))
    assert response.status_code == 200, response.data


def test_a_reply_the_dispatcher_sends_is_on_the_stream_within_a_second(
    server: str, dispatcher: FlaskClient, http: httpx.Client, streams: list[SseClient]
) -> None:
    visitor = open_session(http, server)
    stream = connect(streams, server, visitor)
    assert stream.headers is not None
    assert stream.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert stream.headers["cache-control"] == "no-store"
    message = reply(visitor, "r1", "Hello! How can I help?", datetime.now(UTC))

    dispatch(dispatcher, message)
    event = stream.next_event(DELIVERY_BOUND_S)

    assert event.event == "message"
    body = event.json()
    assert (body["id"], body["direction"], body["author"]) == ("r1", "outbound", "bot")
    assert body["text"] == "Hello! How can I help?"
    assert body["quick_replies"] == [{"id": "faq_hours", "title": "Opening hours"}]
    assert event.id == body["cursor"]
    # The same message, as GET /messages lists it from storage.
    listed = http.get(f"{server}/messages", headers=visitor.headers()).json()["messages"]
    assert listed == [body]


@pytest.mark.parametrize("resume_by", ["header", "query"])
def test_a_reconnect_with_last_event_id_loses_nothing_and_repeats_nothing(
    server: str,
    dispatcher: FlaskClient,
    db: Any,
    http: httpx.Client,
    streams: list[SseClient],
    resume_by: str,
) -> None:
    visitor = open_session(http, server)
    t0 = datetime.now(UTC)

    def at(seconds: int) -> datetime:
        return t0 + timedelta(seconds=seconds)

    dispatch(dispatcher, reply(visitor, "r1", "before the widget connected", at(0)))
    first = connect(streams, server, visitor)
    replayed = first.next_event(5)
    dispatch(dispatcher, reply(visitor, "r2", "live", at(1)))
    live = first.next_event(DELIVERY_BOUND_S)
    first.close()

    # While the widget is away: replies (published to nobody) and the visitor's own message.
    dispatch(dispatcher, reply(visitor, "r3", "while away", at(2)))
    mine = store_visitor_message(db, visitor, "m1", "are you there?", at(3))
    dispatch(dispatcher, reply(visitor, "r4", "yes", at(4)))

    position = live.id
    assert position is not None
    if resume_by == "header":
        second = connect(streams, server, visitor, {"Last-Event-ID": position})
    else:
        second = connect(streams, server, visitor, last_event_id=position)
    caught_up = [second.next_event(5) for _ in range(3)]
    dispatch(dispatcher, reply(visitor, "r5", "and live again", at(5)))
    after = second.next_event(DELIVERY_BOUND_S)
    extra = second.events_until_quiet(0.5)

    seen = [e.json()["id"] for e in [replayed, live, *caught_up, after, *extra]]
    assert seen == ["r1", "r2", "r3", mine, "r4", "r5"]
    assert caught_up[1].json()["client_message_id"] == "m1"
    ids = [e.id for e in [replayed, live, *caught_up, after]]
    assert ids == [e.json()["cursor"] for e in [replayed, live, *caught_up, after]]


def test_an_idle_stream_gets_heartbeats_and_ends_for_the_client_to_reconnect(
    start_server: Server, http: httpx.Client, streams: list[SseClient]
) -> None:
    server = start_server(WEBCHAT_STREAM_HEARTBEAT_S="0.3", WEBCHAT_STREAM_MAX_S="1.5")
    stream = connect(streams, server, open_session(http, server))

    received = []
    while (item := stream.next(5))[0] != "end":
        received.append(item)

    heartbeats = [item for item in received if item == ("comment", "heartbeat")]
    assert len(heartbeats) >= 2
    assert received[-1] == ("comment", "stream closed: reconnect with Last-Event-ID")
    assert all(kind == "comment" for kind, _ in received)


def test_another_conversation_hears_nothing(
    server: str, dispatcher: FlaskClient, http: httpx.Client, streams: list[SseClient]
) -> None:
    visitor, stranger = open_session(http, server), open_session(http, server)
    theirs = connect(streams, server, stranger)
    ours = connect(streams, server, visitor)

    dispatch(dispatcher, reply(visitor, "r1", "for the visitor only", datetime.now(UTC)))

    assert ours.next_event(DELIVERY_BOUND_S).json()["id"] == "r1"
    assert theirs.events_until_quiet(0.5) == []


def test_the_token_may_be_a_header_and_the_site_origin_may_read(
    server: str, dispatcher: FlaskClient, http: httpx.Client, streams: list[SseClient]
) -> None:
    visitor = open_session(http, server)
    url = f"{server}/stream"
    stream = SseClient(url, visitor.headers(Origin=ACME_ORIGIN))
    streams.append(stream)

    assert stream.status == 200
    assert stream.headers is not None
    assert stream.headers["access-control-allow-origin"] == ACME_ORIGIN


def expired_token() -> str:
    account = TenantDirectory.from_dict(TENANTS).of("webchat")["site-acme"]
    return webchat_tokens.issue(account, now=time.time() - 3600, ttl_s=1800).token


def test_refusals_are_json_before_any_stream(server: str, http: httpx.Client) -> None:
    visitor = open_session(http, server)

    def refused(path: str, **headers: str) -> tuple[int, str]:
        response = http.get(f"{server}{path}", headers=headers)
        return response.status_code, response.json()["error"]

    assert refused("/stream") == (401, "missing_token")
    assert refused(f"/stream?token={expired_token()}") == (401, "token_expired")
    assert refused(f"/stream?token={visitor.token}&last_event_id=nope") == (
        400,
        "invalid_parameter",
    )
    evil = {"Origin": "https://evil.example"}
    assert refused(f"/stream?token={visitor.token}", **evil) == (403, "origin_not_allowed")


def test_redis_down_is_a_503_so_the_widget_polls_instead(
    start_server: Server, http: httpx.Client
) -> None:
    server = start_server(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    visitor = open_session(http, server)  # sessions work without Redis (limits degrade)

    response = http.get(f"{server}/stream", params={"token": visitor.token})

    assert response.status_code == 503
    assert response.json()["error"] == "dependency_unavailable"
    assert int(response.headers["Retry-After"]) > 0
    assert http.get(f"{server}/messages", headers=visitor.headers()).status_code == 200
