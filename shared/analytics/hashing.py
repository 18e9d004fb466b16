"""Keyed hashes standing for end users, conversations and messages in the analytics store.

The store holds no personal data: an end user's id, a conversation's id and a platform message
id are kept only as HMAC-SHA256 (RFC 2104) under a key of the tenant's own,
``HMAC(ANALYTICS_HASH_KEY, tenant id)``. Without the key a hash cannot be tested against a
guessed phone number (a plain hash of a phone number is found by trying them all); with
per-tenant keys the same person writing to two tenants is two unrelated hashes, so no
analytics query can link them. The hash is stable for as long as the key is, which is what
counting distinct users and conversations, and erasing one user's rows, need.

Each kind of id is hashed in its own domain (``user``, ``conversation``, ``message``) and with
its channel, so equal ids of different kinds or channels never meet.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

from shared.dataclass import dataclass
from shared.errors import DependencyUnavailable

MIN_KEY_BYTES = 32


@dataclass(frozen=True)
class Hasher:
    """The keyed hashes of one deployment (``ANALYTICS_HASH_KEY``)."""

    key: bytes

    @classmethod
    def from_setting(cls, key: str) -> Hasher:
        """The hasher of ``ANALYTICS_HASH_KEY``; an unset or short key is a configuration fault
        (503: events wait in Kafka until it is fixed), never a weak hash."""
        raw = key.encode("utf-8")
        if len(raw) < MIN_KEY_BYTES:
            raise DependencyUnavailable(
                f"ANALYTICS_HASH_KEY must be set to at least {MIN_KEY_BYTES} bytes",
                dependency="postgres",
            )
        return cls(raw)

    def user(self, tenant_id: str, channel: str, user_id: str) -> str:
        return self._hash(tenant_id, "user", channel, user_id)

    def conversation(self, tenant_id: str, channel: str, conversation_id: str) -> str:
        """``conversation_id`` is ``<account>/<chat>`` (the conversation key without tenant and
        channel)."""
        return self._hash(tenant_id, "conversation", channel, conversation_id)

    def message(self, tenant_id: str, channel: str, platform_message_id: str) -> str:
        return self._hash(tenant_id, "message", channel, platform_message_id)

    def _hash(self, tenant_id: str, kind: str, channel: str, value: str) -> str:
        message = "\x1f".join((kind, channel, value)).encode("utf-8")
        return hmac.new(tenant_key(self.key, tenant_id), message, hashlib.sha256).hexdigest()


@lru_cache(maxsize=256)
def tenant_key(key: bytes, tenant_id: str) -> bytes:
    """The tenant's own key, ``HMAC-SHA256(key, tenant id)``."""
    return hmac.new(key, tenant_id.encode("utf-8"), hashlib.sha256).digest()
