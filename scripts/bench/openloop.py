"""Open-loop webhook traffic against a running stack, and the replies the sandbox records.

Messages are sent at a fixed rate whatever the answers' latency (a pool of client threads
posts each at its due time), each from a new end user on the next channel of the mix, so the
reply to it is the one sandbox call for that recipient. Latency is from the webhook's 2xx,
as the client saw it, to the time the sandbox recorded the reply (one clock: loopback).
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from shared.devstack.replies import describe
from shared.devstack.traffic import DevTraffic, Webhook

# Each text gets a reply from the reference engine: a greeting, FAQ answers.
TEXTS = ("Hello", "What are your opening hours?", "How long does shipping take?", "Hi there")
SENDERS = 32  # client threads: enough that a slow answer never holds the next send back


@dataclass
class Sent:
    webhook: Webhook
    status: int
    answered_at: float  # time.time() when the answer arrived


@dataclass
class Phase:
    """One run of traffic at one rate, and what became of every message."""

    rate: float
    seconds: float
    sent: list[Sent] = field(default_factory=list)
    send_seconds: float = 0.0  # from the first send to the last answer
    latencies_ms: list[float] = field(default_factory=list)
    lost: int = 0  # accepted (2xx) but never answered within the wait
    duplicated: int = 0  # a reply sent twice (a reply of several parts is not one)
    waited_s: float = 0.0  # after the last send, until every reply was in (or the limit)
    examples: list[str] = field(default_factory=list)  # a few lost or doubled messages

    @property
    def accepted(self) -> int:
        return sum(1 for s in self.sent if 200 <= s.status < 300)

    @property
    def rejected(self) -> int:
        return len(self.sent) - self.accepted

    @property
    def achieved_rate(self) -> float:
        return len(self.sent) / self.seconds if self.seconds else 0.0

    def percentile_ms(self, q: int) -> float | None:
        if not self.latencies_ms:
            return None
        if len(self.latencies_ms) == 1:
            return self.latencies_ms[0]
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[q - 1]

    def healthy(self, p99_limit_ms: float) -> bool:
        """Steady at this rate: all accepted, none lost or doubled, p99 within the limit."""
        p99 = self.percentile_ms(99)
        return (
            bool(self.sent)
            and self.rejected == 0
            and self.lost == 0
            and self.duplicated == 0
            and p99 is not None
            and p99 <= p99_limit_ms
        )

    def summary(self) -> dict[str, Any]:
        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 1)

        return {
            "rate": self.rate,
            "seconds": self.seconds,
            "messages": len(self.sent),
            "accepted": self.accepted,
            "rejected": self.rejected,
            "answered": len(self.latencies_ms),
            "lost": self.lost,
            "duplicated": self.duplicated,
            "p50_ms": rounded(self.percentile_ms(50)),
            "p95_ms": rounded(self.percentile_ms(95)),
            "p99_ms": rounded(self.percentile_ms(99)),
            "max_ms": rounded(max(self.latencies_ms, default=0.0)),
            "waited_for_replies_s": round(self.waited_s, 2),
            "examples": self.examples,
        }


class Driver:
    def __init__(self, endpoints: dict[str, Any], channels: Sequence[str]) -> None:
        self.traffic = DevTraffic(endpoints["tenant"])
        self.calls_url = endpoints["sandbox"]["calls_url"]
        self.channels = list(channels)
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._lock = threading.Lock()
        self.http = httpx.Client(trust_env=False, timeout=30)

    def close(self) -> None:
        for client in [*self._clients, self.http]:
            client.close()

    def _client(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(trust_env=False, timeout=30)
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def _post(self, webhook: Webhook) -> Sent:
        try:
            status = (
                self._client()
                .post(webhook.url, content=webhook.body, headers=webhook.headers)
                .status_code
            )
        except httpx.HTTPError:
            status = 0
        return Sent(webhook, status, time.time())  # fmt: skip

    def send(self, rate: float, seconds: float) -> Phase:
        """``rate * seconds`` messages, each at its due time."""
        phase = Phase(rate, seconds)
        count = max(1, round(rate * seconds))
        with ThreadPoolExecutor(SENDERS, thread_name_prefix="bench-sender") as pool:
            start = time.perf_counter()
            futures = []
            for i in range(count):
                channel = self.channels[i % len(self.channels)]
                webhook = self.traffic.message(channel, TEXTS[(i // len(self.channels)) % 4])
                pause = start + i / rate - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                futures.append(pool.submit(self._post, webhook))
            phase.sent = [future.result() for future in futures]
            phase.send_seconds = time.perf_counter() - start
        return phase

    def calls(self) -> list[dict[str, Any]]:
        response = self.http.get(self.calls_url)
        response.raise_for_status()
        calls: list[dict[str, Any]] = response.json()
        return calls

    def clear(self) -> None:
        self.http.delete(self.calls_url).raise_for_status()

    def collect(self, phase: Phase, wait_s: float, settle_s: float = 0.5) -> Phase:
        """Wait until every accepted message has its reply (at most ``wait_s``), then
        ``settle_s`` more for a second reply that would be a duplicate; clear the calls."""
        expected = {s.webhook.recipient: s for s in phase.sent if 200 <= s.status < 300}
        start = time.monotonic()
        replies = _replies(self.calls(), expected)
        while len(replies) < len(expected) and time.monotonic() - start < wait_s:
            time.sleep(0.25)
            replies = _replies(self.calls(), expected)
        phase.waited_s = time.monotonic() - start
        time.sleep(settle_s)
        replies = _replies(self.calls(), expected)
        self.clear()
        for recipient, calls in replies.items():
            first = min(at for at, _ in calls)
            phase.latencies_ms.append((first - expected[recipient].answered_at) * 1000)
            bodies = [body for _, body in calls]
            if len(set(bodies)) < len(bodies):
                phase.duplicated += 1
                _example(phase, f"{expected[recipient].webhook.channel} {recipient}: "
                                "the same reply sent twice")  # fmt: skip
        for recipient, sent in expected.items():
            if recipient not in replies:
                phase.lost += 1
                _example(phase, f"{sent.webhook.channel} {recipient}: no reply")
        return phase

    def run(self, rate: float, seconds: float, wait_s: float, settle_s: float = 0.5) -> Phase:
        return self.collect(self.send(rate, seconds), wait_s, settle_s)


def _example(phase: Phase, text: str, keep: int = 5) -> None:
    if len(phase.examples) < keep:
        phase.examples.append(text)


def _replies(
    calls: list[dict[str, Any]], expected: dict[str, Sent]
) -> dict[str, list[tuple[float, str]]]:
    """Recipient → the time and body of each successful sandbox call to it (the expected
    recipients only: a late reply of an earlier phase goes to a recipient of its own)."""
    found: dict[str, list[tuple[float, str]]] = {}
    for call in calls:
        if call.get("status") != 200 or (call.get("response") or {}).get("ok", True) is False:
            continue
        recipient = describe(call).recipient
        sent = expected.get(recipient)
        if sent is not None and call.get("channel") == sent.webhook.channel:
            body = json.dumps(call.get("json"), sort_keys=True)
            found.setdefault(recipient, []).append((float(call["time"]), body))
    return found
