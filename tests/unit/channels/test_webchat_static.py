"""The widget's files as the webchat function serves them: types, caching, the demo page's
Content-Security-Policy. The widget working in a browser is tests/e2e/test_webchat_browser.py."""

from __future__ import annotations

import dataclasses
import re

import pytest

from shared.channels import webchat
from shared.channels.webchat.static import asset
from shared.errors import ChatServiceError
from shared.ingress import Ingress
from shared.settings import Settings
from shared.tenants import TenantDirectory
from shared.web import WebRequest, WebResponse, error_response
from tests.conftest import TENANTS
from tests.unit.fakes import MemoryDedupe, RecordingProducer


def ingress(demo_site_key: str = "") -> Ingress:
    return Ingress(
        settings=dataclasses.replace(Settings(), webchat_demo_site_key=demo_site_key),
        tenants=TenantDirectory.from_dict(TENANTS),
        producer=RecordingProducer(),
        dedupe=MemoryDedupe(),
    )


def get(path: str, query: dict[str, str] | None = None, **headers: str) -> WebResponse:
    return get_with(ingress(), path, query, **headers)


def get_with(
    served_by: Ingress, path: str, query: dict[str, str] | None = None, **headers: str
) -> WebResponse:
    named = {k.replace("_", "-"): v for k, v in headers.items()}
    request = WebRequest("GET", path, named, b"", query or {})
    try:
        return webchat.handle(request, served_by)
    except ChatServiceError as exc:
        return error_response(exc)


def test_the_widget_is_javascript_cached_briefly_and_revalidated() -> None:
    response = get("/widget.js")

    assert response.status == 200
    assert response.body == asset("widget.js").body
    assert response.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert response.headers["Cache-Control"] == "public, max-age=300"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    # Any site may load it, also with Subresource Integrity (a CORS request).
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    etag = response.headers["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)

    for condition in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = get("/widget.js", If_None_Match=condition)
        assert (again.status, again.body) == (304, b"")
    assert get("/widget.js", If_None_Match='"other"').status == 200


def test_the_widget_talks_only_to_the_api_routes_it_is_served_with() -> None:
    source = asset("widget.js").body.decode()
    for path in ("/sessions", "/sessions/resume", "/messages", "/stream?token="):
        assert f'"{path}' in source
    assert "innerHTML" not in source  # text is always set as text


def csp(response: WebResponse) -> dict[str, str]:
    policy = response.headers["Content-Security-Policy"]
    return dict(directive.split(" ", 1) for directive in policy.split("; "))


def test_the_demo_page_embeds_the_widget_under_a_strict_policy() -> None:
    response = get("/", {"site": "site-acme"})

    assert response.status == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Frame-Options"] == "DENY"
    policy = csp(response)
    nonce = re.search(r"'nonce-([^']+)'", policy["script-src"])
    assert nonce is not None
    assert policy == {
        "default-src": "'none'",
        "script-src": f"'nonce-{nonce[1]}'",
        "style-src": f"'nonce-{nonce[1]}'",
        "connect-src": "'self'",
        "img-src": "'self' data:",
        "base-uri": "'none'",
        "form-action": "'none'",
        "frame-ancestors": "'none'",
    }
    page = response.body
    tag = f'<script src="/widget.js" data-site-key="site-acme" data-open="true" nonce="{nonce[1]}">'
    assert tag in page
    assert "<script>" not in page  # nothing inline
    assert page.count(f'nonce="{nonce[1]}"') == 2  # the script tag and the page's own style


def test_every_demo_page_has_its_own_nonce() -> None:
    first, second = get("/", {"site": "site-acme"}), get("/", {"site": "site-acme"})
    assert csp(first)["script-src"] != csp(second)["script-src"]


def test_the_demo_site_may_come_from_the_settings() -> None:
    response = get_with(ingress(demo_site_key="site-globex"), "/")
    assert response.status == 200
    assert 'data-site-key="site-globex"' in response.body


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({}, "no_demo_site"),
        ({"site": "site-nobody"}, "unknown_account"),
        ({"site": '"><script>alert(1)</script>'}, "unknown_account"),
    ],
)
def test_no_demo_page_without_a_known_site(query: dict[str, str], code: str) -> None:
    response = get("/", query)
    assert (response.status, response.body["error"]) == (404, code)
