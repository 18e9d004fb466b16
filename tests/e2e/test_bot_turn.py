"""The bot turn on the full local stack: webhook → ingress → Kafka → KafkaSource dispatcher →
message-processor (MongoDB, Redis, Security Hub and MCP engine over gRPC) → Kafka →
outbound-dispatcher → the channel sandbox, with everything delivered more than once, a
failing channel API, a poison event, and the engine stopped.

One stack serves the module; each test talks in conversations of its own. The engine test
stops the engine, so it comes last.
"""

from __future__ import annotations

import json
import os
import signal
import uuid
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pymongo
import pytest

from shared.devstack.sandbox import fingerprint
from shared.kafka import RecordProducer, TimedRecord
from shared.kafkasource import delivery, manifests
from shared.kafkasource.oidc import TokenMinter
from tests.e2e.bot_support import Stack, call_text, poll, succeeded, telegram_key
from tests.e2e.conftest import RunningStack, module_stack

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
RULES = json.loads((resources.files("shared.bot") / "default_rules.json").read_text())
GREETING = RULES["greeting"]["answer"]
HOURS = next(faq["answer"] for faq in RULES["faq"] if faq["intent"] == "faq_hours")
FALLBACK = json.loads((resources.files("shared.bot") / "fallback_rules.json").read_text())


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningStack, Stack]]:
    with module_stack(tmp_path_factory) as (running, endpoints):
        yield running, Stack(endpoints)


@pytest.mark.parametrize("channel", ["whatsapp", "slack", "telegram"])
def test_a_signed_webhook_gets_the_bots_reply_through_the_channel_api(
    bot: tuple[RunningStack, Stack], channel: str
) -> None:
    running, stack = bot
    if channel == "whatsapp":
        chat, _ = stack.whatsapp("Hello")
        token = stack.tenant["whatsapp"]["access_token"]
    elif channel == "slack":
        chat, token = stack.slack("Hello"), stack.tenant["slack"]["bot_token"]
    else:
        chat, token = stack.telegram("Hello"), stack.tenant["telegram"]["bot_token"]

    [call] = stack.wait_calls(chat)

    assert succeeded(call), call
    assert call_text(call) == GREETING
    assert call["credential"] == fingerprint(token)  # sent as the dev tenant's bot
    running.wait_for_line(f"reply → {channel} {chat.chat_id}: {GREETING}")


def test_a_web_chat_message_gets_the_bots_reply_stored_for_the_widget(
    bot: tuple[RunningStack, Stack],
) -> None:
    running, stack = bot
    chat = stack.webchat("Hello")
    mongodb: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
        stack.endpoints["mongodb"]["uri"]
    )
    messages = mongodb["chat_service"]["messages"]

    def reply() -> dict[str, Any] | None:
        found: dict[str, Any] | None = messages.find_one(
            {
                "tenant_id": "dev",
                "conversation_key": chat.conversation_key,
                "direction": "outbound",
                "delivery.state": "sent",
            }
        )
        return found

    try:
        stored = poll("the web chat reply in MongoDB", reply)
    finally:
        mongodb.close()
    assert stored["text"] == GREETING
    assert stack.calls(chat) == []  # our own channel: no API call
    running.wait_for_line("messages.outbound", chat.conversation_key, GREETING)


def _redeliver_directly(stack: Stack, function: str, record: TimedRecord) -> None:
    """POST the record to its handler as the KafkaSource would (binary-mode CloudEvent)."""
    event = delivery.to_http(record, "e2e-redelivery", "default")
    oidc = stack.endpoints["eventing_oidc"]
    minter = TokenMinter.from_file(Path(oidc["key_file"]), issuer=oidc["issuer"])
    headers = {**event.headers, **minter.headers(function)}
    response = stack.http.post(stack.url(function) + "/", content=event.body, headers=headers)
    assert response.status_code == 200, (function, response.status_code, response.text)


def test_a_handler_refuses_events_not_sent_by_the_dispatcher(
    bot: tuple[RunningStack, Stack],
) -> None:
    # Sender identity (OIDC): without the issuer's token for this very handler, nothing is
    # handled — a forged "inbound message" never reaches the bot, a forged reply is never sent.
    _, stack = bot
    chat, _ = stack.whatsapp("Hello")
    [record] = poll(
        "the inbound record", lambda: stack.records(stack.topics["inbound"], chat.conversation_key)
    )
    event = delivery.to_http(TimedRecord(**vars(record)), "e2e-forged", "default")
    url = stack.url("message-processor") + "/"
    oidc = stack.endpoints["eventing_oidc"]
    minter = TokenMinter.from_file(Path(oidc["key_file"]), issuer=oidc["issuer"])
    for extra, code in (
        ({}, "missing_token"),
        (minter.headers("outbound-dispatcher"), "invalid_sender"),  # another handler's token
        ({"authorization": "Bearer not.a.token"}, "invalid_sender"),
    ):
        response = stack.http.post(url, content=event.body, headers={**event.headers, **extra})
        assert (response.status_code, response.json()["error"]) == (401, code)


def test_everything_delivered_more_than_once_gives_one_reply(
    bot: tuple[RunningStack, Stack],
) -> None:
    _, stack = bot
    chat, body = stack.whatsapp("Hello")
    key = chat.conversation_key
    # Meta redelivers a webhook it thinks failed: the same body, twice more.
    again = [stack.post_whatsapp(body) for _ in range(2)]
    assert again == [{"status": "ok", "published": 0, "duplicates": 1}] * 2
    stack.wait_calls(chat)

    inbound = poll("the inbound record", lambda: stack.records(stack.topics["inbound"], key))
    outbound = poll("the outbound record", lambda: stack.records(stack.topics["outbound"], key))
    assert (len(inbound), len(outbound)) == (1, 1)
    handlers = [
        (stack.topics["inbound"], "message-processor", inbound[0]),
        (stack.topics["outbound"], "outbound-dispatcher", outbound[0]),
    ]
    producer = RecordProducer(stack.brokers, client_id="e2e-redelivery")
    try:
        for topic, function, record in handlers:
            # Once straight to the handler, once more through Kafka and the dispatcher.
            _redeliver_directly(stack, function, TimedRecord(**vars(record)))
            producer.send(topic, record.key, list(record.headers.items()), record.value)
    finally:
        producer.close()

    # Records of one conversation are handled in order, so once the answer to a later message
    # is sent, every redelivery above has been handled: no sleeping for "long enough".
    stack.whatsapp("What are your opening hours?", wa_id=chat.chat_id)
    calls = stack.wait_calls(chat, 2)
    assert [call_text(c) for c in calls] == [GREETING, HOURS]


def test_a_channel_api_failing_once_gives_one_delivered_message(
    bot: tuple[RunningStack, Stack],
) -> None:
    running, stack = bot
    stack.fail_next("telegram", 500)
    chat = stack.telegram("Hello")

    calls = stack.wait_calls(chat)  # the outbound-dispatcher answered 503; the retry lands
    assert [c["status"] for c in calls] == [500, 200]
    assert call_text(calls[1]) == GREETING
    running.wait_for_line(f"reply → telegram {chat.chat_id}", "— failed: HTTP 500")

    stack.telegram("What are your opening hours?", chat_id=chat.chat_id)  # see the test above
    calls = stack.wait_calls(chat, 2)
    assert [c["status"] for c in calls] == [500, 200, 200]
    assert [call_text(c) for c in calls if succeeded(c)] == [GREETING, HOURS]


def test_a_poison_event_is_dead_lettered_and_later_events_still_flow(
    bot: tuple[RunningStack, Stack],
) -> None:
    _, stack = bot
    [source] = [s for s in manifests.load(ROOT / "kafka-sources") if s.name == "message-processor"]
    dead_letters = source.delivery.dead_letter_topic
    assert dead_letters is not None
    chat_id = str(uuid.uuid4().int % 10**9 + 10**9)
    key = telegram_key(stack.tenant["telegram"]["bot_id"], chat_id)
    event_id = stack.publish_poison(key)  # the message after it waits in the same partition
    record = stack.wait_dead_lettered(dead_letters, event_id)
    assert record.headers["ce_knativeerrorcode"] == b"400"  # not retried: it can never succeed
    assert record.value == b"{}"

    chat = stack.telegram("Hello", chat_id=chat_id)
    [call] = stack.wait_calls(chat)
    assert call_text(call) == GREETING


def test_with_the_engine_stopped_the_bot_answers_from_its_fallback_rules(
    bot: tuple[RunningStack, Stack],
) -> None:
    running, stack = bot
    pid = stack.endpoints["mcp_engine"]["pid"]
    os.kill(pid, signal.SIGTERM)
    # The stack reports it (and reaps it) but keeps running: the bot has a fallback.
    running.wait_for_line(f"!!! mcp-engine (pid {pid}) exited", "fallback rules")

    chat = stack.slack("Hello")

    [call] = stack.wait_calls(chat)
    assert call_text(call) == FALLBACK["default"]["answer"]
    assert running.proc.poll() is None
