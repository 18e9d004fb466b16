"""The tenant directory: which tenant owns a channel account, and that account's secrets.

Loaded from JSON (``TENANTS_FILE``, a mounted Kubernetes Secret in production, or
``TENANTS_JSON``)::

    {"tenants": [{"id": "acme",
                  "whatsapp": [{"phone_number_id": "…", "app_secret": "…", "verify_token": "…"}],
                  "slack":    [{"team_id": "T…", "signing_secret": "…", "bot_user_id": "U…"}],
                  "telegram": [{"bot_id": "…", "secret_token": "…"}],
                  "webchat":  [{"site_key": "…", "token_secret": "…", "allowed_origins": ["…"]}]}]}

Secrets are held as :class:`Secret`, whose ``repr`` never shows the value, so a settings dump
or a log line with an account in it does not leak them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from shared.settings import Settings

_TELEGRAM_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


@dataclass(frozen=True)
class WhatsAppAccount:
    tenant_id: str
    phone_number_id: str
    app_secret: Secret
    verify_token: Secret
    access_token: Secret


@dataclass(frozen=True)
class SlackAccount:
    tenant_id: str
    team_id: str
    signing_secret: Secret
    bot_token: Secret
    bot_user_id: str


@dataclass(frozen=True)
class TelegramAccount:
    tenant_id: str
    bot_id: str
    secret_token: Secret
    bot_token: Secret


@dataclass(frozen=True)
class WebchatAccount:
    tenant_id: str
    site_key: str
    token_secret: Secret
    allowed_origins: tuple[str, ...]


class TenantConfigError(ValueError):
    pass


@dataclass(frozen=True)
class TenantDirectory:
    whatsapp: dict[str, WhatsAppAccount]
    slack: dict[str, SlackAccount]
    telegram: dict[str, TelegramAccount]
    webchat: dict[str, WebchatAccount]

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> TenantDirectory:
        whatsapp: dict[str, WhatsAppAccount] = {}
        slack: dict[str, SlackAccount] = {}
        telegram: dict[str, TelegramAccount] = {}
        webchat: dict[str, WebchatAccount] = {}
        for tenant in document.get("tenants", []):
            tid = _required(tenant, "id", "tenant")
            for acc in tenant.get("whatsapp", []):
                pid = _required(acc, "phone_number_id", f"tenant {tid} whatsapp")
                _unique(whatsapp, pid, "whatsapp phone_number_id")
                whatsapp[pid] = WhatsAppAccount(
                    tid,
                    pid,
                    Secret(_required(acc, "app_secret", f"whatsapp {pid}")),
                    Secret(_required(acc, "verify_token", f"whatsapp {pid}")),
                    Secret(str(acc.get("access_token", ""))),
                )
            for acc in tenant.get("slack", []):
                team = _required(acc, "team_id", f"tenant {tid} slack")
                _unique(slack, team, "slack team_id")
                slack[team] = SlackAccount(
                    tid,
                    team,
                    Secret(_required(acc, "signing_secret", f"slack {team}")),
                    Secret(str(acc.get("bot_token", ""))),
                    str(acc.get("bot_user_id", "")),
                )
            for acc in tenant.get("telegram", []):
                bot = _required(acc, "bot_id", f"tenant {tid} telegram")
                _unique(telegram, bot, "telegram bot_id")
                token = _required(acc, "secret_token", f"telegram {bot}")
                if not _TELEGRAM_SECRET.match(token):
                    # setWebhook accepts 1-256 characters of A-Z a-z 0-9 _ - (Bot API docs).
                    raise TenantConfigError(f"telegram {bot}: secret_token has invalid characters")
                telegram[bot] = TelegramAccount(
                    tid, bot, Secret(token), Secret(str(acc.get("bot_token", "")))
                )
            for acc in tenant.get("webchat", []):
                key = _required(acc, "site_key", f"tenant {tid} webchat")
                _unique(webchat, key, "webchat site_key")
                token_secret = _required(acc, "token_secret", f"webchat {key}")
                if len(token_secret.encode()) < 32:
                    # An HS256 key shorter than the hash is guessable (RFC 7518 §3.2).
                    raise TenantConfigError(f"webchat {key}: token_secret needs 32+ bytes")
                webchat[key] = WebchatAccount(
                    tid,
                    key,
                    Secret(token_secret),
                    tuple(str(o) for o in acc.get("allowed_origins", [])),
                )
        return cls(whatsapp, slack, telegram, webchat)

    @classmethod
    def from_settings(cls, settings: Settings) -> TenantDirectory:
        if settings.tenants_json:
            raw = settings.tenants_json
        elif settings.tenants_file:
            raw = Path(settings.tenants_file).read_text(encoding="utf-8")
        else:
            raw = '{"tenants": []}'
        try:
            document = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise TenantConfigError(f"tenant directory is not valid JSON: {exc}") from exc
        return cls.from_dict(document)


def _required(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if value is None or str(value) == "":
        raise TenantConfigError(f"{where}: '{key}' is required")
    return str(value)


def _unique(existing: dict[str, Any], key: str, what: str) -> None:
    if key in existing:
        raise TenantConfigError(f"{what} {key!r} is configured twice")


@lru_cache(maxsize=1)
def get_directory() -> TenantDirectory:
    from shared.settings import get_settings

    return TenantDirectory.from_settings(get_settings())
