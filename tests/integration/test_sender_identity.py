"""Knative Eventing's sender identity: with an audience configured, an event handler handles
only what carries a token the issuer (its JWKS, served over real HTTP) signed for it.

The local dispatcher's own minter (shared.kafkasource.oidc) signs the good tokens, so this is
also the path the local stack uses on every delivery.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask.testing import FlaskClient
from jwt.algorithms import ECAlgorithm

from shared import events
from shared.kafkasource.oidc import TokenMinter
from shared.models import DeliveryStatus
from tests.builders import deliver, status_update

pytestmark = pytest.mark.integration

ISSUER = "https://kubernetes.default.svc"
AUDIENCE = "serving.knative.dev/service/chat-service/status-tracker"


def private_pem() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture
def issuer(tmp_path: Path) -> Iterator[tuple[str, TokenMinter]]:
    """A JWKS over HTTP with one key, and a minter signing with it."""
    key_file = tmp_path / "cluster-key.pem"
    key_file.write_bytes(private_pem())
    public: Any = serialization.load_pem_private_key(key_file.read_bytes(), None).public_key()
    jwk = {**json.loads(ECAlgorithm.to_jwk(public)), "kid": "cluster-key", "alg": "ES256"}
    body = json.dumps({"keys": [jwk]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # http.server's name for the handler of GET
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/openid/v1/jwks"
        yield url, TokenMinter.from_file(key_file, issuer=ISSUER)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def tracker(
    issuer: tuple[str, TokenMinter],
    make_client: Callable[[str], FlaskClient],
    mongodb: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> FlaskClient:
    jwks_url, _ = issuer
    monkeypatch.setenv("EVENTING_OIDC_AUDIENCE", AUDIENCE)
    monkeypatch.setenv("EVENTING_OIDC_JWKS_URL", jwks_url)
    monkeypatch.setenv("EVENTING_OIDC_ISSUER", ISSUER)
    return make_client("status-tracker")


def post(client: FlaskClient, headers: dict[str, str]) -> Any:
    return deliver(
        client, events.status_changed(status_update(DeliveryStatus.READ)), headers=headers
    )


def test_a_token_for_this_handler_is_accepted(
    tracker: FlaskClient, issuer: tuple[str, TokenMinter]
) -> None:
    _, minter = issuer
    response = post(tracker, minter.headers(AUDIENCE))
    assert response.status_code == 200, response.get_data(as_text=True)


def forged(issuer: tuple[str, TokenMinter], case: str) -> dict[str, str]:
    _, minter = issuer
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "x", "aud": AUDIENCE, "iat": now, "exp": now + 60}
    if case == "none":
        return {}
    if case == "other audience":
        return minter.headers("serving.knative.dev/service/chat-service/message-processor")
    if case == "other key":
        token = jwt.encode(claims, private_pem(), algorithm="ES256", headers={"kid": "cluster-key"})
    elif case == "expired":
        stale = {**claims, "exp": now - 3600}
        token = jwt.encode(stale, _key(minter), algorithm="ES256", headers={"kid": "cluster-key"})
    elif case == "other issuer":
        other = {**claims, "iss": "https://evil.example"}
        token = jwt.encode(other, _key(minter), algorithm="ES256", headers={"kid": "cluster-key"})
    elif case == "alg none":
        token = jwt.encode(claims, "", algorithm="none", headers={"kid": "cluster-key"})
    else:  # an HMAC keyed with something public, the classic algorithm confusion
        public = "cluster-key-" + "0" * 32
        token = jwt.encode(claims, public, algorithm="HS256", headers={"kid": "cluster-key"})
    return {"Authorization": f"Bearer {token}"}


def _key(minter: TokenMinter) -> Any:
    return minter._key


@pytest.mark.parametrize(
    "case", ["none", "other audience", "other key", "expired", "other issuer", "alg none", "hs256"]
)
def test_anything_else_is_401_and_not_handled(
    tracker: FlaskClient, issuer: tuple[str, TokenMinter], mongodb: Any, case: str
) -> None:
    response = post(tracker, forged(issuer, case))

    assert response.status_code == 401, response.get_data(as_text=True)
    assert mongodb["pending_statuses"].count_documents({}) == 0  # nothing was applied or held


def test_without_an_audience_the_check_is_off(
    make_client: Callable[[str], FlaskClient], mongodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EVENTING_OIDC_AUDIENCE", raising=False)
    response = post(make_client("status-tracker"), {})
    assert response.status_code == 200
