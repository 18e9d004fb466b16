"""Dead letters replayed with ``python -m shared.ops.deadletter`` on the whole local stack.

- A dead letter whose work was in fact done (the handler answered, the answer was lost, and
  Knative dead-lettered the event after its retries) replayed: no second reply.
- A bad engine release that rejects every request as INVALID_ARGUMENT: the processor answers
  400, so the turn is dead-lettered at once (no retry can help). After the rollback, a replay
  gets the user exactly one reply, however often it is run.

A stack of its own, with the fallback off as in test_engine_outage.py: a call that meets the
engine restarting is then retried by the KafkaSource, never answered from the fallback rules.
The engine test replaces the stack's engine on its port, so it comes last.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from typing import Any

import grpc
import pytest

from shared.grpc.gen.chatbot.mcp.v1 import mcp_engine_pb2 as pb
from shared.grpc.gen.chatbot.mcp.v1 import mcp_engine_pb2_grpc as pb_grpc
from shared.kafka import RecordProducer, TimedRecord, read_topic
from shared.kafkasource import delivery, manifests
from shared.refservers import mcp_engine
from tests.e2e.bot_support import Stack, call_text, poll
from tests.e2e.conftest import ROOT, RunningStack, module_stack

pytestmark = pytest.mark.e2e

RULES = json.loads((resources.files("shared.bot") / "default_rules.json").read_text())
GREETING = RULES["greeting"]["answer"]
HOURS = next(faq["answer"] for faq in RULES["faq"] if faq["intent"] == "faq_hours")
[PROCESSOR] = [s for s in manifests.load(ROOT / "kafka-sources") if s.name == "message-processor"]
DEAD_LETTERS = PROCESSOR.delivery.dead_letter_topic or ""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningStack, Stack]]:
    with module_stack(tmp_path_factory, {"FALLBACK_ENABLED": "false"}) as (running, endpoints):
        yield running, Stack(endpoints)


def deadletter(stack: Stack, *argv: str) -> subprocess.CompletedProcess[str]:
    """The command as an operator runs it, with the stack's broker."""
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BROKERS", "TOPIC_PREFIX")}
    result = subprocess.run(
        [sys.executable, "-m", "shared.ops.deadletter", *argv],
        cwd=ROOT,
        env={**env, "KAFKA_BROKERS": ",".join(stack.brokers)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, (argv, result.stdout, result.stderr)
    return result


def dead_letters_of(stack: Stack, event_id: str) -> list[Any]:
    records = read_topic(stack.brokers, DEAD_LETTERS)
    return [r for r in records if r.headers.get("ce_id") == event_id.encode()]


def test_replaying_a_dead_letter_whose_work_was_done_sends_nothing(
    stack: tuple[RunningStack, Stack],
) -> None:
    _, bot = stack
    chat = bot.telegram("Hello")
    bot.wait_calls(chat)
    inbound_topic, key = bot.topics["inbound"], chat.conversation_key
    [inbound] = bot.records(inbound_topic, key)
    event_id = inbound.headers["ce_id"].decode()
    # As Knative writes it when the handler did the work but its answer never came back.
    record = TimedRecord(**vars(inbound))
    event = delivery.to_http(record, PROCESSOR.name, "default")
    lost = delivery.Outcome(None, error="ReadTimeout: timed out")
    headers = delivery.dead_letter_headers(record, event, lost, bot.url(PROCESSOR.name) + "/")
    producer = RecordProducer(bot.brokers, client_id="e2e-dead-letter")
    try:
        producer.send(DEAD_LETTERS, record.key, headers, record.value)
    finally:
        producer.close()

    result = deadletter(bot, "replay", "--source", PROCESSOR.name, "--id", event_id)

    assert f"replayed  id={event_id}" in result.stdout and f"→ {inbound_topic}" in result.stdout
    assert len(bot.records(inbound_topic, key)) == 2  # the original and the replay
    # One conversation's records are handled in order: once the later message is answered,
    # the replay was handled before it.
    bot.telegram("What are your opening hours?", chat_id=chat.chat_id)
    assert [call_text(c) for c in bot.wait_calls(chat, 2)] == [GREETING, HOURS]


class RejectingEngine(pb_grpc.McpEngineServicer):
    """A bad engine release: every request refused as invalid."""

    def GenerateReply(
        self, request: pb.GenerateReplyRequest, context: grpc.ServicerContext
    ) -> pb.GenerateReplyResponse:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "e2e: the request is refused")
        raise AssertionError("abort raises")


def test_a_turn_dead_lettered_by_a_bad_engine_release_gets_one_reply_after_a_replay(
    stack: tuple[RunningStack, Stack],
) -> None:
    running, bot = stack
    engine = bot.endpoints["mcp_engine"]
    host, port = engine["address"].rsplit(":", 1)
    os.kill(engine["pid"], signal.SIGTERM)
    running.wait_for_line(f"!!! mcp-engine (pid {engine['pid']}) exited")
    rejecting = grpc.server(ThreadPoolExecutor(max_workers=2))
    pb_grpc.add_McpEngineServicer_to_server(RejectingEngine(), rejecting)
    rejecting.add_insecure_port(f"{host}:{port}")
    rejecting.start()
    restored: grpc.Server | None = None
    try:
        chat = bot.telegram("Hello")
        [inbound] = poll(
            "the inbound event", lambda: bot.records(bot.topics["inbound"], chat.conversation_key)
        )
        event_id = inbound.headers["ce_id"].decode()
        [letter] = poll(f"the turn on {DEAD_LETTERS}", lambda: dead_letters_of(bot, event_id))
        assert letter.headers["ce_knativeerrorcode"] == b"400"
        assert bot.calls(chat) == []
        shown = json.loads(deadletter(bot, "show", event_id, "--json").stdout)
        [dead] = shown["dead_letters"]
        assert dead["errors"]["knativeerrorcode"] == "400"
        assert "e2e: the request is refused" in json.dumps(dead["errors"]["knativeerrordata"])

        rejecting.stop(0).wait()  # the rollback
        restored = mcp_engine.serve(int(port), host=host)
        replay = ["replay", "--source", PROCESSOR.name, "--error-code", "400", "--id", event_id]
        deadletter(bot, *replay)
        [call] = bot.wait_calls(chat)
        assert call_text(call) == GREETING
        deadletter(bot, *replay)  # again: the turn is done, nothing is sent

        bot.telegram("What are your opening hours?", chat_id=chat.chat_id)
        assert [call_text(c) for c in bot.wait_calls(chat, 2)] == [GREETING, HOURS]
    finally:
        rejecting.stop(0)
        if restored is not None:
            restored.stop(0)
