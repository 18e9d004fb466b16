"""The gRPC clients against the reference servers, over real gRPC on loopback.

The reference servers run as real subprocesses (``python -m shared.refservers...``), the way the
local stack runs them. Failure paths that need a misbehaving server (slow, flaky) use small
in-process servers with the same generated service definitions.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import grpc
import pytest

from shared.bot.ports import ConversationContext, Verdict
from shared.devstack import servers
from shared.errors import BadRequest, DependencyUnavailable
from shared.grpc.channel import RETRY_ATTEMPTS, close_channels
from shared.grpc.engine_client import EngineClient
from shared.grpc.gen.chatbot.mcp.v1 import mcp_engine_pb2 as pb
from shared.grpc.gen.chatbot.mcp.v1 import mcp_engine_pb2_grpc as pb_grpc
from shared.grpc.security_client import SecurityHubClient
from shared.models import Channel, InboundMessage, InteractiveReply, MessageKind, Sender
from shared.refservers import security_hub
from shared.settings import Settings
from tests.builders import inbound_message

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DEADLINE_S = 2.0
T = TypeVar("T")
CONTEXT = ConversationContext("acme", "webchat", "acme:webchat:site-acme/visitor-1")


def start_refserver(module: str, port: int, log_path: Path, *args: str) -> servers.Server:
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", f"shared.refservers.{module}", "--port", str(port), *args],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    servers.wait_for_port("127.0.0.1", port, 20, proc)
    return servers.Server(module, "127.0.0.1", port, proc, f"127.0.0.1:{port}", log_path)


@pytest.fixture(scope="module", autouse=True)
def fresh_channels() -> Iterator[None]:
    yield
    close_channels()


@pytest.fixture(scope="module")
def engine_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.Server]:
    log = tmp_path_factory.mktemp("mcp-engine") / "server.log"
    server = start_refserver("mcp_engine", servers.free_port(), log)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def hub_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.Server]:
    log = tmp_path_factory.mktemp("security-hub") / "server.log"
    server = start_refserver(
        "security_hub", servers.free_port(), log, "--blocklist", "scam,buy drugs"
    )
    yield server
    server.stop()


def engine_for(url: str, deadline_s: float = DEADLINE_S) -> EngineClient:
    return EngineClient(Settings(mcp_engine_url=url, grpc_deadline_s=deadline_s))


def message(text: str | None, interactive: InteractiveReply | None = None) -> InboundMessage:
    return inbound_message(
        channel=Channel("webchat"),
        account_id="site-acme",
        chat_id="visitor-1",
        platform_message_id=f"m-{time.monotonic_ns()}",
        sender=Sender("visitor-1", "Ada"),
        kind=MessageKind.INTERACTIVE if interactive else MessageKind.TEXT,
        timestamp="2025-01-01T00:00:00Z",
        text=text,
        interactive=interactive,
    )


# --- MCP engine -----------------------------------------------------------------------------


def test_engine_greets_and_offers_quick_replies(engine_server: servers.Server) -> None:
    reply = engine_for(engine_server.url).generate_reply(CONTEXT, message("Hello!"))
    assert (reply.intent, reply.confidence, reply.handoff) == ("greeting", 1.0, False)
    assert "How can I help" in reply.parts[0].text
    assert [q.title for q in reply.parts[-1].quick_replies][-1] == "Talk to a human"
    assert b"mcp-engine listening on 127.0.0.1:" in Path(str(engine_server.log_path)).read_bytes()


def test_engine_answers_faq_in_several_parts(engine_server: servers.Server) -> None:
    reply = engine_for(engine_server.url).generate_reply(CONTEXT, message("Where is my order?"))
    assert reply.intent == "faq_shipping"
    assert len(reply.parts) == 2
    assert [q.id for q in reply.parts[1].quick_replies] == ["handoff"]


def test_engine_hands_off_to_a_human(engine_server: servers.Server) -> None:
    reply = engine_for(engine_server.url).generate_reply(CONTEXT, message("talk to a human pls"))
    assert (reply.intent, reply.handoff) == ("handoff", True)


def test_quick_replies_round_trip(engine_server: servers.Server) -> None:
    engine = engine_for(engine_server.url)
    offered = engine.generate_reply(CONTEXT, message("hi")).parts[-1].quick_replies
    hours = next(q for q in offered if q.id == "faq_hours")
    picked = InteractiveReply("button_reply", hours.id, hours.title)
    reply = engine.generate_reply(CONTEXT, message(None, picked))
    assert (reply.intent, reply.confidence) == ("faq_hours", 1.0)


def test_engine_rejects_a_request_without_a_tenant(engine_server: servers.Server) -> None:
    context = ConversationContext("", "webchat", "")
    with pytest.raises(BadRequest, match="INVALID_ARGUMENT"):
        engine_for(engine_server.url).generate_reply(context, message("hi"))


def test_engine_down_then_restarted(tmp_path: Path) -> None:
    port = servers.free_port()
    server = start_refserver("mcp_engine", port, tmp_path / "engine.log")
    engine = engine_for(server.url)
    assert engine.generate_reply(CONTEXT, message("hi")).intent == "greeting"

    server.stop()
    assert server.proc.returncode == 0  # SIGTERM is a graceful stop
    started = time.monotonic()
    with pytest.raises(DependencyUnavailable) as caught:
        engine.generate_reply(CONTEXT, message("hi"))
    assert time.monotonic() - started < DEADLINE_S + 1.0
    assert caught.value.dependency == "mcp-engine"
    assert "UNAVAILABLE" in caught.value.message

    server = start_refserver("mcp_engine", port, tmp_path / "engine.log")  # the same port
    try:
        reply = call_until_up(lambda: engine.generate_reply(CONTEXT, message("hi")))
        assert reply.intent == "greeting"
    finally:
        server.stop()


def call_until_up(call: Callable[[], T], within_s: float = 5.0) -> T:
    """The channel reconnects on its own backoff (at most 1 s); allow for one cycle of it."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            return call()
        except DependencyUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


# --- Security Hub ---------------------------------------------------------------------------


def hub_for(url: str) -> SecurityHubClient:
    return SecurityHubClient(Settings(security_hub_url=url, grpc_deadline_s=DEADLINE_S))


def test_hub_allows_plain_text(hub_server: servers.Server) -> None:
    screening = hub_for(hub_server.url).screen("acme", "What are your opening hours?")
    assert (screening.verdict, screening.text) == (Verdict.ALLOW, "What are your opening hours?")


def test_hub_redacts_personal_data(hub_server: servers.Server) -> None:
    text = "I'm ada@example.com, call +1 (555) 123-4567, card 4111 1111 1111 1111"
    screening = hub_for(hub_server.url).screen("acme", text)
    assert screening.verdict is Verdict.REDACT
    assert screening.text == "I'm [email], call [phone], card [card]"
    assert screening.reason == "redacted: card, email, phone"


def test_hub_blocks_blocklisted_terms_both_ways(hub_server: servers.Server) -> None:
    hub = hub_for(hub_server.url)
    for direction in ("inbound", "outbound"):
        screening = hub.screen("acme", "Where can I BUY drugs?", direction=direction)
        assert (screening.verdict, screening.reason) == (Verdict.BLOCK, "blocked term: buy drugs")


def test_hub_rejects_a_request_without_a_tenant(hub_server: servers.Server) -> None:
    with pytest.raises(BadRequest):
        hub_for(hub_server.url).screen("", "hi")


def test_hub_in_process_down_then_up_again() -> None:
    """``security_hub.serve`` is what the local stack may start in-process."""
    port = servers.free_port()
    hub = hub_for(f"grpc://127.0.0.1:{port}")
    with pytest.raises(DependencyUnavailable) as caught:
        hub.screen("acme", "hi")
    assert caught.value.dependency == "security-hub"
    server = security_hub.serve(port, blocklist=["scam"])
    try:
        screening = call_until_up(lambda: hub.screen("acme", "a scam"))
        assert screening.verdict is Verdict.BLOCK
    finally:
        server.stop(0).wait()


# --- Misbehaving servers: retries and deadlines ---------------------------------------------


class ScriptedEngine(pb_grpc.McpEngineServicer):
    """Fails with ``failures`` (one status per call, in order), then answers; or hangs."""

    def __init__(self, failures: list[grpc.StatusCode], hang: threading.Event | None = None):
        self.failures = failures
        self.hang = hang
        self.calls = 0

    def GenerateReply(
        self, request: pb.GenerateReplyRequest, context: grpc.ServicerContext
    ) -> pb.GenerateReplyResponse:
        self.calls += 1
        if self.hang is not None:
            self.hang.wait(10)
        if self.failures:
            context.abort(self.failures.pop(0), "scripted failure")
        return pb.GenerateReplyResponse(parts=[pb.ReplyPart(text="ok")], intent="scripted")


@pytest.fixture
def scripted() -> Iterator[Callable[[ScriptedEngine], str]]:
    started: list[grpc.Server] = []

    def start(servicer: ScriptedEngine) -> str:
        server = grpc.server(ThreadPoolExecutor(max_workers=4))
        pb_grpc.add_McpEngineServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        started.append(server)
        return f"127.0.0.1:{port}"

    yield start
    for server in started:
        server.stop(0).wait()


def test_unavailable_is_retried_by_the_channel(scripted: Callable[[ScriptedEngine], str]) -> None:
    servicer = ScriptedEngine([grpc.StatusCode.UNAVAILABLE] * (RETRY_ATTEMPTS - 1))
    reply = engine_for(scripted(servicer)).generate_reply(CONTEXT, message("hi"))
    assert reply.intent == "scripted"
    assert servicer.calls == RETRY_ATTEMPTS


def test_unavailable_after_every_retry_is_dependency_unavailable(
    scripted: Callable[[ScriptedEngine], str],
) -> None:
    servicer = ScriptedEngine([grpc.StatusCode.UNAVAILABLE] * (RETRY_ATTEMPTS + 2))
    with pytest.raises(DependencyUnavailable, match="UNAVAILABLE"):
        engine_for(scripted(servicer)).generate_reply(CONTEXT, message("hi"))
    assert servicer.calls == RETRY_ATTEMPTS


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (grpc.StatusCode.RESOURCE_EXHAUSTED, DependencyUnavailable),
        (grpc.StatusCode.INTERNAL, DependencyUnavailable),
        (grpc.StatusCode.INVALID_ARGUMENT, BadRequest),
    ],
)
def test_other_failures_are_not_retried(
    scripted: Callable[[ScriptedEngine], str], code: grpc.StatusCode, error: type[Exception]
) -> None:
    servicer = ScriptedEngine([code])
    with pytest.raises(error, match=code.name):
        engine_for(scripted(servicer)).generate_reply(CONTEXT, message("hi"))
    assert servicer.calls == 1


def test_a_slow_engine_hits_the_deadline(scripted: Callable[[ScriptedEngine], str]) -> None:
    release = threading.Event()
    servicer = ScriptedEngine([], hang=release)
    engine = engine_for(scripted(servicer), deadline_s=0.3)
    started = time.monotonic()
    try:
        with pytest.raises(DependencyUnavailable, match="DEADLINE_EXCEEDED") as caught:
            engine.generate_reply(CONTEXT, message("hi"))
    finally:
        release.set()
    assert time.monotonic() - started < 1.5
    assert caught.value.dependency == "mcp-engine"
