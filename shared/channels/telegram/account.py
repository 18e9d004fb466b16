"""A Telegram bot in the tenant directory."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from shared.dataclass import dataclass
from shared.tenants import MIN_SECRET_CHARS, Secret, TenantConfigError, secret

# setWebhook accepts 1-256 characters of A-Z a-z 0-9 _ - (Bot API docs).
SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
# bot_id: the number before the colon in the bot token; secret_token: the one given to
# setWebhook; bot_token: from BotFather (sends replies).
EXAMPLE = {
    "bot_id": "7000000001",
    "secret_token": "Zt9-secret_token-given-to-setWebhook",
    "bot_token": "7000000001:AAE-the-token-from-BotFather",
}


@dataclass(frozen=True)
class TelegramAccount:
    tenant_id: str
    bot_id: str
    secret_token: Secret
    bot_token: Secret

    @property
    def account_id(self) -> str:
        return self.bot_id


def load(tenant_id: str, entry: Mapping[str, Any]) -> TelegramAccount:
    bot = str(entry["bot_id"])
    where = f"telegram {bot}"
    token = secret(entry, "secret_token", where, min_chars=MIN_SECRET_CHARS)
    if not SECRET_TOKEN.match(token.reveal()):
        raise TenantConfigError(f"{where}: secret_token has invalid characters")
    return TelegramAccount(tenant_id, bot, token, secret(entry, "bot_token", where))
