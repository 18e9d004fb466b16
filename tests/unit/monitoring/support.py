"""Helpers for the monitoring tests: where the files are, what the rules say, the binaries.

Also used by the end-to-end consistency test (every recording rule has series on the local
stack, every series an alert reads is one the service exports): :func:`rule_expressions` and
:func:`alert_metric_names`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
PROMETHEUS_DIR = ROOT / "monitoring" / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RECORDING_RULES = PROMETHEUS_DIR / "recording-rules.yml"
ALERT_RULES = PROMETHEUS_DIR / "alert-rules.yml"
RULE_FILES = (RECORDING_RULES, ALERT_RULES)
RULE_TESTS = tuple(sorted((PROMETHEUS_DIR / "tests").glob("*.yml")))
ALERTMANAGER_CONFIG = ROOT / "monitoring" / "alertmanager" / "alertmanager.yml"
RUNBOOK = ROOT / "docs" / "runbooks" / "alerts.md"
# Every alert's runbook_url is this, a '#' and the anchor of its section in RUNBOOK.
RUNBOOK_BASE_URL = "https://github.com/chat-service/chat-service/blob/main/docs/runbooks/alerts.md"

SEVERITIES = ("critical", "warning", "info")
TEAMS = ("platform", "bot", "channels")
# Debian/Ubuntu packages that ship the binaries (.ci/run installs them).
PACKAGES = {"promtool": "prometheus", "amtool": "prometheus-alertmanager"}

_FALSE = {"", "0", "false", "no", "off"}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_METRIC = re.compile(r"(?<![\w:.])((?:chat|flask)_[A-Za-z0-9_]+)\b(?!\s*(?:=|!=|=~|!~))")
_RECORDED = re.compile(r"(?<![\w:.])(chat:[A-Za-z0-9_:]+)")
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


# --- binaries ---------------------------------------------------------------------------------
def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in _FALSE


def require_binary(name: str) -> str:
    """The path of ``name``; skip the test if it is missing, fail instead under CI."""
    path = shutil.which(name)
    if path:
        return path
    hint = f"{name} is not installed (apt-get install {PACKAGES.get(name, name)})"
    if in_ci():
        pytest.fail(f"{hint}; CI is set, so the check cannot be skipped")
    pytest.skip(f"{hint}; skipped outside CI")


def run(args: Sequence[str | Path], *, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


# --- YAML -------------------------------------------------------------------------------------
def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _rules(path: Path) -> Iterator[dict[str, Any]]:
    for group in load_yaml(path)["groups"]:
        yield from group["rules"]


def recording_rules() -> list[dict[str, Any]]:
    return [rule for rule in _rules(RECORDING_RULES) if "record" in rule]


def alert_rules() -> list[dict[str, Any]]:
    """Every alerting rule; an alert name may have several (one per severity)."""
    return [rule for rule in _rules(ALERT_RULES) if "alert" in rule]


def alert_names() -> list[str]:
    return sorted({str(rule["alert"]) for rule in alert_rules()})


def rule_expressions() -> list[tuple[str, str]]:
    """(record name, PromQL expression) of every recording rule, in file order."""
    return [(str(rule["record"]), str(rule["expr"]).strip()) for rule in recording_rules()]


# --- PromQL -----------------------------------------------------------------------------------
def metric_names(expr: str) -> set[str]:
    """The chat_* and flask_* series an expression reads, as written and, for a histogram's
    ``_bucket``/``_sum``/``_count`` series, also as the histogram's base name."""
    names = set(_METRIC.findall(_STRING.sub('""', expr)))
    for name in list(names):
        for suffix in _HISTOGRAM_SUFFIXES:
            if name.endswith(suffix):
                names.add(name.removesuffix(suffix))
    return names


def recorded_names(expr: str) -> set[str]:
    """The recorded series (chat:…) an expression reads."""
    return set(_RECORDED.findall(_STRING.sub('""', expr)))


def alert_metric_names(*, through_recordings: bool = True) -> set[str]:
    """Every chat_* / flask_* metric name the alert expressions read (see :func:`metric_names`),
    including, unless ``through_recordings`` is false, those read by the recording rules
    (chat:…) the alerts use: the error-ratio and latency alerts read flask_* only that way.
    """
    exprs = [str(rule["expr"]) for rule in alert_rules()]
    names = set().union(*(metric_names(expr) for expr in exprs))
    if through_recordings:
        recorded = dict(rule_expressions())
        for expr in exprs:
            for record in recorded_names(expr):
                names |= metric_names(recorded[record])
    return names


# --- runbook ----------------------------------------------------------------------------------
def github_anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces to -."""
    title = heading.lstrip("#").strip().lower()
    return re.sub(r"[^\w\- ]", "", title).replace(" ", "-")


def runbook_anchors(path: Path = RUNBOOK) -> set[str]:
    return {
        github_anchor(line)
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.startswith("#")
    }


# --- promtool unit tests ----------------------------------------------------------------------
def alert_cases() -> Iterator[tuple[Path, str, list[dict[str, Any]]]]:
    """(test file, alert name, expected alerts) of every alert_rule_test in RULE_TESTS."""
    for path in RULE_TESTS:
        for test in load_yaml(path).get("tests") or []:
            for case in test.get("alert_rule_test") or []:
                yield path, str(case["alertname"]), list(case.get("exp_alerts") or [])


def fired_label_sets(alertname: str) -> list[dict[str, str]]:
    """The labels of every alert the promtool tests expect ``alertname`` to fire with."""
    return [
        {str(k): str(v) for k, v in alert.get("exp_labels", {}).items()}
        for _, name, expected in alert_cases()
        if name == alertname
        for alert in expected
    ]
