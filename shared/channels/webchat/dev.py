"""Web chat on the local stack: the dev tenant's site, allowed from the webchat function's own
local origins (they follow the port it got this run), and its endpoints entry."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlsplit

from shared.channels.webchat.inbound import MESSAGES_PATH, SESSIONS_PATH
from shared.channels.webchat.routes import STREAM_PATH
from shared.channels.webchat.static import DEMO_PATH, SITE_PARAMETER, WIDGET_PATH

SITE_KEY = "dev-site"
LOCAL_HOSTS = ("127.0.0.1", "localhost")


def make() -> dict[str, Any]:
    return {"site_key": SITE_KEY, "token_secret": secrets.token_urlsafe(32), "allowed_origins": []}


def local_origins(port: int) -> list[str]:
    return [f"http://{host}:{port}" for host in LOCAL_HOSTS]


def _is_local(origin: str) -> bool:
    return any(origin.startswith(f"http://{host}:") for host in LOCAL_HOSTS)


def refresh(account: dict[str, Any], function_url: str | None) -> dict[str, Any]:
    """The site's own origins kept; the local ones are the function's this run."""
    port = urlsplit(function_url).port if function_url else None
    if port is None:
        return account
    kept = [o for o in account.get("allowed_origins", []) if not _is_local(o)]
    return {**account, "allowed_origins": kept + local_origins(port)}


def endpoints(account: dict[str, Any], function_url: str | None) -> dict[str, Any]:
    def url(path: str) -> str | None:
        return f"{function_url}{path}" if function_url else None

    demo = url(DEMO_PATH)
    return {
        "site_key": account["site_key"],
        "allowed_origins": account.get("allowed_origins", []),
        "sessions_url": url(SESSIONS_PATH),
        "messages_url": url(MESSAGES_PATH),
        "stream_url": url(STREAM_PATH),
        "widget_url": url(WIDGET_PATH),
        # A page with the widget of this site: open it in a browser to chat with the bot.
        "demo_url": f"{demo}?{SITE_PARAMETER}={account['site_key']}" if demo else None,
    }
