"""The live stream's body without a server: replay, then live replies, each once, with an
``id:`` that never goes back; heartbeats; the end. Time is a fake clock that the fake
subscription moves forward. The real stream (gunicorn, Redis, MongoDB) is tested in
tests/integration/test_webchat_stream.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

from shared.channels.webchat.read import Cursor, Message, from_document
from shared.channels.webchat.stream import comment, event, events
from shared.models import Author, Channel, OutboundMessage

KEY = "acme:webchat:site-acme/c1"
T0 = 1_750_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class FakeSubscription:
    """Messages "published" at given times; waiting moves the clock."""

    def __init__(self, clock: Clock, published: list[tuple[float, bytes]] | None = None) -> None:
        self.clock = clock
        self.published = sorted(published or [])
        self.closed = False

    def next_payload(self, timeout_s: float) -> bytes | None:
        if self.published and self.published[0][0] <= self.clock.now + timeout_s:
            at, payload = self.published.pop(0)
            self.clock.now = max(self.clock.now, at)
            return payload
        self.clock.now += timeout_s
        return None

    def close(self) -> None:
        self.closed = True


def reply(message_id: str, created_ms: int, conversation_key: str = KEY) -> bytes:
    chat = conversation_key.rsplit("/", 1)[1]
    created_at = datetime.fromtimestamp(created_ms / 1000, UTC).isoformat()
    data = OutboundMessage(
        tenant_id="acme",
        channel=Channel("webchat"),
        account_id="site-acme",
        chat_id=chat,
        message_id=message_id,
        text=f"reply {message_id}",
        author=Author.BOT,
        created_at=created_at,
    ).to_dict()
    return json.dumps(data).encode()


def stored(message_id: str, created_ms: int) -> Message:
    created_at = datetime.fromtimestamp(created_ms / 1000, UTC)
    document = {"_id": message_id, "direction": "outbound", "author": "bot", "text": message_id}
    return from_document(document | {"created_at": created_at})


def run(
    backlog: list[Message],
    subscription: FakeSubscription,
    clock: Clock,
    *,
    start: Cursor | None = None,
    replay_complete: bool = True,
    heartbeat_s: float = 15,
    lasts_s: float = 60,
) -> list[str]:
    body: Iterator[str] = events(
        backlog,
        replay_complete=replay_complete,
        start=start,
        subscription=subscription,
        conversation_key=KEY,
        clock=clock,
        heartbeat_s=heartbeat_s,
        ends_at=clock() + lasts_s,
    )
    return list(body)


def sent(frames: list[str]) -> list[tuple[str, str]]:
    """(id, message id) of every message event."""
    result = []
    for frame in frames:
        if frame.startswith("id: "):
            lines = dict(line.split(": ", 1) for line in frame.strip().split("\n"))
            assert lines["event"] == "message"
            result.append((lines["id"], json.loads(lines["data"])["id"]))
    return result


def test_an_event_is_one_sse_record_with_json_on_one_line() -> None:
    message = stored("m1", 1_750_000_000_000)
    message.body["text"] = "two\nlines"
    frame = event(message.cursor, message)
    assert frame.endswith("\n\n") and frame.count("\n") == 4
    assert frame.startswith(f"id: {message.cursor.encode()}\nevent: message\ndata: {{")
    assert json.loads(frame.split("data: ", 1)[1])["text"] == "two\nlines"
    assert comment("heartbeat") == ": heartbeat\n\n"


def test_replay_then_live_each_message_once() -> None:
    clock = Clock()
    backlog = [stored("a", 1000), stored("b", 2000)]
    subscription = FakeSubscription(
        clock,
        [
            (T0 + 1, reply("b", 2000)),  # published while the backlog was read: already sent
            (T0 + 2, reply("c", 3000)),
            (T0 + 3, reply("c", 3000)),  # a redelivered event publishes twice
        ],
    )

    frames = run(backlog, subscription, clock)

    assert frames[0] == "retry: 2000\n\n"
    assert [message for _, message in sent(frames)] == ["a", "b", "c"]
    assert frames[-1] == comment("stream closed: reconnect with Last-Event-ID")
    assert subscription.closed


def test_the_id_never_goes_back() -> None:
    # A reply stamped before one already sent is still sent, under the latest position, so a
    # reconnect with that id never replays what the client has.
    clock = Clock()
    subscription = FakeSubscription(clock, [(T0 + 1, reply("late", 500))])

    frames = run([stored("a", 1000)], subscription, clock)

    [(first_id, _), (late_id, late)] = sent(frames)
    assert late == "late"
    assert late_id == first_id == Cursor(1000, "a").encode()


def test_a_resumed_stream_starts_after_the_clients_position() -> None:
    clock = Clock()
    start = Cursor(1000, "a")
    subscription = FakeSubscription(clock, [(T0 + 1, reply("c", 3000))])

    frames = run([stored("b", 2000)], subscription, clock, start=start)

    assert sent(frames) == [(Cursor(2000, "b").encode(), "b"), (Cursor(3000, "c").encode(), "c")]


def test_other_conversations_and_garbage_are_skipped() -> None:
    clock = Clock()
    subscription = FakeSubscription(
        clock,
        [
            (T0 + 1, reply("x", 3000, conversation_key="acme:webchat:site-acme/other")),
            (T0 + 2, b"not json"),
            (T0 + 3, b"[1, 2]"),
            (T0 + 4, reply("ok", 4000)),
        ],
    )

    assert [m for _, m in sent(run([], subscription, clock))] == ["ok"]


def test_heartbeats_while_nothing_happens_and_the_stream_ends_on_time() -> None:
    clock = Clock()
    subscription = FakeSubscription(clock)

    frames = run([], subscription, clock, heartbeat_s=15, lasts_s=50)

    assert frames.count(comment("heartbeat")) == 3  # at 15, 30 and 45 s
    assert clock.now == T0 + 50
    assert subscription.closed


def test_a_replay_cut_short_ends_the_stream_for_the_reconnect_to_continue() -> None:
    clock = Clock()
    subscription = FakeSubscription(clock, [(T0 + 1, reply("c", 3000))])

    frames = run([stored("a", 1000)], subscription, clock, replay_complete=False)

    assert [m for _, m in sent(frames)] == ["a"]
    assert frames[-1] == comment("more to replay: reconnect with Last-Event-ID")
    assert clock.now == T0  # nothing waited for
    assert subscription.closed


def test_a_client_that_goes_away_closes_the_subscription() -> None:
    clock = Clock()
    subscription = FakeSubscription(clock)
    body = events(
        [stored("a", 1000)],
        replay_complete=True,
        start=None,
        subscription=subscription,
        conversation_key=KEY,
        clock=clock,
        heartbeat_s=15,
        ends_at=T0 + 60,
    )

    next(body), next(body)  # retry:, then the replayed message; then the write fails
    body.close()

    assert subscription.closed
