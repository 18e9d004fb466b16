"""Our own web-chat widget, declared in :data:`SPEC`: visitor sessions and messages in
(:mod:`.inbound`, with the visitor tokens of :mod:`.tokens`), the conversation read back by
cursor (:mod:`.read`) or live (:mod:`.stream`), replies out (:mod:`.outbound`: stored, and
pushed to live widgets), the widget's own files (:mod:`.static`), every route in
:mod:`.routes`, the site account (:mod:`.account`) and the local stack's dev site (:mod:`.dev`).
There is no platform API, so the sandbox has nothing to stand in for."""

from shared.channels.contract import AccountType, ChannelSpec, DevAccount, Outbound
from shared.channels.webchat import account, dev, outbound
from shared.channels.webchat.account import CHANNEL
from shared.channels.webchat.cors import error_cors_headers
from shared.channels.webchat.inbound import (
    DEDUPE_WINDOW_S,
    MESSAGES_PATH,
    SESSIONS_PATH,
    parse_message,
    parse_session,
    to_inbound,
)
from shared.channels.webchat.routes import handle

SPEC = ChannelSpec(
    name=CHANNEL,
    function="webchat",
    account=AccountType(key="site_key", load=account.load, example=account.EXAMPLE),
    handle=handle,
    retry_window_s=DEDUPE_WINDOW_S,
    outbound=Outbound(deliver=outbound.deliver),
    dev=DevAccount(make=dev.make, endpoints=dev.endpoints, refresh=dev.refresh),
    uses=("mongodb",),  # GET /messages and /stream read the conversation back
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
