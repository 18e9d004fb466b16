"""Visitor tokens for web chat: short-lived HS256 JWTs (RFC 7519), one per conversation.

A token is signed with the site's own ``token_secret``, so a leaked secret exposes one site,
not every tenant. Verification follows RFC 8725 (JWT Best Current Practices):

- the algorithm is pinned to HS256 (§2.1, §3.1): ``none``, HS512 and RS/ES tokens are refused
  whatever their header says;
- the unverified ``site`` claim is read only to choose which secret to verify with; every
  claim used afterwards comes from the verified token (§3.10);
- ``iss`` and ``aud`` are checked so a token minted for something else is refused (§3.9).

Time comes from an injected clock, not pyjwt's own ``datetime.now``, so expiry is decided the
same way in production and under a frozen test clock.
"""

from __future__ import annotations

import uuid
from typing import Any

from shared.channels._payload import rfc3339
from shared.channels.webchat.account import WebchatAccount
from shared.dataclass import dataclass
from shared.errors import Unauthorized, describe
from shared.tenants import TenantDirectory

ALGORITHM = "HS256"
ISSUER = "chat-service/webchat"
AUDIENCE = "webchat"
REQUIRED_CLAIMS = ("iss", "aud", "sub", "iat", "exp", "site", "tid", "cid")
# Tokens are minted by another replica of this service; allow for its clock running ahead.
MAX_CLOCK_SKEW_S = 60


@dataclass(frozen=True)
class VisitorClaims:
    """What a verified token says: who the visitor is and which conversation they may use."""

    tenant_id: str
    site_key: str
    visitor_id: str
    conversation_id: str
    issued_at: int
    expires_at: int
    name: str | None = None
    # When the visitor's first token was issued: resumes carry it on (claim ``sst``; a token
    # without one started its session when it was issued: None).
    session_started_at: int | None = None

    @property
    def session_start(self) -> int:
        return self.issued_at if self.session_started_at is None else self.session_started_at


@dataclass(frozen=True)
class IssuedToken:
    token: str
    claims: VisitorClaims

    @property
    def expires_at_rfc3339(self) -> str:
        return rfc3339(self.claims.expires_at)


def issue(
    account: WebchatAccount,
    *,
    now: float,
    ttl_s: int,
    visitor_id: str | None = None,
    name: str | None = None,
    conversation_id: str | None = None,
    session_started_at: int | None = None,
    session_max_age_s: int | None = None,
) -> IssuedToken:
    """A token for a new (or the given) conversation of ``visitor_id`` on ``account``'s site.

    A session started at ``session_started_at`` (now, for a new one) ends ``session_max_age_s``
    later: no token of it expires after that, however often it is resumed."""
    import jwt

    issued_at = int(now)
    # Never after ``iat``: a replica whose clock runs behind the one that started the session
    # would otherwise sign a token that verify refuses.
    started = issued_at if session_started_at is None else min(session_started_at, issued_at)
    expires_at = issued_at + ttl_s
    if session_max_age_s is not None:
        expires_at = min(expires_at, started + session_max_age_s)
    claims = VisitorClaims(
        tenant_id=account.tenant_id,
        site_key=account.site_key,
        visitor_id=visitor_id or uuid.uuid4().hex,
        conversation_id=conversation_id or uuid.uuid4().hex,
        issued_at=issued_at,
        expires_at=expires_at,
        name=name,
        session_started_at=started,
    )
    payload: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": claims.visitor_id,
        "site": claims.site_key,
        "tid": claims.tenant_id,
        "cid": claims.conversation_id,
        "iat": claims.issued_at,
        "exp": claims.expires_at,
        "sst": claims.session_started_at,
    }
    if name is not None:
        payload["name"] = name
    token = jwt.encode(payload, account.token_secret.reveal(), algorithm=ALGORITHM)
    return IssuedToken(token=token, claims=claims)


def verify(token: str, tenants: TenantDirectory, *, now: float) -> VisitorClaims:
    """The claims of a token signed by its own site's secret and not yet expired.

    Raises :class:`Unauthorized` with code ``token_expired`` (the widget should start a new
    session) or ``invalid_token`` (anything else: tampered, wrong key, algorithm or claims).
    """
    import jwt  # lazy: pyjwt pulls in cryptography, ~30 ms of cold start

    account = _account_for(token, tenants)
    try:
        claims = jwt.decode(
            token,
            account.token_secret.reveal(),
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={
                "require": list(REQUIRED_CLAIMS),
                # Checked below against the injected clock instead of the system time.
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "strict_aud": True,
            },
        )
    except jwt.PyJWTError as exc:
        raise _invalid(f"token rejected: {describe(exc)}") from exc
    return _checked(claims, account, now)


def _account_for(token: str, tenants: TenantDirectory) -> WebchatAccount:
    """The account named by the token's (not yet trusted) ``site`` claim: it only picks the key."""
    import jwt

    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise _invalid(f"token is not a JWT: {describe(exc)}") from exc
    site = unverified.get("site")
    account: WebchatAccount | None = (
        tenants.account("webchat", site) if isinstance(site, str) else None
    )
    if account is None:
        raise _invalid("token names no known site")
    return account


def _checked(claims: dict[str, Any], account: WebchatAccount, now: float) -> VisitorClaims:
    issued_at, expires_at = claims["iat"], claims["exp"]
    if not _is_int(issued_at) or not _is_int(expires_at):
        raise _invalid("iat and exp must be integers")
    if now >= expires_at:
        raise Unauthorized("token has expired", code="token_expired")
    if issued_at > now + MAX_CLOCK_SKEW_S:
        raise _invalid("token is issued in the future")
    nbf = claims.get("nbf")
    if nbf is not None and (not _is_int(nbf) or nbf > now + MAX_CLOCK_SKEW_S):
        raise _invalid("token is not valid yet")
    # The secret already binds the token to the site; the tenant check catches an account that
    # moved to another tenant while its tokens were still live.
    if claims["site"] != account.site_key or claims["tid"] != account.tenant_id:
        raise _invalid("token site or tenant does not match its account")
    visitor_id, conversation_id, name = claims["sub"], claims["cid"], claims.get("name")
    if not isinstance(visitor_id, str) or not visitor_id:
        raise _invalid("sub must be a non-empty string")
    if not isinstance(conversation_id, str) or not conversation_id:
        raise _invalid("cid must be a non-empty string")
    if name is not None and not isinstance(name, str):
        raise _invalid("name must be a string")
    started = claims.get("sst", issued_at)
    if not _is_int(started) or started > issued_at:
        raise _invalid("sst must be an integer no later than iat")
    return VisitorClaims(
        tenant_id=account.tenant_id,
        site_key=account.site_key,
        visitor_id=visitor_id,
        conversation_id=conversation_id,
        issued_at=issued_at,
        expires_at=expires_at,
        name=name,
        session_started_at=started,
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _invalid(reason: str) -> Unauthorized:
    return Unauthorized(reason, code="invalid_token")
