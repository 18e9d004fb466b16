"""The Grafana dashboards as data: their panels, every PromQL expression, and what it may query.

Used by ``test_dashboards.py`` and by the consistency test that evaluates every panel expression
against a real Prometheus on the local stack: :func:`panel_expressions` gives each expression with
Grafana's variables substituted the way that test expects (``$__rate_interval`` and
``$__interval`` → ``1m``, every dashboard variable → ``.*``; the dashboards write variables only
inside ``=~`` matchers, so ``.*`` selects everything).

What an expression may select:

- the series declared in ``shared/metrics.py`` (:func:`exported_series`, read from the module's
  prometheus_client collectors, so a renamed or relabelled metric shows up here at once);
- prometheus-flask-exporter's request series (:data:`FLASK_SERIES`, checked against the installed
  exporter by a test);
- the scrape target labels every function carries (:data:`TARGET_LABELS`);
- in panels marked cluster-only (``"chat-service/cluster-only": true`` in the panel's options),
  platform series that exist only in a cluster (:data:`PLATFORM_SERIES`).

:class:`PromQL` is a small recursive-descent parser for the PromQL the dashboards use (selectors,
ranges, functions, aggregations, binary operators with their modifiers). It rejects unbalanced
brackets or quotes, unknown functions and series, labels a series does not have, a range vector
where an instant one is needed (and the reverse), ``rate`` over a gauge, ``histogram_quantile``
without ``le``, and vector arithmetic between different label sets; it reports the labels the
result carries (for legends) and the series without which the result is empty.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
GRAFANA_DIR = ROOT / "monitoring" / "grafana"
DASHBOARDS_DIR = GRAFANA_DIR / "dashboards"
PROVISIONING_DIR = GRAFANA_DIR / "provisioning"
DASHBOARD_FILES = ("service-overview.json", "performance.json", "business.json")

CLUSTER_ONLY = "chat-service/cluster-only"
CLUSTER_ONLY_ROW_PREFIX = "Cluster only"
SUBSTITUTED_INTERVAL = "1m"
SUBSTITUTED_VALUE = ".*"
INTERVAL_VARIABLES = frozenset({"__rate_interval", "__interval"})


@dataclass(frozen=True)
class Series:
    """One exported series name: its labels, and whether it only grows (may be ``rate()``-d)."""

    labels: frozenset[str]
    counter: bool


def _series(labels: set[str] | frozenset[str], counter: bool) -> Series:
    return Series(frozenset(labels), counter)


# Added by Prometheus' scrape configuration to every series of a function (and the local
# dispatcher): the job, the instance, the Kubernetes namespace, the Knative Service and the pod
# (monitoring/prometheus/prometheus.yml; the local stack gives the same labels).
TARGET_LABELS = frozenset({"job", "instance", "namespace", "knative_service", "pod"})

# prometheus-flask-exporter 0.23 as shared.web installs it: PrometheusMetrics(app,
# group_by="url_rule", default_labels={"service": <function>}). The counter has no route label.
_FLASK_DURATION = {"method", "url_rule", "status", "service"}
FLASK_SERIES: dict[str, Series] = {
    "flask_http_request_duration_seconds_bucket": _series(_FLASK_DURATION | {"le"}, True),
    "flask_http_request_duration_seconds_count": _series(_FLASK_DURATION, True),
    "flask_http_request_duration_seconds_sum": _series(_FLASK_DURATION, True),
    "flask_http_request_total": _series({"method", "status", "service"}, True),
}

# Series of the cluster's platform, absent from the local stack: Knative's queue-proxy,
# cAdvisor (kubelet), kube-state-metrics and a Kafka exporter (kafka_exporter's names).
_REVISION = {
    "namespace_name",
    "service_name",
    "configuration_name",
    "revision_name",
    "pod_name",
    "container_name",
    "response_code",
    "response_code_class",
}
PLATFORM_SERIES: dict[str, Series] = {
    "revision_request_count": _series(_REVISION, True),
    "revision_request_latencies_bucket": _series(_REVISION | {"le"}, True),
    "container_memory_working_set_bytes": _series({"namespace", "pod", "container"}, False),
    "container_cpu_usage_seconds_total": _series({"namespace", "pod", "container", "cpu"}, True),
    "kube_pod_container_resource_limits": _series(
        {"namespace", "pod", "container", "resource", "unit", "node"}, False
    ),
    "kafka_topic_partition_current_offset": _series({"topic", "partition"}, False),
    "kafka_consumergroup_lag": _series({"consumergroup", "topic", "partition"}, False),
}

# Series that exist only once something unusual happened (prometheus_client exports a labelled
# series from its first increment), and the traffic that creates them. An expression that
# needs one of these returns nothing on a stack that has only seen happy traffic.
RARE_SERIES: dict[str, str] = {
    "chat_ingress_rejections_total": "a rejected webhook request (e.g. a wrong signature)",
    "chat_events_deduplicated_total": "a webhook delivered twice",
    "chat_messages_skipped_total": "a message without reply (e.g. 'Talk to a human': handoff)",
    "chat_rate_limited_total": "a message over a rate limit (USER_RATE_LIMIT_PER_MIN)",
    "chat_engine_fallback_total": "a turn answered by the fallback (MCP engine stopped)",
    "chat_channel_api_errors_total": "a channel API refusal (sandbox POST /fail)",
    "chat_delivery_status_total": "a delivery receipt (e.g. a WhatsApp or Messenger status)",
    "chat_kafkasource_dead_letters_total": "a dead-lettered event (a poison event)",
}


def _samples(name: str, kind: str, labels: frozenset[str]) -> dict[str, Series]:
    """The sample names a prometheus_client family exports (multiprocess: no ``_created``)."""
    if kind == "counter":
        return {f"{name}_total": Series(labels, True)}
    if kind == "histogram":
        return {
            f"{name}_bucket": Series(labels | {"le"}, True),
            f"{name}_count": Series(labels, True),
            f"{name}_sum": Series(labels, True),
        }
    if kind == "summary":
        return {
            name: Series(labels | {"quantile"}, False),
            f"{name}_count": Series(labels, True),
            f"{name}_sum": Series(labels, True),
        }
    if kind == "info":
        return {f"{name}_info": Series(labels, False)}
    if kind == "stateset":
        return {name: Series(labels | {name}, False)}
    return {name: Series(labels, False)}


@cache
def exported_series() -> dict[str, Series]:
    """Every sample name shared/metrics.py declares, with its labels."""
    from prometheus_client.metrics import MetricWrapperBase
    from prometheus_client.registry import CollectorRegistry

    import shared.metrics as declared

    found: dict[str, Series] = {}
    for value in vars(declared).values():
        if isinstance(value, MetricWrapperBase):
            labels = frozenset(value._labelnames)
            found.update(_samples(value._name, value._type or "untyped", labels))
        elif (
            callable(getattr(value, "collect", None))
            and not isinstance(value, type | CollectorRegistry)
            and value.__class__.__module__ != "builtins"
        ):  # a custom collector: what it exports now
            for family in value.collect():
                for sample in family.samples:
                    series = found.get(sample.name)
                    labels = frozenset(sample.labels) | (series.labels if series else frozenset())
                    counter = family.type in ("counter", "histogram") and sample.name.endswith(
                        ("_total", "_bucket", "_count", "_sum")
                    )
                    found[sample.name] = Series(labels, counter)
    return found


def catalog(*, cluster_only: bool) -> dict[str, Series]:
    """What an expression may select: ours, flask's, and (cluster-only panels) the platform's."""
    allowed = {**exported_series(), **FLASK_SERIES}
    if cluster_only:
        allowed.update(PLATFORM_SERIES)
    return allowed


# --- dashboards and panels -------------------------------------------------------------------


def load_dashboard(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((DASHBOARDS_DIR / name).read_text(encoding="utf-8"))
    return document


def dashboards() -> dict[str, dict[str, Any]]:
    return {name: load_dashboard(name) for name in DASHBOARD_FILES}


def iter_panels(dashboard: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str]]:
    """Every panel, rows and the panels of collapsed rows included, with its row's title."""
    row = ""
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            row = str(panel.get("title", ""))
            yield panel, row
            for inner in panel.get("panels", []):
                yield inner, row
        else:
            yield panel, row


def is_cluster_only(panel: dict[str, Any]) -> bool:
    return (panel.get("options") or {}).get(CLUSTER_ONLY) is True


_VARIABLE = re.compile(r"\$\{(\w+)(?::[\w]+)?\}|\[\[(\w+)(?::[\w]+)?\]\]|\$(\w+)")


def variables_in(text: str) -> list[str]:
    return [next(g for g in m.groups() if g) for m in _VARIABLE.finditer(text)]


def substitute(expr: str) -> str:
    """Grafana's variables replaced as the consistency test does: intervals → 1m, values → .*"""

    def value(match: re.Match[str]) -> str:
        name = next(g for g in match.groups() if g)
        if name in INTERVAL_VARIABLES:
            return SUBSTITUTED_INTERVAL
        if name.startswith("__"):
            raise ValueError(f"unsupported Grafana variable ${name} in {expr!r}")
        return SUBSTITUTED_VALUE

    return _VARIABLE.sub(value, expr)


def panel_targets(
    include_cluster_only: bool = False,
) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(dashboard file, panel, target) for every Prometheus query of every panel."""
    found = []
    for name, dashboard in dashboards().items():
        for panel, _row in iter_panels(dashboard):
            if panel.get("type") == "row":
                continue
            if is_cluster_only(panel) and not include_cluster_only:
                continue
            for target in panel.get("targets", []):
                if target.get("expr"):
                    found.append((name, panel, target))
    return found


def panel_expressions(include_cluster_only: bool = False) -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, expression with variables substituted) for every query.

    Cluster-only panels (Knative, cAdvisor, kube-state-metrics and Kafka exporter series) are
    left out unless ``include_cluster_only``.
    """
    return [
        (name, str(panel["title"]), substitute(str(target["expr"])))
        for name, panel, target in panel_targets(include_cluster_only)
    ]


def variable_queries() -> list[tuple[str, str, str]]:
    """(dashboard file, variable name, the series selector its ``label_values`` reads)."""
    found = []
    for name, dashboard in dashboards().items():
        for variable in dashboard.get("templating", {}).get("list", []):
            if variable.get("type") != "query":
                continue
            match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", str(variable.get("query")))
            if match:
                found.append((name, str(variable["name"]), substitute(match.group(1))))
    return found


def rare_series_needed(expr: str, *, cluster_only: bool = False) -> set[str]:
    """The :data:`RARE_SERIES` without which ``expr`` (substituted) returns nothing."""
    node = PromQL(expr, catalog(cluster_only=cluster_only)).parse()
    return set(node.required) & set(RARE_SERIES)


# --- PromQL ----------------------------------------------------------------------------------


class PromQLError(ValueError):
    pass


@dataclass(frozen=True)
class Node:
    kind: str  # "scalar", "string", "instant" or "range"
    labels: frozenset[str] = frozenset()  # labels the result may carry
    metrics: frozenset[str] = frozenset()  # every series selected
    required: frozenset[str] = frozenset()  # series without which the result is empty
    counter: bool = False  # a counter's selector, or a range over one
    text: str = ""  # a string literal's value
    selector: bool = False  # a bare series selector (which may take a range)


# name → (argument kinds, how many are required, result kind)
FUNCTIONS: dict[str, tuple[tuple[str, ...], int, str]] = {
    **{
        f: (("range",), 1, "instant")
        for f in ("rate", "irate", "increase", "resets", "delta", "idelta", "deriv", "changes")
    },
    **{
        f"{f}_over_time": (("range",), 1, "instant")
        for f in ("avg", "min", "max", "sum", "count", "last", "present", "stddev", "stdvar")
    },
    "absent_over_time": (("range",), 1, "instant"),
    "quantile_over_time": (("scalar", "range"), 2, "instant"),
    "histogram_quantile": (("scalar", "instant"), 2, "instant"),
    "clamp": (("instant", "scalar", "scalar"), 3, "instant"),
    "clamp_min": (("instant", "scalar"), 2, "instant"),
    "clamp_max": (("instant", "scalar"), 2, "instant"),
    "round": (("instant", "scalar"), 1, "instant"),
    **{
        f: (("instant",), 1, "instant")
        for f in (
            "abs",
            "ceil",
            "floor",
            "sqrt",
            "exp",
            "ln",
            "log2",
            "log10",
            "sort",
            "sort_desc",
            "timestamp",
            "absent",
        )
    },
    "label_replace": (("instant", "string", "string", "string", "string"), 5, "instant"),
    "scalar": (("instant",), 1, "scalar"),
    "vector": (("scalar",), 1, "instant"),
    "time": ((), 0, "scalar"),
}
COUNTER_FUNCTIONS = frozenset({"rate", "irate", "increase", "resets"})
GAUGE_FUNCTIONS = frozenset({"delta", "idelta", "deriv"})
AGGREGATIONS = frozenset(
    {"sum", "avg", "min", "max", "count", "group", "stddev", "stdvar"}
    | {"topk", "bottomk", "limitk", "quantile", "count_values"}
)
PARAMETRIC = frozenset({"topk", "bottomk", "limitk", "quantile", "count_values"})
KEEP_LABELS = frozenset({"topk", "bottomk", "limitk"})
KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
)
SET_OPERATORS = frozenset({"and", "or", "unless"})
COMPARISONS = frozenset({"==", "!=", ">", "<", ">=", "<="})
PRECEDENCE = {
    "or": 1,
    "and": 2,
    "unless": 2,
    **dict.fromkeys(COMPARISONS, 3),
    "+": 4,
    "-": 4,
    "*": 5,
    "/": 5,
    "%": 5,
    "atan2": 5,
    "^": 6,
}

_TOKEN = re.compile(
    r"""
      (?P<space>\s+)
    | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`[^`]*`)
    | (?P<duration>(?:\d+(?:ms|[smhdwy]))+)(?![\w.])
    | (?P<number>0x[0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    | (?P<ident>[a-zA-Z_:][\w:]*)
    | (?P<op>=~|!~|!=|==|>=|<=|[-+*/%^<>=])
    | (?P<punct>[(){}\[\],:@])
    """,
    re.VERBOSE,
)


def tokenize(expr: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(expr):
        match = _TOKEN.match(expr, position)
        if match is None:
            what = "unterminated string" if expr[position] in "\"'`" else "unexpected character"
            raise PromQLError(f"{what} at {position}: {expr[position : position + 20]!r}")
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append((kind, match.group()))
        position = match.end()
    depth: list[str] = []
    pairs = {")": "(", "]": "[", "}": "{"}
    for kind, text in tokens:
        if kind == "punct" and text in "([{":
            depth.append(text)
        elif kind == "punct" and text in ")]}" and (not depth or depth.pop() != pairs[text]):
            raise PromQLError(f"unbalanced {text!r}")
    if depth:
        raise PromQLError(f"unclosed {depth[-1]!r}")
    return tokens


def _string_value(literal: str) -> str:
    if literal.startswith("`"):
        return literal[1:-1]
    value = ast.literal_eval(literal)  # Go's and Python's escapes agree on the common ones
    if not isinstance(value, str):
        raise PromQLError(f"not a string: {literal}")
    return value


class PromQL:
    """Parses one expression (variables already substituted) against a series catalog."""

    def __init__(self, expr: str, series: dict[str, Series]) -> None:
        self.expr = expr
        self.series = series
        self.tokens = tokenize(expr)
        self.position = 0

    # tokens
    def peek(self, offset: int = 0) -> tuple[str, str]:
        index = self.position + offset
        return self.tokens[index] if index < len(self.tokens) else ("end", "")

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token[0] == "end":
            raise PromQLError("unexpected end of expression")
        self.position += 1
        return token

    def expect(self, text: str) -> None:
        _, found = self.take()
        if found != text:
            raise PromQLError(f"expected {text!r}, found {found!r}")

    def at(self, text: str) -> bool:
        return self.peek()[1] == text

    # grammar
    def parse(self) -> Node:
        node = self.expression()
        if self.peek()[0] != "end":
            raise PromQLError(f"unexpected {self.peek()[1]!r} after a complete expression")
        if node.kind not in ("instant", "scalar"):
            raise PromQLError(f"a panel query must be an instant vector or scalar, not {node.kind}")
        return node

    def expression(self, minimum: int = 1) -> Node:
        left = self.unary()
        while True:
            operator = self.peek()[1]
            if self.peek()[0] not in ("op", "ident") or operator not in PRECEDENCE:
                return left
            precedence = PRECEDENCE[operator]
            if precedence < minimum:
                return left
            self.take()
            left = self.binary(operator, left, precedence)

    def binary(self, operator: str, left: Node, precedence: int) -> Node:
        returns_bool = False
        if self.at("bool"):
            if operator not in COMPARISONS:
                raise PromQLError(f"bool after {operator!r}")
            self.take()
            returns_bool = True
        matching: tuple[str, frozenset[str]] | None = None
        if self.at("on") or self.at("ignoring"):
            keyword = self.take()[1]
            matching = (keyword, self.label_list())
        grouping = None
        if self.at("group_left") or self.at("group_right"):
            grouping = self.take()[1]
            extra = self.label_list() if self.at("(") else frozenset()
            if matching is None:
                raise PromQLError(f"{grouping} without on() or ignoring()")
        else:
            extra = frozenset()
        right = self.expression(precedence if operator == "^" else precedence + 1)
        for side in (left, right):
            if side.kind not in ("instant", "scalar"):
                raise PromQLError(f"{operator!r} on a {side.kind}")
        if operator in SET_OPERATORS and "scalar" in (left.kind, right.kind):
            raise PromQLError(f"{operator!r} needs vectors on both sides")
        if left.kind == right.kind == "scalar":
            return Node("scalar", required=left.required | right.required)
        vectors = left.kind == right.kind == "instant"
        available = left.labels | right.labels
        if matching is not None:
            unknown = matching[1] - available
            if unknown:
                raise PromQLError(f"{matching[0]}({', '.join(sorted(unknown))}): no such label")
        elif vectors and operator not in SET_OPERATORS and left.labels != right.labels:
            raise PromQLError(
                f"{operator!r} between different label sets {sorted(left.labels)} and "
                f"{sorted(right.labels)}: nothing would match (use on() or ignoring())"
            )
        if operator == "or":
            labels, required = available, left.required & right.required
        elif operator == "unless":
            labels, required = left.labels, left.required
        else:
            base = right if left.kind == "scalar" or grouping == "group_right" else left
            labels, required = base.labels | extra, left.required | right.required
            if returns_bool and not vectors:
                labels = base.labels
        return Node("instant", labels, left.metrics | right.metrics, required)

    def unary(self) -> Node:
        if self.peek() in (("op", "-"), ("op", "+")):
            self.take()
            node = self.unary()
            if node.kind not in ("scalar", "instant"):
                raise PromQLError(f"unary minus on a {node.kind}")
            return node
        return self.postfix(self.primary())

    def postfix(self, node: Node) -> Node:
        if self.at("["):
            self.take()
            kind, text = self.take()
            if kind != "duration":
                raise PromQLError(f"expected a duration in [], found {text!r}")
            subquery = False
            if self.at(":"):
                self.take()
                subquery = True
                if self.peek()[0] == "duration":
                    self.take()
            self.expect("]")
            if node.kind != "instant":
                raise PromQLError(f"a range of a {node.kind}")
            if not subquery and not node.selector:
                raise PromQLError("a range needs a series selector (or a subquery with ':')")
            node = Node(
                "range", node.labels, node.metrics, node.required, node.counter and not subquery
            )
        if self.at("offset"):
            self.take()
            kind, text = self.take()
            if kind != "duration":
                raise PromQLError(f"expected a duration after offset, found {text!r}")
        return node

    def primary(self) -> Node:
        kind, text = self.take()
        if kind == "number":
            return Node("scalar")
        if kind == "string":
            return Node("string", text=_string_value(text))
        if text == "(":
            node = self.expression()
            self.expect(")")
            return node
        if kind != "ident":
            raise PromQLError(f"unexpected {text!r}")
        if text in AGGREGATIONS and (self.at("(") or self.at("by") or self.at("without")):
            return self.aggregation(text)
        if text in FUNCTIONS or (self.at("(") and text not in KEYWORDS | SET_OPERATORS):
            return self.function(text)
        if text in KEYWORDS | SET_OPERATORS:
            raise PromQLError(f"unexpected keyword {text!r}")
        if text.lower() in ("inf", "nan"):
            return Node("scalar")
        return self.selector(text)

    def label_list(self) -> frozenset[str]:
        self.expect("(")
        labels: set[str] = set()
        while not self.at(")"):
            kind, text = self.take()
            if kind != "ident":
                raise PromQLError(f"expected a label name, found {text!r}")
            labels.add(text)
            if not self.at(")"):
                self.expect(",")
        self.expect(")")
        return frozenset(labels)

    def aggregation(self, name: str) -> Node:
        grouping: tuple[str, frozenset[str]] | None = None
        if self.at("by") or self.at("without"):
            keyword = self.take()[1]
            grouping = (keyword, self.label_list())
        self.expect("(")
        if name in PARAMETRIC:
            parameter = self.expression()
            wanted = "string" if name == "count_values" else "scalar"
            if parameter.kind != wanted:
                raise PromQLError(f"{name}: the parameter must be a {wanted}")
            self.expect(",")
        argument = self.expression()
        self.expect(")")
        if argument.kind != "instant":
            raise PromQLError(f"{name} over a {argument.kind}")
        if grouping is None and (self.at("by") or self.at("without")):
            keyword = self.take()[1]
            grouping = (keyword, self.label_list())
        if grouping is None:
            labels: frozenset[str] = frozenset()
        else:
            unknown = grouping[1] - argument.labels
            if unknown:
                raise PromQLError(
                    f"{name} {grouping[0]} ({', '.join(sorted(unknown))}): not a label of "
                    f"what it aggregates ({', '.join(sorted(argument.labels))})"
                )
            labels = grouping[1] if grouping[0] == "by" else argument.labels - grouping[1]
        if name in KEEP_LABELS:
            labels = argument.labels
        return Node("instant", labels, argument.metrics, argument.required)

    def function(self, name: str) -> Node:
        if name not in FUNCTIONS:
            raise PromQLError(f"unknown function {name}()")
        kinds, minimum, result = FUNCTIONS[name]
        self.expect("(")
        arguments: list[Node] = []
        while not self.at(")"):
            arguments.append(self.expression())
            if not self.at(")"):
                self.expect(",")
        self.expect(")")
        if not minimum <= len(arguments) <= len(kinds):
            raise PromQLError(f"{name}() takes {minimum}..{len(kinds)} arguments")
        for index, (argument, wanted) in enumerate(zip(arguments, kinds, strict=False)):
            if argument.kind != wanted:
                raise PromQLError(
                    f"{name}() argument {index + 1}: {wanted} expected, not {argument.kind}"
                )
        vectors = [a for a in arguments if a.kind in ("instant", "range")]
        source = vectors[0] if vectors else Node("instant")
        if name in COUNTER_FUNCTIONS and not source.counter:
            raise PromQLError(f"{name}() over a gauge or a subquery: use a counter")
        if name in GAUGE_FUNCTIONS and source.counter:
            raise PromQLError(f"{name}() over a counter: use rate() or increase()")
        labels = source.labels
        if name == "histogram_quantile":
            if "le" not in labels:
                raise PromQLError("histogram_quantile() over series without le (sum by (…, le))")
            labels = labels - {"le"}
        if name == "label_replace":
            labels = labels | {arguments[1].text}
        if name == "absent" or name == "vector":
            return Node("instant", frozenset(), source.metrics)
        return Node(result, labels, source.metrics, source.required)

    def selector(self, name: str) -> Node:
        series = self.series.get(name)
        if series is None:
            raise PromQLError(f"unknown series {name}")
        labels = series.labels | TARGET_LABELS
        if self.at("{"):
            self.take()
            while not self.at("}"):
                kind, label = self.take()
                if kind != "ident":
                    raise PromQLError(f"expected a label name in {name}{{…}}, found {label!r}")
                if label not in labels:
                    raise PromQLError(f"{name} has no label {label}")
                operator = self.take()[1]
                if operator not in ("=", "!=", "=~", "!~"):
                    raise PromQLError(f"{name}{{{label}…}}: {operator!r} is not a matcher")
                kind, literal = self.take()
                if kind != "string":
                    raise PromQLError(f"{name}{{{label}{operator}…}}: a quoted string expected")
                if operator in ("=~", "!~"):
                    try:
                        re.compile(_string_value(literal))
                    except re.error as exc:
                        raise PromQLError(f"{name}{{{label}{operator}{literal}}}: {exc}") from exc
                if not self.at("}"):
                    self.expect(",")
            self.expect("}")
        return Node(
            "instant",
            labels,
            frozenset({name}),
            frozenset({name}),
            counter=series.counter,
            selector=True,
        )


def parse(expr: str, *, cluster_only: bool = False) -> Node:
    """Parse a substituted expression against what a panel of that kind may select."""
    return PromQL(expr, catalog(cluster_only=cluster_only)).parse()
