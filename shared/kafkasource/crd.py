"""A CustomResourceDefinition's ``openAPIV3Schema`` as a strict JSON Schema (draft 2020-12).

There is no cluster to ``kubectl apply --dry-run=server`` against here, so manifests are
validated offline with ``jsonschema``. Kubernetes' structural schemas differ from JSON Schema
in a few places, converted here the way the API server reads them:

- an object with ``properties`` refuses unknown fields (the API server prunes or, with
  ``--validate=strict``, rejects them) unless ``x-kubernetes-preserve-unknown-fields`` is set;
- ``x-kubernetes-int-or-string`` accepts an integer or a string;
- ``nullable: true`` adds ``null`` to the type;
- other ``x-kubernetes-*`` markers and ``format`` (int32, int64 …) carry no JSON Schema check.

An object without ``properties`` (``metadata``, free-form maps) stays open, as in Kubernetes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
_DROPPED = ("nullable", "format", "description", "default", "example", "externalDocs")


def to_json_schema(node: Mapping[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties":
            schema[key] = {name: to_json_schema(child) for name, child in value.items()}
        elif key in ("items", "not"):
            schema[key] = to_json_schema(value)
        elif key == "additionalProperties":
            schema[key] = to_json_schema(value) if isinstance(value, Mapping) else value
        elif key in _SUBSCHEMA_LISTS:
            schema[key] = [to_json_schema(child) for child in value]
        elif key.startswith("x-kubernetes-") or key in _DROPPED:
            continue
        else:
            schema[key] = value
    if node.get("x-kubernetes-int-or-string"):
        schema.pop("type", None)
        schema["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable") and "type" in schema:
        schema["type"] = [schema["type"], "null"]
    open_ended = node.get("x-kubernetes-preserve-unknown-fields") or "additionalProperties" in node
    if "properties" in node and not open_ended:
        schema["additionalProperties"] = False
    return schema


def version_schema(crd: Mapping[str, Any], version: str) -> dict[str, Any]:
    """The JSON Schema of one served version (``v1``, ``v1beta1`` …) of a CRD document."""
    for entry in crd["spec"]["versions"]:
        if entry["name"] == version:
            schema = to_json_schema(entry["schema"]["openAPIV3Schema"])
            # Every object has these, whether or not the CRD's schema lists them.
            properties = schema.setdefault("properties", {})
            properties.setdefault("apiVersion", {"type": "string"})
            properties.setdefault("kind", {"type": "string"})
            properties.setdefault("metadata", {"type": "object"})
            schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
            return schema
    names = [entry["name"] for entry in crd["spec"]["versions"]]
    raise KeyError(f"{crd['metadata']['name']} has no version {version!r} (has {names})")


def load_crd_schemas(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """``{(apiVersion, kind): JSON Schema}`` for every CRD and version in a YAML file."""
    import yaml  # lazy: a dev/test dependency

    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when it is there
    for crd in yaml.load_all(path.read_text(encoding="utf-8"), Loader=loader):
        if not crd or crd.get("kind") != "CustomResourceDefinition":
            continue
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for entry in crd["spec"]["versions"]:
            schemas[(f"{group}/{entry['name']}", kind)] = version_schema(crd, entry["name"])
    return schemas
