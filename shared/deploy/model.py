"""Reading a Knative Service of the bundle: its container, effective environment and scaling.

Shared by the Knative admission checks and the project's own rules, so both read a manifest
the same way (``envFrom`` resolved against the bundle's ConfigMaps, ``env`` overriding it, as
the kubelet does).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.dataclass import dataclass
from shared.deploy.bundle import Bundle, Document

AUTOSCALING = "autoscaling.knative.dev/"
SERVICE_API = "serving.knative.dev/v1"


def get(node: Any, path: str, default: Any = None) -> Any:
    """``node`` at a dotted path (``spec.template.spec``); ``default`` where any part is missing."""
    for part in path.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return default
    return node


@dataclass(frozen=True)
class EnvValue:
    name: str
    kind: str  # "value" | "secret" | "configmap" | "other"
    value: str | None  # the literal (value, or the ConfigMap's data) when known
    field: str  # where it is set, for messages
    secret: tuple[str, str] | None = None  # (Secret name, key) for a secretKeyRef


def environment(doc: Document, container_path: str, bundle: Bundle) -> dict[str, EnvValue]:
    """The container's environment: ``envFrom`` ConfigMaps first, then ``env`` over them."""
    container = get(doc.body, container_path, {})
    resolved: dict[str, EnvValue] = {}
    for index, source in enumerate(container.get("envFrom") or []):
        name = get(source, "configMapRef.name")
        configmap = bundle.find("ConfigMap", str(name)) if name else None
        data = get(configmap.body, "data", {}) if configmap else {}
        for key, value in (data or {}).items():
            resolved[key] = EnvValue(
                key, "configmap", str(value), f"{container_path}.envFrom[{index}]"
            )
    for index, entry in enumerate(container.get("env") or []):
        name = str(entry.get("name", ""))
        field = f"{container_path}.env[{index}]"
        if "value" in entry:
            resolved[name] = EnvValue(name, "value", str(entry["value"]), field)
        elif get(entry, "valueFrom.secretKeyRef"):
            ref = entry["valueFrom"]["secretKeyRef"]
            secret = (str(ref.get("name", "")), str(ref.get("key", "")))
            resolved[name] = EnvValue(name, "secret", None, field, secret)
        else:
            resolved[name] = EnvValue(name, "other", None, field)
    return resolved


CONTAINER = "spec.template.spec.containers.0"
TEMPLATE = "spec.template"


@dataclass(frozen=True)
class KnativeService:
    doc: Document
    env: dict[str, EnvValue]

    @classmethod
    def of(cls, doc: Document, bundle: Bundle) -> KnativeService:
        return cls(doc, environment(doc, CONTAINER, bundle))

    @property
    def name(self) -> str:
        return self.doc.name

    @property
    def spec(self) -> Mapping[str, Any]:
        return get(self.doc.body, "spec.template.spec", {}) or {}

    @property
    def container(self) -> Mapping[str, Any]:
        return get(self.doc.body, CONTAINER, {}) or {}

    @property
    def annotations(self) -> Mapping[str, str]:
        return get(self.doc.body, "spec.template.metadata.annotations", {}) or {}

    @property
    def template_labels(self) -> Mapping[str, str]:
        return get(self.doc.body, "spec.template.metadata.labels", {}) or {}

    def scaling(self, key: str) -> str | None:
        value = self.annotations.get(AUTOSCALING + key)
        return None if value is None else str(value)

    def literal(self, name: str) -> str | None:
        found = self.env.get(name)
        return found.value if found and found.kind in ("value", "configmap") else None


def services(bundle: Bundle) -> list[KnativeService]:
    return [KnativeService.of(doc, bundle) for doc in bundle.of_kind("Service", SERVICE_API)]
