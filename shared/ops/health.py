"""``python -m shared.ops.health [ENV | URL …]``: is every Service up? A table and an exit code.

- ``ENV`` (an overlay: ``staging``, ``production``): every Knative Service of its namespace
  (``kubectl get ksvc``): its Ready condition (Knative's readiness includes the function's own
  readiness probe, ``/api/v2/health``) and, for a public Service, ``GET <url>/api/v2/health``.
  A cluster-local Service (the event handlers) is only reachable from inside the cluster: its
  URL is probed too with ``--in-cluster``.
- ``URL …``: ``GET <url>/api/v2/health`` for each.

Exit status: 0 all healthy, 1 any Service not Ready or not answering 200, 2 usage.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from shared.dataclass import dataclass
from shared.ops.cluster import Cluster, ClusterError

HEALTH = "/api/v2/health"  # shared.web.HEALTH_PATH (not imported: keeps this free of Flask)
ROOT = Path(__file__).resolve().parents[2]
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class Check:
    name: str
    url: str
    ready: bool | None  # None: not known (a URL given directly)
    http: int | None  # None: no answer (or not probed)
    status: str  # the health body's "status", or why there is none
    millis: float | None
    probed: bool = True  # False: a cluster-local Service seen from outside: Ready only

    @property
    def healthy(self) -> bool:
        if self.ready is False:
            return False
        return self.http == 200 if self.probed else self.ready is True


def namespace_of(environment: str, root: Path = ROOT) -> str:
    """The namespace an overlay deploys to (its kustomization's ``namespace:``)."""
    kustomization = root / "knative" / "overlays" / environment / "kustomization.yaml"
    if not kustomization.is_file():
        raise ValueError(f"no overlay {environment!r} (knative/overlays/<env>)")
    match = re.search(r"^namespace:\s*(\S+)", kustomization.read_text(encoding="utf-8"), re.M)
    if match is None:
        raise ValueError(f"{kustomization} names no namespace")
    return match.group(1)


def probe(url: str, timeout_s: float = 5.0) -> tuple[int | None, str, float | None]:
    """``GET <url>/api/v2/health``: the status code, the body's status, the time it took."""
    target = url.rstrip("/") + ("" if url.rstrip("/").endswith(HEALTH) else HEALTH)
    started = time.monotonic()
    try:
        if not target.startswith(("http://", "https://")):
            raise ValueError(f"not an http(s) URL: {url}")
        with _opener.open(target, timeout=timeout_s) as response:
            code, body = int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        code, body = exc.code, exc.read()
    except (OSError, ValueError) as exc:
        return None, f"no answer: {type(exc).__name__}", None
    millis = (time.monotonic() - started) * 1000
    try:
        status = str(json.loads(body).get("status", "?"))
    except (ValueError, AttributeError):
        status = "not JSON"
    return code, status, millis


def check_namespace(cluster: Cluster, *, in_cluster: bool = False) -> list[Check]:
    listed = cluster.kubectl_json("get", "ksvc")
    checks = []
    for item in listed.get("items", []):
        name = item["metadata"]["name"]
        url = str(item.get("status", {}).get("url") or "")
        labels = item["metadata"].get("labels") or {}
        local = labels.get("networking.knative.dev/visibility") == "cluster-local"
        conditions = item.get("status", {}).get("conditions", [])
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
        probed = bool(url) and (in_cluster or not local)
        code, status, millis = probe(url) if probed else (None, "cluster-local: Ready only", None)
        shown = status if ready else "not Ready"
        checks.append(Check(name, url, ready, code, shown, millis, probed))
    return checks


def check_urls(urls: list[str]) -> list[Check]:
    return [Check(url, url, None, *probe(url)) for url in urls]


def table(checks: list[Check]) -> str:
    rows = [("service", "ready", "http", "ms", "status", "url")]
    for c in checks:
        ready = "-" if c.ready is None else ("yes" if c.ready else "NO")
        millis = "-" if c.millis is None else f"{c.millis:.0f}"
        rows.append((c.name, ready, str(c.http or "-"), millis, c.status, c.url))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in rows]
    return "\n".join(line.rstrip() for line in lines)


def run(targets: list[str], *, in_cluster: bool = False, root: Path = ROOT) -> list[Check]:
    if len(targets) == 1 and "://" not in targets[0]:
        return check_namespace(Cluster(namespace_of(targets[0], root)), in_cluster=in_cluster)
    return check_urls(targets)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/health-check.sh", description=__doc__)
    parser.add_argument("targets", nargs="+", metavar="ENV|URL")
    parser.add_argument("--in-cluster", action="store_true", help="probe cluster-local URLs too")
    args = parser.parse_args(argv)
    try:
        checks = run(args.targets, in_cluster=args.in_cluster)
    except (ValueError, ClusterError) as exc:
        print(f"health check failed: {exc}", file=sys.stderr)
        return 1
    print(table(checks))
    bad = [c.name for c in checks if not c.healthy]
    verdict = f"{len(checks) - len(bad)}/{len(checks)} healthy"
    print(verdict + (f"; not healthy: {', '.join(bad)}" if bad else ""))
    return 1 if bad or not checks else 0


if __name__ == "__main__":
    sys.exit(main())
