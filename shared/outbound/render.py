"""One reply → one channel API request, by channel.

Each channel module follows its platform's API reference (named in its docstring) and is pure:
the same message, account, settings and clock give the same request. Rich content falls back
to text where a channel lacks it (options become numbered lines), following the brief's
channel rule: text is required, everything else is optional. Web chat has no API and is not
rendered here (see :mod:`shared.outbound.webchat`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from shared.errors import BadRequest
from shared.models import Channel, OutboundMessage
from shared.outbound import slack, telegram, whatsapp
from shared.outbound.api import ApiRequest, Undeliverable
from shared.settings import Settings
from shared.tenants import (
    SlackAccount,
    TelegramAccount,
    TenantDirectory,
    WebchatAccount,
    WhatsAppAccount,
)

Account = WhatsAppAccount | SlackAccount | TelegramAccount | WebchatAccount


def find_account(message: OutboundMessage, tenants: TenantDirectory) -> Account:
    """The sending account; a reply naming another tenant's account can never be sent."""
    accounts: dict[Channel, Mapping[str, Account]] = {
        Channel.WHATSAPP: tenants.whatsapp,
        Channel.SLACK: tenants.slack,
        Channel.TELEGRAM: tenants.telegram,
        Channel.WEBCHAT: tenants.webchat,
    }
    account = accounts[message.channel].get(message.account_id)
    if account is None or account.tenant_id != message.tenant_id:
        raise BadRequest(
            f"tenant {message.tenant_id} has no {message.channel} account {message.account_id}",
            code="unknown_account",
        )
    return account


def render(
    message: OutboundMessage,
    account: Account,
    settings: Settings,
    *,
    last_inbound_at: datetime | None = None,
    now: datetime | None = None,
) -> ApiRequest:
    """The API call that sends ``message``; :class:`Undeliverable` when none may be made.

    ``last_inbound_at`` and ``now`` decide WhatsApp's 24-hour window; other channels have none.
    """
    if not message.text.strip() and message.template is None:
        # Every channel requires text (WhatsApp body, Slack text or blocks, Telegram 1+ chars).
        raise Undeliverable("empty_message", "a reply needs text (or a template)")
    if isinstance(account, WhatsAppAccount):
        if now is None:
            raise ValueError("WhatsApp rendering needs the current time for the 24-hour window")
        return whatsapp.render(message, account, settings, last_inbound_at=last_inbound_at, now=now)
    if isinstance(account, SlackAccount):
        return slack.render(message, account, settings)
    if isinstance(account, TelegramAccount):
        return telegram.render(message, account, settings)
    raise ValueError(f"{message.channel} replies are not sent over an API")
