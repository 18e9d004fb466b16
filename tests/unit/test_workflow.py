"""The CI/CD workflow: actionlint clean, and it runs what the README and .ci/run run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "ci-cd.yml"


def test_actionlint_is_clean() -> None:
    bin_dir = Path(sys.executable).parent
    result = subprocess.run(
        [str(bin_dir / "actionlint"), "-shellcheck", str(bin_dir / "shellcheck")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_pipeline_tests_builds_and_deploys_with_the_repository_commands() -> None:
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    runs = {name: [step.get("run", "") for step in job["steps"]] for name, job in jobs.items()}
    assert "bash .ci/run" in runs["test"]  # the same entry point as every CI machine
    assert jobs["test"]["container"].startswith("python:3.11-")  # Debian: its packages
    assert any("pip-audit" in run for run in runs["test"])
    assert jobs["image"]["needs"] == "test"
    assert any(run.startswith("scripts/deploy.sh staging") for run in runs["deploy-staging"])
    assert any(run.startswith("scripts/deploy.sh production") for run in runs["deploy-production"])
    for job in ("deploy-staging", "deploy-production"):
        assert runs[job][-1].startswith("scripts/health-check.sh")
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make lint" in ci and "make test" in ci
