"""The conversations API's tokens and pages: ``TokenVerifier`` with the HS256 secret and with a
JWKS served by a real local HTTP server (an RSA and an EC P-256 key), every way a token must be
refused, roles, and the opaque ids, cursors and paging parameters of ``shared.api.paging``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from shared.api import paging
from shared.api.auth import REQUIRED_CLAIMS, Caller, TokenVerifier, mint
from shared.errors import DependencyUnavailable, Forbidden, InvalidParameter, NotFound, Unauthorized
from shared.settings import Settings

SECRET = "unit-test-api-secret-0123456789-abcdef"  # 38 bytes
ISSUER = "chat-service"
AUDIENCE = "chat-service-api"
RSA_KID = "rsa-1"
EC_KID = "ec-1"

Sign = Callable[[bytes], bytes]


# --- building tokens --------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], claims: dict[str, Any], sign: Sign | None) -> str:
    """A compact JWS built by hand, so a test can use headers and keys pyjwt would refuse."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = sign(signing_input.encode()) if sign else b""
    return f"{signing_input}.{b64url(signature)}"


def hmac_sha256(secret: bytes) -> Sign:
    return lambda data: hmac.new(secret, data, hashlib.sha256).digest()


def claims(**overrides: Any) -> dict[str, Any]:
    """Valid claims for now; an override of ``None`` removes the claim."""
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice@acme",
        "tid": "acme",
        "roles": ["agent"],
        "iat": now,
        "exp": now + 600,
    }
    return {k: v for k, v in {**base, **overrides}.items() if v is not None}


def hs256(payload: dict[str, Any], secret: str = SECRET) -> str:
    return forge({"alg": "HS256", "typ": "JWT"}, payload, hmac_sha256(secret.encode()))


def settings(**overrides: Any) -> Settings:
    return Settings(**{"api_jwt_secret": SECRET, **overrides})


def refused(verifier: TokenVerifier, token: str) -> Unauthorized:
    with pytest.raises(Unauthorized) as info:
        verifier.verify(token)
    assert info.value.status == 401
    return info.value


# --- the JWKS server ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Jwks:
    url: str
    rsa_key: rsa.RSAPrivateKey
    ec_key: ec.EllipticCurvePrivateKey
    requests: list[str]

    def rs256(self, payload: dict[str, Any], kid: str = RSA_KID) -> str:
        return str(jwt.encode(payload, self.rsa_key, algorithm="RS256", headers={"kid": kid}))

    def es256(self, payload: dict[str, Any], kid: str = EC_KID) -> str:
        return str(jwt.encode(payload, self.ec_key, algorithm="ES256", headers={"kid": kid}))

    def rsa_public_pem(self) -> bytes:
        return self.rsa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def jwk(public_json: str | dict[str, Any], kid: str) -> dict[str, Any]:
    key = json.loads(public_json) if isinstance(public_json, str) else dict(public_json)
    return {**key, "kid": kid, "use": "sig"}


@pytest.fixture(scope="module")
def jwks() -> Iterator[Jwks]:
    """A JWKS document on a real HTTP server in a thread: one RSA and one EC P-256 key."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    document = json.dumps(
        {
            "keys": [
                jwk(RSAAlgorithm.to_jwk(rsa_key.public_key()), RSA_KID),
                jwk(ECAlgorithm.to_jwk(ec_key.public_key()), EC_KID),
            ]
        }
    ).encode()
    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            if self.path != "/.well-known/jwks.json":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(document)))
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        yield Jwks(f"http://127.0.0.1:{port}/.well-known/jwks.json", rsa_key, ec_key, requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# --- HS256 --------------------------------------------------------------------------------------


def test_a_valid_hs256_token_gives_its_caller() -> None:
    token = hs256(claims(roles=["agent"]))

    caller = TokenVerifier(settings()).verify(token)

    assert caller.tenant_id == "acme"
    assert caller.subject == "alice@acme"
    assert caller.roles == frozenset({"agent"})
    assert len(caller.token_hash) == 32
    assert token not in caller.token_hash


def test_minted_tokens_verify_and_each_token_has_its_own_hash() -> None:
    configured = settings()
    now = time.time()
    agent = mint(configured, tenant_id="acme", subject="a", roles=("agent",), now=now)
    other = mint(configured, tenant_id="acme", subject="b", roles=("agent",), now=now)
    verifier = TokenVerifier(configured)

    first, again, second = verifier.verify(agent), verifier.verify(agent), verifier.verify(other)

    assert first.token_hash == again.token_hash
    assert first.token_hash != second.token_hash
    assert (first.tenant_id, second.subject) == ("acme", "b")


def test_roles_may_be_a_space_separated_string_and_unknown_ones_are_dropped() -> None:
    verifier = TokenVerifier(settings())

    assert verifier.verify(hs256(claims(roles="agent admin"))).roles == {"agent", "admin"}
    assert verifier.verify(hs256(claims(roles=["viewer", "agent"]))).roles == {"agent"}


def test_an_expired_token_is_token_expired() -> None:
    token = hs256(claims(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600))

    assert refused(TokenVerifier(settings()), token).code == "token_expired"


def test_expiry_and_not_before_allow_the_configured_leeway() -> None:
    now = int(time.time())
    verifier = TokenVerifier(settings(api_jwt_leeway_s=30))

    assert verifier.verify(hs256(claims(exp=now - 5))).tenant_id == "acme"
    assert verifier.verify(hs256(claims(nbf=now + 5))).tenant_id == "acme"


def test_not_before_in_the_future_beyond_the_leeway_is_refused() -> None:
    token = hs256(claims(nbf=int(time.time()) + 3600))

    assert refused(TokenVerifier(settings(api_jwt_leeway_s=30)), token).code == "invalid_token"


def test_issued_in_the_future_beyond_the_leeway_is_refused() -> None:
    token = hs256(claims(iat=int(time.time()) + 3600, exp=int(time.time()) + 7200))

    assert refused(TokenVerifier(settings()), token).code == "invalid_token"


@pytest.mark.parametrize(
    "changes",
    [
        {"iss": "someone-else"},
        {"aud": "another-api"},
        {"aud": [AUDIENCE, "another-api"]},  # strict: one audience, exactly ours
    ],
    ids=["issuer", "audience", "audience-list"],
)
def test_a_wrong_issuer_or_audience_is_refused(changes: dict[str, Any]) -> None:
    assert refused(TokenVerifier(settings()), hs256(claims(**changes))).code == "invalid_token"


def test_issuer_and_audience_come_from_the_settings() -> None:
    verifier = TokenVerifier(settings(api_jwt_issuer="idp", api_jwt_audience="chat"))

    assert verifier.verify(hs256(claims(iss="idp", aud="chat"))).tenant_id == "acme"
    assert refused(verifier, hs256(claims())).code == "invalid_token"


@pytest.mark.parametrize("missing", REQUIRED_CLAIMS)
def test_every_required_claim_is_required(missing: str) -> None:
    token = hs256(claims(**{missing: None}))

    assert refused(TokenVerifier(settings()), token).code == "invalid_token"


@pytest.mark.parametrize(
    "changes",
    [{"tid": ""}, {"tid": 7}, {"sub": ""}, {"roles": 5}, {"roles": [1, 2]}],
    ids=["empty-tid", "numeric-tid", "empty-sub", "numeric-roles", "numeric-role-items"],
)
def test_malformed_claims_are_refused(changes: dict[str, Any]) -> None:
    assert refused(TokenVerifier(settings()), hs256(claims(**changes))).code == "invalid_token"


@pytest.mark.parametrize("roles", [[], ["viewer"], "", "owner"], ids=repr)
def test_a_token_without_a_known_role_is_forbidden(roles: Any) -> None:
    with pytest.raises(Forbidden) as info:
        TokenVerifier(settings()).verify(hs256(claims(roles=roles)))

    assert (info.value.status, info.value.code) == (403, "forbidden")


def test_a_wrong_signature_is_refused() -> None:
    token = hs256(claims(), secret="another-secret-of-enough-length-0123456789")

    assert refused(TokenVerifier(settings()), token).code == "invalid_token"


def test_a_tampered_payload_is_refused() -> None:
    header, _, signature = hs256(claims(tid="acme")).split(".")
    payload = b64url(json.dumps(claims(tid="globex")).encode())

    assert refused(TokenVerifier(settings()), f"{header}.{payload}.{signature}").code == (
        "invalid_token"
    )


@pytest.mark.parametrize("token", ["", "garbage", "a.b", "a.b.c", "e30.e30.", "...."])
def test_what_is_not_a_jwt_is_refused(token: str) -> None:
    assert refused(TokenVerifier(settings()), token).code == "invalid_token"


@pytest.mark.parametrize("alg", ["none", "None", "NONE", ""])
def test_an_unsigned_token_is_refused(alg: str) -> None:
    token = forge({"alg": alg, "typ": "JWT"}, claims(), None)

    assert refused(TokenVerifier(settings()), token).code == "invalid_token"


def test_an_unsigned_token_with_a_signature_of_the_secret_is_still_refused() -> None:
    token = forge({"alg": "none"}, claims(), hmac_sha256(SECRET.encode()))

    assert refused(TokenVerifier(settings()), token).code == "invalid_token"


@pytest.mark.parametrize("alg", ["HS384", "HS512", "RS512", "PS256", "ES384", "EdDSA"])
def test_other_algorithms_are_refused(alg: str) -> None:
    token = forge({"alg": alg}, claims(), hmac_sha256(SECRET.encode()))

    assert refused(TokenVerifier(settings()), token).code == "invalid_token"


def test_an_asymmetric_token_is_refused_without_a_jwks(jwks: Jwks) -> None:
    assert refused(TokenVerifier(settings()), jwks.rs256(claims())).code == "invalid_token"


def test_a_secret_shorter_than_32_bytes_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        TokenVerifier(settings(api_jwt_secret="x" * 31))
    TokenVerifier(settings(api_jwt_secret="x" * 32))  # exactly the minimum is fine


def test_nothing_configured_accepts_nothing() -> None:
    verifier = TokenVerifier(settings(api_jwt_secret="", api_jwks_url=""))

    assert refused(verifier, hs256(claims())).code == "invalid_token"


# --- key confusion ------------------------------------------------------------------------------


def test_an_hs256_token_is_refused_when_only_a_jwks_is_configured(jwks: Jwks) -> None:
    verifier = TokenVerifier(settings(api_jwt_secret="", api_jwks_url=jwks.url))

    assert refused(verifier, hs256(claims())).code == "invalid_token"


@pytest.mark.parametrize("secret", [SECRET, ""], ids=["secret-and-jwks", "jwks-only"])
def test_an_rs256_header_over_an_hmac_with_the_public_key_is_refused(
    jwks: Jwks, secret: str
) -> None:
    # The classic confusion: the RSA public key (public, after all) used as an HMAC secret.
    token = forge({"alg": "RS256", "kid": RSA_KID}, claims(), hmac_sha256(jwks.rsa_public_pem()))
    verifier = TokenVerifier(settings(api_jwt_secret=secret, api_jwks_url=jwks.url))

    assert refused(verifier, token).code == "invalid_token"


def test_an_rs256_header_over_an_hmac_is_refused_with_only_a_secret(jwks: Jwks) -> None:
    token = forge({"alg": "RS256", "kid": RSA_KID}, claims(), hmac_sha256(jwks.rsa_public_pem()))

    assert refused(TokenVerifier(settings()), token).code == "invalid_token"


def test_an_hs256_token_made_with_the_public_key_as_secret_is_refused(jwks: Jwks) -> None:
    token = forge({"alg": "HS256", "kid": RSA_KID}, claims(), hmac_sha256(jwks.rsa_public_pem()))
    verifier = TokenVerifier(settings(api_jwks_url=jwks.url))

    assert refused(verifier, token).code == "invalid_token"


# --- JWKS ---------------------------------------------------------------------------------------


def test_rs256_and_es256_tokens_of_the_jwks_are_accepted(jwks: Jwks) -> None:
    verifier = TokenVerifier(settings(api_jwt_secret="", api_jwks_url=jwks.url))

    by_rsa = verifier.verify(jwks.rs256(claims(tid="acme", roles=["admin"])))
    by_ec = verifier.verify(jwks.es256(claims(tid="globex", sub="bob")))

    assert (by_rsa.tenant_id, by_rsa.roles) == ("acme", frozenset({"admin"}))
    assert (by_ec.tenant_id, by_ec.subject, by_ec.roles) == ("globex", "bob", frozenset({"agent"}))


def test_hs256_and_jwks_tokens_are_both_accepted_when_both_are_configured(jwks: Jwks) -> None:
    verifier = TokenVerifier(settings(api_jwks_url=jwks.url))

    assert verifier.verify(hs256(claims())).tenant_id == "acme"
    assert verifier.verify(jwks.es256(claims())).tenant_id == "acme"


def test_the_jwks_is_fetched_once_and_cached(jwks: Jwks) -> None:
    verifier = TokenVerifier(settings(api_jwks_url=jwks.url))
    before = len(jwks.requests)

    for _ in range(3):
        verifier.verify(jwks.rs256(claims()))
        verifier.verify(jwks.es256(claims()))

    assert len(jwks.requests) - before == 1


def test_an_rs256_header_naming_the_ec_key_is_refused(jwks: Jwks) -> None:
    # Signed with the EC key (ES256's r||s), but the header claims RS256.
    signer = ECAlgorithm(ECAlgorithm.SHA256)
    token = forge(
        {"alg": "RS256", "kid": EC_KID}, claims(), lambda data: signer.sign(data, jwks.ec_key)
    )
    verifier = TokenVerifier(settings(api_jwks_url=jwks.url))

    error = refused(verifier, token)

    assert error.code == "invalid_token"
    assert "ES256" in error.message


def test_an_es256_header_naming_the_rsa_key_is_refused(jwks: Jwks) -> None:
    signer = RSAAlgorithm(RSAAlgorithm.SHA256)
    token = forge(
        {"alg": "ES256", "kid": RSA_KID}, claims(), lambda data: signer.sign(data, jwks.rsa_key)
    )

    assert refused(TokenVerifier(settings(api_jwks_url=jwks.url)), token).code == "invalid_token"


def test_a_token_signed_by_another_key_under_our_kid_is_refused(jwks: Jwks) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(claims(), stranger, algorithm="RS256", headers={"kid": RSA_KID})

    assert refused(TokenVerifier(settings(api_jwks_url=jwks.url)), token).code == "invalid_token"


@pytest.mark.parametrize("kid", ["rsa-unknown", None])
def test_an_unknown_or_missing_kid_is_refused(jwks: Jwks, kid: str | None) -> None:
    header: dict[str, Any] = {"alg": "RS256", **({"kid": kid} if kid else {})}
    signer = RSAAlgorithm(RSAAlgorithm.SHA256)
    token = forge(header, claims(), lambda data: signer.sign(data, jwks.rsa_key))

    assert refused(TokenVerifier(settings(api_jwks_url=jwks.url)), token).code == "invalid_token"


def test_jwks_tokens_are_checked_for_expiry_and_claims_too(jwks: Jwks) -> None:
    verifier = TokenVerifier(settings(api_jwks_url=jwks.url))
    now = int(time.time())

    assert refused(verifier, jwks.rs256(claims(exp=now - 3600))).code == "token_expired"
    assert refused(verifier, jwks.es256(claims(iss="evil"))).code == "invalid_token"
    with pytest.raises(Forbidden):
        verifier.verify(jwks.es256(claims(roles=["viewer"])))


def test_an_unreachable_jwks_is_a_dependency_outage() -> None:
    url = f"http://127.0.0.1:{closed_port()}/.well-known/jwks.json"
    verifier = TokenVerifier(settings(api_jwt_secret="", api_jwks_url=url))
    key = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode(claims(), key, algorithm="ES256", headers={"kid": EC_KID})

    with pytest.raises(DependencyUnavailable) as info:
        verifier.verify(token)

    assert (info.value.status, info.value.dependency) == (503, "jwks")
    assert info.value.retry_after_s >= 1


def test_hs256_tokens_still_verify_while_the_jwks_is_down() -> None:
    url = f"http://127.0.0.1:{closed_port()}/.well-known/jwks.json"
    verifier = TokenVerifier(settings(api_jwks_url=url))

    assert verifier.verify(hs256(claims())).tenant_id == "acme"


# --- roles --------------------------------------------------------------------------------------


def caller(*roles: str) -> Caller:
    return Caller(tenant_id="acme", subject="s", roles=frozenset(roles), token_hash="h")


def test_an_agent_is_not_an_admin() -> None:
    caller("agent").require("agent")
    with pytest.raises(Forbidden) as info:
        caller("agent").require("admin")
    assert (info.value.status, info.value.code) == (403, "forbidden")


def test_an_admin_is_also_an_agent() -> None:
    admin = TokenVerifier(settings()).verify(hs256(claims(roles=["admin"])))

    admin.require("admin")
    admin.require("agent")
    assert admin.roles == {"admin"}


def test_mint_needs_the_secret() -> None:
    with pytest.raises(ValueError, match="API_JWT_SECRET"):
        mint(
            Settings(api_jwt_secret=""),
            tenant_id="acme",
            subject="s",
            roles=("agent",),
            now=time.time(),
        )


# --- paging: ids and cursors --------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "acme:whatsapp:106540352242922/16505551234",
        "acme:slack:T0001ACME/C0123ABC",
        "acme:webchat:site-acme/conv 42/ü?&#=",
        "a:b:c",
    ],
)
def test_a_conversation_id_round_trips_and_needs_no_escaping(key: str) -> None:
    conversation = paging.conversation_id(key)

    assert paging.conversation_key(conversation) == key
    assert "=" not in conversation
    assert set(conversation) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    )


@pytest.mark.parametrize(
    "conversation",
    [
        "",
        "a",
        "!!!",
        "not-base64-at-all!",
        paging.conversation_id("no-colons-here"),
        paging.conversation_id("one:colon"),
        b64url(b"\xff\xfe\xfd:x:y"),
        "A" * 2000,
    ],
)
def test_a_garbage_conversation_id_is_not_found(conversation: str) -> None:
    with pytest.raises(NotFound) as info:
        paging.conversation_key(conversation)
    assert info.value.status == 404


@pytest.mark.parametrize(
    "at",
    [
        datetime(2025, 6, 8, 20, 59, 43, 123000, tzinfo=UTC),
        datetime(2025, 6, 8, 22, 59, 43, tzinfo=timezone(timedelta(hours=2))),
        datetime(2025, 6, 8, 20, 59, 43),  # naive: UTC
    ],
    ids=["utc", "offset", "naive"],
)
def test_a_cursor_round_trips_its_position(at: datetime) -> None:
    cursor = paging.encode_cursor(at, "acme:telegram:7000000001/555")

    position = paging.decode_cursor(cursor)

    expected = at if at.tzinfo else at.replace(tzinfo=UTC)
    assert position.at == expected
    assert position.at.utcoffset() == timedelta(0)
    assert position.id == "acme:telegram:7000000001/555"
    assert "=" not in cursor


def cursor_of(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "garbage!",
        "a",
        cursor_of(b"not json"),
        cursor_of(b"{}"),
        cursor_of(b'{"at": 1, "id": 2}'),
        cursor_of(b"[1, 2]"),
        cursor_of(b'["2025-06-08T20:59:43+00:00"]'),
        cursor_of(b'["2025-06-08T20:59:43+00:00", "x", "y"]'),
        cursor_of(b'["yesterday", "x"]'),
        cursor_of(b'["9999-12-31T23:59:59-01:00", "x"]'),
        cursor_of(b'["0001-01-01T00:00:00+01:00", "x"]'),
        cursor_of(b"\xff\xfe\xfa"),
        cursor_of(b"7"),
        "A" * 2000,
    ],
)
def test_a_bad_cursor_is_an_invalid_parameter_named_cursor(cursor: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        paging.decode_cursor(cursor)

    assert (info.value.status, info.value.parameter) == (400, "cursor")
    assert info.value.to_dict()["parameter"] == "cursor"


def test_a_bad_cursor_names_the_parameter_it_came_in() -> None:
    with pytest.raises(InvalidParameter) as info:
        paging.decode_cursor("garbage!", parameter="after")
    assert info.value.parameter == "after"


# --- paging: parameters -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [({}, 20), ({"limit": ""}, 20), ({"limit": "1"}, 1), ({"limit": "100"}, 100)],
)
def test_limit_defaults_to_20_and_allows_1_to_100(query: dict[str, str], expected: int) -> None:
    assert paging.limit(query) == expected


NOT_A_LIMIT = {
    "zero": "0",
    "over-100": "101",
    "negative": "-1",
    "word": "abc",
    "fraction": "1.5",
    "leading-space": " 5",
    "trailing-space": "5 ",
    "exponent": "1e2",
    "hex": "0x10",
    "superscript-two": "\u00b2",  # str.isdigit() says yes, int() says no
    "arabic-indic-ten": "\u0661\u0660",
    "eleven-digits": "99999999999",
    "5000-digits": "9" * 5000,  # over int()'s 4300-digit limit
}


@pytest.mark.parametrize("raw", NOT_A_LIMIT.values(), ids=NOT_A_LIMIT.keys())
def test_limit_out_of_bounds_or_not_an_integer_is_refused(raw: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        paging.limit({"limit": raw})
    assert info.value.parameter == "limit"


def test_since_reads_rfc3339_and_treats_a_naive_time_as_utc() -> None:
    zulu = paging.since({"updated_since": "2025-06-08T20:59:43Z"}, "updated_since")
    naive = paging.since({"updated_since": "2025-06-08T20:59:43"}, "updated_since")
    offset = paging.since({"updated_since": "2025-06-08T22:59:43+02:00"}, "updated_since")

    assert zulu == naive == offset == datetime(2025, 6, 8, 20, 59, 43, tzinfo=UTC)
    assert paging.since({}, "updated_since") is None
    assert paging.since({"updated_since": ""}, "updated_since") is None


@pytest.mark.parametrize(
    "raw",
    [
        "yesterday",
        "2025-13-01",
        "08/06/2025",
        "now",
        "9999-12-31T23:59:59-01:00",  # after year 9999 in UTC: no BSON date holds it
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
    ],
)
def test_since_refuses_what_is_not_a_date_time(raw: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        paging.since({"updated_since": raw}, "updated_since")
    assert info.value.parameter == "updated_since"


def test_one_of_allows_only_its_values() -> None:
    allowed = ("open", "handoff", "closed")

    assert paging.one_of({"status": "open"}, "status", allowed) == "open"
    assert paging.one_of({}, "status", allowed) is None
    assert paging.one_of({"status": ""}, "status", allowed) is None
    with pytest.raises(InvalidParameter) as info:
        paging.one_of({"status": "OPEN"}, "status", allowed)
    assert info.value.parameter == "status"


def test_rfc3339_is_utc_with_a_z() -> None:
    assert paging.rfc3339(datetime(2025, 6, 8, 20, 59, 43)) == "2025-06-08T20:59:43Z"
    offset = datetime(2025, 6, 8, 22, 59, 43, 500000, tzinfo=timezone(timedelta(hours=2)))
    assert paging.rfc3339(offset) == "2025-06-08T20:59:43.500000Z"
    assert paging.rfc3339(None) is None
    assert paging.rfc3339("2025-06-08") is None
