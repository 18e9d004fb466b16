"""The Grafana dashboards and their provisioning.

Valid documents with fixed uids and the agreed settings; the template variables; a title, a
description and a datasource on every panel; and every PromQL expression parsed (see
``dashboards_support.PromQL``) against what the service really exports: the series of
shared/metrics.py with their labels, prometheus-flask-exporter's, the scrape target labels, and
platform series only in panels marked cluster-only. With promtool installed, Prometheus' own
parser checks every expression too.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.monitoring import dashboards_support as support

DASHBOARDS = support.dashboards()
UIDS = {
    "service-overview.json": "chat-service-overview",
    "performance.json": "chat-service-performance",
    "business.json": "chat-service-business",
}
# The variables each dashboard offers, besides datasource and namespace.
FILTERS = {
    "service-overview.json": {"knative_service", "channel"},
    "performance.json": {"knative_service", "channel"},
    "business.json": {"channel", "tenant"},
}
PANEL_TYPES = {"timeseries", "heatmap", "state-timeline", "stat", "table", "text", "bargauge"}
MAX_CLUSTER_ONLY_PANELS = 5


def all_panels() -> list[tuple[str, dict[str, Any], str]]:
    return [
        (name, panel, row)
        for name, dashboard in DASHBOARDS.items()
        for panel, row in support.iter_panels(dashboard)
        if panel.get("type") != "row"
    ]


PANELS = all_panels()
PANEL_IDS = [f"{name}:{panel.get('title')}" for name, panel, _ in PANELS]
TARGETS = support.panel_targets(include_cluster_only=True)
TARGET_IDS = [f"{name}:{panel['title']}:{target['refId']}" for name, panel, target in TARGETS]


def parsed(panel: dict[str, Any], target: dict[str, Any]) -> support.Node:
    expr = support.substitute(str(target["expr"]))
    return support.parse(expr, cluster_only=support.is_cluster_only(panel))


# --- provisioning ----------------------------------------------------------------------------


def test_datasources_are_provisioned() -> None:
    path = support.PROVISIONING_DIR / "datasources" / "datasources.yml"
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert document["apiVersion"] == 1
    by_uid = {d["uid"]: d for d in document["datasources"]}
    assert set(by_uid) == {"prometheus", "analytics"}

    prometheus = by_uid["prometheus"]
    assert prometheus["type"] == "prometheus"
    assert prometheus["url"] == "http://prometheus.monitoring:9090"
    assert prometheus["isDefault"] is True
    assert [d["uid"] for d in document["datasources"] if d.get("isDefault")] == ["prometheus"]

    analytics = by_uid["analytics"]
    assert analytics["type"] in ("grafana-postgresql-datasource", "postgres")
    assert analytics["url"] == "${ANALYTICS_POSTGRES_HOST}"
    assert analytics["user"] == "${ANALYTICS_POSTGRES_USER}"
    assert analytics["jsonData"]["database"] == "chat_analytics"
    assert analytics["secureJsonData"] == {"password": "${ANALYTICS_POSTGRES_PASSWORD}"}
    assert "password" not in analytics and "password" not in analytics["jsonData"]


def test_dashboards_are_provisioned_from_the_mounted_directory() -> None:
    path = support.PROVISIONING_DIR / "dashboards" / "dashboards.yml"
    text = path.read_text(encoding="utf-8")
    (provider,) = yaml.safe_load(text)["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards/chat-service"
    assert "monitoring/grafana/dashboards/" in text, "the comment says what is mounted there"
    assert sorted(p.name for p in support.DASHBOARDS_DIR.glob("*.json")) == sorted(UIDS)


# --- the documents -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", support.DASHBOARD_FILES)
def test_dashboard_settings(name: str) -> None:
    dashboard = DASHBOARDS[name]
    assert dashboard["uid"] == UIDS[name]
    assert dashboard["id"] is None, "a provisioned dashboard has no database id"
    assert dashboard["title"].startswith("Chat Service / ")
    assert dashboard["schemaVersion"] >= 39
    assert dashboard["time"] == {"from": "now-6h", "to": "now"}
    assert dashboard["refresh"] == "30s"
    assert "chat-service" in dashboard["tags"]


def test_uids_and_titles_are_unique() -> None:
    assert len({d["uid"] for d in DASHBOARDS.values()}) == len(DASHBOARDS)
    assert len({d["title"] for d in DASHBOARDS.values()}) == len(DASHBOARDS)


@pytest.mark.parametrize("name", support.DASHBOARD_FILES)
def test_panel_ids_are_unique_and_panels_fit_the_grid(name: str) -> None:
    panels = [panel for panel, _ in support.iter_panels(DASHBOARDS[name])]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {ids}"
    titles = [p["title"] for p in panels if p.get("type") != "row"]
    assert len(titles) == len(set(titles)), "two panels with the same title"
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]


@pytest.mark.parametrize(("name", "panel", "row"), PANELS, ids=PANEL_IDS)
def test_every_panel_has_a_title_a_description_and_a_datasource(
    name: str, panel: dict[str, Any], row: str
) -> None:
    assert panel.get("title"), f"{name}: a panel without a title"
    assert panel["type"] in PANEL_TYPES, panel["type"]
    description = panel.get("description") or ""
    assert description.rstrip().endswith(("?", ".")), "say what question the panel answers"
    assert "?" in description, f"{panel['title']}: the description asks its question"
    assert panel.get("datasource", {}).get("uid"), f"{panel['title']}: no datasource"
    if panel["type"] == "text":
        return
    if panel["datasource"]["uid"] == "analytics":
        check_sql_panel(panel)
        return
    assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    assert panel.get("targets"), f"{panel['title']}: no query"
    for target in panel["targets"]:
        assert target.get("datasource", panel["datasource"]) == panel["datasource"]
        assert target.get("expr"), f"{panel['title']} {target.get('refId')}: no expression"
    refs = [target["refId"] for target in panel["targets"]]
    assert len(refs) == len(set(refs))


# --- template variables ---------------------------------------------------------------------


def variables(name: str) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in DASHBOARDS[name]["templating"]["list"]}


@pytest.mark.parametrize("name", support.DASHBOARD_FILES)
def test_template_variables(name: str) -> None:
    found = variables(name)
    assert set(found) == {"datasource", "namespace"} | FILTERS[name]
    datasource = found["datasource"]
    assert datasource["type"] == "datasource" and datasource["query"] == "prometheus"
    for variable_name in set(found) - {"datasource"}:
        variable = found[variable_name]
        assert variable["type"] == "query"
        assert variable["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert variable["definition"] == variable["query"]
        match = re.fullmatch(r"label_values\((\w+)(\{.*\})?, (\w+)\)", variable["query"])
        assert match, variable["query"]
        assert match.group(3) == variable_name, "the variable is named after its label"
        node = support.parse(support.substitute(match.group(1) + (match.group(2) or "")))
        assert variable_name in node.labels, f"{match.group(1)} has no label {variable_name}"
        assert not node.required & set(support.RARE_SERIES), "values from a series always there"
        assert variable["includeAll"] is True and variable["allValue"] == ".*"
        assert variable["multi"] is (variable_name != "namespace")


@pytest.mark.parametrize("name", support.DASHBOARD_FILES)
def test_every_variable_is_used_and_every_used_one_defined(name: str) -> None:
    defined = set(variables(name))
    used = {"datasource"}
    for panel, _ in support.iter_panels(DASHBOARDS[name]):
        used |= set(support.variables_in(panel.get("title", "")))
        used |= {v for v in panel.get("repeat", "").split() if v}
        for target in panel.get("targets", []):
            used |= set(support.variables_in(str(target.get("expr", ""))))
    for variable in DASHBOARDS[name]["templating"]["list"]:
        used |= set(support.variables_in(str(variable.get("query", ""))))
    assert used - support.INTERVAL_VARIABLES == defined


# --- expressions -------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "panel", "target"), TARGETS, ids=TARGET_IDS)
def test_expression_parses_against_the_exported_series(
    name: str, panel: dict[str, Any], target: dict[str, Any]
) -> None:
    node = parsed(panel, target)
    assert node.kind in ("instant", "scalar")
    platform = node.metrics & set(support.PLATFORM_SERIES)
    if support.is_cluster_only(panel):
        assert platform, "a cluster-only panel that needs no platform series should not be one"
    else:
        assert not platform, "platform series only in cluster-only panels"
    legend = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", str(target.get("legendFormat", ""))))
    assert legend <= node.labels, (
        f"the legend names labels the result lacks: {legend - node.labels}"
    )


@pytest.mark.parametrize(("name", "panel", "target"), TARGETS, ids=TARGET_IDS)
def test_variables_only_in_regex_matchers_and_rate_windows(
    name: str, panel: dict[str, Any], target: dict[str, Any]
) -> None:
    expr = str(target["expr"])
    # Strip the regex matchers' strings: what is left may name only the interval variables.
    outside = re.sub(r'(=~|!~)\s*"(?:[^"\\]|\\.)*"', r"\1", expr)
    for variable in support.variables_in(outside):
        assert variable in support.INTERVAL_VARIABLES, f"${variable} outside an =~ matcher"
    windows = re.findall(r"\[([^\]]*)\]", outside)
    assert all(window == "$__rate_interval" for window in windows), windows


def test_cluster_only_panels_are_few_and_kept_apart() -> None:
    for name, dashboard in DASHBOARDS.items():
        cluster_only = []
        for panel, row in support.iter_panels(dashboard):
            if panel.get("type") == "row":
                if row.startswith(support.CLUSTER_ONLY_ROW_PREFIX):
                    assert panel["collapsed"] is True, f"{name}: {row} starts collapsed"
                continue
            if support.is_cluster_only(panel):
                cluster_only.append(panel["title"])
                assert row.startswith(support.CLUSTER_ONLY_ROW_PREFIX), panel["title"]
                assert "cluster only" in panel["title"].lower()
                assert panel["description"].startswith("Cluster only")
            else:
                assert not row.startswith(support.CLUSTER_ONLY_ROW_PREFIX), panel["title"]
        assert len(cluster_only) <= MAX_CLUSTER_ONLY_PANELS, f"{name}: {cluster_only}"
    assert any(support.is_cluster_only(p) for _, p, _ in PANELS)


def test_every_series_of_shared_metrics_is_on_a_dashboard() -> None:
    used: set[str] = set()
    for _, panel, target in TARGETS:
        used |= parsed(panel, target).metrics
    families = {re.sub(r"_(total|bucket|count|sum)$", "", n) for n in support.exported_series()}
    shown = {re.sub(r"_(total|bucket|count|sum)$", "", n) for n in used}
    assert families <= shown, f"not on any dashboard: {sorted(families - shown)}"
    assert set(support.FLASK_SERIES) <= used, "the request series of every function"


def check_sql_panel(panel: dict[str, Any]) -> None:
    """A PostgreSQL panel: the analytics datasource, a time filter, the tenant and channel
    variables, and only views that the migrations create."""
    assert panel["datasource"] == {"type": "grafana-postgresql-datasource", "uid": "analytics"}
    views = set(re.findall(r"CREATE VIEW (\w+)", MIGRATIONS))
    for target in panel["targets"]:
        sql = target["rawSql"]
        assert target["datasource"] == panel["datasource"]
        assert "$__timeFilter(day)" in sql
        assert "${tenant:sqlstring}" in sql and "${channel:sqlstring}" in sql
        read = set(re.findall(r"FROM (\w+)", sql))
        assert read and read <= views, f"{panel['title']}: {read - views} is no view"


MIGRATIONS = "".join(
    path.read_text(encoding="utf-8")
    for path in sorted((support.ROOT / "shared" / "analytics" / "migrations").glob("*.sql"))
)


def test_business_has_the_analytics_row() -> None:
    panels = list(support.iter_panels(DASHBOARDS["business.json"]))
    rows = [panel for panel, _ in panels if panel.get("type") == "row"]
    assert rows[-1]["title"] == "Analytics (PostgreSQL)"
    in_row = [panel for panel, row in panels if row == rows[-1]["title"] and panel is not rows[-1]]
    assert [panel["type"] for panel in in_row] == ["text"] + ["timeseries"] * 4
    assert "analytics sink" in in_row[0]["options"]["content"]
    assert all(panel["datasource"]["uid"] == "analytics" for panel in in_row)


# --- the helper the consistency test imports -------------------------------------------------


def test_panel_expressions_substitute_and_leave_out_cluster_only_panels() -> None:
    local = support.panel_expressions()
    everything = support.panel_expressions(include_cluster_only=True)
    assert local and len(everything) > len(local)
    assert {name for name, _, _ in local} == set(support.DASHBOARD_FILES)
    for name, title, expr in everything:
        assert "$" not in expr and "[[" not in expr, f"{name}: {title}: {expr}"
        assert "[1m]" in expr or "rate" not in expr
    for _, _, expr in local:
        assert not support.parse(expr).metrics & set(support.PLATFORM_SERIES)
    assert support.substitute('x{a=~"$channel",b=~"${tenant}"}[$__rate_interval]') == (
        'x{a=~".*",b=~".*"}[1m]'
    )
    with pytest.raises(ValueError, match="__range"):
        support.substitute("increase(x[$__range])")
    assert support.variable_queries()


def test_rare_series_are_named() -> None:
    needed = {
        series
        for _, panel, target in TARGETS
        if not support.is_cluster_only(panel)
        for series in support.rare_series_needed(support.substitute(str(target["expr"])))
    }
    assert needed == set(support.RARE_SERIES), "RARE_SERIES lists exactly what the panels need"
    # Ratios show 0 rather than nothing while nothing failed: `bad or all * 0`.
    assert not support.rare_series_needed(
        "(sum(rate(chat_engine_fallback_total[1m])) or sum(rate(chat_messages_replied_total[1m]))"
        " * 0) / sum(rate(chat_messages_replied_total[1m]))"
    )


# --- the parser itself ------------------------------------------------------------------------

BAD_EXPRESSIONS = {
    "sum(rate(chat_ingress_requests_total[1m])": "unclosed",
    'chat_ingress_requests_total{channel="x}': "unterminated string",
    "rate(chat_ingress_requests_total)": "range expected",
    "rate(chat_kafkasource_lag[1m])": "over a gauge",
    "chat_no_such_total": "unknown series",
    'rate(chat_ingress_requests_total{tenant=~".*"}[1m])': "has no label tenant",
    "sum by (tenant) (rate(chat_ingress_requests_total[1m]))": "not a label",
    "histogram_quantile(0.95, sum by (channel) (rate(chat_channel_api_seconds_bucket[1m])))": (
        "without le"
    ),
    "sum by (channel) (rate(chat_ingress_requests_total[1m])) / sum(rate(chat_ingress_requests"
    "_total[1m]))": "different label sets",
    "sum(rate(revision_request_count[1m]))": "unknown series",
    "nosuchfunction(chat_kafkasource_lag)": "unknown function",
    "sum(chat_kafkasource_lag) by": "unexpected end",
    "sum(chat_kafkasource_lag) by (source": "unclosed",
}


@pytest.mark.parametrize(("expr", "error"), BAD_EXPRESSIONS.items())
def test_the_parser_rejects(expr: str, error: str) -> None:
    with pytest.raises(support.PromQLError, match=re.escape(error)):
        support.parse(expr)


def test_the_parser_reports_labels_and_required_series() -> None:
    node = support.parse(
        "histogram_quantile(0.95, sum by (channel, le) "
        '(rate(chat_channel_api_seconds_bucket{channel=~".*"}[1m])))'
    )
    assert node.labels == {"channel"}
    assert node.required == {"chat_channel_api_seconds_bucket"}
    cluster = support.parse(
        "sum by (pod) (rate(container_cpu_usage_seconds_total[1m]))", cluster_only=True
    )
    assert cluster.labels == {"pod"}


# --- the series the parser trusts ---------------------------------------------------------------


def test_flask_series_are_the_exporters() -> None:
    """FLASK_SERIES as prometheus-flask-exporter really names and labels them (as shared.web)."""
    import flask
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families
    from prometheus_flask_exporter import PrometheusMetrics

    app = flask.Flask("probe")
    app.add_url_rule("/", "index", lambda: "ok")
    registry = CollectorRegistry()
    PrometheusMetrics(
        app, registry=registry, group_by="url_rule", default_labels={"service": "probe"}
    )
    assert app.test_client().get("/").status_code == 200
    seen: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            seen.setdefault(sample.name, set()).update(sample.labels)
    for name, series in support.FLASK_SERIES.items():
        assert seen.get(name) == set(series.labels), name
    web = (support.ROOT / "shared" / "web.py").read_text(encoding="utf-8")
    assert 'group_by="url_rule"' in web and '"service": service' in web


def test_exported_series_come_from_shared_metrics() -> None:
    from shared import metrics

    series = support.exported_series()
    assert series["chat_ingress_requests_total"].labels == set(metrics.ingress_requests._labelnames)
    assert series["chat_dependency_call_seconds_bucket"].counter
    assert "le" in series["chat_dependency_call_seconds_bucket"].labels
    assert not series["chat_kafkasource_lag"].counter
    assert set(support.RARE_SERIES) <= set(series)


promtool = shutil.which("promtool")


@pytest.mark.skipif(promtool is None, reason="promtool is not installed")
def test_promtool_parses_every_expression(tmp_path: Path) -> None:
    rules = [
        {"record": f"dashboard:expression_{index}", "expr": expr}
        for index, (_, _, expr) in enumerate(support.panel_expressions(include_cluster_only=True))
    ]
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    done = subprocess.run(
        [str(promtool), "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


# Label values for the synthetic series: each series is exported once per value (in step), so
# a filter such as author="fallback" or status=~"5.." finds a match.
SYNTHETIC_VALUES: dict[str, tuple[str, ...]] = {
    "job": ("chat-service",),
    "namespace": ("chat-service",),
    "knative_service": ("message-processor",),
    "pod": ("message-processor-local",),
    "instance": ("127.0.0.1:8081",),
    "url_rule": ("/",),
    "status": ("200", "503"),
    "chat_delivery_status_total:status": ("delivered", "read"),
    "chat_ingress_rejections_total:status": ("401",),
    "outcome": ("sent", "retry"),
    "author": ("bot", "fallback"),
    "reason": ("handoff", "engine_error"),
    "result": ("applied", "stale"),
    "code": ("OK", "UNAVAILABLE"),
}


def synthetic_series(*, rare: bool) -> list[dict[str, str]]:
    """Samples every 15 s for every exported series (the rare ones only if ``rare``)."""
    found = []
    for name, series in {**support.exported_series(), **support.FLASK_SERIES}.items():
        if name in support.RARE_SERIES and not rare:
            continue
        labels = sorted(series.labels - {"le"} | support.TARGET_LABELS)
        values = {
            label: SYNTHETIC_VALUES.get(f"{name}:{label}", SYNTHETIC_VALUES.get(label, ("x",)))
            for label in labels
        }
        for step in range(max(len(v) for v in values.values())):
            pairs = {label: values[label][step % len(values[label])] for label in labels}
            for le in ("0.5", "+Inf") if "le" in series.labels else ("",):
                text = ",".join(
                    f'{k}="{v}"' for k, v in ({**pairs, "le": le} if le else pairs).items()
                )
                samples = "0+1x60" if series.counter else "1x60"
                found.append({"series": f"{name}{{{text}}}", "values": samples})
    return found


@pytest.mark.skipif(promtool is None, reason="promtool is not installed")
@pytest.mark.parametrize("rare", [True, False], ids=["everything-happened", "happy-path-only"])
def test_every_panel_returns_a_series_from_exported_samples(tmp_path: Path, rare: bool) -> None:
    """With a sample of every series, every local panel returns something; on happy-path
    samples only, all but those that need a RARE_SERIES do (ratios show 0, not nothing)."""
    tests = [
        {
            "expr": f"clamp_max(count({expr}), 1)",
            "eval_time": "10m",
            "exp_samples": [{"labels": "{}", "value": 1}],
        }
        for _, _, expr in support.panel_expressions()
        if rare or not support.rare_series_needed(expr)
    ]
    tests += [
        {
            "expr": f"clamp_max(count({selector}), 1)",
            "eval_time": "10m",
            "exp_samples": [{"labels": "{}", "value": 1}],
        }
        for _, _, selector in support.variable_queries()
    ]
    document = {
        "rule_files": [],
        "evaluation_interval": "15s",
        "tests": [
            {
                "interval": "15s",
                "input_series": synthetic_series(rare=rare),
                "promql_expr_test": tests,
            }
        ],
    }
    path = tmp_path / "panels.yml"
    path.write_text(yaml.safe_dump(document, width=1000))
    done = subprocess.run(
        [str(promtool), "test", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
