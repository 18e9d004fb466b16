"""A web site embedding our chat widget, in the tenant directory."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.dataclass import dataclass
from shared.models import Channel
from shared.tenants import Secret, TenantConfigError, secret

CHANNEL = Channel("webchat")

# site_key: public, the widget sends it to open a session; token_secret: 32+ random bytes that
# sign the visitors' session tokens (HS256); allowed_origins: the pages that may call the API.
EXAMPLE: dict[str, Any] = {
    "site_key": "site-acme",
    "token_secret": "32-or-more-random-bytes-for-HS256-signing",
    "allowed_origins": ["https://www.acme.example"],
}


@dataclass(frozen=True)
class WebchatAccount:
    tenant_id: str
    site_key: str
    token_secret: Secret
    allowed_origins: tuple[str, ...]

    @property
    def account_id(self) -> str:
        return self.site_key


def load(tenant_id: str, entry: Mapping[str, Any]) -> WebchatAccount:
    key = str(entry["site_key"])
    token_secret = secret(entry, "token_secret", f"webchat {key}")
    if len(token_secret.reveal().encode()) < 32:
        # An HS256 key shorter than the hash is guessable (RFC 7518 §3.2).
        raise TenantConfigError(f"webchat {key}: token_secret needs 32+ bytes")
    listed = entry.get("allowed_origins", [])
    if not isinstance(listed, list):
        raise TenantConfigError(f"webchat {key}: allowed_origins must be a list of origins")
    origins = tuple(str(o) for o in listed)
    return WebchatAccount(tenant_id, key, token_secret, origins)
