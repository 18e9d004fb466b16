"""What every channel webhook shares once it has its own verification and parser.

- :func:`signed_by` — which of the candidate secrets signed a request. Every candidate is
  compared, in constant time, with no early exit: the answer's timing says nothing about
  which secret (or how much of a signature) was right.
- :func:`publish` — the tail of a webhook: publish the parsed items (dedupe, Kafka
  ``acks=all``, marks), count the outcome, answer 200 with what happened.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from shared import metrics
from shared.channels._payload import constant_time_equal
from shared.errors import Unauthorized
from shared.ingress import Ingress
from shared.models import InboundMessage, StatusUpdate
from shared.tenants import Secret
from shared.web import WebResponse, json_response


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
