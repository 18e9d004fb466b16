"""The engine down with the fallback off (``FALLBACK_ENABLED=false``): the message-processor
answers 503, the KafkaSource dispatcher retries per kafka-sources/message-processor.yaml, and
the engine's reply arrives once the engine is back — nothing lost, nothing twice.

A stack of its own, because the fallback is a setting of the message-processor's process. Its
manifest waits 1, 2, 4, 8, 16, 32 s between attempts (~1 min): the engine is restarted on the
same port as soon as the first retry is logged, well within that window.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from shared.devstack import servers
from tests.e2e.bot_support import Stack, call_text, poll
from tests.e2e.conftest import ROOT, RunningStack, module_stack

pytestmark = pytest.mark.e2e

RULES = json.loads((resources.files("shared.bot") / "default_rules.json").read_text())
GREETING = RULES["greeting"]["answer"]


@pytest.fixture(scope="module")
def no_fallback(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningStack, Stack]]:
    with module_stack(tmp_path_factory, {"FALLBACK_ENABLED": "false"}) as (running, endpoints):
        yield running, Stack(endpoints)


def _log_entries(path: Path) -> list[dict[str, Any]]:
    entries = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue  # a line that is not JSON (a traceback): not a delivery record
    return entries


def test_engine_down_without_fallback_retries_until_the_engine_is_back(
    no_fallback: tuple[RunningStack, Stack], tmp_path: Path
) -> None:
    running, stack = no_fallback
    engine = stack.endpoints["mcp_engine"]
    host, port = engine["address"].rsplit(":", 1)
    os.kill(engine["pid"], signal.SIGTERM)
    running.wait_for_line(f"!!! mcp-engine (pid {engine['pid']}) exited")

    chat = stack.telegram("Hello")
    [inbound] = poll(
        "the inbound event", lambda: stack.records(stack.topics["inbound"], chat.conversation_key)
    )
    event_id = inbound.headers["ce_id"].decode()
    dispatcher_log = Path(stack.endpoints["dispatcher"]["log"])

    def retried() -> list[dict[str, Any]]:
        return [
            e
            for e in _log_entries(dispatcher_log)
            if e.get("message") == "delivery failed, retrying"
            and e.get("kafkasource") == "message-processor"
            and e.get("event_id") == event_id
        ]

    [first_retry, *_] = poll("the message-processor's 503, retried", retried)
    assert first_retry["outcome"] == "HTTP 503"
    assert stack.calls(chat) == []  # no fallback reply: the turn waits for the engine

    log = tmp_path / "mcp-engine.log"
    with open(log, "wb") as out:
        restarted = subprocess.Popen(
            [sys.executable, "-m", "shared.refservers.mcp_engine", "--host", host, "--port", port],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        servers.wait_for_port(host, int(port), 15, restarted)
        [call] = stack.wait_calls(chat, timeout_s=40)  # the next retries are 2, 4, 8 s apart
        assert call_text(call) == GREETING  # the engine's answer, not a fallback
        [delivered] = [
            e
            for e in _log_entries(dispatcher_log)
            if e.get("kafkasource") == "message-processor" and e.get("event_id") == event_id
            if e.get("message") in ("delivered", "delivery failed, event dead-lettered")
        ]
        assert delivered["message"] == "delivered"
        assert delivered["retry"] >= 1  # the same event, retried: not a second one
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(timeout=10)
