"""The bot turn's state machine, on in-memory backends: what is stored, published and skipped."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from cloudevents.http import CloudEvent

from shared import events, metrics
from shared.bot.ports import EngineReply, ReplyPart, Verdict
from shared.bot.processor import MessageProcessor
from shared.clock import frozen
from shared.errors import BadRequest, DependencyUnavailable
from shared.models import InboundMessage, MediaRef, MessageKind, Sender
from shared.settings import Settings
from tests.builders import inbound_message
from tests.unit.bot.fakes import (
    CountingLimiter,
    MemoryConversations,
    MemoryMessages,
    MemorySessions,
    ScriptedEngine,
    ScriptedHub,
)
from tests.unit.fakes import RecordingProducer

SETTINGS = Settings(topic_prefix="t")


def message(
    text: str | None = "hello", platform_id: str = "wamid.1", **changes: Any
) -> InboundMessage:
    return inbound_message(text=text, platform_message_id=platform_id, **changes)


class Bot:
    """A processor wired to in-memory backends, with handles on each of them."""

    def __init__(self, **overrides: Any) -> None:
        self.conversations = MemoryConversations()
        self.messages = MemoryMessages(self.conversations)
        self.limiter = CountingLimiter()
        self.sessions = MemorySessions()
        self.hub = ScriptedHub()
        self.engine = ScriptedEngine()
        self.producer = RecordingProducer()
        fields: dict[str, Any] = {
            "settings": SETTINGS,
            "messages": self.messages,
            "conversations": self.conversations,
            "limiter": self.limiter,
            "sessions": self.sessions,
            "hub": self.hub,
            "engine": self.engine,
            "producer": self.producer,
            "fallback": ScriptedEngine(EngineReply(parts=(ReplyPart("Assistant unavailable"),))),
            "clock": frozen(1_750_000_000.0),
        }
        self.processor = MessageProcessor(**{**fields, **overrides})

    def handle(self, event: CloudEvent) -> str:
        return self.processor.handle_event(event)

    def published(self) -> list[Any]:
        return [event for _topic, event in self.producer.published]


def received(msg: InboundMessage | None = None) -> CloudEvent:
    return events.message_received(msg or message())


def test_a_message_is_stored_answered_and_published_with_the_derived_id() -> None:
    bot, event = Bot(), received()

    assert bot.handle(event) == "replied"

    inbound = bot.messages.inbound(event["id"])
    reply_id = events.outbound_id(event["id"], 0)
    # `replied` is the dispatcher's to write, when it records the send.
    assert inbound["processing"]["state"] == "replying"
    assert inbound["processing"]["reply_ids"] == [reply_id]
    assert inbound["channel_message_id"] == "wamid.1" and inbound["direction"] == "inbound"
    [outbound] = bot.messages.outbound()
    assert outbound["_id"] == reply_id and outbound["delivery"]["state"] == "pending"
    assert outbound["inbound_id"] == event["id"]
    [(topic, published)] = bot.producer.published
    assert topic == "t.messages.outbound"
    assert published["id"] == reply_id and published["type"] == events.MESSAGE_OUTBOUND
    assert published["partitionkey"] == message().conversation_key
    assert published.data["text"] == "echo: hello" and published.data["author"] == "bot"
    assert published.data["in_reply_to"] == "wamid.1"
    conversation = bot.conversations.docs[message().conversation_key]
    assert conversation["message_count"] == 2  # the user's message and the reply
    turns = bot.sessions.turns[message().conversation_key]
    assert [(t.role, t.text) for t in turns] == [("user", "hello"), ("bot", "echo: hello")]


def test_the_engine_gets_the_session_history() -> None:
    bot = Bot()
    bot.handle(received(message("first", "wamid.1")))
    bot.handle(received(message("second", "wamid.2")))

    context, _ = bot.engine.calls[1]
    assert [t.text for t in context.history] == ["first", "echo: first"]
    assert context.session == {"last_intent": "echo"}


def test_a_redelivered_event_republishes_the_stored_answer_until_it_is_sent() -> None:
    bot, event = Bot(), received()
    bot.handle(event)

    # Not known to be out yet: the same reply event again (the dispatcher sends its id once).
    assert bot.handle(event) == "replied"
    first, again = bot.published()
    assert again["id"] == first["id"] and again.data == first.data
    bot.messages.inbound(event["id"])["processing"]["state"] = "replied"  # the dispatcher's mark
    assert bot.handle(event) == "duplicate"
    assert len(bot.published()) == 2 and len(bot.engine.calls) == 1
    assert bot.conversations.docs[message().conversation_key]["message_count"] == 2
    assert len(bot.sessions.turns[message().conversation_key]) == 2  # recorded once


def test_the_same_platform_message_under_another_event_id_is_a_duplicate() -> None:
    bot = Bot()
    bot.handle(received())
    other = received()
    other["id"] = "another-event-id"

    assert bot.handle(other) == "duplicate"
    assert len(bot.published()) == 1


def test_a_failed_publish_is_retried_with_the_same_reply_and_ids() -> None:
    bot, event = Bot(), received()
    bot.producer.fail = True
    with pytest.raises(DependencyUnavailable):
        bot.handle(event)
    assert bot.messages.inbound(event["id"])["processing"]["state"] == "replying"

    bot.producer.fail = False
    bot.engine.reply = EngineReply(parts=(ReplyPart("a different answer"),))
    assert bot.handle(event) == "replied"

    [published] = bot.published()
    assert published["id"] == events.outbound_id(event["id"], 0)
    assert published.data["text"] == "echo: hello"  # the stored reply, not a new one
    assert len(bot.engine.calls) == 1


def test_a_turn_stopped_after_storing_continues_on_redelivery() -> None:
    bot, event = Bot(), received()
    bot.messages.insert_inbound(event["id"], message(), bot.processor._now())

    assert bot.handle(event) == "replied"
    assert len(bot.published()) == 1
    # The crash came before the conversation and the limits saw the message: they see it now.
    assert bot.limiter.calls == 1
    conversation = bot.conversations.docs[message().conversation_key]
    assert conversation["message_count"] == 2  # the message and its reply
    assert conversation["last_inbound_at"] is not None


def test_a_retry_after_the_gate_does_not_count_the_message_again() -> None:
    bot, event = Bot(), received()
    bot.hub.down = True  # the turn stops at screening, after the gate
    with pytest.raises(DependencyUnavailable):
        bot.handle(event)
    assert bot.limiter.calls == 1

    bot.hub.down = False
    assert bot.handle(event) == "replied"
    assert bot.limiter.calls == 1  # our own retry spends no more of the user's budget
    assert bot.conversations.docs[message().conversation_key]["message_count"] == 2


def test_a_turn_writes_its_checkpoint_stored_then_replying() -> None:
    bot, event = Bot(), received()
    moves: list[str] = []
    bot.messages.before_advance = moves.append

    assert bot.handle(event) == "replied"
    assert moves == ["replying"]  # the flags, the content and the replies go with `replying`
    processing = bot.messages.inbound(event["id"])["processing"]
    assert processing["recorded"] and processing["limit_checked"]
    assert processing["content"] == "screened"


def test_a_turn_stopped_by_the_engine_keeps_what_it_did_for_the_retry() -> None:
    bot, event = Bot(settings=dataclasses.replace(SETTINGS, fallback_enabled=False)), received()
    bot.engine.down = True
    with pytest.raises(DependencyUnavailable):
        bot.handle(event)
    stored = bot.messages.inbound(event["id"])
    assert stored["processing"]["state"] == "screened" and stored["text"] == "hello"
    assert stored["processing"]["limit_checked"]

    bot.engine.down = False
    assert bot.handle(event) == "replied"
    assert bot.hub.screened == ["hello"]  # not asked again
    assert bot.limiter.calls == 1
    assert bot.conversations.docs[message().conversation_key]["message_count"] == 2


def test_a_delivery_that_loses_a_race_continues_from_the_winners_state() -> None:
    bot, event = Bot(), received()

    def other_delivery_finished(to_state: str) -> None:
        bot.messages.docs[event["id"]]["processing"]["state"] = "replied"

    bot.messages.before_advance = other_delivery_finished
    assert bot.handle(event) == "duplicate"
    assert bot.published() == []


def test_a_conversation_with_a_human_gets_no_bot_reply() -> None:
    bot = Bot()
    bot.conversations.record_inbound(message(platform_id="earlier"), bot.processor._now())
    bot.conversations.docs[message().conversation_key]["state"] = "handoff"
    event = received()

    assert bot.handle(event) == "handoff"
    stored = bot.messages.inbound(event["id"])
    processing = stored["processing"]
    assert processing["state"] == "skipped" and processing["reason"] == "handoff"
    assert bot.published() == [] and bot.engine.calls == []
    # The agent reads it: screened, then stored.
    assert bot.hub.screened == ["hello"] and stored["text"] == "hello"


def test_a_closed_conversation_is_reopened_by_the_user_writing_again() -> None:
    bot = Bot()
    bot.conversations.record_inbound(message(platform_id="earlier"), bot.processor._now())
    bot.conversations.docs[message().conversation_key]["state"] = "closed"

    assert bot.handle(received()) == "replied"
    assert bot.conversations.docs[message().conversation_key]["state"] == "open"


def test_an_engine_handoff_sends_the_reply_then_hands_the_conversation_over() -> None:
    bot = Bot()
    bot.engine.reply = EngineReply(parts=(ReplyPart("Connecting you…"),), handoff=True)

    assert bot.handle(received()) == "replied"
    assert bot.published()[0].data["text"] == "Connecting you…"
    assert bot.conversations.docs[message().conversation_key]["state"] == "handoff"
    assert bot.handle(received(message(platform_id="wamid.2"))) == "handoff"


def test_an_engine_handoff_without_a_reply_still_hands_the_conversation_over() -> None:
    bot, event = Bot(), received()
    bot.engine.reply = EngineReply(parts=(ReplyPart("  "),), handoff=True)  # a blank part

    assert bot.handle(event) == "no_reply"
    assert bot.published() == []
    assert bot.messages.inbound(event["id"])["processing"]["state"] == "replied"
    assert bot.conversations.docs[message().conversation_key]["state"] == "handoff"


def test_a_failed_publish_records_the_session_once_and_the_retry_sends_the_same_reply() -> None:
    bot, event = Bot(), received()
    bot.producer.fail = True
    with pytest.raises(DependencyUnavailable):
        bot.handle(event)
    bot.producer.fail = False

    assert bot.handle(event) == "replied"
    turns = bot.sessions.turns[message().conversation_key]
    assert [(t.role, t.text) for t in turns] == [("user", "hello"), ("bot", "echo: hello")]
    assert bot.conversations.docs[message().conversation_key]["message_count"] == 2


def test_a_turn_left_replying_by_the_previous_version_is_finished_once() -> None:
    # That version wrote the outbound documents, the reply count, the session and `replied`
    # only after its publish, and its dispatcher created the documents it did not find
    # without naming the turn: a redelivery writes what is missing once, publishes, and ends
    # the turn itself.
    bot, event = Bot(), received()
    bot.producer.fail = True
    with pytest.raises(DependencyUnavailable):
        bot.handle(event)
    bot.producer.fail = False
    inbound = bot.messages.inbound(event["id"])
    del inbound["processing"]["answer"]  # as the previous version left it
    [reply_id] = inbound["processing"]["reply_ids"]
    for field in ("inbound_id", "turn_reply_ids"):  # as its dispatcher created the document
        del bot.messages.docs[reply_id][field]
    key = message().conversation_key
    bot.conversations.docs[key]["message_count"] = 1
    bot.sessions.turns.clear()

    assert bot.handle(event) == "replied"
    assert bot.messages.inbound(event["id"])["processing"]["state"] == "replied"
    assert bot.handle(event) == "duplicate"

    assert len(bot.messages.outbound()) == 1
    assert bot.conversations.docs[key]["message_count"] == 2
    assert len(bot.sessions.turns[key]) == 2
    assert len(bot.published()) == 1 and len(bot.engine.calls) == 1


def test_over_the_rate_limit_the_message_is_stored_counted_and_not_answered() -> None:
    bot = Bot()
    bot.limiter.user_limit = 1
    before = metrics.rate_limited.labels("whatsapp", "user")._value.get()
    bot.handle(received(message(platform_id="wamid.1")))
    limited = received(message(platform_id="wamid.2"))

    assert bot.handle(limited) == "rate_limited"
    processing = bot.messages.inbound(limited["id"])["processing"]
    assert processing["state"] == "skipped" and processing["reason"] == "rate_limited"
    assert len(bot.published()) == 1
    assert metrics.rate_limited.labels("whatsapp", "user")._value.get() == before + 1
    assert bot.handle(limited) == "duplicate"


def test_blocked_content_never_reaches_the_engine() -> None:
    bot, event = Bot(), received()
    bot.hub.verdict = Verdict.BLOCK

    assert bot.handle(event) == "blocked"
    processing = bot.messages.inbound(event["id"])["processing"]
    assert processing["state"] == "skipped" and processing["reason"] == "blocked"
    assert processing["screening"]["verdict"] == "block"
    assert bot.engine.calls == [] and bot.published() == []


def test_redacted_text_is_what_is_stored_and_what_the_engine_sees() -> None:
    bot = Bot()
    bot.hub.verdict, bot.hub.text = Verdict.REDACT, "my card is [card]"
    secret = "my card is 4111 1111 1111 1111"
    photo = MediaRef("image", "media-1", caption=secret)
    event = received(message(secret, kind=MessageKind.MEDIA, attachments=(photo,)))

    assert bot.handle(event) == "replied"
    stored = bot.messages.inbound(event["id"])
    assert stored["text"] == "my card is [card]"
    assert stored["attachments"][0]["caption"] == "my card is [card]"
    assert bot.engine.calls[0][1].text == "my card is [card]"
    assert "4111" not in str(bot.sessions.turns)


def test_a_hub_outage_is_retried_and_never_skips_screening() -> None:
    bot, event = Bot(), received()
    bot.hub.down = True
    with pytest.raises(DependencyUnavailable):
        bot.handle(event)
    assert bot.messages.inbound(event["id"])["processing"]["state"] == "stored"
    assert bot.engine.calls == []

    bot.hub.down = False
    assert bot.handle(event) == "replied"
    assert bot.hub.screened == ["hello"]


def test_a_message_without_text_is_not_screened() -> None:
    bot = Bot()
    photo = MediaRef("image", "media-1")
    assert bot.handle(received(message(None, kind=MessageKind.MEDIA, attachments=(photo,)))) == (
        "replied"
    )
    assert bot.hub.screened == []


def test_engine_down_with_fallback_answers_from_the_rules() -> None:
    bot = Bot()
    bot.engine.down = True

    assert bot.handle(received()) == "fallback"
    [published] = bot.published()
    assert published.data["author"] == "fallback"
    assert published.data["text"] == "Assistant unavailable"


def test_engine_down_without_fallback_is_retried_until_the_engine_is_back() -> None:
    bot, event = Bot(settings=dataclasses.replace(SETTINGS, fallback_enabled=False)), received()
    bot.engine.down = True
    with pytest.raises(DependencyUnavailable):
        bot.handle(event)
    assert bot.published() == []

    bot.engine.down = False
    assert bot.handle(event) == "replied"
    assert bot.published()[0].data["author"] == "bot"


def test_other_event_types_are_ignored() -> None:
    event = received()
    event["type"] = events.MESSAGE_STATUS
    assert Bot().handle(event) == "ignored"


@pytest.mark.parametrize(
    "data",
    [b"not json", "a string", {"tenant_id": "acme"}, {**message().to_dict(), "kind": "hologram"}],
)
def test_malformed_events_are_poison(data: Any) -> None:
    event = received()
    event.data = data
    with pytest.raises(BadRequest):
        Bot().handle(event)


def test_a_tenant_attribute_that_disagrees_with_the_data_is_poison() -> None:
    event = received()
    event["tenantid"] = "globex"
    with pytest.raises(BadRequest) as raised:
        Bot().handle(event)
    assert raised.value.code == "tenant_mismatch"


# --- what is stored of a message, and when ---------------------------------------------------


def test_nothing_of_the_content_is_stored_before_it_is_screened() -> None:
    bot = Bot()
    bot.hub.down = True
    sent = message(
        "call me on +1 555 0100",
        sender=Sender(id="15551234", name="Ada Lovelace"),
        raw={"message_id": 7, "contacts": [{"phone": "+1 555 0100"}]},
    )
    event = received(sent)

    with pytest.raises(DependencyUnavailable):
        bot.handle(event)
    stored = bot.messages.inbound(event["id"])
    assert stored["processing"]["content"] == "withheld"
    assert stored["text"] is None and stored["sender"]["name"] is None
    assert stored["raw"] == {"message_id": 7}
    assert "555 0100" not in repr(stored)

    bot.hub.down = False
    assert bot.handle(event) == "replied"
    stored = bot.messages.inbound(event["id"])
    assert stored["processing"]["content"] == "screened"
    assert stored["text"] == "call me on +1 555 0100"
    assert stored["raw"]["contacts"] == [{"phone": "+1 555 0100"}]


def test_a_redaction_also_drops_platform_fields_and_the_display_name() -> None:
    bot = Bot(hub=ScriptedHub(Verdict.REDACT, text="call me on [phone]"))
    sent = message(
        "call me on +1 555 0100",
        sender=Sender(id="15551234", name="Ada Lovelace"),
        raw={"message_id": 7, "contacts": [{"phone": "+1 555 0100"}]},
    )
    event = received(sent)

    assert bot.handle(event) == "replied"
    stored = bot.messages.inbound(event["id"])
    assert stored["text"] == "call me on [phone]"
    assert stored["raw"] == {"message_id": 7} and stored["sender"]["name"] is None
    assert "555 0100" not in repr(stored)


def test_a_rate_limited_message_is_never_screened_nor_its_content_stored() -> None:
    bot = Bot()
    bot.limiter.user_limit = 1
    bot.handle(received(message(platform_id="wamid.1")))
    limited = received(message("my email is ada@example.com", platform_id="wamid.2"))

    assert bot.handle(limited) == "rate_limited"
    stored = bot.messages.inbound(limited["id"])
    assert stored["text"] is None and "example.com" not in repr(stored)
    assert bot.hub.screened == ["hello"]


def test_a_blocked_message_keeps_its_verdict_only() -> None:
    bot = Bot(hub=ScriptedHub(Verdict.BLOCK))
    event = received(message("something forbidden"))

    assert bot.handle(event) == "blocked"
    stored = bot.messages.inbound(event["id"])
    assert stored["processing"]["screening"]["verdict"] == "block"
    assert stored["text"] is None and "forbidden" not in repr(stored)


def test_a_message_the_webhook_sent_to_overflow_is_stored_and_not_answered() -> None:
    # Past the sender's budget at the webhook (shared/ingress.py): no turn, no count spent.
    bot = Bot()
    over = received(message(platform_id="wamid.9"))
    over["overflow"] = "rate_limited"

    assert bot.handle(over) == "rate_limited"
    processing = bot.messages.inbound(over["id"])["processing"]
    assert processing["state"] == "skipped" and processing["reason"] == "rate_limited"
    assert bot.published() == [] and bot.limiter.calls == 0
    assert bot.handle(over) == "duplicate"


def test_a_handed_off_conversation_gets_its_overflow_message_to_the_agent() -> None:
    bot = Bot()
    bot.engine.reply = EngineReply(parts=(ReplyPart("Connecting you…"),), handoff=True)
    assert bot.handle(received()) == "replied"
    over = received(message(platform_id="wamid.2"))
    over["overflow"] = "rate_limited"

    assert bot.handle(over) == "handoff"  # handoff first, as for any message
