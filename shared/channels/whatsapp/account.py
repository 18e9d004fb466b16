"""A WhatsApp Business phone number in the tenant directory."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.dataclass import dataclass
from shared.tenants import MIN_SECRET_CHARS, Secret, secret

# app_secret: the Meta app's App Secret (signs webhooks); verify_token: the one set for the
# subscription handshake; access_token: a system user token with whatsapp_business_messaging.
EXAMPLE = {
    "phone_number_id": "106540352242922",
    "app_secret": "the-meta-app-secret",
    "verify_token": "the-subscription-verify-token",
    "access_token": "EAAG-system-user-access-token",
}


@dataclass(frozen=True)
class WhatsAppAccount:
    tenant_id: str
    phone_number_id: str
    app_secret: Secret
    verify_token: Secret
    access_token: Secret

    @property
    def account_id(self) -> str:
        return self.phone_number_id


def load(tenant_id: str, entry: Mapping[str, Any]) -> WhatsAppAccount:
    number = str(entry["phone_number_id"])
    where = f"whatsapp {number}"
    return WhatsAppAccount(
        tenant_id,
        number,
        secret(entry, "app_secret", where, min_chars=MIN_SECRET_CHARS),
        secret(entry, "verify_token", where, min_chars=MIN_SECRET_CHARS),
        secret(entry, "access_token", where),
    )
