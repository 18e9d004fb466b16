"""Messenger on the local stack: the dev tenant's Page and its endpoints entry."""

from __future__ import annotations

import secrets
from typing import Any

PAGE_ID = "100000000000077"


def make() -> dict[str, Any]:
    return {
        "page_id": PAGE_ID,
        "app_secret": secrets.token_urlsafe(32),
        "verify_token": secrets.token_urlsafe(32),
        "page_access_token": secrets.token_urlsafe(32),
    }


def endpoints(account: dict[str, Any], function_url: str | None) -> dict[str, Any]:
    return {
        "page_id": account["page_id"],
        "app_secret": account["app_secret"],
        "verify_token": account["verify_token"],
        "page_access_token": account.get("page_access_token", ""),
        "webhook_url": f"{function_url}/" if function_url else None,
    }
