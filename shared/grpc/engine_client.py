"""The MCP engine over gRPC: :class:`shared.bot.ports.Engine` for the message processor.

The processor speaks :mod:`shared.bot.ports` types; this module is where they become
``chatbot.mcp.v1`` messages and back, so protobuf stays out of the processor's logic.
"""

from __future__ import annotations

import grpc

from shared.bot.ports import ConversationContext, EngineReply, ReplyPart
from shared.grpc.channel import get_channel, rpc_error
from shared.grpc.gen.chatbot.mcp.v1 import mcp_engine_pb2 as pb
from shared.grpc.gen.chatbot.mcp.v1 import mcp_engine_pb2_grpc as pb_grpc
from shared.models import InboundMessage, QuickReply
from shared.settings import Settings

DEPENDENCY = "mcp-engine"


class EngineClient:
    """Calls ``McpEngine.GenerateReply`` with the configured deadline.

    Raises :class:`~shared.errors.DependencyUnavailable` when the engine cannot answer in
    time (after the channel's retries on UNAVAILABLE) and :class:`~shared.errors.BadRequest`
    when it rejects the request as invalid.
    """

    def __init__(self, settings: Settings, *, root_certificates: bytes | None = None) -> None:
        self._url = settings.mcp_engine_url
        self._deadline_s = settings.grpc_deadline_s
        self._root_certificates = root_certificates
        self._stub: pb_grpc.McpEngineStub | None = None

    def generate_reply(self, context: ConversationContext, message: InboundMessage) -> EngineReply:
        request = to_request(context, message)
        try:
            response = self._engine().GenerateReply(request, timeout=self._deadline_s)
        except grpc.RpcError as exc:
            raise rpc_error(exc, DEPENDENCY) from exc
        return from_response(response)

    def _engine(self) -> pb_grpc.McpEngineStub:
        if self._stub is None:
            channel = get_channel(
                self._url, dependency=DEPENDENCY, root_certificates=self._root_certificates
            )
            self._stub = pb_grpc.McpEngineStub(channel)
        return self._stub


def to_request(context: ConversationContext, message: InboundMessage) -> pb.GenerateReplyRequest:
    interactive = message.interactive
    return pb.GenerateReplyRequest(
        tenant_id=context.tenant_id,
        channel=context.channel,
        conversation_key=context.conversation_key,
        message=pb.Message(
            id=message.platform_message_id,
            text=message.text or "",
            kind=str(message.kind),
            sender_id=message.sender.id,
            sender_name=message.sender.name or "",
            interactive_reply_id=interactive.id if interactive else "",
            interactive_reply_title=(interactive.title or "") if interactive else "",
        ),
        history=[pb.Turn(role=turn.role, text=turn.text) for turn in context.history],
        session=dict(context.session),
    )


def from_response(response: pb.GenerateReplyResponse) -> EngineReply:
    return EngineReply(
        parts=tuple(
            ReplyPart(
                text=part.text,
                quick_replies=tuple(QuickReply(id=q.id, title=q.title) for q in part.quick_replies),
            )
            for part in response.parts
        ),
        intent=response.intent,
        confidence=response.confidence,
        handoff=response.handoff,
    )
