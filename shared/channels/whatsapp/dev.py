"""WhatsApp on the local stack: the dev tenant's number, its endpoints entry, a signed sample."""

from __future__ import annotations

import json
import secrets
import shlex
import time
import uuid
from pathlib import Path
from typing import Any

from shared.channels.whatsapp.inbound import SIGNATURE_HEADER, sign

PHONE_NUMBER_ID = "100000000000001"
SAMPLE_WA_ID = "15550001234"


def make() -> dict[str, Any]:
    return {
        "phone_number_id": PHONE_NUMBER_ID,
        "app_secret": secrets.token_urlsafe(32),
        "verify_token": secrets.token_urlsafe(32),
        "access_token": secrets.token_urlsafe(32),
    }


def endpoints(account: dict[str, Any], function_url: str | None) -> dict[str, Any]:
    return {
        "phone_number_id": account["phone_number_id"],
        "app_secret": account["app_secret"],
        "verify_token": account["verify_token"],
        "access_token": account.get("access_token", ""),
        "webhook_url": f"{function_url}/" if function_url else None,
    }


def sample(phone_number_id: str, text: str = "Hello from the local stack") -> bytes:
    """A WhatsApp Cloud API text-message webhook with a fresh wamid (a re-run is not deduped)."""
    message = {
        "from": SAMPLE_WA_ID,
        "id": f"wamid.DEV{uuid.uuid4().hex.upper()}",
        "timestamp": str(int(time.time())),
        "type": "text",
        "text": {"body": text},
    }
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000000", "phone_number_id": phone_number_id},
        "contacts": [{"profile": {"name": "Dev User"}, "wa_id": SAMPLE_WA_ID}],
        "messages": [message],
    }
    document = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "100000000000000", "changes": [{"field": "messages", "value": value}]}],
    }
    return json.dumps(document, indent=2).encode()


def curl(url: str, app_secret: str, body_file: Path) -> str:
    """A curl that POSTs ``body_file`` signed the way Meta signs it; fails on a non-2xx."""
    signature = sign(app_secret, body_file.read_bytes())
    return " ".join(
        [
            "curl -sS --fail-with-body -X POST",
            shlex.quote(url),
            "-H 'Content-Type: application/json'",
            "-H " + shlex.quote(f"{SIGNATURE_HEADER}: {signature}"),
            "--data-binary " + shlex.quote(f"@{body_file}"),
        ]
    )
