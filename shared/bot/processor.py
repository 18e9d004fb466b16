"""The bot turn for one ``com.chatbot.message.received.v1`` event, idempotent and resumable.

The inbound message document is the checkpoint (``processing.state`` in docs/data-model.md)::

    stored ──▶ screened ──▶ replying ──▶ replied
       └──────────┴──▶ skipped (handoff · rate_limited · blocked)

``replying``: the answer is stored (the replies in the checkpoint and as outbound documents)
and being published; ``replied``: the dispatcher has sent (or failed) every reply of the turn,
or the answer had none. A redelivered event continues from the recorded state:
``replied``/``skipped`` is a no-op; ``replying`` republishes the stored replies (the engine is
not asked again, and the outbound ids are derived from the inbound id, so the dispatcher
sends each reply once).
Replies are stored before they are published, never the other way round.

Round trips (docs/architecture.md, "Round trips"): the processor writes MongoDB three times in
a turn that replies — the message stored (content withheld), the conversation counted, and the
answer: one ``bulkWrite`` command with the checkpoint (screened content, replies), the outbound
documents and the conversation's reply count (:meth:`shared.store.messages.MessageStore.reply`).
What happens before the answer — the conversation and the limits have seen the message, the
content is screened — is kept in ``_Turn.unwritten`` and goes with it; a turn that stops before
it (a dependency down: 503, the event comes back) writes it on its own first
(:meth:`MessageProcessor._save_progress`), so a retry neither counts the message again nor asks
the Security Hub again. Only a crash in that window repeats them, as a crash between two writes
always could; a crash between the answer's write and the session's record leaves the engine's
context without that turn (the history has it).

Decisions (see docs/architecture.md): handoff is checked before the rate limit (a human's
conversation spends none of the bot's budget); a rate-limited or blocked message gets no reply
(a "slow down" or refusal message would itself spend sends on the abuser and tell a prober what
tripped the filter); a message is counted against the limits once, when first stored, so our
own retries never use up the user's budget.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from shared import events, metrics
from shared.bot.backends import Conversations, Limiter, Messages, Producer, Sessions
from shared.bot.breaker import CircuitOpen
from shared.bot.ports import ConversationContext, Engine, EngineReply, SecurityHub, Verdict
from shared.bot.turn import SOURCE, build_replies, parse_event, session_turns
from shared.clock import Clock, system_clock
from shared.dataclass import dataclass, field
from shared.errors import DependencyUnavailable, describe
from shared.models import Author, InboundMessage, OutboundMessage
from shared.settings import Settings
from shared.store import content
from shared.store import conversations as conv
from shared.store import messages as msgs
from shared.store.messages import with_text

log = logging.getLogger(__name__)

_SEVERITY = {Verdict.ALLOW: 0, Verdict.REDACT: 1, Verdict.BLOCK: 2}


@dataclass
class _Turn:
    event_id: str
    message: InboundMessage
    doc: dict[str, Any]
    # Checkpoint fields ($set paths) done but not written yet: they go with the next write.
    unwritten: dict[str, Any] = field(default_factory=dict)

    @property
    def state(self) -> str:
        return str(self.doc["processing"]["state"])


@dataclass
class MessageProcessor:
    settings: Settings
    messages: Messages
    conversations: Conversations
    limiter: Limiter
    sessions: Sessions
    hub: SecurityHub
    engine: Engine
    producer: Producer
    fallback: Engine | None = None  # the rule-based stand-in while the engine is down
    prepare: Callable[[], None] = lambda: None  # e.g. create the indexes on first use
    clock: Clock = system_clock

    def handle_event(self, event: Any) -> str:
        if event.get("type") != events.MESSAGE_RECEIVED:
            return "ignored"
        event_id, message = parse_event(event)
        # Past the sender's budget at the webhook (shared.ingress): stored, never answered.
        over = event.get(events.OVERFLOW_ATTRIBUTE) == events.OVERFLOW_RATE_LIMITED
        outcome = self._handle(event_id, message, over_budget=over)
        metrics.messages_processed.labels(message.tenant_id, message.channel, outcome).inc()
        return outcome

    def _handle(self, event_id: str, message: InboundMessage, *, over_budget: bool = False) -> str:
        self.prepare()
        now = self._now()
        # Stored withheld: the content is written only once screened (shared.store.content).
        stored = self.messages.insert_inbound(event_id, content.withheld(message), now)
        if stored.document is None:
            log.info(
                "platform message stored under another event", extra={"other": stored.duplicate_of}
            )
            return "duplicate"
        turn = _Turn(event_id, message, stored.document)
        if turn.state in msgs.FINAL_STATES:
            return "duplicate"
        if turn.state == msgs.REPLYING:
            return self._republish(turn)  # the answer is decided: only its sending is left
        processing = turn.doc["processing"]
        try:
            if processing.get("recorded"):
                conversation = self.conversations.ensure(message, now)
            else:
                # The first delivery, or a retry after a crash between storing the message
                # and recording it on its conversation: the 24-hour window (last_inbound_at)
                # and the count must still see it. A crash before the flag is written repeats
                # the count once.
                conversation = self.conversations.record_inbound(message, now)
                turn.unwritten["processing.recorded"] = True
            check_limit = not processing.get("limit_checked")
            outcome = self._gate(
                turn, conversation["state"], check_limit=check_limit, over_budget=over_budget
            )
            return outcome if outcome is not None else self._resume(turn)
        except Exception:
            self._save_progress(turn)
            raise

    def _resume(self, turn: _Turn) -> str:
        """Continue from the recorded state (states only move forward, so this ends)."""
        if turn.state in msgs.FINAL_STATES:
            return "duplicate"
        if turn.state == msgs.STORED:
            return self._screen(turn)
        if turn.state == msgs.SCREENED:
            return self._reply(turn)
        return self._republish(turn)

    def _gate(
        self,
        turn: _Turn,
        conversation_state: str,
        *,
        check_limit: bool,
        over_budget: bool = False,
    ) -> str | None:
        """Handoff and rate limits: the reasons to store a message and not answer it."""
        message = turn.message
        if conversation_state == conv.CLOSED:
            # The user wrote again: the conversation is live again, and the bot takes it.
            self.conversations.change_state(
                message.tenant_id,
                message.conversation_key,
                from_state=conv.CLOSED,
                to_state=conv.OPEN,
                now=self._now(),
            )
        if conversation_state == conv.HANDOFF:
            # An agent reads it: stored once screened, like any message (a blocked one keeps
            # only its verdict).
            fields, _ = self._screened(turn.message)
            return self._skip(turn, "handoff", fields)
        if over_budget:  # the webhook counted the sender past their budget: no turn spent
            metrics.rate_limited.labels(message.channel, "user").inc()
            return self._skip(turn, "rate_limited", {"processing.limit": "user"})
        if check_limit:  # once per message: our own retries never spend a user's budget again
            decision = self.limiter.check(message.tenant_id, message.channel, message.sender.id)
            turn.unwritten["processing.limit_checked"] = True
            if not decision.allowed:
                metrics.rate_limited.labels(message.channel, str(decision.scope)).inc()
                return self._skip(turn, "rate_limited", {"processing.limit": str(decision.scope)})
        return None

    def _screen(self, turn: _Turn) -> str:
        fields, blocked = self._screened(turn.message)
        if blocked:
            return self._skip(turn, "blocked", fields)
        # Stored with the replies, one write later (see the module's docstring).
        turn.unwritten.update(fields)
        return self._reply(turn)

    def _screened(self, message: InboundMessage) -> tuple[dict[str, Any], bool]:
        """The message's content as screened (the ``$set`` that stores it), and whether it is
        blocked (then only the verdict is stored). Hub down raises DependencyUnavailable (503,
        retried): content is never stored unscreened."""
        verdicts, text = [], message.text
        if message.text:
            screening = self.hub.screen(message.tenant_id, message.text, direction="inbound")
            verdicts.append(screening)
            text = screening.text if screening.verdict == Verdict.REDACT else message.text
        extra = content.platform_content(message)
        if extra:
            verdicts.append(self.hub.screen(message.tenant_id, extra, direction="inbound"))
        fields: dict[str, Any] = {}
        if verdicts:
            worst = max(verdicts, key=lambda v: _SEVERITY[v.verdict])
            fields["processing.screening"] = {"verdict": str(worst.verdict), "reason": worst.reason}
            if worst.verdict == Verdict.BLOCK:
                return fields, True
        redacted = any(v.verdict == Verdict.REDACT for v in verdicts)
        return {**fields, **content.screened_fields(message, text, redacted=redacted)}, False

    def _reply(self, turn: _Turn) -> str:
        # The screened text (redacted where the hub said so), stored or about to be.
        message = with_text(turn.message, turn.unwritten.get("text", turn.doc.get("text")))
        context = self.sessions.context(
            message.tenant_id, message.channel, message.conversation_key
        )
        reply, author = self._generate(context, message)
        replies = build_replies(turn.event_id, message, reply, author, self._now())
        fields = {
            **turn.unwritten,
            "processing.reply_ids": [r.message_id for r in replies],
            "processing.replies": [r.to_dict() for r in replies],
            "processing.intent": reply.intent,
            "processing.handoff": reply.handoff,
        }
        stored = self._store_answer(
            turn,
            message,
            replies,
            reply.intent,
            reply.handoff,
            from_states=(msgs.STORED, msgs.SCREENED),
            fields=fields,
        )
        if not stored:
            return self._resume(self._reload(turn))
        turn.unwritten.clear()
        for r in replies:
            metrics.messages_replied.labels(message.tenant_id, message.channel, r.author).inc()
        self._publish(replies)
        return _outcome(replies)

    def _store_answer(
        self,
        turn: _Turn,
        message: InboundMessage,
        replies: list[OutboundMessage],
        intent: str,
        handoff: bool,
        *,
        from_states: tuple[str, ...],
        fields: dict[str, Any],
    ) -> bool:
        stored = self.messages.reply(
            message,
            turn.event_id,
            from_states=from_states,
            fields=fields,
            replies=replies,
            handoff=handoff,
            now=self._now(),
        )
        if stored:
            # Only the delivery that stored the answer records it in the session, so the
            # engine sees each turn once; before the publish, which a retry repeats from the
            # stored answer without coming here again.
            self.sessions.record(
                message.conversation_key,
                session_turns(message, replies),
                {"last_intent": intent} if intent else None,
            )
        return stored

    def _generate(
        self, context: ConversationContext, message: InboundMessage
    ) -> tuple[EngineReply, Author]:
        try:
            return self.engine.generate_reply(context, message), Author.BOT
        except DependencyUnavailable as exc:
            if not self.settings.fallback_enabled or self.fallback is None:
                raise
            reason = "breaker_open" if isinstance(exc, CircuitOpen) else "engine_error"
            metrics.engine_fallback.labels(reason).inc()
            log.warning("engine unavailable: fallback reply", extra={"reason": exc.message})
            return self.fallback.generate_reply(context, message), Author.FALLBACK

    def _republish(self, turn: _Turn) -> str:
        """The answer is stored (``replying``) but this delivery cannot know whether it went
        out: publish it again. The reply events carry the ids derived from the inbound id, so
        the dispatcher sends each once."""
        processing = turn.doc["processing"]
        replies = [OutboundMessage.from_dict(r) for r in processing.get("replies") or ()]
        if "answer" not in processing:
            return self._finish_legacy(turn, replies)
        self._publish(replies)
        return _outcome(replies)

    def _finish_legacy(self, turn: _Turn, replies: list[OutboundMessage]) -> str:
        """A turn left in ``replying`` by the version that wrote the outbound documents, the
        count and the handoff after its publish, and ``replied`` in the processor: finished
        that way, once (the answer's guard). Its dispatcher may have created and sent the
        replies already, without naming the turn, so nothing else would end it."""
        processing = turn.doc["processing"]
        stored = self._store_answer(
            turn,
            with_text(turn.message, turn.doc.get("text")),
            replies,
            str(processing.get("intent") or ""),
            bool(processing.get("handoff")),
            from_states=(msgs.REPLYING,),
            fields={},
        )
        if not stored:  # another delivery did it, or the message was erased meanwhile
            return self._resume(self._reload(turn))
        self._publish(replies)
        self._advance(turn, (msgs.REPLYING,), msgs.REPLIED)
        return _outcome(replies)

    def _publish(self, replies: list[OutboundMessage]) -> None:
        if replies:
            topic = self.settings.outbound_topic
            self.producer.publish(
                [(topic, events.message_outbound(r, source=SOURCE)) for r in replies]
            )

    def _skip(self, turn: _Turn, reason: str, fields: dict[str, Any] | None = None) -> str:
        from_states = (msgs.STORED, msgs.SCREENED)
        update = {"processing.reason": reason, **(fields or {})}
        if self._advance(turn, from_states, msgs.SKIPPED, update) is None:
            return self._resume(self._reload(turn))
        message = turn.message
        metrics.messages_skipped.labels(message.tenant_id, message.channel, reason).inc()
        return reason

    def _advance(
        self,
        turn: _Turn,
        from_states: tuple[str, ...],
        to_state: str,
        fields: dict[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """Move the checkpoint, writing what the turn has done since its last write too."""
        doc = self.messages.advance(
            turn.message.tenant_id,
            turn.event_id,
            from_states=from_states,
            to_state=to_state,
            now=self._now(),
            fields={**turn.unwritten, **(fields or {})},
        )
        if doc is not None:
            turn.unwritten.clear()
        return doc

    def _save_progress(self, turn: _Turn) -> None:
        """The turn stops here (a dependency is down: 503, and the event comes back): write
        what it did, so the retry does not do it again — screened content as ``screened``, the
        conversation's and the limits' flags as they are. Best effort: the failure being
        answered is the one that stopped the turn."""
        if not turn.unwritten:
            return
        try:
            if "processing.content" in turn.unwritten:
                self._advance(turn, (msgs.STORED,), msgs.SCREENED)
            else:
                self.messages.mark(turn.message.tenant_id, turn.event_id, dict(turn.unwritten))
        except Exception as exc:
            log.warning(
                "turn progress not recorded",
                extra={"event_id": turn.event_id, "error": describe(exc)},
            )

    def _reload(self, turn: _Turn) -> _Turn:
        """Another delivery of this event moved the checkpoint first: continue from its state."""
        doc = self.messages.get(turn.message.tenant_id, turn.event_id)
        if doc is None:  # deleted under us (a GDPR erase): nothing left to do
            return _Turn(turn.event_id, turn.message, {"processing": {"state": msgs.SKIPPED}})
        return _Turn(turn.event_id, turn.message, doc)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)


def _outcome(replies: list[OutboundMessage]) -> str:
    if not replies:
        return "no_reply"
    return "fallback" if replies[0].author == Author.FALLBACK else "replied"
