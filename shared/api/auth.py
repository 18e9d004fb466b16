"""The conversations API's callers: agents and admins with a JWT bearer token.

Keys are configured, never taken from the token (RFC 8725 §2.1, §3.1):

- ``API_JWT_SECRET`` verifies HS256 tokens, and nothing else;
- ``API_JWKS_URL`` gives public keys (fetched by ``PyJWKClient``, cached): each verifies the
  algorithm of its own key only — an RSA key RS256, a P-256 key ES256 (or the JWK's ``alg``).

A token's header only chooses between the two: ``HS256`` goes to the secret, anything else to
the JWKS key named by ``kid``. So ``none`` is refused, an HS256 token made with a public key as
its "secret" never meets that key, and an RS256 header over an HMAC is never checked against
the secret. ``iss``, ``aud``, ``exp`` (and ``nbf``, ``iat`` when present) are checked with a
small leeway. **The tenant is the token's ``tid`` claim**: nothing in a request can name
another tenant. Roles come from ``roles`` (``agent``, ``admin``; an admin is also an agent).
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any

from shared.dataclass import dataclass
from shared.errors import Forbidden, Unauthorized, describe
from shared.settings import Settings

HS_ALGORITHM = "HS256"
ALLOWED_ASYMMETRIC = frozenset({"RS256", "ES256"})
ROLES = ("agent", "admin")
REQUIRED_CLAIMS = ("iss", "aud", "sub", "exp", "tid", "roles")
MIN_SECRET_BYTES = 32  # RFC 7518 §3.2: an HS256 key at least as long as the hash
JWKS_CACHE_S = 300
LOCAL_SECRET_FILE = "api.json"  # noqa: S105 (a file name)  # where the local stack keeps its secret (in its state dir)


@dataclass(frozen=True)
class Caller:
    """A verified token: who calls, for which tenant, as what."""

    tenant_id: str
    subject: str
    roles: frozenset[str]
    token_hash: str  # identifies the token for its rate limit, without keeping the token

    def require(self, role: str) -> None:
        if role not in self.roles and "admin" not in self.roles:
            raise Forbidden(f"the {role} role is required", code="forbidden")


class TokenVerifier:
    def __init__(self, settings: Settings) -> None:
        self._secret = settings.api_jwt_secret
        self._jwks_url = settings.api_jwks_url
        self._issuer = settings.api_jwt_issuer
        self._audience = settings.api_jwt_audience
        self._leeway_s = settings.api_jwt_leeway_s
        self._jwks: Any = None
        self._lock = threading.Lock()
        if self._secret and len(self._secret.encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"API_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes")

    def verify(self, token: str) -> Caller:
        import jwt  # lazy: pyjwt and cryptography cost cold start

        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise _invalid(f"not a JWT: {describe(exc)}") from exc
        algorithm = header.get("alg")
        key, algorithms = self._key(token, algorithm)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway_s,
                options={"require": list(REQUIRED_CLAIMS), "strict_aud": True},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("token has expired", code="token_expired") from exc
        except jwt.PyJWTError as exc:
            raise _invalid(f"token rejected: {describe(exc)}") from exc
        return _caller(claims, token)

    def _key(self, token: str, algorithm: Any) -> tuple[Any, list[str]]:
        if algorithm == HS_ALGORITHM:
            if not self._secret:
                raise _invalid("HS256 tokens are not accepted here")
            return self._secret, [HS_ALGORITHM]
        if not isinstance(algorithm, str) or algorithm not in ALLOWED_ASYMMETRIC:
            raise _invalid(f"algorithm {algorithm!r} is not accepted")
        if not self._jwks_url:
            raise _invalid(f"{algorithm} tokens are not accepted here")
        import jwt

        try:
            signing_key = self._jwks_client().get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError as exc:
            from shared.errors import DependencyUnavailable

            raise DependencyUnavailable(
                f"the JWKS at {self._jwks_url} is unreachable", dependency="jwks"
            ) from exc
        except jwt.PyJWTError as exc:
            raise _invalid(f"no key for the token: {describe(exc)}") from exc
        pinned = _key_algorithm(signing_key)
        if pinned != algorithm:
            raise _invalid(f"the key verifies {pinned}, the token says {algorithm}")
        return signing_key.key, [pinned]

    def _jwks_client(self) -> Any:
        with self._lock:
            if self._jwks is None:
                from jwt import PyJWKClient

                self._jwks = PyJWKClient(
                    self._jwks_url, cache_keys=True, lifespan=JWKS_CACHE_S, timeout=5
                )
            return self._jwks


def _key_algorithm(signing_key: Any) -> str:
    """The one algorithm a JWKS key verifies: its ``alg``, else the default of its type (pyjwt:
    RSA → RS256, EC P-256 → ES256)."""
    algorithm = str(getattr(signing_key, "algorithm_name", "") or "")
    if algorithm not in ALLOWED_ASYMMETRIC:
        raise _invalid(f"the key's algorithm {algorithm!r} is not accepted")
    return algorithm


def _caller(claims: dict[str, Any], token: str) -> Caller:
    tenant, subject, roles = claims["tid"], claims["sub"], claims["roles"]
    if not isinstance(tenant, str) or not tenant:
        raise _invalid("tid must be a non-empty string")
    if not isinstance(subject, str) or not subject:
        raise _invalid("sub must be a non-empty string")
    if isinstance(roles, str):
        roles = roles.split()
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise _invalid("roles must be a list of strings")
    known = frozenset(roles) & frozenset(ROLES)
    if not known:
        raise Forbidden("the token carries neither the agent nor the admin role", code="forbidden")
    digest = hashlib.sha256(token.encode()).hexdigest()[:32]
    return Caller(tenant_id=tenant, subject=subject, roles=known, token_hash=digest)


def _invalid(reason: str) -> Unauthorized:
    return Unauthorized(reason, code="invalid_token")


def mint(
    settings: Settings,
    *,
    tenant_id: str,
    subject: str,
    roles: tuple[str, ...],
    now: float,
    ttl_s: int = 3600,
) -> str:
    """An HS256 token signed with ``API_JWT_SECRET`` (the local stack, tests, tools)."""
    import jwt

    if not settings.api_jwt_secret:
        raise ValueError("API_JWT_SECRET is not set: only an HS256 secret can mint tokens here")
    payload = {
        "iss": settings.api_jwt_issuer,
        "aud": settings.api_jwt_audience,
        "sub": subject,
        "tid": tenant_id,
        "roles": list(roles),
        "iat": int(now),
        "exp": int(now) + ttl_s,
    }
    return str(jwt.encode(payload, settings.api_jwt_secret, algorithm=HS_ALGORITHM))
