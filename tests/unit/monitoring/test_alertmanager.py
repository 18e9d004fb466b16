"""monitoring/alertmanager: a valid configuration, every route reaching the receiver it should,
every alert reaching its team, inhibitions that can match, and no secret in the file."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.unit.monitoring import support
from tests.unit.monitoring.support import ALERTMANAGER_CONFIG

CONFIG: dict[str, Any] = support.load_yaml(ALERTMANAGER_CONFIG)
ALERTS = support.alert_rules()

# One case per route of the tree: labels → the receivers, in the order amtool prints them.
ROUTES = [
    ({"severity": "critical", "team": "platform"}, "pager-platform,chat-platform"),
    ({"severity": "critical", "team": "bot"}, "pager-bot,chat-bot"),
    ({"severity": "critical", "team": "channels"}, "pager-channels,chat-channels"),
    ({"severity": "warning", "team": "platform"}, "chat-platform"),
    ({"severity": "warning", "team": "bot"}, "chat-bot"),
    ({"severity": "warning", "team": "channels"}, "chat-channels"),
    ({"severity": "info", "team": "bot"}, "tickets"),
    ({"alertname": "SomethingUnlabelled"}, "chat-platform"),
]


def expected_receivers(severity: str, team: str) -> str:
    return {
        "critical": f"pager-{team},chat-{team}",
        "warning": f"chat-{team}",
        "info": "tickets",
    }[severity]


def routes_test(labels: dict[str, str], receivers: str) -> None:
    amtool = support.require_binary("amtool")
    result = support.run(
        [
            amtool,
            "config",
            "routes",
            "test",
            f"--config.file={ALERTMANAGER_CONFIG}",
            f"--verify.receivers={receivers}",
            *(f"{name}={value}" for name, value in labels.items()),
        ]
    )
    assert result.returncode == 0, f"{labels}: {result.stdout}{result.stderr}"


def test_amtool_check_config() -> None:
    amtool = support.require_binary("amtool")
    result = support.run([amtool, "check-config", ALERTMANAGER_CONFIG])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(
    ("labels", "receivers"), ROUTES, ids=[",".join(labels.values()) for labels, _ in ROUTES]
)
def test_route(labels: dict[str, str], receivers: str) -> None:
    routes_test(labels, receivers)


@pytest.mark.parametrize(
    "rule", ALERTS, ids=[f"{r['alert']}-{r['labels']['severity']}" for r in ALERTS]
)
def test_every_alert_reaches_its_team(rule: dict[str, Any]) -> None:
    labels = {"alertname": str(rule["alert"]), **rule["labels"]}
    routes_test(labels, expected_receivers(labels["severity"], labels["team"]))


def test_every_receiver_is_used_and_every_route_names_one() -> None:
    defined = {receiver["name"] for receiver in CONFIG["receivers"]}
    used: set[str] = set()

    def walk(route: dict[str, Any]) -> None:
        if "receiver" in route:
            used.add(route["receiver"])
        for child in route.get("routes", []):
            walk(child)

    walk(CONFIG["route"])
    assert used == defined


def test_grouping() -> None:
    route = CONFIG["route"]
    assert route["group_by"] == ["alertname", "service", "namespace"]
    for key in ("group_wait", "group_interval", "repeat_interval"):
        assert key in route


# --- inhibition -------------------------------------------------------------------------------
def _matches(matchers: list[str], labels: dict[str, str]) -> bool:
    """Alertmanager's `name="value"` / `name=~"regex"` matchers (the only forms used here)."""
    for matcher in matchers:
        found = re.fullmatch(r'(\w+)(=~|!=|!~|=)"(.*)"', matcher)
        assert found, f"unsupported matcher {matcher}"
        name, op, value = found.groups()
        actual = labels.get(name, "")
        hit = re.fullmatch(value, actual) is not None if "~" in op else actual == value
        if hit == op.startswith("!"):
            return False
    return True


def _fired(alertname: str) -> list[dict[str, str]]:
    return [{"alertname": alertname, **labels} for labels in support.fired_label_sets(alertname)]


def test_service_down_inhibits_that_services_errors_and_latency() -> None:
    down = {"alertname": "ChatServiceDown", "severity": "critical"}
    rules = [r for r in CONFIG["inhibit_rules"] if _matches(r["source_matchers"], down)]
    for target in ("ChatServiceHighErrorRatio", "ChatServiceLatencyBudgetBurn"):
        (rule,) = [
            r
            for r in rules
            if _matches(r["target_matchers"], {"alertname": target, "severity": "warning"})
            and "alertname" not in r["equal"]
        ]
        assert {"namespace", "service"} <= set(rule["equal"])


def test_critical_inhibits_the_warning_of_the_same_alert() -> None:
    rules = [
        r
        for r in CONFIG["inhibit_rules"]
        if _matches(r["source_matchers"], {"severity": "critical"})
        and _matches(r["target_matchers"], {"severity": "warning"})
    ]
    assert rules and all("alertname" in r["equal"] for r in rules)


@pytest.mark.parametrize("index", range(len(CONFIG["inhibit_rules"])))
def test_inhibit_rule_can_match(index: int) -> None:
    """Among the alerts the promtool tests fire (with the labels they expect), some source
    inhibits some target: every `equal` label has the same value on both (Alertmanager counts a
    label missing on both as equal)."""
    rule = CONFIG["inhibit_rules"][index]
    fired = [labels for name in support.alert_names() for labels in _fired(name)]
    sources = [a for a in fired if _matches(rule["source_matchers"], a)]
    targets = [a for a in fired if _matches(rule["target_matchers"], a)]
    assert sources, f"no alert matches {rule['source_matchers']}"
    assert targets, f"no alert matches {rule['target_matchers']}"
    assert any(
        all(s.get(label, "") == t.get(label, "") for label in rule["equal"])
        for s in sources
        for t in targets
        if s != t
    ), f"no tested source and target agree on {rule['equal']}"
    for alertname in {a["alertname"] for a in sources + targets}:
        assert alertname in support.alert_names()


def test_the_down_alert_carries_the_labels_it_inhibits_on() -> None:
    (down,) = {frozenset(labels) for labels in _fired("ChatServiceDown")}
    for target in ("ChatServiceHighErrorRatio", "ChatServiceLatencyBudgetBurn"):
        for labels in _fired(target):
            assert {"namespace", "service"} <= down & set(labels)


# --- secrets ----------------------------------------------------------------------------------
def test_no_secret_in_the_configuration() -> None:
    text = ALERTMANAGER_CONFIG.read_text(encoding="utf-8")
    assert "hooks.slack.com" not in text
    for receiver in CONFIG["receivers"]:
        for kind, configs in receiver.items():
            if kind == "name":
                continue
            for config in configs:
                assert "routing_key" not in config and "service_key" not in config
                assert "api_url" not in config, f"{receiver['name']}: use api_url_file"
                auth = config.get("http_config", {}).get("authorization", {})
                assert "credentials" not in auth, f"{receiver['name']}: use credentials_file"
                for key, value in config.items():
                    if key.endswith("_file"):
                        assert str(value).startswith("/etc/alertmanager/secrets/")
                url = str(config.get("url", ""))
                assert not url or re.match(r"https?://[\w.-]*example\.com/", url), url
