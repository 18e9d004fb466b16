"""A stand-in for ``kubectl`` and ``kn``, for the operations scripts' tests (no cluster here).

Run as ``kubectl …`` or ``kn …`` (the test puts small wrappers with those names first on the
PATH). Every call is appended to ``$STUB_LOG`` (argv and stdin, JSON lines); the cluster's
state is ``$STUB_STATE`` (JSON), read and written by each call, so ``kn service update
--traffic`` changes what ``kn service describe`` shows next. It answers in the real tools'
shapes (``-o json``) for what the scripts use:

    state = {"services": {name: {"revisions": [{"name", "created", "ready"}],
                                 "traffic": {revision: percent}, "url": str,
                                 "visibility": "public" | "cluster-local",
                                 "next_ready": bool}},          # a new revision gets ready?
             "jobs_complete": bool}

``kubectl kustomize`` runs the real kubectl (``$STUB_REAL_KUBECTL``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def main() -> int:
    tool = os.environ.get("STUB_TOOL") or Path(sys.argv[0]).name
    args = sys.argv[1:]
    stdin = "" if sys.stdin.isatty() else sys.stdin.read()
    with open(os.environ["STUB_LOG"], "a", encoding="utf-8") as log:
        log.write(json.dumps({"tool": tool, "argv": args, "stdin": stdin}) + "\n")
    if tool == "kubectl" and args[:1] == ["kustomize"]:
        return subprocess.call([os.environ["STUB_REAL_KUBECTL"], *args])
    path = Path(os.environ["STUB_STATE"])
    state = json.loads(path.read_text(encoding="utf-8"))
    code, out = (kubectl if tool == "kubectl" else kn)(positional(args), args, state)
    path.write_text(json.dumps(state), encoding="utf-8")
    if out:
        print(out if isinstance(out, str) else json.dumps(out))
    return code


def positional(args: list[str]) -> list[str]:
    """The arguments that are not flags or flag values (-n NS, -o json, -s NAME, …)."""
    values = {"-n", "-o", "-s", "-f", "-l", "--traffic", "--tag", "--wait-timeout"}
    found, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in values:
            skip = True
        elif not arg.startswith("-"):
            found.append(arg)
    return found


def flag(args: list[str], name: str) -> list[str]:
    return [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == name]


def ready_revisions(service: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in service["revisions"] if r["ready"]]


def ksvc(name: str, service: dict[str, Any]) -> dict[str, Any]:
    ready = ready_revisions(service)
    latest_ok = service["revisions"][-1]["ready"]
    labels = {"networking.knative.dev/visibility": "cluster-local"}
    status = "True" if latest_ok else "False"
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "labels": labels if service.get("visibility") == "cluster-local" else {},
        },
        "status": {
            "url": service.get("url", f"http://{name}.example"),
            "latestReadyRevisionName": ready[-1]["name"] if ready else None,
            "latestCreatedRevisionName": service["revisions"][-1]["name"],
            "conditions": [{"type": "Ready", "status": status}],
            "traffic": [
                {"revisionName": rev, "percent": pct} for rev, pct in service["traffic"].items()
            ],
        },
    }


def kubectl(words: list[str], args: list[str], state: dict[str, Any]) -> tuple[int, Any]:
    services = state["services"]
    if words[:2] == ["get", "ksvc"]:
        return 0, {"items": [ksvc(name, s) for name, s in services.items()]}
    if words[:1] == ["wait"]:
        return (0, "condition met") if state.get("jobs_complete", True) else (1, "timed out")
    if words[:1] == ["delete"]:
        return 0, ""
    if words[:1] == ["apply"]:
        selector = " ".join(flag(args, "-l"))
        if "notin (webhook,event-handler)" in selector:
            return 0, "configured (everything but the Services)"
        import yaml

        bundle = Path(flag(args, "-f")[0]).read_text(encoding="utf-8")
        for doc in yaml.safe_load_all(bundle):
            if isinstance(doc, dict) and doc.get("kind") == "Service":
                new_revision(
                    services.setdefault(doc["metadata"]["name"], fresh()), doc["metadata"]["name"]
                )
        return 0, "configured"
    return 1, f"stub kubectl: unknown command {args}"


def fresh() -> dict[str, Any]:
    return {"revisions": [], "traffic": {}, "next_ready": True}


def new_revision(service: dict[str, Any], name: str) -> None:
    number = len(service["revisions"]) + 1
    revision = f"{name}-{number:05d}"
    ready = bool(service.get("next_ready", True))
    service["revisions"].append(
        {"name": revision, "created": f"2026-12-01T00:{number:02d}:00Z", "ready": ready}
    )
    if ready:  # Knative routes the latest revision once it is ready
        service["traffic"] = {revision: 100}


def kn(words: list[str], args: list[str], state: dict[str, Any]) -> tuple[int, Any]:
    services = state["services"]
    name = words[2] if len(words) > 2 else ""
    if words[:2] == ["revision", "list"]:
        service = services[flag(args, "-s")[0]]
        items = [
            {
                "metadata": {"name": r["name"], "creationTimestamp": r["created"]},
                "status": {
                    "conditions": [{"type": "Ready", "status": "True" if r["ready"] else "False"}]
                },
            }
            for r in service["revisions"]
        ]
        return 0, {"items": items}
    if name not in services:
        return 1, f'Error: services.serving.knative.dev "{name}" not found'
    service = services[name]
    if words[:2] == ["service", "describe"]:
        described = ksvc(name, service)
        return 0, described if "json" in flag(args, "-o") else f"Name: {name}"
    if words[:2] == ["service", "wait"]:
        ok = service["revisions"][-1]["ready"]
        return (
            (0, f"Service '{name}' ready")
            if ok
            else (1, f"Error: timeout: service '{name}' not ready")
        )
    if words[:2] == ["service", "update"]:
        known = {r["name"] for r in service["revisions"]}
        shares: dict[str, int] = {}
        for pair in flag(args, "--traffic"):
            revision, percent = pair.split("=")
            if revision not in known:
                return 1, f"Error: revision {revision} not found"
            shares[revision] = int(percent)
        if shares:
            if sum(shares.values()) != 100:
                return 1, f"Error: traffic sums to {sum(shares.values())}"
            service["traffic"] = {k: v for k, v in shares.items() if v}
        service.setdefault("tags", {}).update(dict(p.split("=") for p in flag(args, "--tag")))
        return 0, f"Service '{name}' updated"
    return 1, f"stub kn: unknown command {args}"


if __name__ == "__main__":
    sys.exit(main())
