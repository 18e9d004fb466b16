"""Who is asking: the visitor a request's token names, and the CORS headers of their site.

Every visitor route but ``POST /sessions`` starts here. The token is checked before anything
else of the request is read, so an anonymous caller learns nothing more; tenant, site and
conversation come from the verified token only, never from the request.
"""

from __future__ import annotations

from shared.auth import bearer_token
from shared.channels.webchat import tokens as webchat_tokens
from shared.channels.webchat.account import CHANNEL
from shared.channels.webchat.cors import accounts, cors_headers
from shared.channels.webchat.tokens import VisitorClaims
from shared.ingress import Ingress
from shared.models import conversation_key
from shared.web import WebRequest

TOKEN_PARAMETER = "token"  # noqa: S105 (a query parameter name)


def visitor(
    request: WebRequest, ingress: Ingress, *, token_in_query: bool = False
) -> tuple[VisitorClaims, dict[str, str]]:
    """The verified visitor and the CORS headers for their site (403 for a foreign origin).

    ``token_in_query``: the token may come as ``?token=`` when there is no Authorization
    header — only for the live stream, because ``EventSource`` cannot set headers. A token in
    a URL can end up in access logs, which is why it is short-lived and accepted nowhere else.
    """
    authorization = request.header("Authorization")
    query_token = request.query.get(TOKEN_PARAMETER) if token_in_query else None
    token = query_token if authorization is None and query_token else bearer_token(authorization)
    claims = webchat_tokens.verify(token, ingress.tenants, now=ingress.clock())
    cors = cors_headers(request.header("Origin"), accounts(ingress.tenants)[claims.site_key])
    return claims, cors


def conversation_id(claims: VisitorClaims) -> str:
    """The conversation within the channel (``<site>/<conversation>``), as stored and keyed."""
    return f"{claims.site_key}/{claims.conversation_id}"


def conversation_key_of(claims: VisitorClaims) -> str:
    return conversation_key(claims.tenant_id, CHANNEL, conversation_id(claims))
