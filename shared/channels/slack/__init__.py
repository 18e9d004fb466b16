"""Slack Events API: webhooks in (:mod:`.inbound`), replies out (:mod:`.outbound`), the
account (:mod:`.account`), the sandbox's stand-in API (:mod:`.sandbox`) and the local stack's
dev workspace (:mod:`.dev`), declared in :data:`SPEC`."""

from shared.channels.contract import AccountType, ChannelSpec, DevAccount, Outbound
from shared.channels.slack import account, dev, outbound, sandbox
from shared.channels.slack.inbound import (
    CHANNEL,
    PATHS,
    RETRY_NUM_HEADER,
    RETRY_WINDOW_S,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    error_headers,
    handle,
    parse,
    sign,
    verify_signature,
)

SPEC = ChannelSpec(
    name=CHANNEL,
    function="slack-webhook",
    account=AccountType(key="team_id", load=account.load, example=account.EXAMPLE),
    handle=handle,
    retry_window_s=RETRY_WINDOW_S,
    outbound=Outbound(
        api_base=outbound.API_BASE,
        render=outbound.render,
        interpret=outbound.interpret,
        ids_unique_per_chat=True,  # a ts is unique within its channel only
    ),
    dev=DevAccount(make=dev.make, endpoints=dev.endpoints),
    sandbox=sandbox.API,
    # "Respond within 3 seconds" or Slack retries (api.slack.com/apis/events-api).
    ack_deadline_s=3.0,
    error_headers=lambda exc, _headers, _ingress: error_headers(exc),
)

__all__ = [
    "CHANNEL",
    "PATHS",
    "RETRY_NUM_HEADER",
    "RETRY_WINDOW_S",
    "SIGNATURE_HEADER",
    "SPEC",
    "TIMESTAMP_HEADER",
    "error_headers",
    "handle",
    "parse",
    "sign",
    "verify_signature",
]
