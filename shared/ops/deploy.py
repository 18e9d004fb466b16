"""``python -m shared.ops.deploy ENV``: deploy an overlay, or leave the cluster as it was.

1. Render ``knative/overlays/ENV`` (``kubectl kustomize``) and validate it as ``make
   deploy-check`` does when the Knative CRDs are at hand.
2. Note every Service's current ready revision (what a failure rolls back to).
3. Apply everything but the Services (namespace, settings, accounts, policy, KafkaSources),
   replace and run the bootstrap Jobs (topics, indexes) and wait for them.
4. Apply the whole bundle; per Service ``kn service wait`` and ``kn service describe``.
5. The health check (:mod:`shared.ops.health`).

A failure after step 3 rolls every Service that had a ready revision back to it (100 % of
traffic, ``kn service update --traffic``) and exits 1. ``DRY_RUN=1`` prints every mutating
command instead of running it. ``production`` asks for a typed confirmation unless
``FORCE=1``; without a terminal it refuses.

Exit status: 0 deployed and healthy, 1 failed (rolled back where possible), 2 usage/refused.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from shared.ops import health
from shared.ops.cluster import Cluster, ClusterError
from shared.ops.rollback import RollbackError, rollback

ROOT = Path(__file__).resolve().parents[2]
BOOTSTRAP = "app.kubernetes.io/component=bootstrap"
NOT_SERVICES = "app.kubernetes.io/component notin (webhook,event-handler)"
CONFIRMED_ENVIRONMENTS = ("production",)


class DeployError(RuntimeError):
    pass


def render(environment: str, image: str | None = None, root: Path = ROOT) -> str:
    """The overlay's bundle; ``image`` (``registry/name:tag`` or ``…@sha256:…``) replaces the
    image the overlay pins, as CI does for the build it just pushed."""
    overlay = root / "knative" / "overlays" / environment
    cluster = Cluster(health.namespace_of(environment, root))
    if image is None:
        return cluster.kustomize(str(overlay))
    pinned = re.search(r"newName:\s*(\S+)", (overlay / "kustomization.yaml").read_text())
    if pinned is None:
        raise DeployError(f"{overlay}/kustomization.yaml pins no image (images: newName)")
    name, separator, version = image.partition("@") if "@" in image else image.rpartition(":")
    if not separator or not name:
        raise DeployError(f"--image {image!r} names no tag or digest")
    field = "digest" if "@" in image else "newTag"
    with tempfile.TemporaryDirectory(prefix="chat-service-image-") as tmp:
        (Path(tmp) / "kustomization.yaml").write_text(
            f"resources: [{os.path.relpath(overlay, tmp)}]\n"
            f"images:\n  - name: {pinned.group(1)}\n    newName: {name}\n"
            f"    {field}: {version}\n",
            encoding="utf-8",
        )
        return cluster.kustomize(tmp)


def validate(environment: str, root: Path = ROOT) -> None:
    """``make deploy-check`` on the overlay, when this machine has what it needs."""
    try:
        from shared.deploy import __main__ as deploy_check
    except ImportError:  # in the image: the checks are a development tool
        print("validation skipped: shared.deploy is not installed here", file=sys.stderr)
        return
    code = deploy_check.main(["check", str(root / "knative" / "overlays" / environment)])
    if code != 0:
        raise DeployError(f"the {environment} overlay is not valid (deploy-check exit {code})")


def current_revisions(cluster: Cluster) -> dict[str, str]:
    """Each Service's latest ready revision now (none yet: not in the map)."""
    listed = cluster.kubectl_json("get", "ksvc")
    return {
        item["metadata"]["name"]: item["status"]["latestReadyRevisionName"]
        for item in listed.get("items", [])
        if item.get("status", {}).get("latestReadyRevisionName")
    }


def services_in(bundle: str) -> list[str]:
    """The Knative Service names in a rendered bundle."""
    import yaml  # a development dependency: deploys run from a checkout, not from the image

    return [
        doc["metadata"]["name"]
        for doc in yaml.safe_load_all(bundle)
        if isinstance(doc, dict)
        and (doc.get("apiVersion"), doc.get("kind")) == ("serving.knative.dev/v1", "Service")
    ]


def deploy(
    environment: str,
    cluster: Cluster,
    bundle: str,
    *,
    timeout_s: int = 600,
    check_health: Callable[[Cluster], list[health.Check]] = health.check_namespace,
) -> None:
    before = current_revisions(cluster)
    with tempfile.TemporaryDirectory(prefix="chat-service-deploy-") as tmp:
        path = Path(tmp) / "bundle.yaml"
        path.write_text(bundle, encoding="utf-8")
        cluster.kubectl("delete", "job", "-l", BOOTSTRAP, "--ignore-not-found")
        cluster.kubectl("apply", "-f", str(path), "-l", NOT_SERVICES)
        cluster.kubectl(
            "wait", "job", "-l", BOOTSTRAP, "--for=condition=complete", f"--timeout={timeout_s}s"
        )
        try:
            cluster.kubectl("apply", "-f", str(path))
            for service in services_in(bundle):
                cluster.kn("service", "wait", service, "--wait-timeout", str(timeout_s))
                cluster.kn("service", "describe", service)
            if not cluster.dry_run:
                checks = check_health(cluster)
                print(health.table(checks), file=cluster.out)
                bad = [c.name for c in checks if not c.healthy]
                if bad:
                    raise DeployError(f"not healthy after the deploy: {', '.join(bad)}")
        except (ClusterError, DeployError) as exc:
            print(f"deploy failed: {exc}; rolling back", file=cluster.out)
            roll_back_all(cluster, before)
            raise DeployError(str(exc)) from exc


def roll_back_all(cluster: Cluster, revisions: dict[str, str]) -> None:
    """Every Service back to the revision it was on; one failure does not stop the others."""
    for service, revision in sorted(revisions.items()):
        try:
            rollback(cluster, service, revision)
            print(f"rolled back {service} to {revision}", file=cluster.out)
        except (RollbackError, ClusterError) as exc:
            print(f"could not roll back {service}: {exc}", file=cluster.out)


def confirmed(environment: str) -> bool:
    if environment not in CONFIRMED_ENVIRONMENTS or os.environ.get("FORCE") == "1":
        return True
    if not sys.stdin.isatty():
        print(
            f"refusing to deploy to {environment} without a terminal: set FORCE=1", file=sys.stderr
        )
        return False
    answer = input(f"Deploy to {environment}? Type the environment's name to go on: ")
    return answer.strip() == environment


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/deploy.sh", description=__doc__)
    parser.add_argument("environment", help="an overlay in knative/overlays (staging, production)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per wait (600)")
    parser.add_argument("--image", help="deploy this image instead of the overlay's (CI)")
    args = parser.parse_args(argv)
    try:
        namespace = health.namespace_of(args.environment)
    except ValueError as exc:
        parser.error(str(exc))
    if not confirmed(args.environment):
        return 2
    cluster = Cluster(namespace, dry_run=os.environ.get("DRY_RUN") == "1")
    try:
        validate(args.environment)
        bundle = render(args.environment, args.image)
        deploy(args.environment, cluster, bundle, timeout_s=args.timeout)
    except (DeployError, ClusterError) as exc:
        print(f"deploy to {args.environment} failed: {exc}", file=sys.stderr)
        return 1
    print(f"deployed {args.environment} ({namespace})" + (" — dry run" if cluster.dry_run else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
