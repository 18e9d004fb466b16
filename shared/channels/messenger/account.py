"""A Facebook Page (its Messenger inbox) in the tenant directory."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.dataclass import dataclass
from shared.tenants import MIN_SECRET_CHARS, Secret, secret

# app_secret: the Meta app's App Secret (signs webhooks); verify_token: the one set for the
# subscription handshake; page_access_token: the Page's token with pages_messaging (replies).
EXAMPLE = {
    "page_id": "106540352243001",
    "app_secret": "the-meta-app-secret",
    "verify_token": "the-subscription-verify-token",
    "page_access_token": "EAAG-page-access-token",
}


@dataclass(frozen=True)
class MessengerAccount:
    tenant_id: str
    page_id: str
    app_secret: Secret
    verify_token: Secret
    page_access_token: Secret

    @property
    def account_id(self) -> str:
        return self.page_id


def load(tenant_id: str, entry: Mapping[str, Any]) -> MessengerAccount:
    page = str(entry["page_id"])
    where = f"messenger {page}"
    return MessengerAccount(
        tenant_id,
        page,
        secret(entry, "app_secret", where, min_chars=MIN_SECRET_CHARS),
        secret(entry, "verify_token", where, min_chars=MIN_SECRET_CHARS),
        secret(entry, "page_access_token", where),
    )
