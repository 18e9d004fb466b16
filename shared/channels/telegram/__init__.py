"""Telegram Bot API: webhooks in (:mod:`.inbound`), replies out (:mod:`.outbound`), the
account (:mod:`.account`), the sandbox's stand-in API (:mod:`.sandbox`) and the local stack's
dev bot (:mod:`.dev`), declared in :data:`SPEC`."""

from shared.channels.contract import AccountType, ChannelSpec, DevAccount, Outbound
from shared.channels.telegram import account, dev, outbound, sandbox
from shared.channels.telegram.inbound import (
    CHANNEL,
    RETENTION_S,
    ROUTE,
    SECRET_HEADER,
    handle,
    parse,
    verify_secret_token,
)

SPEC = ChannelSpec(
    name=CHANNEL,
    function="telegram-webhook",
    account=AccountType(key="bot_id", load=account.load, example=account.EXAMPLE),
    handle=handle,
    retry_window_s=RETENTION_S,
    outbound=Outbound(
        api_base=outbound.API_BASE,
        render=outbound.render,
        interpret=outbound.interpret,
        ids_unique_per_chat=True,  # a message_id is unique within its chat only
    ),
    dev=DevAccount(make=dev.make, endpoints=dev.endpoints),
    sandbox=sandbox.API,
)

__all__ = [
    "CHANNEL",
    "RETENTION_S",
    "ROUTE",
    "SECRET_HEADER",
    "SPEC",
    "handle",
    "parse",
    "verify_secret_token",
]
