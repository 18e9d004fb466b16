"""One record to one HTTP request, the way Knative's KafkaSource sends it, and back again.

- A binary-mode CloudEvent record (``ce_*`` headers) is sent as an HTTP binary-mode CloudEvent:
  each ``ce_<attr>`` header becomes ``ce-<attr>``, ``content-type`` is kept, body = value.
- Any other record is wrapped as Knative wraps it (eventing-kafka-broker's
  InvalidCloudEventInterceptor): type ``dev.knative.kafka.event``, id
  ``partition:<p>/offset:<o>``, source ``/apis/v1/namespaces/<ns>/kafkasources/<name>#<topic>``,
  subject ``partition:<p>#<o>``, time = record time, ``key``/``partitionkey`` = the record key,
  every other header as a ``kafkaheader<name>`` extension.
- The answer is read by the Knative data-plane contract (knative/specs data-plane.md): 2xx is
  done; 404, 409, 429, 5xx and no answer at all are retried; anything else is never retried.
- A dead-lettered event carries Knative's ``knativeerrordest``, ``knativeerrorcode`` and
  ``knativeerrordata`` (base64 of the answer, at most 1 KiB) extensions; written in binary mode
  to the dead-letter topic (what a binary-mode KafkaSink does) with the record's key.
"""

from __future__ import annotations

import base64
import email.utils
import re
import time
from datetime import UTC, datetime
from typing import Any

from shared.dataclass import dataclass
from shared.errors import describe
from shared.kafka import TimedRecord
from shared.kafkasource.manifests import Delivery

KAFKA_EVENT_TYPE = "dev.knative.kafka.event"
# Knative honours Retry-After only up to `retryAfterMax`; without one we still honour it (the
# behaviour Knative announces for when the feature is GA), but not beyond a minute.
DEFAULT_RETRY_AFTER_MAX_S = 60.0
_RETRIED = frozenset({404, 409, 429})
_ERROR_DATA_LIMIT = 1024


@dataclass(frozen=True)
class HttpEvent:
    """An HTTP binary-mode CloudEvent: ``ce-*`` headers and the body."""

    headers: dict[str, str]
    body: bytes

    @property
    def id(self) -> str:
        return self.headers.get("ce-id", "")

    @property
    def type(self) -> str:
        return self.headers.get("ce-type", "")


@dataclass(frozen=True)
class Outcome:
    """The sink's answer to one attempt; ``status`` is None when there was no answer."""

    status: int | None
    body: bytes = b""
    error: str = ""
    retry_after_s: float | None = None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        return self.status is None or self.status in _RETRIED or self.status >= 500


def to_http(record: TimedRecord, source_name: str, namespace: str) -> HttpEvent:
    headers = {name.lower(): value for name, value in record.headers.items()}
    if "ce_specversion" in headers:
        http = {
            "ce-" + name[3:]: _text(value) for name, value in headers.items() if name[:3] == "ce_"
        }
        if "content-type" in headers:
            http["content-type"] = _text(headers["content-type"])
        if "ce-traceparent" in http:  # as Knative's dispatcher does: the trace goes on
            http["traceparent"] = http["ce-traceparent"]
        return HttpEvent(http, record.value or b"")
    return HttpEvent(_wrap(record, headers, source_name, namespace), record.value or b"")


def _wrap(
    record: TimedRecord, headers: dict[str, bytes], source_name: str, namespace: str
) -> dict[str, str]:
    timestamp = datetime.fromtimestamp(record.timestamp_ms / 1000, UTC)
    http = {
        "ce-specversion": "1.0",
        "ce-id": f"partition:{record.partition}/offset:{record.offset}",
        "ce-source": f"/apis/v1/namespaces/{namespace}/kafkasources/{source_name}#{record.topic}",
        "ce-type": KAFKA_EVENT_TYPE,
        "ce-subject": f"partition:{record.partition}#{record.offset}",
        "ce-time": timestamp.isoformat().replace("+00:00", "Z"),
    }
    if record.key is not None:
        http["ce-key"] = http["ce-partitionkey"] = _text(record.key)
    for name, value in headers.items():
        if name == "content-type":
            http["content-type"] = _text(value).lower()
        else:  # CloudEvents attribute names are [a-z0-9] only
            http["ce-kafkaheader" + re.sub(r"[^a-z0-9]", "", name)] = _text(value)
    return http


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value


def post(
    client: Any,
    url: str,
    event: HttpEvent,
    timeout_s: float,
    extra_headers: dict[str, str] | None = None,
) -> Outcome:
    """POST the event with an ``httpx.Client``; transport failures become a no-answer outcome.
    ``extra_headers``: the sender's identity (an Authorization header), when it has one."""
    import httpx

    headers = {**event.headers, **(extra_headers or {})}
    try:
        response = client.post(url, content=event.body, headers=headers, timeout=timeout_s)
    except httpx.HTTPError as exc:
        return Outcome(None, error=describe(exc))
    return Outcome(
        response.status_code,
        response.content,
        retry_after_s=retry_after(response.headers.get("retry-after")),
    )


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def wait_before_retry(policy: Delivery, retry_number: int, outcome: Outcome) -> float:
    """The manifest's backoff, or the sink's Retry-After on 429/503 when that is longer."""
    wait_s = policy.backoff_s(retry_number)
    if outcome.retry_after_s is not None and outcome.status in (429, 503):
        cap = policy.retry_after_max_s
        cap = DEFAULT_RETRY_AFTER_MAX_S if cap is None else cap  # PT0S: ignore Retry-After
        wait_s = max(wait_s, min(outcome.retry_after_s, cap))
    return wait_s


def dead_letter_headers(
    record: TimedRecord, event: HttpEvent, outcome: Outcome, destination: str
) -> list[tuple[str, bytes]]:
    """The Kafka headers of the dead-letter record: the event in binary mode + Knative's errors."""
    if "ce_specversion" in {name.lower() for name in record.headers}:
        headers = [(name, value) for name, value in record.headers.items()]
    else:
        headers = [
            ("ce_" + name[3:] if name.startswith("ce-") else name, value.encode())
            for name, value in event.headers.items()
        ]
    headers = [(n, v) for n, v in headers if not n.lower().startswith("ce_knativeerror")]
    headers.append(("ce_knativeerrordest", destination.encode()))
    if outcome.status is not None:
        headers.append(("ce_knativeerrorcode", str(outcome.status).encode()))
    data = outcome.body if outcome.status is not None else f"dispatch error: {outcome.error}"
    data = data.encode() if isinstance(data, str) else data
    if data:
        headers.append(("ce_knativeerrordata", base64.b64encode(data[:_ERROR_DATA_LIMIT])))
    return headers


def describe_outcome(outcome: Outcome) -> str:
    if outcome.status is None:
        return outcome.error or "no answer"
    return f"HTTP {outcome.status}"
