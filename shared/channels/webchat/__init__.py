"""Our own web-chat widget: visitor sessions and messages in (:mod:`.inbound`, with the visitor
tokens of :mod:`.tokens`), replies out (:mod:`.outbound`: stored, and pushed to live widgets),
the site account (:mod:`.account`) and the local stack's dev site (:mod:`.dev`), declared in
:data:`SPEC`. There is no platform API, so the sandbox has nothing to stand in for."""

from shared.channels.contract import AccountType, ChannelSpec, DevAccount, Outbound
from shared.channels.webchat import account, dev, outbound
from shared.channels.webchat.inbound import (
    CHANNEL,
    DEDUPE_WINDOW_S,
    MESSAGES_PATH,
    SESSIONS_PATH,
    error_cors_headers,
    handle,
    parse_message,
    parse_session,
    to_inbound,
)

SPEC = ChannelSpec(
    name=CHANNEL,
    function="webchat",
    account=AccountType(key="site_key", load=account.load, example=account.EXAMPLE),
    handle=handle,
    retry_window_s=DEDUPE_WINDOW_S,
    outbound=Outbound(deliver=outbound.deliver),
    dev=DevAccount(make=dev.make, endpoints=dev.endpoints, refresh=dev.refresh),
    error_headers=lambda exc, headers, ingress: error_cors_headers(
        exc, headers.get("Origin"), ingress.tenants
    ),
)

__all__ = [
    "CHANNEL",
    "DEDUPE_WINDOW_S",
    "MESSAGES_PATH",
    "SESSIONS_PATH",
    "SPEC",
    "error_cors_headers",
    "handle",
    "parse_message",
    "parse_session",
    "to_inbound",
]
