"""The local stack's Prometheus config: the production rules, the production job names and
target labels, static targets instead of Kubernetes discovery — and promtool accepts it."""

from __future__ import annotations

from pathlib import Path

import yaml

from shared.devstack import prometheus
from tests.unit.monitoring import support


def local_config(tmp_path: Path) -> Path:
    document = prometheus.config(
        support.ROOT,
        {"whatsapp-webhook": "127.0.0.1:8081", "message-processor": "127.0.0.1:8082"},
        "127.0.0.1:9300",
    )
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def test_promtool_accepts_the_local_config_and_its_rule_files(tmp_path: Path) -> None:
    promtool = support.require_binary("promtool")
    result = support.run([promtool, "check", "config", local_config(tmp_path)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_local_config_loads_the_production_rules_and_uses_its_job_names(
    tmp_path: Path,
) -> None:
    local = yaml.safe_load(local_config(tmp_path).read_text(encoding="utf-8"))
    production = support.load_yaml(support.PROMETHEUS_CONFIG)
    rule_files = [str((support.PROMETHEUS_DIR / f).resolve()) for f in production["rule_files"]]
    assert local["rule_files"] == rule_files
    production_jobs = {job["job_name"] for job in production["scrape_configs"]}
    local_jobs = {job["job_name"]: job for job in local["scrape_configs"]}
    assert prometheus.FUNCTIONS_JOB in production_jobs and prometheus.FUNCTIONS_JOB in local_jobs
    for target in local_jobs[prometheus.FUNCTIONS_JOB]["static_configs"]:
        assert set(target["labels"]) == {"knative_service", "namespace", "pod"}
