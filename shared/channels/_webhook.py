"""What every channel webhook shares once it has its own verification and parser.

- :func:`candidates` — which secrets a request is worth verifying with: those of the accounts
  its (not yet verified) body names, so an unauthenticated request costs one HMAC, not one per
  configured secret. The verified secret is then bound to every item as before.
- :func:`signed_by` — which of the candidate secrets signed a request. Every candidate is
  compared, in constant time, with no early exit: the answer's timing says nothing about
  which secret (or how much of a signature) was right.
- :func:`publish` — the tail of a webhook: publish the parsed items (dedupe, Kafka
  ``acks=all``, marks), count the outcome, answer 200 with what happened.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from shared import metrics
from shared.channels._payload import constant_time_equal
from shared.errors import Unauthorized
from shared.ingress import Ingress
from shared.models import InboundMessage, StatusUpdate
from shared.tenants import Secret
from shared.web import WebResponse, json_response

# A body that names no account (Slack's url_verification) may be tried with every secret when it
# is this small: HMAC-ing a few hundred bytes a thousand times costs well under a millisecond.
ANONYMOUS_MAX_BYTES = 4096


def candidates(
    body: bytes,
    named: Callable[[Any], Iterable[object]],
    accounts: Mapping[str, Any],
    secret_of: Callable[[Any], Secret],
) -> set[Secret]:
    """The secrets of the accounts ``named(document)`` finds in the unverified body.

    ``named`` reads ids from untrusted JSON and must not raise. A body naming accounts of more
    than one secret is no single delivery of a platform: nothing is worth trying. A body naming
    no known account is tried with every secret only while it is small
    (:data:`ANONYMOUS_MAX_BYTES`).
    """
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        # Not even JSON (or nested past the parser's limit): let verification refuse it.
        document = None
    ids = {str(i) for i in named(document)} if document is not None else set()
    secrets = {secret_of(accounts[i]) for i in ids if i in accounts}
    if len(secrets) > 1:
        return set()
    if not secrets and len(body) <= ANONYMOUS_MAX_BYTES:
        # Names nobody we know (a handshake, or an account of a known app that is not set up
        # here: its answer, after verification, is "unknown account").
        return {secret_of(account) for account in accounts.values()}
    return secrets


def items(value: Any, key: str) -> list[Any]:
    """``value[key]`` when it is a list (of an untrusted document), else nothing."""
    found = value.get(key) if isinstance(value, dict) else None
    return found if isinstance(found, list) else []


def signed_by(
    candidates: Iterable[Secret], presented: str, expected: Callable[[Secret], str]
) -> Secret:
    """The candidate whose ``expected(secret)`` equals ``presented``; Unauthorized if none."""
    matched = None
    for secret in candidates:  # every candidate is compared: no early exit to time
        if constant_time_equal(expected(secret), presented) and matched is None:
            matched = secret
    if matched is None:
        raise Unauthorized("signature does not match the request body", code="bad_signature")
    return matched


def publish(
    ingress: Ingress,
    channel: str,
    items: Sequence[InboundMessage | StatusUpdate],
    *,
    ttl_s: int,
) -> WebResponse:
    """Publish and answer: ``{"status": "ok", "published": n, "duplicates": m}``."""
    report = ingress.publish(channel, items, ttl_s=ttl_s)
    metrics.ingress_requests.labels(channel, report.outcome).inc()
    return json_response(
        200, {"status": "ok", "published": report.published, "duplicates": report.duplicates}
    )
