"""deploy.sh, rollback.sh, canary.sh and health-check.sh against a stub cluster (kubectl and
kn stand-ins that record every call and keep the cluster's state) and a stub Prometheus."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.ops.cluster_support import (
    FUNCTIONS,
    HANDLERS,
    ROOT,
    StubCluster,
    prometheus,
    stub_cluster,
)

SCRIPTS = sorted((ROOT / "scripts").glob("*.sh"))


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[StubCluster]:
    yield from stub_cluster(tmp_path)


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_every_script_is_shellcheck_clean_and_explains_itself(script: Path) -> None:
    shellcheck = Path(__import__("sys").executable).parent / "shellcheck"
    checked = subprocess.run(
        [str(shellcheck), "-x", str(script)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout
    text = script.read_text()
    assert "set -euo pipefail" in text
    helped = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=False)
    assert helped.returncode == 0 and "Usage" in helped.stdout, helped.stderr


# --- deploy ----------------------------------------------------------------------------------


def test_deploy_runs_the_jobs_then_the_services_then_the_health_check(cluster: StubCluster) -> None:
    result = cluster.run("deploy.sh", "staging", "--timeout", "30")

    assert result.returncode == 0, result.stderr
    commands = cluster.commands()
    order = [
        next(i for i, c in enumerate(commands) if c.startswith(prefix))
        for prefix in (
            "kubectl kustomize",
            "kubectl get ksvc",
            "kubectl delete job -l app.kubernetes.io/component=bootstrap",
            "kubectl apply -f",
            "kubectl wait job",
        )
    ]
    assert order == sorted(order)
    applies = [c for c in commands if c.startswith("kubectl apply")]
    assert "notin (webhook,event-handler)" in applies[0] and " -l " not in applies[1]
    waited = {c.split()[3] for c in commands if c.startswith("kn service wait")}
    described = {c.split()[3] for c in commands if c.startswith("kn service describe")}
    assert waited == described == set(FUNCTIONS)
    assert all(
        "-n chat-service-staging" in c for c in commands if not c.startswith("kubectl kustomize")
    )
    state = cluster.load()["services"]
    assert all(s["traffic"] == {f"{n}-00002": 100} for n, s in state.items())
    assert "healthy" in result.stderr or "ok" in result.stderr


def test_a_service_that_never_gets_ready_rolls_every_service_back(cluster: StubCluster) -> None:
    cluster.state["services"]["message-processor"]["next_ready"] = False
    cluster.save()

    result = cluster.run("deploy.sh", "staging", "--timeout", "5")

    assert result.returncode == 1
    assert "message-processor" in result.stderr and "rolling back" in result.stderr
    rollbacks = [c for c in cluster.commands() if "--traffic" in c]
    assert {c.split()[3] for c in rollbacks} == set(FUNCTIONS)
    assert all(c.split()[5] == f"{c.split()[3]}-00001=100" for c in rollbacks)
    state = cluster.load()["services"]
    assert all(s["traffic"] == {f"{n}-00001": 100} for n, s in state.items())


def test_an_unhealthy_service_after_the_deploy_rolls_back_too(cluster: StubCluster) -> None:
    cluster.unhealthy.add("webchat")

    result = cluster.run("deploy.sh", "staging", "--timeout", "5")

    assert result.returncode == 1
    assert "not healthy after the deploy: webchat" in result.stderr
    assert cluster.load()["services"]["webchat"]["traffic"] == {"webchat-00001": 100}


def test_a_dry_run_changes_nothing(cluster: StubCluster) -> None:
    result = cluster.run("deploy.sh", "staging", DRY_RUN="1")

    assert result.returncode == 0, result.stderr
    assert "(dry run) kubectl apply" in result.stderr
    assert "(dry run) kn service wait" in result.stderr
    made = {c.split()[1] for c in cluster.commands()}
    assert made <= {"kustomize", "get", "service", "revision"}  # reading only
    assert not [
        c for c in cluster.commands() if c.startswith(("kubectl apply", "kn service update"))
    ]


def test_production_needs_a_confirmation(cluster: StubCluster) -> None:
    refused = cluster.run("deploy.sh", "production")
    assert refused.returncode == 2
    assert "FORCE=1" in refused.stderr
    assert cluster.commands() == []
    forced = cluster.run("deploy.sh", "production", FORCE="1", DRY_RUN="1")
    assert forced.returncode == 0, forced.stderr
    assert any("-n chat-service" in c for c in cluster.commands())


# --- rollback --------------------------------------------------------------------------------


def test_rollback_goes_to_the_previous_ready_revision(cluster: StubCluster) -> None:
    cluster.add_revision("whatsapp-webhook", ready=False)  # 00002: never became ready
    cluster.add_revision("whatsapp-webhook", traffic=True)  # 00003: the bad release

    result = cluster.run("rollback.sh", "whatsapp-webhook", "-n", "chat-service")

    assert result.returncode == 0, result.stderr
    assert "100 % of traffic on whatsapp-webhook-00001" in result.stdout
    assert cluster.load()["services"]["whatsapp-webhook"]["traffic"] == {
        "whatsapp-webhook-00001": 100
    }


def test_rollback_to_a_named_revision_and_its_refusals(cluster: StubCluster) -> None:
    cluster.add_revision("slack-webhook", traffic=True)
    assert cluster.run("rollback.sh", "slack-webhook", "slack-webhook-00001").returncode == 0
    none_before = cluster.run("rollback.sh", "slack-webhook")
    assert none_before.returncode == 1 and "no ready revision before" in none_before.stderr
    unknown = cluster.run("rollback.sh", "slack-webhook", "slack-webhook-00009")
    assert unknown.returncode == 1 and "has no revision" in unknown.stderr


# --- canary ----------------------------------------------------------------------------------


def canary_run(
    cluster: StubCluster, values: dict[str, dict[str, float | None]], *extra: str
) -> subprocess.CompletedProcess[str]:
    cluster.add_revision("message-processor")  # 00002: the canary, ready, no traffic yet
    cluster.state["services"]["message-processor"]["traffic"] = {"message-processor-00001": 100}
    cluster.save()
    server = prometheus(lambda metric, revision: values[revision.rsplit("-", 1)[1]][metric])
    try:
        return cluster.run(
            "canary.sh", "message-processor", "10", "--steps", "25,50",
            "--window", "0.2", "--interval", "0.1", *extra, PROMETHEUS_URL=server.url,
        )  # fmt: skip
    finally:
        server.close()


GOOD: dict[str, float | None] = {"requests": 500.0, "errors": 0.001, "p95": 120.0}
STABLE: dict[str, float | None] = {"requests": 5000.0, "errors": 0.001, "p95": 100.0}


def traffic_updates(cluster: StubCluster) -> list[str]:
    return [c for c in cluster.commands() if c.startswith("kn service update")]


def test_a_healthy_canary_is_promoted_step_by_step(cluster: StubCluster) -> None:
    result = canary_run(cluster, {"00001": STABLE, "00002": GOOD})

    assert result.returncode == 0, result.stderr
    assert "promoted message-processor-00002 to 100 %" in result.stdout
    shares = [c.split("--traffic ")[1].split()[0] for c in traffic_updates(cluster)]
    assert shares == [f"message-processor-00002={p}" for p in (10, 25, 50, 100)]
    assert "--tag message-processor-00002=canary" in traffic_updates(cluster)[0]
    assert cluster.load()["services"]["message-processor"]["traffic"] == {
        "message-processor-00002": 100
    }


@pytest.mark.parametrize(
    ("canary", "reason"),
    [
        ({**GOOD, "errors": 0.05}, "error ratio 5.00% > 1.00%"),
        ({**GOOD, "p95": 1500.0}, "p95 1500 ms > 1000 ms"),
        ({**GOOD, "p95": 400.0}, "p95 400 ms > 1.5 x stable 100 ms"),
        ({"requests": 3.0, "errors": 0.0, "p95": 100.0}, "too little traffic to judge"),
        ({"requests": None, "errors": None, "p95": None}, "too little traffic to judge"),
    ],
)
def test_a_bad_or_unjudgeable_canary_is_rolled_back(
    cluster: StubCluster, canary: dict[str, float | None], reason: str
) -> None:
    result = canary_run(cluster, {"00001": STABLE, "00002": canary})

    assert result.returncode == 1
    assert reason in result.stdout
    assert traffic_updates(cluster)[-1].split()[3:6] == [
        "message-processor",
        "--traffic",
        "message-processor-00001=100",
    ]
    assert cluster.load()["services"]["message-processor"]["traffic"] == {
        "message-processor-00001": 100
    }


def test_prometheus_unreachable_rolls_the_canary_back(cluster: StubCluster) -> None:
    cluster.add_revision("audit-logger")
    cluster.state["services"]["audit-logger"]["traffic"] = {"audit-logger-00001": 100}
    cluster.save()
    result = cluster.run(
        "canary.sh", "audit-logger", "20", "--window", "0.1", "--interval", "0.1",
        PROMETHEUS_URL="http://127.0.0.1:9",
    )  # fmt: skip
    assert result.returncode == 1
    assert "Prometheus query failed" in result.stdout
    assert cluster.load()["services"]["audit-logger"]["traffic"] == {"audit-logger-00001": 100}


# --- health check ----------------------------------------------------------------------------


def test_health_check_of_an_environment(cluster: StubCluster) -> None:
    result = cluster.run("health-check.sh", "staging")

    assert result.returncode == 0, result.stderr
    assert f"{len(FUNCTIONS)}/{len(FUNCTIONS)} healthy" in result.stdout
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:-1]}
    assert "cluster-local: Ready only" in rows["message-processor"]
    assert " 200 " in rows["whatsapp-webhook"]
    cluster.unhealthy.add("telegram-webhook")
    failed = cluster.run("health-check.sh", "staging")
    assert failed.returncode == 1 and "not healthy: telegram-webhook" in failed.stdout


def test_health_check_of_urls(cluster: StubCluster) -> None:
    good = f"{cluster.health.url}/webchat"
    cluster.unhealthy.add("slack-webhook")
    bad = f"{cluster.health.url}/slack-webhook"
    assert cluster.run("health-check.sh", good).returncode == 0
    result = cluster.run("health-check.sh", good, bad, "http://127.0.0.1:9")
    assert result.returncode == 1
    assert "1/3 healthy" in result.stdout
    assert "unavailable" in result.stdout and "no answer" in result.stdout


def test_the_handlers_are_the_cluster_local_ones() -> None:
    from shared.catalog import by_name

    assert {name for name, spec in by_name().items() if not spec.public} == HANDLERS
    assert json.dumps(sorted(by_name())) == json.dumps(FUNCTIONS)
