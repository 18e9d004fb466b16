"""Bearer tokens (RFC 6750): reading them from a request, and verifying the conversations
API's JWTs.

Two kinds of token use this module: the web chat's visitor tokens
(:mod:`shared.channels.webchat.tokens`, signed per site) and the API's agent and admin tokens
(:mod:`shared.api.auth`). Both are JWTs whose algorithm is pinned by the key that verifies
them (RFC 8725 §2.1, §3.1), never by the token's own header.
"""

from __future__ import annotations

from shared.errors import Unauthorized


def bearer_token(authorization: str | None) -> str:
    """The token in an ``Authorization: Bearer <token>`` header (RFC 6750 §2.1)."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized(
            "an Authorization: Bearer <token> header is required", code="missing_token"
        )
    return token
