"""Client-side mapping between the bot ports and the protobuf messages, and channel targets.

Calls over real gRPC are in tests/integration/test_grpc_services.py.
"""

from __future__ import annotations

import pytest

from shared.bot.ports import ConversationContext, Turn, Verdict
from shared.errors import DependencyUnavailable
from shared.grpc import engine_client, security_client
from shared.grpc.channel import Target, parse_target
from shared.grpc.gen.chatbot.mcp.v1 import mcp_engine_pb2 as engine_pb
from shared.grpc.gen.chatbot.security.v1 import security_hub_pb2 as security_pb
from shared.models import Channel, InboundMessage, InteractiveReply, MessageKind, QuickReply, Sender
from shared.settings import Settings


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("mcp-engine-service:50051", Target("mcp-engine-service:50051", tls=False)),
        ("grpc://127.0.0.1:50051", Target("127.0.0.1:50051", tls=False)),
        ("grpcs://engine.example.com:443/", Target("engine.example.com:443", tls=True)),
        (" grpcs://[::1]:50052 ", Target("[::1]:50052", tls=True)),
    ],
)
def test_parse_target(url: str, target: Target) -> None:
    assert parse_target(url) == target


@pytest.mark.parametrize("url", ["", "grpcs://", "http://engine:80", "engine:1/path"])
def test_parse_target_rejects_what_is_not_host_port(url: str) -> None:
    with pytest.raises(ValueError, match="host:port"):
        parse_target(url)


def test_to_request_carries_the_whole_context() -> None:
    context = ConversationContext(
        tenant_id="acme",
        channel="telegram",
        conversation_key="acme:telegram:7000000001/42",
        history=(Turn("user", "hi"), Turn("bot", "Hello!")),
        session={"locale": "de"},
    )
    message = InboundMessage(
        tenant_id="acme",
        channel=Channel("telegram"),
        account_id="7000000001",
        chat_id="42",
        platform_message_id="update-9",
        sender=Sender("42", "Ada"),
        kind=MessageKind.INTERACTIVE,
        timestamp="2025-01-01T00:00:00Z",
        interactive=InteractiveReply("callback_query", "faq_hours", "Opening hours"),
    )
    request = engine_client.to_request(context, message)
    assert (request.tenant_id, request.channel) == ("acme", "telegram")
    assert request.conversation_key == "acme:telegram:7000000001/42"
    assert [(t.role, t.text) for t in request.history] == [("user", "hi"), ("bot", "Hello!")]
    assert dict(request.session) == {"locale": "de"}
    assert request.message == engine_pb.Message(
        id="update-9",
        text="",
        kind="interactive",
        sender_id="42",
        sender_name="Ada",
        interactive_reply_id="faq_hours",
        interactive_reply_title="Opening hours",
    )


def test_from_response_builds_the_engine_reply() -> None:
    response = engine_pb.GenerateReplyResponse(
        parts=[
            engine_pb.ReplyPart(text="One."),
            engine_pb.ReplyPart(
                text="Two.", quick_replies=[engine_pb.QuickReply(id="handoff", title="Human")]
            ),
        ],
        intent="faq_shipping",
        confidence=0.9,
        handoff=False,
    )
    reply = engine_client.from_response(response)
    assert [p.text for p in reply.parts] == ["One.", "Two."]
    assert reply.parts[1].quick_replies == (QuickReply("handoff", "Human"),)
    assert (reply.intent, reply.confidence, reply.handoff) == ("faq_shipping", 0.9, False)


@pytest.mark.parametrize(
    ("response", "verdict", "text"),
    [
        (security_pb.ScreenMessageResponse(verdict=security_pb.VERDICT_ALLOW), Verdict.ALLOW, "hi"),
        (
            security_pb.ScreenMessageResponse(verdict=security_pb.VERDICT_REDACT, text="[email]"),
            Verdict.REDACT,
            "[email]",
        ),
        # A redaction may leave nothing; that must not bring the original back.
        (security_pb.ScreenMessageResponse(verdict=security_pb.VERDICT_REDACT), Verdict.REDACT, ""),
        (security_pb.ScreenMessageResponse(verdict=security_pb.VERDICT_BLOCK), Verdict.BLOCK, "hi"),
    ],
)
def test_screening_from_response(
    response: security_pb.ScreenMessageResponse, verdict: Verdict, text: str
) -> None:
    screening = security_client.from_response(response, "hi")
    assert (screening.verdict, screening.text) == (verdict, text)


def test_a_response_without_a_verdict_is_the_hub_failing() -> None:
    with pytest.raises(DependencyUnavailable) as caught:
        security_client.from_response(security_pb.ScreenMessageResponse(), "hi")
    assert caught.value.dependency == "security-hub"


def test_clients_do_not_connect_until_called() -> None:
    settings = Settings(mcp_engine_url="no-such-host.invalid:1", security_hub_url="grpcs://x:1")
    engine_client.EngineClient(settings)
    hub = security_client.SecurityHubClient(settings)
    with pytest.raises(ValueError, match="direction"):
        hub.screen("acme", "hi", direction="sideways")
