"""The rule-based bot: matching, priorities, confidence, the packaged rule sets, loading."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.bot.ports import ConversationContext, Engine
from shared.bot.rules import RuleEngine, RuleSet, load_rules, normalize
from shared.models import Channel, InboundMessage, InteractiveReply, MessageKind, Sender


@pytest.fixture(scope="module")
def engine() -> RuleEngine:
    return RuleEngine(load_rules(None, "default_rules.json"))


@pytest.fixture(scope="module")
def fallback() -> RuleEngine:
    return RuleEngine(load_rules("", "fallback_rules.json"))


def test_normalize_ignores_case_accents_and_punctuation() -> None:
    assert normalize("  Héllo,   WORLD!! ") == "hello world"
    assert normalize("what's_up?") == "what s up"
    assert normalize("...") == ""


@pytest.mark.parametrize("text", ["hi", "Hi!!", "HELLO", "Good   morning.", "héllo"])
def test_a_greeting_alone_is_a_certain_greeting(engine: RuleEngine, text: str) -> None:
    reply = engine.reply(text)
    assert (reply.intent, reply.confidence, reply.handoff) == ("greeting", 1.0, False)
    assert [q.id for q in reply.parts[-1].quick_replies] == [
        "faq_hours",
        "faq_shipping",
        "faq_returns",
        "handoff",
    ]


def test_a_greeting_within_a_sentence_scores_lower(engine: RuleEngine) -> None:
    reply = engine.reply("hey there")
    assert (reply.intent, reply.confidence) == ("greeting", 0.9)


def test_a_question_after_a_greeting_is_answered(engine: RuleEngine) -> None:
    reply = engine.reply("Hi! What are your opening hours?")
    assert reply.intent == "faq_hours"
    assert "Monday to Friday" in reply.parts[0].text


@pytest.mark.parametrize(
    ("text", "intent", "confidence"),
    [
        ("Opening hours?", "faq_hours", 1.0),  # the whole message is a phrase
        ("what are your opening hours", "faq_hours", 0.9),  # a phrase within
        ("are you open on sunday", "faq_hours", 0.6),  # one keyword
        ("is the shop open or closed", "faq_hours", 0.7),  # two keywords
        ("refund please", "faq_returns", 0.6),
        ("How much does it cost?", "pricing", 0.6),
        ("thank you!", "thanks", 0.6),
    ],
)
def test_faq_and_keyword_confidence(
    engine: RuleEngine, text: str, intent: str, confidence: float
) -> None:
    reply = engine.reply(text)
    assert reply.intent == intent
    assert reply.confidence == pytest.approx(confidence)


def test_keywords_match_whole_words_only(engine: RuleEngine) -> None:
    # "this" contains "hi", "relationship" contains "ship", "reopen" contains "open".
    assert engine.reply("this relationship will reopen").intent == "default"


def test_multi_part_answers_carry_quick_replies_on_the_last_part(engine: RuleEngine) -> None:
    reply = engine.reply("where is my order?")
    assert reply.intent == "faq_shipping"
    assert len(reply.parts) == 2
    assert reply.parts[0].quick_replies == ()
    assert [q.id for q in reply.parts[1].quick_replies] == ["handoff"]


@pytest.mark.parametrize(
    "text", ["agent", "I want to talk to a HUMAN, please", "agent, where is my order?"]
)
def test_handoff_wins_over_everything_said(engine: RuleEngine, text: str) -> None:
    reply = engine.reply(text)
    assert (reply.intent, reply.handoff) == ("handoff", True)
    assert "human agent" in reply.parts[0].text


def test_an_interactive_reply_answers_the_intent_it_names(engine: RuleEngine) -> None:
    offered = engine.reply("hello").parts[-1].quick_replies
    returns = next(q for q in offered if q.id == "faq_returns")
    reply = engine.reply(returns.title, interactive_id=returns.id)
    assert (reply.intent, reply.confidence) == ("faq_returns", 1.0)
    assert engine.reply(None, interactive_id="handoff").handoff is True


def test_an_unknown_interactive_id_falls_back_to_the_text(engine: RuleEngine) -> None:
    reply = engine.reply("Shipping", interactive_id="no-such-intent")
    assert reply.intent == "faq_shipping"


@pytest.mark.parametrize("text", [None, "", "   ", "qwerty asdf"])
def test_anything_else_gets_the_default_answer(engine: RuleEngine, text: str | None) -> None:
    reply = engine.reply(text)
    assert (reply.intent, reply.confidence, reply.handoff) == ("default", 0.0, False)
    assert "agent" in reply.parts[0].text
    assert reply.parts[0].quick_replies


def _message(text: str | None, interactive: InteractiveReply | None = None) -> InboundMessage:
    return InboundMessage(
        tenant_id="acme",
        channel=Channel("webchat"),
        account_id="site-acme",
        chat_id="visitor-1",
        platform_message_id="m-1",
        sender=Sender("visitor-1", "Ada"),
        kind=MessageKind.INTERACTIVE if interactive else MessageKind.TEXT,
        timestamp="2025-01-01T00:00:00Z",
        text=text,
        interactive=interactive,
    )


def test_the_rule_engine_is_an_engine(engine: RuleEngine) -> None:
    port: Engine = engine
    context = ConversationContext("acme", "webchat", "acme:webchat:site-acme/visitor-1")
    assert port.generate_reply(context, _message("hello")).intent == "greeting"
    tapped = InteractiveReply("button_reply", "faq_hours", "Opening hours")
    assert port.generate_reply(context, _message(None, tapped)).intent == "faq_hours"
    # A button reply without a known id is matched on its title.
    titled = InteractiveReply("button_reply", "btn-7", "Returns")
    assert port.generate_reply(context, _message(None, titled)).intent == "faq_returns"


def _all_intents_and_quick_replies(rules: RuleSet) -> tuple[set[str], set[str]]:
    offered = {q.id for rule in rules.intents.values() for q in rule.quick_replies}
    return set(rules.intents), offered


@pytest.mark.parametrize("name", ["default_rules.json", "fallback_rules.json"])
def test_every_packaged_quick_reply_names_an_intent(name: str) -> None:
    intents, offered = _all_intents_and_quick_replies(load_rules(None, name))
    assert offered <= intents


def test_the_fallback_set_says_the_assistant_is_away(fallback: RuleEngine) -> None:
    reply = fallback.reply("What are your opening hours?")
    assert reply.parts[0].text == (
        "Sorry, our assistant is temporarily unavailable. Type 'agent' to reach a human."
    )
    assert (reply.intent, reply.handoff) == ("assistant_unavailable", False)
    assert fallback.reply("Agent!").handoff is True
    assert fallback.reply(None, interactive_id="handoff").handoff is True


def test_ties_go_to_faq_then_file_order() -> None:
    rules = RuleSet.from_dict(
        {
            "faq": [{"intent": "faq", "keywords": ["plan"], "answer": "faq"}],
            "keywords": [
                {"intent": "first", "keywords": ["plan"], "answer": "first"},
                {"intent": "second", "keywords": ["plan", "price"], "answer": "second"},
            ],
            "default": {"answer": "?"},
        }
    )
    engine = RuleEngine(rules)
    assert engine.reply("plan").intent == "faq"
    assert engine.reply("plan price").intent == "second"  # more keywords, higher score


def test_load_rules_reads_a_file_instead_of_the_packaged_set(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"default": {"answer": ["One.", "Two."]}}), encoding="utf-8")
    reply = RuleEngine(load_rules(str(path), "fallback_rules.json")).reply("agent")
    assert [p.text for p in reply.parts] == ["One.", "Two."]
    assert reply.handoff is False  # this set has no handoff intent


@pytest.mark.parametrize(
    ("document", "error"),
    [
        ([], "a JSON object"),
        ({}, "needs a 'default'"),
        ({"default": {"answer": "x"}, "smalltalk": []}, "unknown rule set sections"),
        ({"default": {}}, "default.answer"),
        ({"default": {"answer": "x", "quick_replies": [{"id": "a"}]}}, "quick_replies[0]"),
        ({"default": {"answer": "x"}, "faq": [{"answer": "y"}]}, "faq[0].intent"),
        ({"default": {"answer": "x"}, "faq": {"intent": "a"}}, "faq must be a list"),
        ({"default": {"answer": "x"}, "handoff": {"phrases": ["?!"], "answer": "y"}}, "letters"),
        (
            {"default": {"answer": "x"}, "keywords": [{"intent": "default", "answer": "y"}]},
            "unique",
        ),
    ],
)
def test_invalid_rule_sets_are_rejected_with_the_reason(
    tmp_path: Path, document: Any, error: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.json") as caught:
        load_rules(str(path), "default_rules.json")
    assert error in str(caught.value)


def test_a_file_that_is_not_json_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken\.json"):
        load_rules(str(path), "default_rules.json")
