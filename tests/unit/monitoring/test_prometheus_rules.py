"""monitoring/prometheus: the rules pass promtool and their unit tests, every alert is routed,
documented and tested both ways, and the production configuration has what the rules rely on."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from shared import metrics
from tests.unit.monitoring import support
from tests.unit.monitoring.support import (
    ALERT_RULES,
    PROMETHEUS_CONFIG,
    PROMETHEUS_DIR,
    RECORDING_RULES,
    RULE_FILES,
    RULE_TESTS,
    RUNBOOK_BASE_URL,
)

ALERTS = support.alert_rules()
ALERT_IDS = [f"{rule['alert']}-{rule['labels']['severity']}" for rule in ALERTS]
ALERT_NAMES = support.alert_names()
RECORDINGS = support.rule_expressions()

# prometheus-flask-exporter's series (shared.web.install).
FLASK_SERIES = {
    "flask_http_request_duration_seconds",
    "flask_http_request_duration_seconds_bucket",
    "flask_http_request_duration_seconds_sum",
    "flask_http_request_duration_seconds_count",
    "flask_http_request_total",
}


def exported_series() -> set[str]:
    """Every series name shared.metrics declares, as Prometheus stores it."""
    names = set(FLASK_SERIES)
    for value in vars(metrics).values():
        if not isinstance(value, MetricWrapperBase):
            continue
        for family in value.describe():
            if family.type == "counter":
                names.add(f"{family.name}_total")
            elif family.type == "histogram":
                names.add(family.name)
                names.update(f"{family.name}{s}" for s in ("_bucket", "_sum", "_count"))
            else:
                names.add(family.name)
    return names


# --- promtool ---------------------------------------------------------------------------------
def test_promtool_check_rules() -> None:
    promtool = support.require_binary("promtool")
    result = support.run([promtool, "check", "rules", *RULE_FILES])
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass() -> None:
    promtool = support.require_binary("promtool")
    assert RULE_TESTS, "no promtool tests in monitoring/prometheus/tests/"
    result = support.run([promtool, "test", "rules", *RULE_TESTS])
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_sees_a_broken_expectation(tmp_path: Path) -> None:
    """The unit tests compare labels and annotations exactly: a wrong one fails."""
    promtool = support.require_binary("promtool")
    source = PROMETHEUS_DIR / "tests" / "availability.yml"
    test = support.load_yaml(source)
    test["rule_files"] = [str((source.parent / f).resolve()) for f in test["rule_files"]]
    text = yaml.safe_dump(test, sort_keys=False, width=1000)
    broken = text.replace(
        "summary: message-processor is down in chat-service",
        "summary: message-processor is down somewhere",
    )
    assert broken != text
    copy = tmp_path / "availability.yml"
    copy.write_text(text, encoding="utf-8")
    assert support.run([promtool, "test", "rules", copy]).returncode == 0
    copy.write_text(broken, encoding="utf-8")
    result = support.run([promtool, "test", "rules", copy])
    assert result.returncode != 0
    assert "down somewhere" in result.stdout + result.stderr


# --- every alert: labelled, annotated, documented ---------------------------------------------
@pytest.mark.parametrize("rule", ALERTS, ids=ALERT_IDS)
def test_alert_has_severity_team_and_annotations(rule: dict[str, Any]) -> None:
    labels, annotations = rule.get("labels", {}), rule.get("annotations", {})
    assert labels.get("severity") in support.SEVERITIES
    assert labels.get("team") in support.TEAMS
    for key in ("summary", "description", "runbook_url"):
        assert str(annotations.get(key, "")).strip(), f"{rule['alert']}: no {key}"


@pytest.mark.parametrize("rule", ALERTS, ids=ALERT_IDS)
def test_alert_runbook_section_exists(rule: dict[str, Any]) -> None:
    url = str(rule["annotations"]["runbook_url"])
    base, _, anchor = url.partition("#")
    assert base == RUNBOOK_BASE_URL
    assert anchor in support.runbook_anchors(), f"docs/runbooks/alerts.md has no #{anchor}"
    assert anchor == support.github_anchor(str(rule["alert"])), "one section per alert, by name"


def test_alert_names_are_unique_per_severity() -> None:
    assert len(set(ALERT_IDS)) == len(ALERT_IDS)


# --- every alert: tested firing and silent ----------------------------------------------------
@pytest.mark.parametrize("alertname", ALERT_NAMES)
def test_alert_has_firing_and_silent_promtool_cases(alertname: str) -> None:
    cases = [expected for _, name, expected in support.alert_cases() if name == alertname]
    assert any(cases), f"{alertname}: no promtool case where it fires"
    assert any(not expected for expected in cases), f"{alertname}: no case where it is silent"


@pytest.mark.parametrize("rule", ALERTS, ids=ALERT_IDS)
def test_every_severity_of_an_alert_is_seen_firing(rule: dict[str, Any]) -> None:
    fired = support.fired_label_sets(str(rule["alert"]))
    severity = rule["labels"]["severity"]
    assert any(labels.get("severity") == severity for labels in fired)


def test_promtool_cases_name_existing_alerts() -> None:
    """A case for a misspelt alert would pass silently ("expected no alert": none)."""
    for path, name, expected in support.alert_cases():
        assert name in ALERT_NAMES, f"{path.name}: no alert {name}"
        for alert in expected:
            assert alert.get("exp_labels", {}).get("alertname", name) == name


@pytest.mark.parametrize("path", RULE_TESTS, ids=[p.name for p in RULE_TESTS])
def test_promtool_test_file_loads_both_rule_files(path: Path) -> None:
    files = {(path.parent / f).resolve() for f in support.load_yaml(path)["rule_files"]}
    assert files == {f.resolve() for f in RULE_FILES}


# --- what the rules read -----------------------------------------------------------------------
def test_recording_rule_names() -> None:
    names = [name for name, _ in RECORDINGS]
    assert len(names) == len(set(names)), "a record name defined twice"
    for name in names:
        assert re.fullmatch(r"chat:[a-z0-9_]+:[a-z0-9_]+", name), name


@pytest.mark.parametrize(("record", "expr"), RECORDINGS, ids=[r for r, _ in RECORDINGS])
def test_recording_rule_reads_only_exported_series(record: str, expr: str) -> None:
    """Evaluable on the local stack: only the service's own series, no other recorded one
    (the end-to-end test runs each expression as a query), no cluster-only label."""
    assert support.metric_names(expr), f"{record} reads no chat_*/flask_* series"
    assert not support.recorded_names(expr), f"{record} reads a recorded series"
    unknown = support.metric_names(expr) - exported_series()
    assert not unknown, f"{record}: not exported by the service: {unknown}"
    assert "knative_service" not in expr and "__meta" not in expr


def test_alerts_read_only_exported_or_recorded_series() -> None:
    assert support.alert_metric_names() <= exported_series()
    recorded = {name for name, _ in RECORDINGS}
    for rule in ALERTS:
        missing = support.recorded_names(str(rule["expr"])) - recorded
        assert not missing, f"{rule['alert']} reads unrecorded {missing}"


def test_alert_metric_names_reports_bases_and_suffixes() -> None:
    direct = support.alert_metric_names(through_recordings=False)
    assert {"chat_dependency_call_seconds", "chat_dependency_call_seconds_count"} <= direct
    assert {"chat_kafkasource_lag", "chat_kafkasource_dead_letters_total"} <= direct
    assert not {name for name in direct if name.startswith("flask_")}
    assert "flask_http_request_duration_seconds_bucket" in support.alert_metric_names()
    assert "flask_http_request_duration_seconds" in support.alert_metric_names()
    # Label values and names are not metrics.
    assert support.metric_names('x{job="chat_service_x", chat_label="a"}') == set()


# --- prometheus.yml ---------------------------------------------------------------------------
def _jobs() -> dict[str, dict[str, Any]]:
    return {job["job_name"]: job for job in support.load_yaml(PROMETHEUS_CONFIG)["scrape_configs"]}


def _relabel(job: dict[str, Any], source: str) -> list[dict[str, Any]]:
    return [r for r in job.get("relabel_configs", []) if source in r.get("source_labels", [])]


def _keeps(job: dict[str, Any], source: str, value: str) -> bool:
    return any(
        r.get("action") == "keep" and re.fullmatch(str(r.get("regex", "(.*)")), value)
        for r in _relabel(job, source)
    )


def _namespaces(job: dict[str, Any]) -> list[str]:
    return [
        name
        for sd in job.get("kubernetes_sd_configs", [])
        for name in sd.get("namespaces", {}).get("names", [])
    ]


def test_prometheus_config_scrapes_annotated_pods() -> None:
    job = _jobs()["chat-service"]
    assert [sd["role"] for sd in job["kubernetes_sd_configs"]] == ["pod"]
    assert {"chat-service", "chat-service-staging"} <= set(_namespaces(job))
    annotation = "__meta_kubernetes_pod_annotation_prometheus_io_"
    assert _keeps(job, f"{annotation}scrape", "true")
    assert not _keeps(job, f"{annotation}scrape", "false")
    ports = _relabel(job, f"{annotation}port")
    assert ports and all(r["target_label"] == "__address__" for r in ports)
    (path,) = _relabel(job, f"{annotation}path")
    assert path["target_label"] == "__metrics_path__"
    targets = {
        r["source_labels"][0]: r["target_label"]
        for r in job["relabel_configs"]
        if r.get("action", "replace") == "replace" and len(r.get("source_labels", [])) == 1
    }
    # The target labels the rules rely on (and the local stack's configuration also sets).
    assert targets["__meta_kubernetes_pod_label_serving_knative_dev_service"] == "knative_service"
    assert targets["__meta_kubernetes_namespace"] == "namespace"
    assert targets["__meta_kubernetes_pod_name"] == "pod"


def test_prometheus_config_scrapes_knative_data_plane() -> None:
    jobs = _jobs()
    queue_proxy = jobs["knative-queue-proxy"]
    assert [sd["role"] for sd in queue_proxy["kubernetes_sd_configs"]] == ["pod"]
    assert _keeps(queue_proxy, "__meta_kubernetes_pod_container_name", "queue-proxy")
    assert _keeps(
        queue_proxy, "__meta_kubernetes_pod_container_port_name", "http-usermetric"
    ) or _keeps(queue_proxy, "__meta_kubernetes_pod_container_port_number", "9091")
    dispatchers = [job for job in jobs.values() if _namespaces(job) == ["knative-eventing"]]
    assert len(dispatchers) == 1, "one job for Knative's KafkaSource dispatcher"
    (dispatcher,) = dispatchers
    assert _keeps(dispatcher, "__meta_kubernetes_pod_label_app", "kafka-source-dispatcher") or (
        _keeps(dispatcher, "__meta_kubernetes_pod_name", "kafka-source-dispatcher-0")
    )


def test_prometheus_config_loads_rules_and_alerts_to_alertmanager() -> None:
    config = support.load_yaml(PROMETHEUS_CONFIG)
    files = [(PROMETHEUS_CONFIG.parent / f).resolve() for f in config["rule_files"]]
    assert set(files) == {RECORDING_RULES.resolve(), ALERT_RULES.resolve()}
    assert all(f.is_file() for f in files)
    (alertmanagers,) = config["alerting"]["alertmanagers"]
    targets = [t for sc in alertmanagers["static_configs"] for t in sc["targets"]]
    assert targets and all("alertmanager" in t for t in targets)


def test_prometheus_config_is_valid_with_static_discovery(tmp_path: Path) -> None:
    """promtool without Kubernetes discovery (Debian's) checks everything else: the same
    configuration with each kubernetes_sd_configs replaced by a static target."""
    promtool = support.require_binary("promtool")
    config = support.load_yaml(PROMETHEUS_CONFIG)
    for job in config["scrape_configs"]:
        if job.pop("kubernetes_sd_configs", None) is not None:
            job.setdefault("static_configs", []).append({"targets": ["127.0.0.1:8080"]})
    _stand_in_files(config, tmp_path)
    config["rule_files"] = [str(PROMETHEUS_CONFIG.parent / f) for f in config["rule_files"]]
    copy = tmp_path / "prometheus.yml"
    copy.write_text(yaml.safe_dump(config), encoding="utf-8")
    result = support.run([promtool, "check", "config", copy])
    assert result.returncode == 0, result.stdout + result.stderr


def _stand_in_files(node: Any, tmp_path: Path) -> None:
    """Point every *_file setting (the pod's service-account token, its CA) at an empty file:
    promtool checks that they exist."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key.endswith("_file") and isinstance(value, str):
                stand_in = tmp_path / "files" / value.strip("/").replace("/", "_")
                stand_in.parent.mkdir(exist_ok=True)
                stand_in.touch()
                node[key] = str(stand_in)
            else:
                _stand_in_files(value, tmp_path)
    elif isinstance(node, list):
        for item in node:
            _stand_in_files(item, tmp_path)
