"""CORS for the widget's API (Fetch Standard, "CORS protocol").

A site may list ``allowed_origins``; a browser request from any other origin is refused with
403. A request without ``Origin`` is not from a browser (e.g. a tenant's own server) and is let
through: the token, not the origin, is what authenticates a visitor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from shared.channels.webchat.account import CHANNEL, WebchatAccount
from shared.errors import ChatServiceError, Forbidden
from shared.tenants import TenantDirectory
from shared.web import WebResponse

PREFLIGHT_MAX_AGE_S = 600
# Authorization carries the visitor token; Last-Event-ID is what a reconnecting EventSource
# sends (not CORS-safelisted, so it must be allowed explicitly).
ALLOWED_HEADERS = "Authorization, Content-Type, Last-Event-ID"
# A response header the widget reads besides the CORS-safelisted ones: how long to wait after
# a 429 or 503.
EXPOSED_HEADERS = "Retry-After"


def accounts(tenants: TenantDirectory) -> Mapping[str, WebchatAccount]:
    return tenants.of(CHANNEL)


def cors_headers(origin: str | None, account: WebchatAccount) -> dict[str, str]:
    """CORS headers for a request to ``account``'s site; :class:`Forbidden` for a foreign origin."""
    if origin is None:
        return {}
    if account.allowed_origins and not _listed(origin, account.allowed_origins):
        raise Forbidden(
            f"origin {origin} is not allowed for site {account.site_key}",
            code="origin_not_allowed",
        )
    return _allowed(origin)


def preflight(origin: str | None, tenants: TenantDirectory, methods: Sequence[str]) -> WebResponse:
    """The answer to a CORS preflight for a route that takes ``methods``.

    A preflight carries neither the body nor the token, so the site is not known yet: it passes
    when some site accepts the origin, and the real request is checked against its own site.
    """
    headers = {
        "Allow": ", ".join((*methods, "OPTIONS")),
        "Access-Control-Allow-Methods": ", ".join(methods),
        "Access-Control-Allow-Headers": ALLOWED_HEADERS,
        "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_S),
    }
    if origin is not None:
        if not _some_site_accepts(origin, tenants):
            raise Forbidden(
                f"origin {origin} is not allowed by any site", code="origin_not_allowed"
            )
        headers |= {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    return WebResponse(204, "", headers)


def error_cors_headers(
    exc: ChatServiceError, origin: str | None, tenants: TenantDirectory
) -> dict[str, str]:
    """CORS headers for an error answer, so the widget can read it (``token_expired`` means
    "start a new session"). Errors are often raised before the site is known, so the test is
    the preflight's; a refused origin gets none, and the browser reports a CORS failure.
    """
    if origin is None or exc.code == "origin_not_allowed":
        return {}
    if not _some_site_accepts(origin, tenants):
        return {}
    return _allowed(origin)


def _allowed(origin: str) -> dict[str, str]:
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Expose-Headers": EXPOSED_HEADERS,
        "Vary": "Origin",
    }


def _some_site_accepts(origin: str, tenants: TenantDirectory) -> bool:
    sites = accounts(tenants).values()
    return any(not a.allowed_origins or _listed(origin, a.allowed_origins) for a in sites)


def _listed(origin: str, allowed: tuple[str, ...]) -> bool:
    # Browsers send a serialised origin (lower-case scheme and host, no path); configured
    # entries may carry a trailing slash or capitals, which would otherwise never match.
    return origin.lower() in {entry.rstrip("/").lower() for entry in allowed}
