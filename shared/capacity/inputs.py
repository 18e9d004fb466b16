"""The capacity model's inputs: the latest ``make bench`` results where it measured them, the
documented assumptions where it did not (or there are no results), and what the production
overlay deploys today (rendered with kustomize; a documented fallback without kubectl).

Every assumption is here, once, with its reason; ``docs/capacity.md`` walks through them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shared.capacity.model import (
    AUDIT,
    DISPATCHER,
    HANDLERS,
    PROCESSOR,
    TRACKER,
    Deployment,
    Figure,
    Rates,
)

ROOT = Path(__file__).resolve().parents[2]
LATEST = ROOT / "bench-results" / "latest.json"
OVERLAY = ROOT / "knative" / "overlays" / "production"


def assumed(value: float, why: str) -> Figure:
    return Figure(value, f"assumed: {why}")


# Per event, on one core. From issue 11's measurements and the roundtrips/e2e benchmark on
# 2 cores; the dispatcher's includes rendering and the HTTP call's own CPU.
ASSUMED_CPU_MS = {
    PROCESSOR: assumed(12, "bot turn CPU (processor's share of the e2e run)"),
    DISPATCHER: assumed(10, "render + one HTTPS call"),
    TRACKER: assumed(3, "one conditional update"),
    AUDIT: assumed(3, "one insert"),
    "analytics-sink": assumed(3, "one insert (PostgreSQL)"),
}
# Time to answer one event, which bounds a partition (ordered delivery).
ASSUMED_SERVICE_MS = {
    PROCESSOR: assumed(60, "MongoDB + Redis + two gRPC calls + Kafka ack, in a cluster"),
    DISPATCHER: assumed(20, "MongoDB claim and record (the platform's API is added apart)"),
    TRACKER: assumed(10, "one MongoDB update"),
    AUDIT: assumed(10, "one MongoDB insert"),
    "analytics-sink": assumed(15, "one PostgreSQL insert"),
}
DEFAULT_RATES = Rates(
    webhook_rps=assumed(500, "issue 11 measured 513-818 req/s for one instance"),
    handler_cpu_ms=ASSUMED_CPU_MS,
    handler_service_ms=ASSUMED_SERVICE_MS,
    channel_api_ms=assumed(200, "Graph API / Slack / Telegram send, typical p50 from a cloud"),
    mongodb_per_turn=assumed(6, "roundtrips.py's count of the turn (issue 11's target)"),
    redis_per_turn=assumed(4, "issue 11's target"),
    mongodb_per_status=assumed(1, "status-tracker's conditional update"),
    mongodb_per_audit_event=assumed(1, "audit-logger's insert"),
    redis_per_webhook=assumed(2, "ingress dedupe: read the marks, then mark (MGET + SET)"),
    record_kib=assumed(1.5, "a CloudEvent of one text message with its ce_* headers"),
    cores_per_instance=assumed(1, "the production overlay's CPU limit; one worker uses one"),
    mongodb_ops_capacity=assumed(10_000, "3-member replica set, 4-8 vCPU, indexed 1-doc ops"),
    redis_ops_capacity=assumed(80_000, "one Redis primary, small commands and pipelines"),
    kafka_records_capacity=assumed(20_000, "3 brokers, RF 3, acks=all, 1.5 KiB records"),
    postgres_inserts_capacity=assumed(5_000, "one PostgreSQL primary, single-row inserts"),
)
# knative/overlays/production as of this writing, for when kubectl cannot render it.
FALLBACK_DEPLOYMENT = Deployment(
    partitions=12,
    max_scale={
        "whatsapp-webhook": 30,
        PROCESSOR: 30,
        DISPATCHER: 30,
        TRACKER: 5,
        AUDIT: 5,
        "analytics-sink": 3,
    },
    container_concurrency=dict.fromkeys(HANDLERS, 8) | {"analytics-sink": 4},
    target=dict.fromkeys(HANDLERS, 6.0) | {"analytics-sink": 4.0},
    max_scale_limit=50,
)


def load_results(path: Path) -> dict[str, Any] | None:
    try:
        document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document


def rates(results: Mapping[str, Any] | None, base: Rates = DEFAULT_RATES) -> Rates:
    """``base`` with every figure the benchmark measured replaced by its measurement."""
    if not results:
        return base
    inputs: Mapping[str, Any] = results.get("capacity_inputs") or {}
    label = f"measured: {results.get('command', 'make bench')} {results.get('date', '')}"

    def measured(value: Any, fallback: Figure, scale: float = 1.0) -> Figure:
        number = _positive(value)
        return fallback if number is None else Figure(number * scale, label)

    def per_handler(key: str, fallbacks: Mapping[str, Figure]) -> dict[str, Figure]:
        found: Mapping[str, Any] = inputs.get(key) or {}
        return {name: measured(found.get(name), fallbacks[name]) for name in fallbacks}

    turns: Mapping[str, Any] = inputs.get("roundtrips_per_turn") or {}
    return Rates(
        webhook_rps=measured(inputs.get("webhook_rps_per_instance"), base.webhook_rps),
        handler_cpu_ms=per_handler("handler_cpu_ms_per_event", base.handler_cpu_ms),
        handler_service_ms=per_handler("handler_service_ms", base.handler_service_ms),
        channel_api_ms=base.channel_api_ms,
        mongodb_per_turn=measured(turns.get("mongodb"), base.mongodb_per_turn),
        redis_per_turn=measured(turns.get("redis"), base.redis_per_turn),
        mongodb_per_status=base.mongodb_per_status,
        mongodb_per_audit_event=base.mongodb_per_audit_event,
        redis_per_webhook=base.redis_per_webhook,
        record_kib=base.record_kib,
        cores_per_instance=base.cores_per_instance,
        mongodb_ops_capacity=base.mongodb_ops_capacity,
        redis_ops_capacity=base.redis_ops_capacity,
        kafka_records_capacity=base.kafka_records_capacity,
        postgres_inserts_capacity=base.postgres_inserts_capacity,
    )


def _positive(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None


def deployment(overlay: Path = OVERLAY) -> tuple[Deployment, str]:
    """What ``overlay`` deploys, and where that came from."""
    from shared.deploy.bundle import BundleError, render

    try:
        bundle = render(overlay, ROOT)
    except (BundleError, OSError) as exc:
        return FALLBACK_DEPLOYMENT, f"built-in copy of the production overlay ({exc})"
    return from_documents([d.body for d in bundle.documents]), f"rendered {overlay.name} overlay"


def from_documents(documents: list[dict[str, Any]]) -> Deployment:
    """Partitions (the create-topics Job's settings) and each Service's scaling."""
    partitions = FALLBACK_DEPLOYMENT.partitions
    limit: int | None = None
    max_scale: dict[str, int] = {}
    concurrency: dict[str, int] = {}
    target: dict[str, float] = {}
    for body in documents:
        kind, name = body.get("kind"), (body.get("metadata") or {}).get("name", "")
        if kind == "ConfigMap" and "TOPIC_PARTITIONS" in (body.get("data") or {}):
            partitions = int(body["data"]["TOPIC_PARTITIONS"])
        if kind == "ConfigMap" and "max-scale-limit" in (body.get("data") or {}):
            limit = int(body["data"]["max-scale-limit"])
        if kind == "Service" and str(body.get("apiVersion", "")).startswith("serving.knative"):
            template = body["spec"]["template"]
            annotations = (template.get("metadata") or {}).get("annotations") or {}
            if "autoscaling.knative.dev/max-scale" in annotations:
                max_scale[name] = int(annotations["autoscaling.knative.dev/max-scale"])
            if "autoscaling.knative.dev/target" in annotations:
                target[name] = float(annotations["autoscaling.knative.dev/target"])
            if "containerConcurrency" in template.get("spec", {}):
                concurrency[name] = int(template["spec"]["containerConcurrency"])
    return Deployment(partitions, max_scale, concurrency, target, limit)
