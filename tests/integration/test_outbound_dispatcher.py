"""outbound-dispatcher on real servers: MongoDB-protocol, Redis and the channel API sandbox
(a subprocess). Events are posted the way KafkaSource delivers them: binary-mode CloudEvents."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from shared.events import message_outbound
from shared.models import Author, Channel, OutboundMessage, QuickReply, TemplateRef
from shared.store.messages import outbound_document
from tests.builders import deliver, json_body
from tests.integration.outbound_support import (  # noqa: F401
    SandboxCalls,
    channel_api_fixture,
    db_fixture,
    outbound_env_fixture,
    sandbox_url_fixture,
)

pytestmark = pytest.mark.integration

ACCOUNTS = {
    Channel("whatsapp"): ("106540352242922", "16505551234"),
    Channel("slack"): ("T0001ACME", "C0123ABC"),
    Channel("telegram"): ("7000000001", "555001"),
    Channel("webchat"): ("site-acme", "conv-42"),
}


def reply(channel: Channel, message_id: str = "out-1", **changes: Any) -> OutboundMessage:
    account_id, chat_id = ACCOUNTS[channel]
    message = OutboundMessage(
        tenant_id="acme",
        channel=channel,
        account_id=account_id,
        chat_id=chat_id,
        message_id=f"{message_id}-{channel}",
        text="Blue and green are in stock.",
        author=Author.BOT,
        created_at=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        quick_replies=(QuickReply("blue", "Blue"), QuickReply("green", "Green")),
    )
    return dataclasses.replace(message, **changes)


def post(client: FlaskClient, message: OutboundMessage, data: Any = None) -> TestResponse:
    event = message_outbound(message, "/chat-service/message-processor")
    return deliver(client, event, body=None if data is None else json_body(data))


def open_window(db: Any, message: OutboundMessage, age: timedelta = timedelta(hours=1)) -> None:
    """The conversation the processor keeps, with the user's last message ``age`` ago."""
    db.conversations.insert_one(
        {
            "_id": message.conversation_key,
            "tenant_id": message.tenant_id,
            "channel": str(message.channel),
            "conversation_id": message.conversation_id,
            "state": "open",
            "last_inbound_at": datetime.now(UTC) - age,
        }
    )


def stored(db: Any, message: OutboundMessage) -> dict[str, Any]:
    document: dict[str, Any] = db.messages.find_one(
        {"_id": message.message_id, "tenant_id": "acme"}
    )
    return document


@pytest.fixture
def dispatcher(make_client: Callable[[str], FlaskClient], outbound_env: Any) -> FlaskClient:
    return make_client("outbound-dispatcher")


@pytest.mark.parametrize("channel", [Channel("whatsapp"), Channel("slack"), Channel("telegram")])
def test_one_reply_per_channel_is_sent_and_recorded(
    dispatcher: FlaskClient, channel_api: SandboxCalls, db: Any, channel: Channel
) -> None:
    message = reply(channel, thread_id="1718000000.000100" if channel == Channel("slack") else None)
    open_window(db, message)

    response = post(dispatcher, message)

    assert response.status_code == 200, response.data
    [call] = channel_api.calls()
    assert call["channel"] == channel and call["status"] == 200
    assert "Authorization" not in call["headers"]
    body, answer = call["json"], call["response"]
    if channel == Channel("whatsapp"):
        assert call["path"] == "/v21.0/106540352242922/messages"
        assert body["to"] == "16505551234" and body["type"] == "interactive"
        buttons = body["interactive"]["action"]["buttons"]
        assert [b["reply"]["id"] for b in buttons] == ["blue", "green"]
        provider_id = answer["messages"][0]["id"]
        channel_message_id = provider_id
    elif channel == Channel("slack"):
        assert call["path"] == "/api/chat.postMessage"
        assert body["channel"] == "C0123ABC" and body["thread_ts"] == "1718000000.000100"
        assert body["text"] == message.text and body["blocks"][1]["type"] == "actions"
        provider_id = answer["ts"]
        channel_message_id = f"C0123ABC/{provider_id}"
    else:
        assert call["path"] == "/bot***/sendMessage"
        assert body["chat_id"] == 555001
        assert body["reply_markup"]["inline_keyboard"][0] == [
            {"text": "Blue", "callback_data": "blue"}
        ]
        provider_id = str(answer["result"]["message_id"])
        channel_message_id = f"555001/{provider_id}"
    document = stored(db, message)
    assert document["direction"] == "outbound"
    assert document["delivery"]["state"] == "sent"
    assert document["delivery"]["provider_message_id"] == provider_id
    assert document["delivery"]["attempts"] == 1
    assert document["channel_message_id"] == channel_message_id


def test_the_processors_document_is_used_not_duplicated(
    dispatcher: FlaskClient, channel_api: SandboxCalls, db: Any
) -> None:
    message = reply(Channel("slack"))
    db.messages.insert_one(outbound_document(message, datetime.now(UTC)))

    assert post(dispatcher, message).status_code == 200

    assert db.messages.count_documents({"tenant_id": "acme"}) == 1
    assert stored(db, message)["delivery"]["state"] == "sent"


def test_the_same_event_twice_sends_once(
    dispatcher: FlaskClient, channel_api: SandboxCalls, db: Any
) -> None:
    message = reply(Channel("telegram"))

    codes = [post(dispatcher, message).status_code for _ in range(2)]

    assert codes == [200, 200]
    assert len(channel_api.calls()) == 1
    assert stored(db, message)["delivery"]["attempts"] == 1


def test_500_then_200_retries_and_sends_once(
    dispatcher: FlaskClient, channel_api: SandboxCalls, db: Any
) -> None:
    message = reply(Channel("slack"))
    channel_api.fail("slack", 500)

    first = post(dispatcher, message)

    assert first.status_code == 503
    assert first.headers["Retry-After"]
    delivery = stored(db, message)["delivery"]
    assert delivery["state"] == "pending"
    assert delivery["error"]["code"] == "dependency_unavailable"

    second = post(dispatcher, message)

    assert second.status_code == 200
    statuses = [c["status"] for c in channel_api.calls()]
    assert statuses == [500, 200]
    delivery = stored(db, message)["delivery"]
    assert (delivery["state"], delivery["attempts"], delivery["error"]) == ("sent", 2, None)


def test_429_answers_429_with_the_platforms_retry_after(
    dispatcher: FlaskClient, channel_api: SandboxCalls, db: Any
) -> None:
    message = reply(Channel("telegram"))
    channel_api.fail("telegram", 429, retry_after=9)

    response = post(dispatcher, message)

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "9"
    assert stored(db, message)["delivery"]["state"] == "pending"


def test_400_is_failed_with_the_provider_error_and_never_retried(
    dispatcher: FlaskClient, channel_api: SandboxCalls, db: Any
) -> None:
    message = reply(Channel("whatsapp"))
    open_window(db, message)
    channel_api.fail("whatsapp", 400, error="131026")

    codes = [post(dispatcher, message).status_code for _ in range(2)]

    assert codes == [200, 200]
    assert len(channel_api.calls()) == 1
    delivery = stored(db, message)["delivery"]
    assert delivery["state"] == "failed"
    assert delivery["error"] == {
        "code": "131026",
        "message": "(#131026) sandbox failure",
        "http_status": 400,
    }
    assert "channel_message_id" not in stored(db, message)


def test_whatsapp_outside_the_window_fails_without_a_call(
    dispatcher: FlaskClient, channel_api: SandboxCalls, db: Any
) -> None:
    message = reply(Channel("whatsapp"))
    open_window(db, message, age=timedelta(hours=25))

    response = post(dispatcher, message)

    assert response.status_code == 200
    assert channel_api.calls() == []
    delivery = stored(db, message)["delivery"]
    assert delivery["state"] == "failed"
    assert delivery["error"]["code"] == "outside_window"
    assert "outside the 24-hour window" in delivery["error"]["message"]


def test_whatsapp_outside_the_window_sends_a_template(
    dispatcher: FlaskClient, channel_api: SandboxCalls, db: Any
) -> None:
    message = reply(Channel("whatsapp"), template=TemplateRef("follow_up", "en_US", ("Ada",)))
    open_window(db, message, age=timedelta(days=2))

    assert post(dispatcher, message).status_code == 200

    [call] = channel_api.calls()
    assert call["json"]["type"] == "template"
    assert call["json"]["template"]["name"] == "follow_up"
    assert stored(db, message)["delivery"]["state"] == "sent"


def test_whatsapp_a_reply_to_a_message_within_the_window_needs_no_conversation_read(
    dispatcher: FlaskClient, channel_api: SandboxCalls, db: Any
) -> None:
    """The message answered proves the window open: the conversation's last message is never
    older. (No conversation is stored here, so a read would have found the window shut.)"""
    answered = datetime.now(UTC) - timedelta(hours=1)
    message = reply(Channel("whatsapp"), in_reply_to_at=answered.isoformat())

    assert post(dispatcher, message).status_code == 200

    [call] = channel_api.calls()
    assert call["json"]["type"] == "interactive"
    assert stored(db, message)["delivery"]["state"] == "sent"


def test_whatsapp_a_reply_to_an_old_message_reads_the_window_from_the_conversation(
    dispatcher: FlaskClient, channel_api: SandboxCalls, db: Any
) -> None:
    """The user wrote again since the message answered: the conversation says so."""
    answered = datetime.now(UTC) - timedelta(hours=30)
    message = reply(Channel("whatsapp"), in_reply_to_at=answered.isoformat())
    open_window(db, message, age=timedelta(hours=2))

    assert post(dispatcher, message).status_code == 200

    [call] = channel_api.calls()
    assert call["json"]["type"] == "interactive"


def test_a_message_id_of_another_tenant_is_poison(
    dispatcher: FlaskClient, channel_api: SandboxCalls, db: Any
) -> None:
    message = reply(Channel("slack"))
    theirs = outbound_document(dataclasses.replace(message, tenant_id="globex"), datetime.now(UTC))
    db.messages.insert_one(theirs)

    response = post(dispatcher, message)

    assert response.status_code == 400
    assert response.json is not None and response.json["error"] == "message_id_conflict"
    assert channel_api.calls() == []
    assert db.messages.find_one({"_id": message.message_id})["tenant_id"] == "globex"


def test_web_chat_reply_is_stored_and_published(
    dispatcher: FlaskClient, channel_api: SandboxCalls, db: Any, redis_url: str
) -> None:
    import redis

    message = reply(Channel("webchat"))
    subscriber = redis.Redis.from_url(redis_url).pubsub()
    subscriber.subscribe("webchat:acme:site-acme/conv-42")
    assert subscriber.get_message(timeout=2)["type"] == "subscribe"  # type: ignore[index]

    response = post(dispatcher, message)

    assert response.status_code == 200
    received = subscriber.get_message(timeout=5)
    subscriber.close()
    assert received is not None and received["type"] == "message"
    published = json.loads(received["data"])
    assert published["message_id"] == message.message_id
    assert published["text"] == message.text
    assert published["quick_replies"] == [
        {"id": "blue", "title": "Blue"},
        {"id": "green", "title": "Green"},
    ]
    assert channel_api.calls() == []
    document = stored(db, message)
    assert document["text"] == message.text
    assert document["delivery"]["state"] == "sent"


def test_a_live_lease_answers_429_and_an_expired_one_is_taken_over(
    dispatcher: FlaskClient, channel_api: SandboxCalls, db: Any
) -> None:
    message = reply(Channel("slack"))
    document = outbound_document(message, datetime.now(UTC))
    lease_until = datetime.now(UTC) + timedelta(seconds=20)
    document["delivery"] |= {"state": "sending", "attempts": 1, "lease_until": lease_until}
    db.messages.insert_one(document)

    busy = post(dispatcher, message)

    assert busy.status_code == 429
    assert 15 <= int(busy.headers["Retry-After"]) <= 20
    assert channel_api.calls() == []

    # The first attempt died: once its lease has run out, the next delivery sends.
    expired = datetime.now(UTC) - timedelta(seconds=1)
    db.messages.update_one({"_id": message.message_id}, {"$set": {"delivery.lease_until": expired}})

    assert post(dispatcher, message).status_code == 200
    assert len(channel_api.calls()) == 1
    assert stored(db, message)["delivery"]["attempts"] == 2


def test_sandbox_unreachable_is_503(
    make_client: Callable[[str], FlaskClient],
    outbound_env: Any,
    db: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from shared.devstack.servers import free_port
    from tests.integration.outbound_support import reset_caches

    monkeypatch.setenv("CHANNEL_API_BASES", f"slack=http://127.0.0.1:{free_port()}/api")
    reset_caches()
    message = reply(Channel("slack"))
    started = time.monotonic()

    response = post(make_client("outbound-dispatcher"), message)

    assert response.status_code == 503
    assert time.monotonic() - started < 5
    assert stored(db, message)["delivery"]["state"] == "pending"


def test_poison_event_is_400_and_kept(dispatcher: FlaskClient, db: Any) -> None:
    message = reply(Channel("slack"))

    response = post(dispatcher, message, data={"tenant_id": "acme", "channel": "slack"})

    assert response.status_code == 400
    [poison] = db.poison_events.find({"tenant_id": "acme"})
    assert poison["service"] == "outbound-dispatcher"
    assert poison["error"]["code"] == "malformed_event"
    assert db.messages.count_documents({}) == 0


def test_another_tenants_account_is_poison(
    dispatcher: FlaskClient, channel_api: SandboxCalls
) -> None:
    message = reply(Channel("telegram"), account_id="7000000002")

    response = post(dispatcher, message)

    assert response.status_code == 400
    assert response.json is not None and response.json["error"] == "unknown_account"
    assert channel_api.calls() == []


def test_health_requires_mongodb_and_reports_redis(dispatcher: FlaskClient) -> None:
    response = dispatcher.get("/api/v2/health")

    assert response.status_code == 200
    assert response.json == {
        "status": "ok",
        "service": "outbound-dispatcher",
        "dependencies": {"mongodb": "up", "redis": "up"},
    }


class _RacingMessages:
    """The messages collection, where the processor writes the outbound document (its
    insert-if-absent after the publish) at the very moment of the dispatcher's first claim."""

    def __init__(self, collection: Any, document: dict[str, Any]) -> None:
        self._collection = collection
        self._document = document
        self.claims = 0

    def find_one_and_update(self, *args: Any, **kwargs: Any) -> Any:
        from pymongo.errors import DuplicateKeyError

        self.claims += 1
        if self.claims == 1:
            self._collection.insert_one(self._document)
            raise DuplicateKeyError("E11000 duplicate key error: written at the same moment")
        return self._collection.find_one_and_update(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._collection, name)


def test_a_claim_that_races_the_processors_write_still_takes_the_send(db: Any) -> None:
    # Both sides insert-if-absent the same outbound document: the claim's upsert can collide
    # with the processor's insert. The document is then there and pending: claimed, not taken
    # for "another attempt" (a 429 that held the reply back for the lease's 30 s).
    from shared.outbound.delivery import Deliveries

    message = reply(Channel("telegram"), "race")
    deliveries = Deliveries(db)
    racing = _RacingMessages(db.messages, outbound_document(message, datetime.now(UTC)))
    deliveries._messages = racing

    claim = deliveries.claim(message, datetime.now(UTC), lease_s=30)

    assert claim.granted and claim.state == "sending" and claim.attempts == 1
    assert racing.claims == 2  # and one read between: the document is there, claimable
    assert stored(db, message)["delivery"]["state"] == "sending"


class _AppliedButRefused:
    """The messages collection, where the first claim is applied by the server but answered
    with a duplicate key error (seen on the embedded server under load)."""

    def __init__(self, collection: Any) -> None:
        self._collection = collection
        self.claims = 0

    def find_one_and_update(self, *args: Any, **kwargs: Any) -> Any:
        from pymongo.errors import DuplicateKeyError

        self.claims += 1
        answer = self._collection.find_one_and_update(*args, **kwargs)
        if self.claims == 1:
            raise DuplicateKeyError("E11000 duplicate key error, after the update was applied")
        return answer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._collection, name)


def test_a_claim_applied_but_answered_with_an_error_is_still_ours(db: Any) -> None:
    # Without the attempt's own mark on the lease, the live lease it just took looked like
    # another attempt's: 429, and the reply waited for the lease (30 s) to run out.
    from shared.outbound.delivery import Deliveries

    message = reply(Channel("slack"), "applied")
    db.messages.insert_one(outbound_document(message, datetime.now(UTC)))
    deliveries = Deliveries(db)
    refusing = _AppliedButRefused(db.messages)
    deliveries._messages = refusing

    claim = deliveries.claim(message, datetime.now(UTC), lease_s=30)

    assert claim.granted and claim.state == "sending" and claim.attempts == 1
    assert refusing.claims == 1
    assert stored(db, message)["delivery"]["attempts"] == 1


@pytest.mark.parametrize(
    ("state", "lease_s", "granted"),
    [
        ("pending", None, True),  # the processor's document, or released after a failure
        ("sending", -1, True),  # the last attempt's lease ran out
        ("sending", 60, False),  # a live lease
        ("sent", None, False),
        ("delivered", None, False),
        ("failed", None, False),
    ],
)
def test_the_claim_takes_what_is_pending_or_whose_lease_ran_out(
    db: Any, state: str, lease_s: int | None, granted: bool
) -> None:
    from shared.outbound.delivery import Deliveries, _claimable

    now = datetime.now(UTC)
    message = reply(Channel("whatsapp"), f"matrix-{state}-{lease_s}")
    document = outbound_document(message, now)
    lease = None if lease_s is None else now + timedelta(seconds=lease_s)
    document["delivery"].update(state=state, lease_until=lease)
    db.messages.insert_one(document)

    claim = Deliveries(db).claim(message, now, lease_s=30)

    assert claim.granted is granted
    assert _claimable(document["delivery"], now) is granted  # the filter's twin in Python
    expected = "sending" if granted else state
    assert stored(db, message)["delivery"]["state"] == expected


def turn_in_flight(db: Any, inbound_id: str, *replies: OutboundMessage) -> None:
    """The processor's answer as stored: the inbound document ``replying``, its replies
    pending, each naming it and the whole turn."""
    db.messages.insert_one(
        {
            "_id": inbound_id,
            "tenant_id": replies[0].tenant_id,
            "direction": "inbound",
            "processing": {"state": "replying"},
        }
    )
    turn = [r.message_id for r in replies]
    for r in replies:
        document = outbound_document(r, datetime.now(UTC), inbound_id=inbound_id, turn=turn)
        db.messages.insert_one(document)


def turn_state(db: Any, inbound_id: str) -> str:
    return str(db.messages.find_one({"_id": inbound_id})["processing"]["state"])


def test_recording_the_send_ends_the_turn_of_the_message_answered(
    dispatcher: FlaskClient, channel_api: SandboxCalls, db: Any
) -> None:
    message = reply(Channel("telegram"), "turn")
    turn_in_flight(db, "inbound-event-1", message)

    assert post(dispatcher, message).status_code == 200

    assert stored(db, message)["delivery"]["state"] == "sent"
    assert turn_state(db, "inbound-event-1") == "replied"
    assert post(dispatcher, message).status_code == 200  # a redelivery: nothing more
    assert len(channel_api.calls()) == 1


def test_a_turn_of_two_replies_ends_when_both_are_done(
    dispatcher: FlaskClient, channel_api: SandboxCalls, db: Any
) -> None:
    # A publish that failed half way may have delivered only the first: until the second is
    # done too, a redelivery of the inbound event must still republish the answer.
    first, second = reply(Channel("slack"), "part-0"), reply(Channel("slack"), "part-1")
    turn_in_flight(db, "inbound-event-3", first, second)

    assert post(dispatcher, first).status_code == 200
    assert turn_state(db, "inbound-event-3") == "replying"
    assert post(dispatcher, second).status_code == 200
    assert turn_state(db, "inbound-event-3") == "replied"
    assert len(channel_api.calls()) == 2


def test_a_reply_that_cannot_be_sent_ends_its_turn_too(
    dispatcher: FlaskClient, channel_api: SandboxCalls, db: Any
) -> None:
    message = reply(Channel("whatsapp"), "turn-failed")
    open_window(db, message)
    turn_in_flight(db, "inbound-event-2", message)
    channel_api.fail("whatsapp", 400, error="131026")

    assert post(dispatcher, message).status_code == 200

    assert stored(db, message)["delivery"]["state"] == "failed"
    assert turn_state(db, "inbound-event-2") == "replied"


def test_an_agents_reply_ends_no_turn(
    dispatcher: FlaskClient, channel_api: SandboxCalls, db: Any
) -> None:
    # An agent answering the very message whose bot answer is still in flight: only the bot's
    # replies end that turn.
    bots = reply(Channel("slack"), "bot")
    turn_in_flight(db, "inbound-x", bots)
    agents = reply(Channel("slack"), "agent", author=Author.AGENT, in_reply_to="inbound-x")

    assert post(dispatcher, agents).status_code == 200

    assert stored(db, agents)["delivery"]["state"] == "sent"
    assert "inbound_id" not in stored(db, agents)
    assert turn_state(db, "inbound-x") == "replying"
    assert post(dispatcher, bots).status_code == 200
    assert turn_state(db, "inbound-x") == "replied"
