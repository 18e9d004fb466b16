"""Where the capacity model's numbers come from: the bench results, else the assumptions, and
what the production overlay deploys."""

from __future__ import annotations

from typing import Any

from shared.capacity import inputs
from shared.capacity.inputs import DEFAULT_RATES, FALLBACK_DEPLOYMENT
from shared.capacity.model import DISPATCHER, PROCESSOR, TRACKER

RESULTS: dict[str, Any] = {
    "date": "2026-12-01T18:00:00+00:00",
    "command": "make bench",
    "capacity_inputs": {
        "webhook_rps_per_instance": 812.5,
        "handler_cpu_ms_per_event": {PROCESSOR: 9.5, DISPATCHER: 0, "unknown": 3},
        "handler_service_ms": {PROCESSOR: 41.0, DISPATCHER: "fast"},
        "roundtrips_per_turn": {"mongodb": 9, "redis": 3, "kafka": 1},
    },
}


def test_without_results_every_figure_is_an_assumption() -> None:
    rates = inputs.rates(None)
    assert rates == DEFAULT_RATES
    assert not rates.webhook_rps.measured
    assert all(not f.measured for f in rates.handler_cpu_ms.values())


def test_measured_figures_replace_the_assumed_ones_and_say_so() -> None:
    rates = inputs.rates(RESULTS)
    assert rates.webhook_rps.value == 812.5
    assert rates.webhook_rps.source == "measured: make bench 2026-12-01T18:00:00+00:00"
    assert rates.handler_cpu_ms[PROCESSOR].value == 9.5
    assert rates.handler_service_ms[PROCESSOR].value == 41.0
    assert (rates.mongodb_per_turn.value, rates.redis_per_turn.value) == (9, 3)
    assert rates.mongodb_per_turn.measured


def test_a_missing_zero_or_odd_figure_keeps_the_assumption() -> None:
    rates = inputs.rates(RESULTS)
    assert rates.handler_cpu_ms[DISPATCHER] == DEFAULT_RATES.handler_cpu_ms[DISPATCHER]  # 0
    assert rates.handler_service_ms[DISPATCHER] == DEFAULT_RATES.handler_service_ms[DISPATCHER]
    assert rates.handler_cpu_ms[TRACKER] == DEFAULT_RATES.handler_cpu_ms[TRACKER]  # absent
    assert "unknown" not in rates.handler_cpu_ms
    assert rates.channel_api_ms == DEFAULT_RATES.channel_api_ms  # never measured here


def test_scaling_is_read_from_the_rendered_documents() -> None:
    documents: list[dict[str, Any]] = [
        {"kind": "ConfigMap", "metadata": {"name": "b"}, "data": {"TOPIC_PARTITIONS": "24"}},
        {"kind": "ConfigMap", "metadata": {"name": "d"}, "data": {"max-scale-limit": "40"}},
        {
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Service",
            "metadata": {"name": PROCESSOR},
            "spec": {
                "template": {
                    "metadata": {
                        "annotations": {
                            "autoscaling.knative.dev/max-scale": "20",
                            "autoscaling.knative.dev/target": "6",
                        }
                    },
                    "spec": {"containerConcurrency": 8},
                }
            },
        },
    ]
    deployed = inputs.from_documents(documents)
    assert deployed.partitions == 24
    assert deployed.max_scale_limit == 40
    assert deployed.max_scale == {PROCESSOR: 20}
    assert deployed.container_concurrency == {PROCESSOR: 8}
    assert deployed.target == {PROCESSOR: 6.0}


def test_the_built_in_copy_is_what_the_production_overlay_deploys() -> None:
    """The fallback (no kubectl) must not drift from knative/overlays/production."""
    deployed, where = inputs.deployment()
    assert where.startswith("rendered"), where
    assert deployed.partitions == FALLBACK_DEPLOYMENT.partitions
    assert deployed.max_scale_limit == FALLBACK_DEPLOYMENT.max_scale_limit
    for name, max_scale in FALLBACK_DEPLOYMENT.max_scale.items():
        assert deployed.max_scale[name] == max_scale, name
    for name, concurrency in FALLBACK_DEPLOYMENT.container_concurrency.items():
        assert deployed.container_concurrency[name] == concurrency, name
