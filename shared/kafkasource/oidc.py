"""Sender identity for the local KafkaSource dispatcher: tokens as the cluster would issue them.

With Knative Eventing's ``authentication-oidc`` on, a KafkaSource adds to every delivery a JWT
its service account got from the cluster's token issuer, for the sink's audience; the handlers
verify it (:mod:`shared.eventauth`). Locally the dispatcher is that issuer: it signs ES256
tokens with a key the local stack made, and the stack serves the public half as a JWKS. The
audience of a sink is its Service's name here (a cluster announces its own form in the sink's
``status.address.audience``).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

SUBJECT = "system:serviceaccount:local:kafkasource-dispatcher"
TTL_S = 600
RENEW_S = 60  # a token is replaced this long before it expires


class TokenMinter:
    def __init__(self, private_key_pem: bytes, *, issuer: str, kid: str) -> None:
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        self._key = load_pem_private_key(private_key_pem, password=None)
        self._issuer = issuer
        self._kid = kid
        self._tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, path: Path, *, issuer: str) -> TokenMinter:
        return cls(path.read_bytes(), issuer=issuer, kid=path.stem)

    def headers(self, audience: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token(audience)}"}

    def token(self, audience: str) -> str:
        import jwt

        now = time.time()
        with self._lock:
            cached = self._tokens.get(audience)
            if cached is not None and cached[1] - RENEW_S > now:
                return cached[0]
            expires = now + TTL_S
            token = jwt.encode(
                {
                    "iss": self._issuer,
                    "sub": SUBJECT,
                    "aud": audience,
                    "iat": int(now),
                    "exp": int(expires),
                },
                self._key,  # type: ignore[arg-type]
                algorithm="ES256",
                headers={"kid": self._kid},
            )
            self._tokens[audience] = (token, expires)
            return token
