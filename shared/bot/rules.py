"""A rule-based bot: greetings, FAQ entries, keyword answers, a human-handoff intent, a default.

Two users: the reference MCP engine answers with the packaged ``default_rules.json``, and the
message processor falls back to a smaller set (``fallback_rules.json`` or
``Settings.fallback_rules_file``) while the engine is unreachable. Pure apart from
:func:`load_rules`. A rule set is JSON; only ``default`` is required::

    {
      "greeting": {"phrases": ["hi", "hello"], "answer": "Hello!", "quick_replies": [...]},
      "handoff":  {"phrases": ["agent", "talk to a human"], "answer": "Connecting you..."},
      "faq":      [{"intent": "faq_hours", "phrases": ["opening hours"], "keywords": ["open"],
                    "answer": "9 to 5."}],
      "keywords": [{"intent": "pricing", "keywords": ["price", "cost"], "answer": "..."}],
      "default":  {"answer": "Sorry, I did not get that.", "quick_replies": [...]}
    }

``answer`` is one string or a list (one reply part each); quick replies are
``{"id", "title"}`` and go with the last part. Text is compared casefolded, without accents
and with punctuation as spaces, so "Hi!!" matches "hi"; phrases and keywords match whole words.
The reply is chosen in this order:

1. an interactive reply whose id names an intent: that intent (so quick replies round-trip);
2. a handoff phrase: ``handoff=True``;
3. the best-scoring FAQ or keyword rule (ties: FAQ first, then file order): the message
   equals a phrase 1.0, contains one 0.9, contains keywords 0.5 + 0.1 each (at most 0.8);
4. a greeting phrase;
5. the default answer, confidence 0.
"""

from __future__ import annotations

import json
import re
import unicodedata
from importlib import resources
from pathlib import Path
from typing import Any

from shared.bot.ports import ConversationContext, EngineReply, ReplyPart
from shared.dataclass import dataclass
from shared.models import InboundMessage, QuickReply

HANDOFF = "handoff"
_SEPARATORS = re.compile(r"[\W_]+")


def normalize(text: str) -> str:
    """Casefolded, accents and punctuation removed, words separated by single spaces."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _SEPARATORS.sub(" ", bare).strip()


@dataclass(frozen=True)
class Rule:
    intent: str
    answers: tuple[str, ...]
    quick_replies: tuple[QuickReply, ...] = ()
    phrases: tuple[str, ...] = ()  # normalized
    keywords: tuple[str, ...] = ()  # normalized
    handoff: bool = False  # answering hands the conversation to a human

    def score(self, text: str) -> float:
        """How well normalized ``text`` matches this rule, 0.0 (not at all) to 1.0."""
        padded = f" {text} "
        best = 0.0
        for phrase in self.phrases:
            if text == phrase:
                return 1.0
            if f" {phrase} " in padded:
                best = 0.9
        hits = sum(1 for keyword in self.keywords if f" {keyword} " in padded)
        if hits:
            best = max(best, min(0.8, 0.5 + 0.1 * hits))
        return best

    def reply(self, confidence: float) -> EngineReply:
        parts = [ReplyPart(text) for text in self.answers]
        parts[-1] = ReplyPart(parts[-1].text, self.quick_replies)
        return EngineReply(
            parts=tuple(parts),
            intent=self.intent,
            confidence=confidence,
            handoff=self.handoff,
        )


@dataclass(frozen=True)
class RuleSet:
    default: Rule
    greeting: Rule | None = None
    handoff: Rule | None = None
    faq: tuple[Rule, ...] = ()
    keywords: tuple[Rule, ...] = ()

    @property
    def intents(self) -> dict[str, Rule]:
        rules = [self.greeting, self.handoff, *self.faq, *self.keywords, self.default]
        return {rule.intent: rule for rule in rules if rule is not None}

    @classmethod
    def from_dict(cls, data: Any) -> RuleSet:
        if not isinstance(data, dict):
            raise ValueError("a rule set is a JSON object")
        unknown = set(data) - {"greeting", "handoff", "faq", "keywords", "default"}
        if unknown:
            raise ValueError(f"unknown rule set sections: {sorted(unknown)}")
        if "default" not in data:
            raise ValueError("a rule set needs a 'default' answer")
        rule_set = cls(
            default=_rule(data["default"], "default", "default"),
            greeting=_rule(data["greeting"], "greeting", "greeting")
            if "greeting" in data
            else None,
            handoff=_rule(data["handoff"], "handoff", HANDOFF) if "handoff" in data else None,
            faq=tuple(_rule(r, f"faq[{i}]") for i, r in enumerate(_list(data, "faq", "rule set"))),
            keywords=tuple(
                _rule(r, f"keywords[{i}]")
                for i, r in enumerate(_list(data, "keywords", "rule set"))
            ),
        )
        named = [r.intent for r in (*rule_set.faq, *rule_set.keywords)]
        fixed = [r.intent for r in (rule_set.greeting, rule_set.handoff, rule_set.default) if r]
        if len(set(named + fixed)) != len(named) + len(fixed):
            raise ValueError(f"intent names must be unique: {sorted(named + fixed)}")
        return rule_set


class RuleEngine:
    """Answers from a :class:`RuleSet`; also a :class:`shared.bot.ports.Engine`."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules
        self._intents = rules.intents

    def reply(self, text: str | None, *, interactive_id: str = "") -> EngineReply:
        chosen = self._intents.get(interactive_id) if interactive_id else None
        if chosen is not None:
            return chosen.reply(1.0)
        normalized = normalize(text or "")
        if self.rules.handoff and (score := self.rules.handoff.score(normalized)):
            return self.rules.handoff.reply(score)
        best, best_score = None, 0.0
        for rule in (*self.rules.faq, *self.rules.keywords):
            score = rule.score(normalized)
            if score > best_score:
                best, best_score = rule, score
        if best is not None:
            return best.reply(best_score)
        if self.rules.greeting and (score := self.rules.greeting.score(normalized)):
            return self.rules.greeting.reply(score)
        return self.rules.default.reply(0.0)

    def generate_reply(self, context: ConversationContext, message: InboundMessage) -> EngineReply:
        interactive = message.interactive
        text = message.text or (interactive.title if interactive else None)
        return self.reply(text, interactive_id=interactive.id if interactive else "")


def load_rules(path: str | None, default: str) -> RuleSet:
    """The rule set in file ``path`` or, when it is empty, the packaged ``shared/bot/<default>``.

    Raises ValueError (naming the source) for a file that is not a valid rule set, so a
    misconfiguration stops the service at startup rather than at the first fallback.
    """
    if path:
        source, raw = path, Path(path).read_text(encoding="utf-8")
    else:
        source = f"shared/bot/{default}"
        raw = resources.files("shared.bot").joinpath(default).read_text(encoding="utf-8")
    try:
        return RuleSet.from_dict(json.loads(raw))
    except ValueError as exc:  # json.JSONDecodeError is a ValueError too
        raise ValueError(f"rule set {source}: {exc}") from exc


def _list(data: dict[str, Any], key: str, where: str) -> list[Any]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise ValueError(f"{where}.{key} must be a list")
    return value


def _strings(data: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = data.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError(f"{where}.{key} must be a non-empty string or a list of them")
    return tuple(value)


def _rule(data: Any, where: str, intent: str | None = None) -> Rule:
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be an object")
    name = data.get("intent", intent)
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where}.intent must be a non-empty string")
    answers = _strings(data, "answer", where)
    if not answers:
        raise ValueError(f"{where}.answer is required")
    quick_replies = []
    for i, item in enumerate(_list(data, "quick_replies", where)):
        if not isinstance(item, dict) or not all(
            isinstance(item.get(k), str) and item[k] for k in ("id", "title")
        ):
            raise ValueError(f"{where}.quick_replies[{i}] needs an 'id' and a 'title'")
        quick_replies.append(QuickReply(id=item["id"], title=item["title"]))
    phrases = tuple(normalize(p) for p in _strings(data, "phrases", where))
    keywords = tuple(normalize(k) for k in _strings(data, "keywords", where))
    if "" in phrases + keywords:
        raise ValueError(f"{where}: a phrase or keyword has no letters or digits")
    return Rule(name, answers, tuple(quick_replies), phrases, keywords, intent == HANDOFF)
