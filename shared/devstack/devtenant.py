"""The local stack's tenant "dev": one account on every channel, and a signed sample message.

The secrets are random, made on the first run and kept in ``<state dir>/tenants.json`` (the
format of :mod:`shared.tenants`), so a webhook URL or a curl saved yesterday still verifies
today. Only what is missing is added on a later run; the webchat account's local origins
follow the port the webchat function got this time.
"""

from __future__ import annotations

import json
import secrets
import shlex
import time
import uuid
from pathlib import Path
from typing import Any

from shared.channels import whatsapp
from shared.tenants import TenantDirectory

TENANT_ID = "dev"
WHATSAPP_PHONE_NUMBER_ID = "100000000000001"
SLACK_TEAM_ID = "T0DEVTEAM"
SLACK_BOT_USER_ID = "U0DEVBOT"
TELEGRAM_BOT_ID = "7000000000"
WEBCHAT_SITE_KEY = "dev-site"
SAMPLE_WA_ID = "15550001234"
LOCAL_HOSTS = ("127.0.0.1", "localhost")


def _secret() -> str:
    # URL-safe base64 is [A-Za-z0-9_-]: also valid as a Telegram secret_token.
    return secrets.token_urlsafe(32)


def _new_accounts() -> dict[str, dict[str, Any]]:
    return {
        "whatsapp": {
            "phone_number_id": WHATSAPP_PHONE_NUMBER_ID,
            "app_secret": _secret(),
            "verify_token": _secret(),
            "access_token": _secret(),
        },
        "slack": {
            "team_id": SLACK_TEAM_ID,
            "signing_secret": _secret(),
            "bot_token": "xoxb-dev-" + _secret(),
            "bot_user_id": SLACK_BOT_USER_ID,
        },
        "telegram": {
            "bot_id": TELEGRAM_BOT_ID,
            "secret_token": _secret(),
            "bot_token": f"{TELEGRAM_BOT_ID}:{_secret()}",
        },
        "webchat": {"site_key": WEBCHAT_SITE_KEY, "token_secret": _secret(), "allowed_origins": []},
    }


def local_origins(port: int) -> list[str]:
    return [f"http://{host}:{port}" for host in LOCAL_HOSTS]


def _is_local(origin: str) -> bool:
    return any(origin.startswith(f"http://{host}:") for host in LOCAL_HOSTS)


def ensure_dev_tenant(document: dict[str, Any], webchat_port: int | None) -> dict[str, Any]:
    """``document`` with the dev tenant complete; existing accounts and secrets are kept."""
    tenants = document.setdefault("tenants", [])
    tenant = next((t for t in tenants if t.get("id") == TENANT_ID), None)
    if tenant is None:
        tenant = {"id": TENANT_ID}
        tenants.append(tenant)
    for channel, account in _new_accounts().items():
        if not tenant.get(channel):
            tenant[channel] = [account]
    if webchat_port is not None:
        site = tenant["webchat"][0]
        kept = [o for o in site.get("allowed_origins", []) if not _is_local(o)]
        site["allowed_origins"] = kept + local_origins(webchat_port)
    return document


def write_tenants_file(path: Path, webchat_port: int | None) -> dict[str, Any]:
    """Create or complete ``path``; returns the dev tenant's entry. Checked like production."""
    document = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    document = ensure_dev_tenant(document, webchat_port)
    TenantDirectory.from_dict(document)  # fail here, not in four function logs
    path.touch(mode=0o600, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    tenant: dict[str, Any] = next(t for t in document["tenants"] if t["id"] == TENANT_ID)
    return tenant


def whatsapp_sample(phone_number_id: str, text: str = "Hello from the local stack") -> bytes:
    """A WhatsApp Cloud API text-message webhook with a fresh wamid (a re-run is not deduped)."""
    document = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "100000000000000",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550000000",
                                "phone_number_id": phone_number_id,
                            },
                            "contacts": [{"profile": {"name": "Dev User"}, "wa_id": SAMPLE_WA_ID}],
                            "messages": [
                                {
                                    "from": SAMPLE_WA_ID,
                                    "id": f"wamid.DEV{uuid.uuid4().hex.upper()}",
                                    "timestamp": str(int(time.time())),
                                    "type": "text",
                                    "text": {"body": text},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }
    return json.dumps(document, indent=2).encode()


def whatsapp_curl(url: str, app_secret: str, body_file: Path) -> str:
    """A curl that POSTs ``body_file`` signed the way Meta signs it; fails on a non-2xx."""
    signature = whatsapp.sign(app_secret, body_file.read_bytes())
    return " ".join(
        [
            "curl -sS --fail-with-body -X POST",
            shlex.quote(url),
            "-H 'Content-Type: application/json'",
            "-H " + shlex.quote(f"{whatsapp.SIGNATURE_HEADER}: {signature}"),
            "--data-binary " + shlex.quote(f"@{body_file}"),
        ]
    )
