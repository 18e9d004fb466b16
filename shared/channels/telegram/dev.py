"""Telegram on the local stack: the dev tenant's bot and its endpoints entry."""

from __future__ import annotations

import secrets
from typing import Any

BOT_ID = "7000000000"


def make() -> dict[str, Any]:
    # URL-safe base64 is [A-Za-z0-9_-]: valid as a Telegram secret_token.
    return {
        "bot_id": BOT_ID,
        "secret_token": secrets.token_urlsafe(32),
        "bot_token": f"{BOT_ID}:{secrets.token_urlsafe(32)}",
    }


def endpoints(account: dict[str, Any], function_url: str | None) -> dict[str, Any]:
    return {
        "bot_id": account["bot_id"],
        "secret_token": account["secret_token"],
        "bot_token": account.get("bot_token", ""),
        "webhook_url": f"{function_url}/webhook/{account['bot_id']}" if function_url else None,
    }
