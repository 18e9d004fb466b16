"""Facebook Messenger: Page webhooks in (:mod:`.inbound`), replies through the Send API
(:mod:`.outbound`), the Page account (:mod:`.account`), the sandbox's stand-in API
(:mod:`.sandbox`) and the local stack's dev Page (:mod:`.dev`), declared in :data:`SPEC`."""

from shared.channels.contract import AccountType, ChannelSpec, DevAccount, Outbound
from shared.channels.messenger import account, dev, outbound, sandbox
from shared.channels.messenger.inbound import (
    CHANNEL,
    RETRY_WINDOW_S,
    SIGNATURE_HEADER,
    handle,
    parse,
    sign,
    verify_handshake,
    verify_signature,
)

SPEC = ChannelSpec(
    name=CHANNEL,
    function="messenger-webhook",
    account=AccountType(key="page_id", load=account.load, example=account.EXAMPLE),
    handle=handle,
    retry_window_s=RETRY_WINDOW_S,
    outbound=Outbound(
        api_base=outbound.API_BASE,
        render=outbound.render,
        interpret=outbound.interpret,
        needs_last_inbound=True,  # the 24-hour standard messaging window
    ),
    dev=DevAccount(make=dev.make, endpoints=dev.endpoints),
    sandbox=sandbox.API,
)

__all__ = [
    "CHANNEL",
    "RETRY_WINDOW_S",
    "SIGNATURE_HEADER",
    "SPEC",
    "handle",
    "parse",
    "sign",
    "verify_handshake",
    "verify_signature",
]
