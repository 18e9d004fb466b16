"""make deploy-check: both overlays valid, every broken fixture rejected with its own problem."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shared.catalog import by_name, functions
from shared.deploy import __main__ as deploy
from shared.deploy.bundle import Bundle, Document
from shared.deploy.model import services
from shared.deploy.schemas import Schemas, validate
from shared.settings import specs

ROOT = Path(__file__).resolve().parents[3]
BROKEN = sorted(p.parent for p in (ROOT / "tests/data/deploy/broken").glob("*/kustomization.yaml"))


@pytest.fixture(scope="module")
def schemas() -> Schemas:
    directory = deploy.crds_dir()
    if not (directory / "serving-service.yaml").is_file():
        pytest.fail(f"Knative CRDs not found in {directory}: set KNATIVE_CRDS_DIR (README)")
    return Schemas.load(directory)


@pytest.mark.parametrize("overlay", ["staging", "production"])
def test_overlay_is_valid(overlay: str, schemas: Schemas) -> None:
    bundle = deploy.load(ROOT / "knative" / "overlays" / overlay)
    assert [str(p) for p in deploy.problems(bundle, schemas)] == []
    kinds = sorted({doc.kind for doc in bundle.documents})
    assert kinds[:3] == ["ConfigMap", "Job", "KafkaSink"]
    services = {doc.name for doc in bundle.of_kind("Service")}
    assert services == {spec.name for spec in functions()}


@pytest.mark.parametrize("overlay", ["staging", "production"])
def test_every_channel_webhook_may_grow_as_far_as_the_others(overlay: str) -> None:
    """A channel left out of an overlay's scaling patch keeps the base's bound (it happened to
    messenger-webhook in production: 10 instances where the others had 30)."""
    bundle = deploy.load(ROOT / "knative" / "overlays" / overlay)
    bounds = {
        svc.name: svc.scaling("max-scale")
        for svc in services(bundle)
        if by_name()[svc.name].role == "webhook"
    }
    assert len(bounds) == len([s for s in functions() if s.role == "webhook"])
    assert len(set(bounds.values())) == 1, bounds


def test_overlays_are_what_the_check_renders_by_default() -> None:
    assert [p.name for p in deploy.overlays()] == ["production", "staging"]


@pytest.mark.parametrize("fixture", BROKEN, ids=[p.name for p in BROKEN])
def test_broken_fixture_is_rejected_naming_file_document_and_field(
    fixture: Path, schemas: Schemas
) -> None:
    rejected, found = deploy.fixture_verdict(fixture, schemas)
    want = deploy.expected(fixture)
    assert rejected, f"wanted {want}, found {[str(p) for p in found]}"


def test_there_is_a_fixture_for_every_kind_of_check() -> None:
    assert len(BROKEN) >= 40


def test_cli_exit_codes(capsys: pytest.CaptureFixture[str], schemas: Schemas) -> None:
    assert deploy.main(["check"]) == 0
    assert re.search(r"knative/overlays/production: \d+ documents, valid", capsys.readouterr().out)
    broken = ROOT / "tests/data/deploy/broken/concurrency-not-workers-times-threads"
    assert deploy.main(["check", str(broken)]) == 1
    printed = capsys.readouterr().out
    assert (
        "knative/base/services/webchat.yaml: Service webchat: "
        "spec.template.spec.containerConcurrency: 32 ≠ WORKERS x THREADS = 1 x 4 = 4"
    ) in printed
    assert deploy.main(["expect-broken", str(broken)]) == 0
    # A valid overlay is not a broken fixture: expect-broken refuses it.
    assert deploy.main(["expect-broken", str(ROOT / "knative/overlays/staging")]) == 2


def test_missing_crds_fail_under_ci_and_warn_otherwise(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KNATIVE_CRDS_DIR", str(tmp_path))
    monkeypatch.setenv("CI", "true")
    assert deploy.main(["check"]) == 2
    assert f"Knative CRDs not found in {tmp_path}" in capsys.readouterr().err
    monkeypatch.setenv("CI", "")
    assert deploy.main(["check"]) == 0
    assert "Knative kinds are not schema-checked" in capsys.readouterr().err


def test_core_kinds_are_validated_strictly() -> None:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}
    typo = {**namespace, "spec": {"finalisers": ["kubernetes"]}}
    bundle = Bundle("b", (Document("f.yaml", namespace), Document("g.yaml", typo)))
    found = [str(p) for p in validate(bundle, None)]
    assert found == [
        "g.yaml: Namespace x: spec: Additional properties are not allowed "
        "('finalisers' was unexpected)"
    ]


def test_knative_kinds_are_skipped_without_crds_but_unknown_kinds_never() -> None:
    service = {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": "s"}}
    odd = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    bundle = Bundle("b", (Document("s.yaml", service), Document("w.yaml", odd)))
    found = list(validate(bundle, None))
    assert [(p.source, p.field) for p in found] == [("w.yaml", "kind")]


def test_catalog_is_the_functions_directory() -> None:
    on_disk = {p.parent.name for p in (ROOT / "functions").glob("*/main.py")}
    assert set(by_name()) == on_disk


def test_every_group_a_function_uses_is_a_settings_group_and_every_group_is_used() -> None:
    groups = {spec.group for spec in specs()}
    used = {group for function in functions() for group in function.uses}
    assert used <= groups
    assert groups <= used, f"settings no function uses: {groups - used}"


def test_the_crds_are_found_beside_the_repository_a_checkout_was_cloned_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess

    monkeypatch.delenv("KNATIVE_CRDS_DIR", raising=False)
    kit = tmp_path / "work" / "shared" / "knative-crds"
    kit.mkdir(parents=True)
    checkout = tmp_path / "tmp" / "clone"
    checkout.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(checkout)], check=True)
    git = ["git", "-C", str(checkout), "remote", "add", "origin"]
    subprocess.run([*git, str(tmp_path / "work" / "main")], check=True)
    assert deploy.crds_dir(checkout) == kit  # a clone in a temporary folder, as CI makes
    assert deploy.crds_dir(tmp_path / "work" / "main") == kit  # beside the repository
    monkeypatch.setenv("KNATIVE_CRDS_DIR", str(tmp_path / "mine"))
    assert deploy.crds_dir(checkout) == tmp_path / "mine"  # the setting wins
