"""A Slack workspace (the app installed in it) in the tenant directory."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.dataclass import dataclass
from shared.tenants import MIN_SECRET_CHARS, Secret, secret

# signing_secret: the Slack app's (signs Events API requests); bot_token: the installation's
# (sends replies); bot_user_id: the bot's own user, whose messages are ignored.
EXAMPLE = {
    "team_id": "T0001ACME",
    "signing_secret": "the-slack-signing-secret",
    "bot_token": "xoxb-the-bot-token",
    "bot_user_id": "U0BOTACME",
}


@dataclass(frozen=True)
class SlackAccount:
    tenant_id: str
    team_id: str
    signing_secret: Secret
    bot_token: Secret
    bot_user_id: str

    @property
    def account_id(self) -> str:
        return self.team_id


def load(tenant_id: str, entry: Mapping[str, Any]) -> SlackAccount:
    team = str(entry["team_id"])
    where = f"slack {team}"
    return SlackAccount(
        tenant_id,
        team,
        secret(entry, "signing_secret", where, min_chars=MIN_SECRET_CHARS),
        secret(entry, "bot_token", where),
        str(entry.get("bot_user_id", "")),
    )
