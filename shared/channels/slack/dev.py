"""Slack on the local stack: the dev tenant's workspace and its endpoints entry."""

from __future__ import annotations

import secrets
from typing import Any

TEAM_ID = "T0DEVTEAM"
BOT_USER_ID = "U0DEVBOT"


def make() -> dict[str, Any]:
    return {
        "team_id": TEAM_ID,
        "signing_secret": secrets.token_urlsafe(32),
        "bot_token": "xoxb-dev-" + secrets.token_urlsafe(32),
        "bot_user_id": BOT_USER_ID,
    }


def endpoints(account: dict[str, Any], function_url: str | None) -> dict[str, Any]:
    return {
        "team_id": account["team_id"],
        "signing_secret": account["signing_secret"],
        "bot_user_id": account.get("bot_user_id", ""),
        "bot_token": account.get("bot_token", ""),
        "events_url": f"{function_url}/events" if function_url else None,
    }
