"""``python -m shared.ops.rollback SERVICE [REVISION]``: all traffic to one ready revision.

Without REVISION, the target is the newest *ready* revision older than the one serving most of
the traffic now (the previous release). Traffic moves with ``kn service update --traffic
REV=100``, then the Service is verified: Ready, and 100 % on the target. The Service's template
stays as it is (the next deploy replaces it); only traffic moves, which is instant and needs no
new pod if the old revision still runs (Knative keeps old revisions until garbage collection).

Exit status: 0 rolled back and verified, 1 no revision to roll back to or verification
failed, 2 usage.
"""

from __future__ import annotations

import argparse
import os
import sys

from shared.ops.cluster import Cluster, ClusterError, describe, is_ready, revisions, traffic


class RollbackError(RuntimeError):
    pass


def previous_ready(cluster: Cluster, service: str) -> str:
    """The newest ready revision older than the one that serves most traffic now."""
    shares = traffic(describe(cluster, service))
    current = max(shares, key=lambda name: shares[name]) if shares else None
    listed = revisions(cluster, service)  # oldest first
    names = [r.name for r in listed]
    older = listed[: names.index(current)] if current in names else listed[:-1]
    for revision in reversed(older):
        if revision.ready:
            return revision.name
    raise RollbackError(f"{service}: no ready revision before {current or 'the latest'}")


def rollback(cluster: Cluster, service: str, revision: str | None = None) -> str:
    """Route 100 % to ``revision`` (default: the previous ready one), then verify."""
    target = revision or previous_ready(cluster, service)
    known = {r.name: r for r in revisions(cluster, service)}
    if target not in known:
        raise RollbackError(f"{service} has no revision {target}")
    if not known[target].ready:
        raise RollbackError(f"{service}: revision {target} is not ready")
    cluster.kn("service", "update", service, "--traffic", f"{target}=100")
    verify(cluster, service, target)
    return target


def verify(cluster: Cluster, service: str, revision: str) -> None:
    if cluster.dry_run:
        return
    described = describe(cluster, service)
    shares = traffic(described)
    if shares.get(revision) != 100:
        raise RollbackError(f"{service}: traffic is {shares}, not 100 % on {revision}")
    if not is_ready(described):
        raise RollbackError(f"{service} is not Ready after the rollback")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/rollback.sh", description=__doc__)
    parser.add_argument("service")
    parser.add_argument("revision", nargs="?")
    parser.add_argument("--namespace", "-n", default=os.environ.get("NAMESPACE", "chat-service"))
    args = parser.parse_args(argv)
    cluster = Cluster(args.namespace, dry_run=os.environ.get("DRY_RUN") == "1")
    try:
        target = rollback(cluster, args.service, args.revision)
    except (RollbackError, ClusterError) as exc:
        print(f"rollback failed: {exc}", file=sys.stderr)
        return 1
    print(f"{args.service}: 100 % of traffic on {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
