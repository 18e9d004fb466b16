"""Reference Security Hub: ``SecurityHub.ScreenMessage`` answered by :mod:`.policy`.

python -m shared.refservers.security_hub --host 127.0.0.1 --port 50052 [--blocklist a,b]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable

import grpc

from shared.bot.ports import Verdict
from shared.grpc.gen.chatbot.security.v1 import security_hub_pb2 as pb
from shared.grpc.gen.chatbot.security.v1 import security_hub_pb2_grpc as pb_grpc
from shared.refservers import _serving
from shared.refservers.policy import Policy

NAME = "security-hub"
VERDICTS = {
    Verdict.ALLOW: pb.VERDICT_ALLOW,
    Verdict.REDACT: pb.VERDICT_REDACT,
    Verdict.BLOCK: pb.VERDICT_BLOCK,
}


class SecurityHubServicer(pb_grpc.SecurityHubServicer):
    def __init__(self, policy: Policy) -> None:
        self._policy = policy

    def ScreenMessage(
        self, request: pb.ScreenMessageRequest, context: grpc.ServicerContext
    ) -> pb.ScreenMessageResponse:
        if not request.tenant_id:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "tenant_id is required")
        # The same policy both ways: a bot must not leak personal data either.
        screening = self._policy.screen(request.text)
        return pb.ScreenMessageResponse(
            verdict=VERDICTS[screening.verdict], text=screening.text, reason=screening.reason
        )


def serve(
    port: int, *, host: str = "127.0.0.1", blocklist: Iterable[str] = (), max_workers: int = 8
) -> grpc.Server:
    """A started server on ``host:port``; stop it with ``server.stop(grace)``."""
    server = _serving.new_server(NAME, max_workers)
    pb_grpc.add_SecurityHubServicer_to_server(SecurityHubServicer(Policy(blocklist)), server)
    _serving.bind(server, host, port)
    server.start()
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.refservers.security_hub")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=50052)
    parser.add_argument("--blocklist", default="", help="comma-separated words or phrases")
    args = parser.parse_args(argv)
    blocklist = [term for term in args.blocklist.split(",") if term.strip()]
    try:
        server = serve(args.port, host=args.host, blocklist=blocklist)
    except (OSError, RuntimeError) as exc:
        print(f"{NAME}: {exc}", file=sys.stderr)
        return 1
    _serving.run_until_signalled(server, NAME, _serving.address(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
