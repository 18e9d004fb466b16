"""``python -m shared.ops.canary SERVICE PERCENT``: automated canary analysis with Prometheus.

The canary is the Service's newest ready revision; the stable one is the revision serving most
of the traffic now. Both are tagged (``canary``, ``stable``), PERCENT of the traffic goes to the
canary, and for each step Knative's per-revision request metrics (the queue-proxy's
``revision_request_count`` and ``revision_request_latencies``) are read from Prometheus' HTTP
API every ``--interval`` for ``--window``:

- too few canary requests in the window to judge (``--min-requests``) → roll back, exit 1;
- canary error ratio (5xx) over ``--max-error-ratio``, or its p95 latency over
  ``--max-p95-ms`` or over ``--max-latency-ratio`` times the stable p95 → roll back, exit 1
  (checked at every interval: a bad canary is stopped early);
- otherwise the next step of ``--steps``, and at 100 % the canary is promoted.

Rolling back sends 100 % to the stable revision; promoting sends 100 % to the canary.
Exit status: 0 promoted, 1 rolled back (or an error), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable

from shared.dataclass import dataclass
from shared.ops.cluster import Cluster, ClusterError, describe, revisions, traffic

_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class Slo:
    max_error_ratio: float = 0.01
    max_p95_ms: float = 1000.0
    max_latency_ratio: float = 1.5
    min_requests: int = 20


@dataclass(frozen=True)
class Sample:
    requests: float
    error_ratio: float | None  # None: no requests
    p95_ms: float | None


class CanaryError(RuntimeError):
    pass


class Prometheus:
    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def scalar(self, query: str) -> float | None:
        """The first sample of an instant query; None when the result is empty or NaN."""
        target = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": query})
        if not target.startswith(("http://", "https://")):
            raise CanaryError(f"PROMETHEUS_URL is not an http(s) URL: {self.url}")
        try:
            with _opener.open(target, timeout=self.timeout_s) as response:
                document = json.loads(response.read())
        except (OSError, ValueError) as exc:
            raise CanaryError(f"Prometheus query failed: {type(exc).__name__}: {exc}") from exc
        if document.get("status") != "success":
            raise CanaryError(f"Prometheus: {document.get('error', 'query failed')}")
        result = document.get("data", {}).get("result") or []
        if not result:
            return None
        value = float(result[0]["value"][1])
        return None if math.isnan(value) else value


def queries(namespace: str, revision: str, window: str) -> dict[str, str]:
    """Knative's per-revision request metrics, as reported by the queue-proxy."""
    selector = f'namespace_name="{namespace}",revision_name="{revision}"'
    count = f"revision_request_count{{{selector}}}"
    errors = f'revision_request_count{{{selector},response_code_class="5xx"}}'
    return {
        "requests": f"sum(increase({count}[{window}]))",
        "error_ratio": f"sum(rate({errors}[{window}])) / sum(rate({count}[{window}]))",
        "p95_ms": (
            "histogram_quantile(0.95, sum by (le) "
            f"(rate(revision_request_latencies_bucket{{{selector}}}[{window}])))"
        ),
    }


def sample(prometheus: Prometheus, namespace: str, revision: str, window: str) -> Sample:
    found = {k: prometheus.scalar(q) for k, q in queries(namespace, revision, window).items()}
    requests = found["requests"] or 0.0
    error_ratio = found["error_ratio"] if requests else None
    return Sample(
        requests, 0.0 if requests and error_ratio is None else error_ratio, found["p95_ms"]
    )


def verdict(canary: Sample, stable: Sample, slo: Slo, *, final: bool) -> str | None:
    """Why the canary fails (None: it passes). ``final``: the window is over, judge traffic."""
    if canary.error_ratio is not None and canary.error_ratio > slo.max_error_ratio:
        return f"error ratio {canary.error_ratio:.2%} > {slo.max_error_ratio:.2%}"
    if canary.p95_ms is not None and canary.p95_ms > slo.max_p95_ms:
        return f"p95 {canary.p95_ms:.0f} ms > {slo.max_p95_ms:.0f} ms"
    if canary.p95_ms is not None and stable.p95_ms:
        limit = stable.p95_ms * slo.max_latency_ratio
        if canary.p95_ms > limit:
            ratio = slo.max_latency_ratio
            return f"p95 {canary.p95_ms:.0f} ms > {ratio} x stable {stable.p95_ms:.0f} ms"
    if final and canary.requests < slo.min_requests:
        return f"too little traffic to judge: {canary.requests:.0f} < {slo.min_requests} requests"
    return None


@dataclass
class Canary:
    cluster: Cluster
    prometheus: Prometheus
    service: str
    slo: Slo
    window_s: float
    interval_s: float
    sleep: Callable[[float], None] = time.sleep

    def revisions(self) -> tuple[str, str]:
        """(stable, canary): the revision with most traffic, the newest ready one."""
        shares = traffic(describe(self.cluster, self.service))
        ready = [r.name for r in revisions(self.cluster, self.service) if r.ready]
        if not ready or not shares:
            raise CanaryError(f"{self.service}: no ready revision or no traffic")
        stable, canary = max(shares, key=lambda name: shares[name]), ready[-1]
        if canary == stable:
            raise CanaryError(
                f"{self.service}: the newest ready revision {canary} is the stable one"
            )
        return stable, canary

    def route(self, stable: str, canary: str, percent: int) -> None:
        self.cluster.kn(
            "service", "update", self.service,
            "--tag", f"{stable}=stable", "--tag", f"{canary}=canary",
            "--traffic", f"{canary}={percent}", "--traffic", f"{stable}={100 - percent}",
        )  # fmt: skip

    def run(self, steps: list[int]) -> tuple[bool, str]:
        stable, canary = self.revisions()
        print(f"{self.service}: stable {stable}, canary {canary}", file=self.cluster.out)
        for percent in steps:
            self.route(stable, canary, percent)
            if percent >= 100:
                break
            try:
                failure = self._watch(stable, canary, percent)
            except CanaryError as exc:  # no judgement possible: the stable revision takes over
                failure = str(exc)
            if failure is not None:
                self.cluster.kn("service", "update", self.service, "--traffic", f"{stable}=100")
                return False, f"rolled back to {stable} at {percent} %: {failure}"
        return True, f"promoted {canary} to 100 %"

    def _watch(self, stable: str, canary: str, percent: int) -> str | None:
        window = f"{max(1, math.ceil(self.window_s))}s"
        waited = 0.0
        while True:
            self.sleep(self.interval_s)
            waited += self.interval_s
            final = waited >= self.window_s
            ns = self.cluster.namespace
            seen = sample(self.prometheus, ns, canary, window)
            base = sample(self.prometheus, ns, stable, window)
            print(
                f"  {percent:3d} %  canary {seen.requests:.0f} req,"
                f" errors {_pct(seen.error_ratio)}, p95 {_ms(seen.p95_ms)};"
                f" stable p95 {_ms(base.p95_ms)}",
                file=self.cluster.out,
            )
            failure = verdict(seen, base, self.slo, final=final)
            if failure is not None or final:
                return failure


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/canary.sh", description=__doc__)
    parser.add_argument("service")
    parser.add_argument("percent", type=int, help="the first step's share for the canary")
    parser.add_argument("--steps", default="25,50,100", help="later shares (default 25,50,100)")
    parser.add_argument("--window", type=float, default=300, help="seconds per step (300)")
    parser.add_argument("--interval", type=float, default=30, help="seconds between checks (30)")
    parser.add_argument("--max-error-ratio", type=float, default=Slo.max_error_ratio)
    parser.add_argument("--max-p95-ms", type=float, default=Slo.max_p95_ms)
    parser.add_argument("--max-latency-ratio", type=float, default=Slo.max_latency_ratio)
    parser.add_argument("--min-requests", type=int, default=Slo.min_requests)
    parser.add_argument("--namespace", "-n", default=os.environ.get("NAMESPACE", "chat-service"))
    args = parser.parse_args(argv)
    later = [int(s) for s in args.steps.split(",") if s.strip()]
    steps = sorted({args.percent, *[s for s in later if s > args.percent], 100})
    if not 0 < args.percent < 100 or any(not 0 < s <= 100 for s in steps):
        parser.error("percentages must be between 1 and 100 (the first one under 100)")
    prometheus_url = os.environ.get("PROMETHEUS_URL", "")
    if not prometheus_url:
        parser.error("PROMETHEUS_URL must name the Prometheus that scrapes the queue-proxies")
    slo = Slo(args.max_error_ratio, args.max_p95_ms, args.max_latency_ratio, args.min_requests)
    cluster = Cluster(args.namespace, dry_run=os.environ.get("DRY_RUN") == "1")
    canary = Canary(
        cluster, Prometheus(prometheus_url), args.service, slo, args.window, args.interval
    )
    try:
        promoted, said = canary.run(steps)
    except (CanaryError, ClusterError) as exc:
        print(f"canary failed: {exc}", file=sys.stderr)
        return 1
    print(f"{args.service}: {said}")
    return 0 if promoted else 1


if __name__ == "__main__":
    sys.exit(main())
