"""Reference MCP engine: ``McpEngine.GenerateReply`` answered by the rule-based bot.

    python -m shared.refservers.mcp_engine --host 127.0.0.1 --port 50051 [--rules FILE]

Without ``--rules`` it answers from the packaged ``shared/bot/default_rules.json``.
"""

from __future__ import annotations

import argparse
import sys

import grpc

from shared.bot.rules import RuleEngine, RuleSet, load_rules
from shared.grpc.gen.chatbot.mcp.v1 import mcp_engine_pb2 as pb
from shared.grpc.gen.chatbot.mcp.v1 import mcp_engine_pb2_grpc as pb_grpc
from shared.refservers import _serving

NAME = "mcp-engine"
DEFAULT_RULES = "default_rules.json"


class McpEngineServicer(pb_grpc.McpEngineServicer):
    def __init__(self, engine: RuleEngine) -> None:
        self._engine = engine

    def GenerateReply(
        self, request: pb.GenerateReplyRequest, context: grpc.ServicerContext
    ) -> pb.GenerateReplyResponse:
        if not request.tenant_id or not request.conversation_key:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "tenant_id and conversation_key are required"
            )
        message = request.message
        reply = self._engine.reply(
            message.text or message.interactive_reply_title,
            interactive_id=message.interactive_reply_id,
        )
        return pb.GenerateReplyResponse(
            parts=[
                pb.ReplyPart(
                    text=part.text,
                    quick_replies=[
                        pb.QuickReply(id=q.id, title=q.title) for q in part.quick_replies
                    ],
                )
                for part in reply.parts
            ],
            intent=reply.intent,
            confidence=reply.confidence,
            handoff=reply.handoff,
        )


def serve(
    port: int, *, host: str = "127.0.0.1", rules: RuleSet | None = None, max_workers: int = 8
) -> grpc.Server:
    """A started server on ``host:port``; stop it with ``server.stop(grace)``."""
    engine = RuleEngine(rules or load_rules(None, DEFAULT_RULES))
    server = _serving.new_server(NAME, max_workers)
    pb_grpc.add_McpEngineServicer_to_server(McpEngineServicer(engine), server)
    _serving.bind(server, host, port)
    server.start()
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.refservers.mcp_engine")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=50051)
    parser.add_argument("--rules", default="", help="rule set JSON (default: the packaged one)")
    args = parser.parse_args(argv)
    try:
        server = serve(args.port, host=args.host, rules=load_rules(args.rules, DEFAULT_RULES))
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"{NAME}: {exc}", file=sys.stderr)
        return 1
    _serving.run_until_signalled(server, NAME, _serving.address(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
