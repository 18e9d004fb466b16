"""Sender identity on the local stack: the event handlers verify, the dispatcher signs.

The stack makes an EC P-256 key (kept in ``<state dir>/oidc/``), serves its public half as a
JWKS from the stack's own process, gives every event handler ``EVENTING_OIDC_AUDIENCE`` (its
name), the JWKS URL and the issuer, and starts the KafkaSource dispatcher with the key: every
delivery carries a token for its sink, as Knative Eventing's ``authentication-oidc`` does, and
anything else that posts to a handler gets 401.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from shared.dataclass import dataclass

ISSUER = "local-eventing"
KEY_ID = "local-eventing-1"


@dataclass
class Issuer:
    key_file: Path
    jwks_url: str
    server: ThreadingHTTPServer

    def handler_env(self, audience: str) -> dict[str, str]:
        return {
            "EVENTING_OIDC_AUDIENCE": audience,
            "EVENTING_OIDC_JWKS_URL": self.jwks_url,
            "EVENTING_OIDC_ISSUER": ISSUER,
        }

    def dispatcher_args(self) -> list[str]:
        return [f"--oidc-key={self.key_file}", f"--oidc-issuer={ISSUER}"]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start(state_dir: Path) -> Issuer:
    key_file = _key(state_dir / "oidc")
    jwks = json.dumps({"keys": [_public_jwk(key_file)]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # http.server's name for the handler of GET
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(jwks)))
            self.end_headers()
            self.wfile.write(jwks)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, name="oidc-jwks", daemon=True).start()
    return Issuer(key_file, f"http://127.0.0.1:{server.server_port}/jwks", server)


def _key(directory: Path) -> Path:
    """The stack's signing key (made once; the file's stem is the key id)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    path = directory / f"{KEY_ID}.pem"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.touch(mode=0o600)
        path.write_bytes(pem)
    return path


def _public_jwk(key_file: Path) -> dict[str, Any]:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from jwt.algorithms import ECAlgorithm

    key: Any = load_pem_private_key(key_file.read_bytes(), password=None)
    jwk: dict[str, Any] = json.loads(ECAlgorithm.to_jwk(key.public_key()))
    return {**jwk, "kid": key_file.stem, "alg": "ES256", "use": "sig"}
