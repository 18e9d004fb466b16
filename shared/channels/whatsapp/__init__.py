"""WhatsApp Cloud API: webhooks in (:mod:`.inbound`), replies out (:mod:`.outbound`), the
account (:mod:`.account`), the sandbox's stand-in API (:mod:`.sandbox`) and the local stack's
dev number (:mod:`.dev`), declared in :data:`SPEC`."""

from shared.channels.contract import AccountType, ChannelSpec, DevAccount, Outbound
from shared.channels.whatsapp import account, dev, outbound, sandbox
from shared.channels.whatsapp.inbound import (
    CHANNEL,
    MEDIA_TYPES,
    PATHS,
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
    function="whatsapp-webhook",
    account=AccountType(key="phone_number_id", load=account.load, example=account.EXAMPLE),
    handle=handle,
    retry_window_s=RETRY_WINDOW_S,
    outbound=Outbound(
        api_base=outbound.API_BASE,
        render=outbound.render,
        interpret=outbound.interpret,
        needs_last_inbound=True,  # the 24-hour customer-service window
    ),
    dev=DevAccount(make=dev.make, endpoints=dev.endpoints),
    sandbox=sandbox.API,
)

__all__ = [
    "CHANNEL",
    "MEDIA_TYPES",
    "PATHS",
    "RETRY_WINDOW_S",
    "SIGNATURE_HEADER",
    "SPEC",
    "handle",
    "parse",
    "sign",
    "verify_handshake",
    "verify_signature",
]
