"""One reply → one channel API request, by the channel's own renderer.

Each channel's ``outbound.render`` follows its platform's API reference and is pure: the same
message, account, settings and context give the same request. Rich content falls back to text
where a channel lacks it (options become numbered lines): text is required, everything else is
optional. A channel without an API (web chat) delivers instead (``outbound.deliver``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.channels.contract import SendContext
from shared.channels.registry import spec
from shared.errors import BadRequest
from shared.models import OutboundMessage
from shared.outbound.api import ApiRequest, Undeliverable
from shared.settings import Settings
from shared.tenants import TenantDirectory


def find_account(message: OutboundMessage, tenants: TenantDirectory) -> Any:
    """The sending account; a reply naming another tenant's account can never be sent."""
    account = tenants.account(message.channel, message.account_id)
    if account is None or account.tenant_id != message.tenant_id:
        raise BadRequest(
            f"tenant {message.tenant_id} has no {message.channel} account {message.account_id}",
            code="unknown_account",
        )
    return account


def api_base(channel: str, settings: Settings) -> str:
    """Where the channel's API is: ``CHANNEL_API_BASES`` (the sandbox, a proxy), else its own."""
    return settings.channel_api_bases.get(channel) or spec(channel).outbound.api_base


def render(
    message: OutboundMessage,
    account: Any,
    settings: Settings,
    *,
    last_inbound_at: datetime | None = None,
    now: datetime | None = None,
) -> ApiRequest:
    """The API call that sends ``message``; :class:`Undeliverable` when none may be made.

    ``last_inbound_at`` and ``now`` decide a customer-service window (WhatsApp's 24 hours).
    """
    if not message.text.strip() and message.template is None:
        # Every channel requires text (WhatsApp body, Slack text or blocks, Telegram 1+ chars).
        raise Undeliverable("empty_message", "a reply needs text (or a template)")
    outbound = spec(message.channel).outbound
    if outbound.render is None:
        raise ValueError(f"{message.channel} replies are not sent over an API")
    if outbound.needs_last_inbound and now is None:
        raise ValueError(f"{message.channel} rendering needs the current time for its window")
    context = SendContext(
        api_base=api_base(message.channel, settings),
        now=now or datetime.now().astimezone(),
        last_inbound_at=last_inbound_at,
    )
    return outbound.render(message, account, settings, context)
