"""Web chat visitor tokens: issue/verify round trip and every way a token must be refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.auth import bearer_token
from shared.channels.webchat import tokens as webchat_tokens
from shared.errors import Unauthorized
from shared.tenants import TenantDirectory

NOW = 1_750_000_000  # 2025-06-15T15:06:40Z
TTL = 1800
ACME_SECRET = b"webchat-token-secret-acme-0123456789"
GLOBEX_SECRET = b"webchat-token-secret-globex-0123"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(
    header: dict[str, Any], claims: dict[str, Any], sign: Callable[[bytes], bytes] | None
) -> str:
    """A compact JWS built by hand, so tests can use algorithms and keys pyjwt would refuse."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = sign(signing_input.encode()) if sign else b""
    return f"{signing_input}.{b64url(signature)}"


def hs(secret: bytes, digest: str = "sha256") -> Callable[[bytes], bytes]:
    return lambda data: hmac.new(secret, data, digest).digest()


def claims(**overrides: Any) -> dict[str, Any]:
    base = {
        "iss": "chat-service/webchat",
        "aud": "webchat",
        "sub": "visitor-1",
        "site": "site-acme",
        "tid": "acme",
        "cid": "c0ffee",
        "iat": NOW,
        "exp": NOW + TTL,
    }
    return {k: v for k, v in {**base, **overrides}.items() if v is not None}


def rejected(token: str, tenants: TenantDirectory, now: float = NOW) -> str:
    """The error code a refused token gets; the reason is kept for the algorithm tests."""
    with pytest.raises(Unauthorized) as info:
        webchat_tokens.verify(token, tenants, now=now)
    return info.value.code


def refused_algorithm(token: str, tenants: TenantDirectory) -> bool:
    with pytest.raises(Unauthorized) as info:
        webchat_tokens.verify(token, tenants, now=NOW)
    return info.value.code == "invalid_token" and "InvalidAlgorithmError" in info.value.message


def test_issue_and_verify_round_trip(tenants: TenantDirectory) -> None:
    account = tenants.of("webchat")["site-acme"]
    issued = webchat_tokens.issue(account, now=NOW, ttl_s=TTL, visitor_id="v-1", name="Ada")

    verified = webchat_tokens.verify(issued.token, tenants, now=NOW + 1)

    assert verified == issued.claims
    assert (verified.tenant_id, verified.site_key, verified.visitor_id) == (
        "acme",
        "site-acme",
        "v-1",
    )
    assert (verified.issued_at, verified.expires_at, verified.name) == (NOW, NOW + TTL, "Ada")
    assert issued.expires_at_rfc3339 == "2025-06-15T15:36:40Z"
    assert jwt.get_unverified_header(issued.token) == {"alg": "HS256", "typ": "JWT"}
    payload = jwt.decode(issued.token, options={"verify_signature": False})
    assert payload == claims(sub="v-1", cid=verified.conversation_id, name="Ada", sst=NOW)


def test_issue_generates_visitor_and_conversation_ids(tenants: TenantDirectory) -> None:
    account = tenants.of("webchat")["site-acme"]
    first = webchat_tokens.issue(account, now=NOW, ttl_s=TTL).claims
    second = webchat_tokens.issue(account, now=NOW, ttl_s=TTL).claims
    assert len(first.visitor_id) == len(first.conversation_id) == 32
    assert first.visitor_id != second.visitor_id
    assert first.conversation_id != second.conversation_id
    assert first.name is None


def test_the_hand_forged_hs256_token_verifies(tenants: TenantDirectory) -> None:
    # Proves forge() is right, so the rejections below are about the algorithm or the key.
    token = forge({"alg": "HS256", "typ": "JWT"}, claims(), hs(ACME_SECRET))
    assert webchat_tokens.verify(token, tenants, now=NOW).conversation_id == "c0ffee"


def test_expiry_follows_the_injected_clock(tenants: TenantDirectory) -> None:
    token = webchat_tokens.issue(tenants.of("webchat")["site-acme"], now=NOW, ttl_s=TTL).token
    assert webchat_tokens.verify(token, tenants, now=NOW + TTL - 1)
    assert rejected(token, tenants, now=NOW + TTL) == "token_expired"
    assert rejected(token, tenants, now=NOW + 10 * TTL) == "token_expired"


def test_token_from_the_future_is_refused(tenants: TenantDirectory) -> None:
    skew = webchat_tokens.MAX_CLOCK_SKEW_S
    ahead = forge({"alg": "HS256"}, claims(iat=NOW + skew, exp=NOW + TTL), hs(ACME_SECRET))
    assert webchat_tokens.verify(ahead, tenants, now=NOW)
    too_far = forge({"alg": "HS256"}, claims(iat=NOW + skew + 1), hs(ACME_SECRET))
    assert rejected(too_far, tenants) == "invalid_token"
    not_yet = forge({"alg": "HS256"}, claims(nbf=NOW + 3600), hs(ACME_SECRET))
    assert rejected(not_yet, tenants) == "invalid_token"


def test_tampered_tokens_are_refused(tenants: TenantDirectory) -> None:
    token = webchat_tokens.issue(tenants.of("webchat")["site-acme"], now=NOW, ttl_s=TTL).token
    header, _, signature = token.split(".")
    other_payload = b64url(json.dumps(claims(cid="someone-elses")).encode())
    assert rejected(f"{header}.{other_payload}.{signature}", tenants) == "invalid_token"
    flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BA")
    assert rejected(f"{header}.{token.split('.')[1]}.{flipped}", tenants) == "invalid_token"


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_unsigned_token_is_refused(tenants: TenantDirectory, alg: str) -> None:
    assert refused_algorithm(forge({"alg": alg, "typ": "JWT"}, claims(), None), tenants)


def test_other_hmac_algorithms_are_refused(tenants: TenantDirectory) -> None:
    for alg, digest in (("HS384", "sha384"), ("HS512", "sha512")):
        token = forge({"alg": alg, "typ": "JWT"}, claims(), hs(ACME_SECRET, digest))
        assert refused_algorithm(token, tenants), alg


def test_asymmetric_tokens_are_refused(tenants: TenantDirectory) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert refused_algorithm(jwt.encode(claims(), key, algorithm="RS256"), tenants)
    fake_es = forge({"alg": "ES256"}, claims(), lambda data: hashlib.sha256(data).digest() * 2)
    assert refused_algorithm(fake_es, tenants)


def test_another_sites_secret_cannot_speak_for_acme(tenants: TenantDirectory) -> None:
    # globex knows its own secret; a token claiming site-acme must be verified with acme's.
    as_acme = forge({"alg": "HS256"}, claims(), hs(GLOBEX_SECRET))
    assert rejected(as_acme, tenants) == "invalid_token"
    # Signed by the right site but naming another tenant: refused as well.
    wrong_tenant = forge({"alg": "HS256"}, claims(site="site-globex"), hs(GLOBEX_SECRET))
    assert rejected(wrong_tenant, tenants) == "invalid_token"


@pytest.mark.parametrize("missing", webchat_tokens.REQUIRED_CLAIMS)
def test_every_required_claim_is_required(tenants: TenantDirectory, missing: str) -> None:
    token = forge({"alg": "HS256"}, claims(**{missing: None}), hs(ACME_SECRET))
    assert rejected(token, tenants) == "invalid_token"


@pytest.mark.parametrize(
    "overrides",
    [
        {"iss": "someone-else"},
        {"aud": "other"},
        {"aud": ["webchat", "other"]},  # strict: one audience, ours
        {"site": "site-unknown"},
        {"site": 7},
        {"sub": 42},
        {"sub": ""},
        {"cid": ["c"]},
        {"exp": "tomorrow"},
        {"iat": True},
        {"name": {"first": "Ada"}},
    ],
)
def test_bad_claims_are_refused(tenants: TenantDirectory, overrides: dict[str, Any]) -> None:
    token = forge({"alg": "HS256"}, claims(**overrides), hs(ACME_SECRET))
    assert rejected(token, tenants) == "invalid_token"


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "....", "eyJhbGciOiJIUzI1NiJ9.e30."])
def test_garbage_is_an_invalid_token(tenants: TenantDirectory, garbage: str) -> None:
    assert rejected(garbage, tenants) == "invalid_token"


@pytest.mark.parametrize(
    ("header", "expected"),
    [("Bearer abc.def.ghi", "abc.def.ghi"), ("bearer  tok ", "tok"), ("BEARER x", "x")],
)
def test_bearer_token(header: str, expected: str) -> None:
    assert bearer_token(header) == expected


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer   ", "Basic dXNlcjpwYXNz", "tok"])
def test_missing_bearer_token(header: str | None) -> None:
    with pytest.raises(Unauthorized) as info:
        bearer_token(header)
    assert info.value.code == "missing_token"
