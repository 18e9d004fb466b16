"""Schema validation of every document, as strict as an API server with ``--validate=strict``.

- Knative kinds (Service, KafkaSource, KafkaSink) against JSON Schema converted from the
  upstream CRDs in ``KNATIVE_CRDS_DIR`` (:mod:`shared.kafkasource.crd`);
- core Kubernetes kinds against the Kubernetes OpenAPI schemas of PyPI ``kubernetes-validate``
  (strict: unknown fields fail);
- any other kind is an error: nothing in the bundle may go unchecked.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from shared.dataclass import dataclass
from shared.deploy.bundle import Bundle, Document, Problem, problem

KUBERNETES_VERSION = "1.37.0"
KNATIVE_KINDS = {
    ("serving.knative.dev/v1", "Service"),
    ("sources.knative.dev/v1", "KafkaSource"),
    ("eventing.knative.dev/v1alpha1", "KafkaSink"),
}
CORE_KINDS = {
    ("v1", "Namespace"),
    ("v1", "ConfigMap"),
    ("v1", "ServiceAccount"),
    ("batch/v1", "Job"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("policy/v1", "PodDisruptionBudget"),
}


class MissingCrds(RuntimeError):
    pass


@dataclass(frozen=True)
class Schemas:
    knative: Mapping[tuple[str, str], dict[str, Any]]

    @classmethod
    def load(cls, crds_dir: Path) -> Schemas:
        """Every CustomResourceDefinition in the directory's YAML files (the upstream files, or
        the Knative release assets as they come: serving-crds.yaml, eventing-kafka-*.yaml)."""
        from shared.kafkasource.crd import load_crd_schemas

        knative: dict[tuple[str, str], dict[str, Any]] = {}
        files = sorted(crds_dir.glob("*.yaml")) if crds_dir.is_dir() else []
        for path in files:
            knative.update(load_crd_schemas(path))
        missing = sorted(f"{kind} ({api})" for api, kind in KNATIVE_KINDS - set(knative))
        if missing:
            raise MissingCrds(
                f"Knative CRDs not found in {crds_dir} (missing {', '.join(missing)}). Put the "
                "CustomResourceDefinitions of the Knative version you run there (release assets "
                "serving-crds.yaml, eventing-kafka-source.yaml, eventing-kafka-sink.yaml) or set "
                "KNATIVE_CRDS_DIR=<dir>."
            )
        return cls(knative)


def validate(bundle: Bundle, schemas: Schemas | None) -> Iterator[Problem]:
    """Every document against its schema; ``schemas`` None: Knative kinds are not checked."""
    for doc in bundle.documents:
        key = (doc.api_version, doc.kind)
        if schemas is not None and key in schemas.knative:
            yield from _json_schema(doc, schemas.knative[key])
        elif key in CORE_KINDS:
            yield from _kubernetes(doc)
        elif schemas is None and key in KNATIVE_KINDS:
            continue  # reported once by the caller: the CRDs are missing
        else:
            yield problem(
                doc,
                "kind",
                f"unknown kind {doc.api_version} {doc.kind}: no schema to validate it against "
                f"(known: the Knative CRDs and {', '.join(sorted(k for _, k in CORE_KINDS))})",
            )


_validators: dict[int, Any] = {}


def _json_schema(doc: Document, schema: dict[str, Any]) -> Iterator[Problem]:
    import jsonschema

    validator = _validators.get(id(schema))
    if validator is None:
        validator = _validators[id(schema)] = jsonschema.Draft202012Validator(schema)
    for error in sorted(validator.iter_errors(doc.body), key=lambda e: list(e.absolute_path)):
        yield problem(doc, _path(error.absolute_path), error.message)


def _kubernetes(doc: Document) -> Iterator[Problem]:
    validator = _core_validator(doc.api_version, doc.kind)
    for error in sorted(validator.iter_errors(doc.body), key=lambda e: list(e.absolute_path)):
        yield problem(doc, _path(error.absolute_path), error.message)


@cache
def _core_validator(api_version: str, kind: str) -> Any:
    """The strict schema of a core kind from kubernetes-validate's files, loaded once (its own
    ``validate`` reads the multi-megabyte definitions file again for every document)."""
    import jsonschema
    from kubernetes_validate.utils import schema_contents
    from referencing import Registry, Resource

    folder = f"kubernetes-json-schema/v{KUBERNETES_VERSION}-local-strict"
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema = schema_contents(f"{folder}/{kind.lower()}-{group_version}.json", KUBERNETES_VERSION)
    registry: Registry[Any] = Resource.from_contents(schema) @ Registry()
    registry = Resource.from_contents(_definitions()) @ registry
    return jsonschema.Draft202012Validator(schema, registry=registry)


@lru_cache(maxsize=1)
def _definitions() -> Any:
    from kubernetes_validate.utils import schema_contents

    folder = f"kubernetes-json-schema/v{KUBERNETES_VERSION}-local-strict"
    return schema_contents(f"{folder}/_definitions.json", KUBERNETES_VERSION)


def _path(parts: Any) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text.lstrip(".") or "(document)"
