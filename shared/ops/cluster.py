"""``kubectl`` and ``kn`` for the operations commands: one place that runs them.

Every command is printed before it runs (``+ kn service update …``), so an operator's terminal
and a CI log show exactly what touched the cluster. With ``dry_run`` the mutating commands are
printed and not run; reading commands (``get``, ``describe``, ``list``) still run, so a dry run
shows real decisions. The executables come from ``KUBECTL`` / ``KN`` (default: the PATH's).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from shared.dataclass import dataclass, field

READING = {"get", "describe", "list", "kustomize", "version"}


class ClusterError(RuntimeError):
    """A kubectl/kn command failed; the message holds the command and what it printed."""


@dataclass
class Cluster:
    namespace: str
    dry_run: bool = False
    out: TextIO = field(default_factory=lambda: sys.stderr)
    kubectl_bin: str = field(default_factory=lambda: os.environ.get("KUBECTL", "kubectl"))
    kn_bin: str = field(default_factory=lambda: os.environ.get("KN", "kn"))

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        return self._run([self.kubectl_bin, *args, "-n", self.namespace], stdin, check)

    def kn(self, *args: str, check: bool = True) -> str:
        return self._run([self.kn_bin, *args, "-n", self.namespace], None, check)

    def kustomize(self, directory: str) -> str:
        """``kubectl kustomize DIR``: the rendered bundle (no namespace flag: it is offline)."""
        return self._run([self.kubectl_bin, "kustomize", directory])

    def kn_json(self, *args: str) -> Any:
        return json.loads(self._run([self.kn_bin, *args, "-n", self.namespace, "-o", "json"]))

    def kubectl_json(self, *args: str) -> Any:
        return json.loads(self._run([self.kubectl_bin, *args, "-n", self.namespace, "-o", "json"]))

    def _run(self, argv: Sequence[str], stdin: str | None = None, check: bool = True) -> str:
        mutating = not (set(argv[1:3]) & READING) and "--dry-run=client" not in argv
        print(
            ("(dry run) " if self.dry_run and mutating else "+ ") + shlex.join(argv), file=self.out
        )
        if self.dry_run and mutating:
            return ""
        try:
            result = subprocess.run(  # noqa: S603 (kubectl/kn with the operator's arguments)
                list(argv), input=stdin, capture_output=True, text=True, check=False
            )
        except FileNotFoundError as exc:
            raise ClusterError(f"{argv[0]} not found: install it or set KUBECTL/KN") from exc
        if check and result.returncode != 0:
            said = (result.stderr or result.stdout).strip()
            raise ClusterError(f"{shlex.join(argv)} failed ({result.returncode}): {said}")
        return result.stdout


@dataclass(frozen=True)
class Revision:
    name: str
    created: str  # RFC 3339, as Kubernetes writes it: sorts by time
    ready: bool


def revisions(cluster: Cluster, service: str) -> list[Revision]:
    """The Service's revisions, oldest first."""
    listed = cluster.kn_json("revision", "list", "-s", service)
    found = [
        Revision(
            item["metadata"]["name"],
            str(item["metadata"].get("creationTimestamp", "")),
            _ready(item),
        )
        for item in listed.get("items", [])
    ]
    return sorted(found, key=lambda r: (r.created, r.name))


def describe(cluster: Cluster, service: str) -> dict[str, Any]:
    described: dict[str, Any] = cluster.kn_json("service", "describe", service)
    return described


def traffic(service: dict[str, Any]) -> dict[str, int]:
    """Percent of traffic per revision, from a Service's status."""
    shares: dict[str, int] = {}
    for target in service.get("status", {}).get("traffic", []):
        name = target.get("revisionName")
        if name:
            shares[name] = shares.get(name, 0) + int(target.get("percent") or 0)
    return shares


def is_ready(service: dict[str, Any]) -> bool:
    return _ready(service)


def _ready(obj: dict[str, Any]) -> bool:
    conditions = obj.get("status", {}).get("conditions", [])
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
