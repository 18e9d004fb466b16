"""The Security Hub over gRPC: :class:`shared.bot.ports.SecurityHub` for the message processor."""

from __future__ import annotations

import grpc

from shared.bot.ports import Screening, Verdict
from shared.errors import DependencyUnavailable
from shared.grpc.channel import get_channel, rpc_error
from shared.grpc.gen.chatbot.security.v1 import security_hub_pb2 as pb
from shared.grpc.gen.chatbot.security.v1 import security_hub_pb2_grpc as pb_grpc
from shared.settings import Settings

DEPENDENCY = "security-hub"

DIRECTIONS = {"inbound": pb.DIRECTION_INBOUND, "outbound": pb.DIRECTION_OUTBOUND}
VERDICTS = {
    pb.VERDICT_ALLOW: Verdict.ALLOW,
    pb.VERDICT_REDACT: Verdict.REDACT,
    pb.VERDICT_BLOCK: Verdict.BLOCK,
}


class SecurityHubClient:
    """Calls ``SecurityHub.ScreenMessage`` with the configured deadline.

    Raises :class:`~shared.errors.DependencyUnavailable` when the hub cannot give a verdict
    (unreachable, too slow, or answering without one) and :class:`~shared.errors.BadRequest`
    when it rejects the request as invalid.
    """

    def __init__(self, settings: Settings, *, root_certificates: bytes | None = None) -> None:
        self._url = settings.security_hub_url
        self._deadline_s = settings.grpc_deadline_s
        self._root_certificates = root_certificates
        self._stub: pb_grpc.SecurityHubStub | None = None

    def screen(self, tenant_id: str, text: str, *, direction: str = "inbound") -> Screening:
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {sorted(DIRECTIONS)}, got {direction!r}")
        request = pb.ScreenMessageRequest(
            tenant_id=tenant_id, text=text, direction=DIRECTIONS[direction]
        )
        try:
            response = self._hub().ScreenMessage(request, timeout=self._deadline_s)
        except grpc.RpcError as exc:
            raise rpc_error(exc, DEPENDENCY) from exc
        return from_response(response, text)

    def _hub(self) -> pb_grpc.SecurityHubStub:
        if self._stub is None:
            channel = get_channel(
                self._url, dependency=DEPENDENCY, root_certificates=self._root_certificates
            )
            self._stub = pb_grpc.SecurityHubStub(channel)
        return self._stub


def from_response(response: pb.ScreenMessageResponse, screened_text: str) -> Screening:
    verdict = VERDICTS.get(response.verdict)
    if verdict is None:
        # Fail closed: a hub that gives no verdict has not screened anything.
        raise DependencyUnavailable(
            f"{DEPENDENCY}: answered without a verdict ({response.verdict})",
            dependency=DEPENDENCY,
        )
    # Only a redaction changes the text (possibly to ""); a hub may leave it out otherwise.
    text = response.text if verdict is Verdict.REDACT else (response.text or screened_text)
    return Screening(verdict=verdict, text=text, reason=response.reason)
