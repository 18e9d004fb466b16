"""A bounded closed-loop HTTP load: a thread pool, one keep-alive httpx client per thread.

Every request is timed on its own; the run stops after ``max_requests`` or ``max_seconds``,
whichever comes first. The client shares the machine with the server, so its own CPU time is
reported next to the results: a client near one full core is part of what is measured.
"""

from __future__ import annotations

import itertools
import json
import statistics
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx

Request = tuple[bytes, Mapping[str, str]]


@dataclass
class LoadResult:
    name: str
    seconds: float
    client_cpu_s: float
    latencies_s: list[float] = field(repr=False)
    statuses: Counter[int]
    published: int = 0  # from the webhook's JSON answers: events produced to Kafka
    duplicates: int = 0  # … and events recognised as already published

    @property
    def requests(self) -> int:
        return len(self.latencies_s)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies_s) * 1000 if self.latencies_s else 0.0

    @property
    def p95_ms(self) -> float:
        if len(self.latencies_s) < 2:
            return self.p50_ms
        return statistics.quantiles(self.latencies_s, n=100)[94] * 1000

    def summary(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "rps": round(self.rps, 1),
            "p50_ms": round(self.p50_ms, 2),
            "p95_ms": round(self.p95_ms, 2),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "published": self.published,
            "duplicates": self.duplicates,
            "client_cpu_s": round(self.client_cpu_s, 3),
        }


def run(
    name: str,
    url: str,
    requests: Sequence[Request],
    *,
    concurrency: int,
    max_requests: int,
    max_seconds: float,
) -> LoadResult:
    """POST ``requests[i % len(requests)]`` for i = 0, 1, … from ``concurrency`` threads."""
    counter = itertools.count()  # next() on it is atomic under the GIL
    clients = [httpx.Client(trust_env=False, timeout=10.0) for _ in range(concurrency)]
    deadline = time.perf_counter() + max_seconds

    def worker(client: httpx.Client) -> list[tuple[float, int, bytes]]:
        samples: list[tuple[float, int, bytes]] = []
        while time.perf_counter() < deadline:
            i = next(counter)
            if i >= max_requests:
                break
            body, headers = requests[i % len(requests)]
            t0 = time.perf_counter()
            try:
                response = client.post(url, content=body, headers=headers)
                status, content = response.status_code, response.content
            except httpx.HTTPError:
                status, content = 0, b""
            samples.append((time.perf_counter() - t0, status, content))
        return samples

    cpu0, t0 = time.process_time(), time.perf_counter()
    try:
        with ThreadPoolExecutor(concurrency) as pool:
            per_thread = list(pool.map(worker, clients))
    finally:
        for client in clients:
            client.close()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0

    samples = [s for thread in per_thread for s in thread]
    result = LoadResult(name, seconds, cpu, [s[0] for s in samples], Counter(s[1] for s in samples))
    for _, status, content in samples:  # counted after the clock stopped
        if status == 200 and content.startswith(b"{"):
            answer = json.loads(content)
            result.published += int(answer.get("published", 0))
            result.duplicates += int(answer.get("duplicates", 0))
    return result
