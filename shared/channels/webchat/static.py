"""The widget itself, served by the webchat function: ``GET /widget.js`` and a demo page.

``/widget.js`` is plain JavaScript (no build step, no framework) that a site embeds with
``<script src="https://<webchat>/widget.js" data-site-key="<site key>" async></script>``; it
talks to the API of the origin it was loaded from (``data-api`` names another). It is public
and the same for everyone: cached briefly (no fingerprinted file name to bust a long cache)
and revalidated by ETag, and readable cross-origin so a site may pin it with Subresource
Integrity.

``GET /`` is a page that embeds the widget for one site: ``?site=<site key>``, else the
``WEBCHAT_DEMO_SITE_KEY`` setting. It is served with a strict Content-Security-Policy: no
inline script, the widget's stylesheet admitted by a nonce made per response (the widget
copies its script tag's nonce to the ``<style>`` it adds, which is also how a host page with
a nonce-based policy admits it), connections to this origin only, no framing.
"""

from __future__ import annotations

import hashlib
import html
import secrets
import string
from functools import cache
from importlib.resources import files

from shared.channels.webchat.cors import accounts
from shared.dataclass import dataclass
from shared.errors import NotFound
from shared.ingress import Ingress
from shared.web import WebRequest, WebResponse

WIDGET_PATH = "/widget.js"
DEMO_PATH = "/"
SITE_PARAMETER = "site"
WIDGET_MAX_AGE_S = 300


@dataclass(frozen=True)
class Asset:
    body: bytes
    etag: str


@cache
def asset(name: str) -> Asset:
    """A file of ``static/`` (package data), read once per process."""
    body = (files("shared.channels.webchat") / "static" / name).read_bytes()
    return Asset(body, f'"{hashlib.sha256(body).hexdigest()[:32]}"')


def widget(request: WebRequest, ingress: Ingress) -> WebResponse:
    script = asset("widget.js")
    headers = {
        "Content-Type": "text/javascript; charset=utf-8",
        "Cache-Control": f"public, max-age={WIDGET_MAX_AGE_S}",
        "ETag": script.etag,
        "X-Content-Type-Options": "nosniff",
        "Access-Control-Allow-Origin": "*",
        "Cross-Origin-Resource-Policy": "cross-origin",
    }
    if _etags(request.header("If-None-Match")) & {script.etag, "*"}:
        return WebResponse(304, b"", headers)
    return WebResponse(200, script.body, headers)


def content_security_policy(nonce: str) -> str:
    return "; ".join(
        (
            "default-src 'none'",
            f"script-src 'nonce-{nonce}'",
            f"style-src 'nonce-{nonce}'",
            "connect-src 'self'",
            "img-src 'self' data:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )


def demo_page(request: WebRequest, ingress: Ingress) -> WebResponse:
    site_key = request.query.get(SITE_PARAMETER) or ingress.settings.webchat_demo_site_key
    if not site_key:
        raise NotFound(
            "the demo page needs ?site=<site key> (or WEBCHAT_DEMO_SITE_KEY)", code="no_demo_site"
        )
    if site_key not in accounts(ingress.tenants):
        raise NotFound(f"no web chat site {site_key!r}", code="unknown_account")
    nonce = secrets.token_urlsafe(18)
    page = string.Template(asset("demo.html").body.decode()).substitute(
        nonce=nonce, site_key=html.escape(site_key, quote=True), widget_path=WIDGET_PATH
    )
    headers = {
        "Content-Type": "text/html; charset=utf-8",
        "Cache-Control": "no-store",  # a new nonce every time
        "Content-Security-Policy": content_security_policy(nonce),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
    }
    return WebResponse(200, page, headers)


def _etags(header: str | None) -> set[str]:
    """The entity tags of an ``If-None-Match`` header (RFC 9110 §13.1.2), weak ones included."""
    return {tag.strip().removeprefix("W/") for tag in (header or "").split(",") if tag.strip()}
