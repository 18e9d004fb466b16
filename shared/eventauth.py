"""Who may deliver events to a handler: Knative Eventing's sender identity (OIDC).

An event handler trusts what it is given: the processor answers any message it receives, the
dispatcher sends any reply. Cluster-local visibility and the NetworkPolicy keep strangers out
of the network path; this keeps them out of the request. With Eventing's
``authentication-oidc`` feature on, a source adds ``Authorization: Bearer <token>``: a JWT the
cluster's service-account issuer signed for the sink's audience
(https://knative.dev/docs/eventing/features/sender-identity/). With ``EVENTING_OIDC_AUDIENCE``
set, the handler answers 401 to a request without such a token — not retried, so a forged
event ends in the dead-letter topic of whoever sent it, never in a reply.

Keys come from the issuer's JWKS (``PyJWKClient``, cached); each verifies its own algorithm
(RS256 or ES256), as the key says, never as the token's header says. ``aud`` must be this
handler's, ``exp`` in the future, ``iss`` the configured issuer when one is set.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from shared.auth import bearer_token
from shared.errors import DependencyUnavailable, Unauthorized, describe
from shared.settings import Settings

ACCEPTED = frozenset({"RS256", "ES256"})
LEEWAY_S = 30
JWKS_CACHE_S = 300


class SenderIdentity:
    def __init__(self, settings: Settings) -> None:
        self.audience = settings.eventing_oidc_audience
        self._issuer = settings.eventing_oidc_issuer
        self._jwks_url = settings.eventing_oidc_jwks_url
        self._jwks: Any = None
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return bool(self.audience)

    def verify(self, headers: Mapping[str, str]) -> str:
        """The sender's subject; :class:`Unauthorized` unless the request carries a token the
        issuer made for this handler."""
        import jwt

        authorization = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
        token = bearer_token(authorization)
        try:
            key = self._client().get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError as exc:
            raise DependencyUnavailable(
                "the OIDC issuer's keys are unreachable", dependency="oidc-jwks"
            ) from exc
        except jwt.PyJWTError as exc:
            raise _invalid(f"no key for the token: {describe(exc)}") from exc
        algorithm = str(getattr(key, "algorithm_name", ""))
        if algorithm not in ACCEPTED:
            raise _invalid(f"the key's algorithm {algorithm!r} is not accepted")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self._issuer or None,
                leeway=LEEWAY_S,
                options={
                    "require": ["exp", "aud", "sub"],
                    "strict_aud": True,
                    "verify_iss": bool(self._issuer),
                },
            )
        except jwt.PyJWTError as exc:
            raise _invalid(f"token rejected: {describe(exc)}") from exc
        return str(claims["sub"])

    def _client(self) -> Any:
        with self._lock:
            if self._jwks is None:
                from jwt import PyJWKClient

                self._jwks = PyJWKClient(
                    self._jwks_url, cache_keys=True, lifespan=JWKS_CACHE_S, timeout=5
                )
            return self._jwks


def _invalid(reason: str) -> Unauthorized:
    return Unauthorized(reason, code="invalid_sender")
