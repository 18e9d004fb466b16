"""What Knative's admission webhooks check beyond the CRD schemas, with default feature flags.

The CRD schemas (:mod:`shared.deploy.schemas`) catch unknown fields and wrong types; the
webhooks also check values. The rules here follow knative/serving's
``pkg/apis/autoscaling/annotation_validation.go``, ``pkg/apis/serving/k8s_validation.go``,
``fieldmask.go``, ``metadata_validation.go`` and ``revision_validation.go``, and
eventing-kafka-broker's ``kafka_validation.go`` / ``kafka_sink_validation.go`` (and eventing's
``DeliverySpec.Validate``), as of the 1.2x releases; defaults of ``config-defaults``,
``config-autoscaler`` and ``config-features`` are assumed. Anything Knative would fix by
defaulting first (a secret mount without ``readOnly``) is not reported.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from shared.deploy.bundle import Document, Problem, problem
from shared.deploy.model import AUTOSCALING, CONTAINER, get, services
from shared.deploy.project import DEPLOYMENT_CONFIGMAP, Context, Rule
from shared.kafkasource.manifests import ManifestError, parse_duration

KPA, HPA = "kpa.autoscaling.knative.dev", "hpa.autoscaling.knative.dev"
MAX_TIMEOUT_S = 600  # config-defaults max-revision-timeout-seconds
MAX_CONTAINER_CONCURRENCY = 1000  # config-defaults container-concurrency-max-limit
RESERVED_ENV = {"PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION"}
RESERVED_PORTS = {8012, 8013, 8022, 9090, 9091, 8008}
RESERVED_MOUNTS = {"/", "/dev", "/dev/log"}
NETWORKING_TEMPLATE_ANNOTATIONS = {
    "networking.knative.dev/ingress.class",
    "networking.knative.dev/ingress-class",
    "networking.knative.dev/certificate.class",
    "networking.knative.dev/certificate-class",
    "networking.knative.dev/disableAutoTLS",
    "networking.knative.dev/disable-auto-tls",
    "networking.knative.dev/httpOption",
    "networking.knative.dev/http-protocol",
}
# Every autoscaling key Knative knows (the camelCase spellings are still read as aliases).
# Knative ignores unknown keys; this check does not, since a misspelt key is silently lost.
AUTOSCALING_KEYS = {
    "class", "metric", "target", "min-scale", "max-scale", "initial-scale", "activation-scale",
    "scale-down-delay", "scale-to-zero-pod-retention-period", "window", "panic-window-percentage",
    "panic-threshold-percentage", "target-utilization-percentage", "target-burst-capacity",
    "metric-aggregation-algorithm", "minScale", "maxScale", "initialScale", "scaleDownDelay",
    "scaleToZeroPodRetentionPeriod", "panicWindowPercentage", "panicThresholdPercentage",
    "targetUtilizationPercentage", "targetBurstCapacity", "metricAggregationAlgorithm",
}  # fmt: skip
# (low, high) bounds of the float-valued keys.
FLOAT_BOUNDS = {
    "target": (0.01, None),
    "target-utilization-percentage": (1.0, 100.0),
    "panic-window-percentage": (1.0, 100.0),
    "panic-threshold-percentage": (110.0, 1000.0),
}
# (low, high, whole seconds) bounds of the duration-valued keys, in seconds.
DURATION_BOUNDS = {
    "window": (6.0, 3600.0, True),
    "scale-down-delay": (0.0, 3600.0, True),
    "scale-to-zero-pod-retention-period": (0.0, 3600.0, False),
}
DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
GO_DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def go_duration(text: str) -> float | None:
    """Seconds in a Go duration (``5m``, ``1h30m``, ``90s``); None when it is not one."""
    if text in ("0",):
        return 0.0
    if not GO_DURATION.match(text):
        return None
    return sum(
        float(number) * _GO_UNITS[unit]
        for number, _, unit in re.findall(r"(\d+(\.\d+)?)(ns|us|µs|ms|s|m|h)", text)
    )


def autoscaling(ctx: Context) -> Iterator[Problem]:
    limit_raw = ctx.configmap(DEPLOYMENT_CONFIGMAP).get("max-scale-limit", "0")
    limit = int(limit_raw) if limit_raw.isdigit() else 0
    for svc in services(ctx.bundle):
        for key in get(svc.doc.body, "metadata.annotations", {}) or {}:
            if str(key).startswith(AUTOSCALING):
                yield problem(
                    svc.doc,
                    f"metadata.annotations.{key}",
                    "autoscaling annotations must be under spec.template.metadata.annotations",
                )
        yield from _annotations(svc.doc, dict(svc.annotations), limit)


def _annotations(doc: Document, annotations: dict[str, Any], limit: int) -> Iterator[Problem]:
    base = "spec.template.metadata.annotations."
    scaling = {
        k[len(AUTOSCALING) :]: str(v) for k, v in annotations.items() if k.startswith(AUTOSCALING)
    }
    for key in scaling:
        if key not in AUTOSCALING_KEYS:
            yield problem(doc, base + AUTOSCALING + key, "not an autoscaling key Knative knows")
    klass = scaling.get("class", KPA)
    if klass.endswith(".knative.dev") and klass not in (KPA, HPA):
        yield problem(doc, base + AUTOSCALING + "class", f"{klass!r}: not {KPA} or {HPA}")
    metric = scaling.get("metric")
    if metric is not None and (
        (klass == KPA and metric not in ("concurrency", "rps")) or (klass == HPA and not metric)
    ):
        yield problem(doc, base + AUTOSCALING + "metric", f"{metric!r} is not a {klass} metric")
    for key, (low, high) in FLOAT_BOUNDS.items():
        if key in scaling and not _float_within(scaling[key], low, high):
            yield problem(
                doc, base + AUTOSCALING + key, f"{scaling[key]!r}: not in [{low}, {high}]"
            )
    for key, (low_s, high_s, whole) in DURATION_BOUNDS.items():
        if key not in scaling:
            continue
        seconds = go_duration(scaling[key])
        if seconds is None or not low_s <= seconds <= high_s or (whole and seconds % 1):
            yield problem(
                doc,
                base + AUTOSCALING + key,
                f"{scaling[key]!r}: not a duration in [{low_s:g}s, 1h]",
            )
    yield from _scale_bounds(doc, scaling, limit)


def _float_within(raw: str, low: float, high: float | None) -> bool:
    try:
        value = float(raw)
    except ValueError:
        return False
    return value >= low and (high is None or value <= high)


def _scale_bounds(doc: Document, scaling: dict[str, str], limit: int) -> Iterator[Problem]:
    base = "spec.template.metadata.annotations." + AUTOSCALING
    numbers: dict[str, int] = {}
    for key, alias in (("min-scale", "minScale"), ("max-scale", "maxScale"),
                       ("initial-scale", "initialScale"), ("activation-scale", "")):  # fmt: skip
        raw = scaling.get(key, scaling.get(alias)) if alias else scaling.get(key)
        if raw is None:
            continue
        if not re.fullmatch(r"\d+", raw) or int(raw) > 2**31 - 1:
            yield problem(doc, base + key, f"{raw!r}: not a whole number ≥ 0")
        else:
            numbers[key] = int(raw)
    low, high = numbers.get("min-scale", 0), numbers.get("max-scale")
    if high is not None and high != 0 and high < low:
        yield problem(doc, base + "max-scale", f"max-scale={high} is less than min-scale={low}")
    if high is not None and limit > 0 and (high == 0 or high > limit):
        yield problem(doc, base + "max-scale", f"{high} is outside [1, {limit}] (max-scale-limit)")
    if numbers.get("initial-scale") == 0:
        yield problem(doc, base + "initial-scale", "0 is not allowed by the cluster's default")
    activation = numbers.get("activation-scale")
    if activation is not None and (
        activation < 2 or activation < low or (high and high < activation)
    ):
        yield problem(doc, base + "activation-scale", f"{activation}: must be > 1, ≥ min, ≤ max")


def revision_spec(ctx: Context) -> Iterator[Problem]:
    """Bounds of the revision's own fields, names, and pod-level fields Knative refuses."""
    for svc in services(ctx.bundle):
        doc, spec = svc.doc, svc.spec
        if not DNS_1035.match(svc.name):
            yield problem(doc, "metadata.name", f"{svc.name!r} is not a DNS-1035 label")
        template_name = get(doc.body, "spec.template.metadata.name")
        if template_name and not str(template_name).startswith(f"{svc.name}-"):
            yield problem(doc, "spec.template.metadata.name", f"must start with {svc.name}-")
        timeout = spec.get("timeoutSeconds")
        if isinstance(timeout, int) and not 0 <= timeout <= MAX_TIMEOUT_S:
            yield problem(doc, "spec.template.spec.timeoutSeconds", f"not in [0, {MAX_TIMEOUT_S}]")
        concurrency = spec.get("containerConcurrency")
        if isinstance(concurrency, int) and not 0 <= concurrency <= MAX_CONTAINER_CONCURRENCY:
            yield problem(
                doc,
                "spec.template.spec.containerConcurrency",
                f"{concurrency} not in [0, {MAX_CONTAINER_CONCURRENCY}]",
            )
        if "securityContext" in spec:
            yield problem(
                doc,
                "spec.template.spec.securityContext",
                "a pod-level securityContext needs kubernetes.podspec-securitycontext: set it "
                "on the container",
            )
        if spec.get("automountServiceAccountToken") is True:
            yield problem(doc, "spec.template.spec.automountServiceAccountToken", "only false")
        for key in get(doc.body, "spec.template.metadata.annotations", {}) or {}:
            if str(key).startswith("networking.knative.dev") and key not in (
                NETWORKING_TEMPLATE_ANNOTATIONS
            ):
                yield problem(
                    doc, f"spec.template.metadata.annotations.{key}", "not allowed on a revision"
                )


def container(ctx: Context) -> Iterator[Problem]:
    for svc in services(ctx.bundle):
        yield from _container(svc.doc, svc.container, svc.spec)


def _container(doc: Document, box: Mapping[str, Any], spec: Mapping[str, Any]) -> Iterator[Problem]:
    if box.get("name") == "queue-proxy":
        yield problem(doc, f"{CONTAINER}.name", "queue-proxy is reserved")
    for index, entry in enumerate(box.get("env") or []):
        if entry.get("name") in RESERVED_ENV:
            yield problem(
                doc, f"{CONTAINER}.env[{index}].name", f"{entry['name']} is set by Knative"
            )
    ports = box.get("ports") or []
    if len(ports) > 1:
        yield problem(doc, f"{CONTAINER}.ports", "only one port is allowed")
    for port in ports[:1]:
        if port.get("containerPort") in RESERVED_PORTS:
            yield problem(doc, f"{CONTAINER}.ports[0].containerPort", "reserved by Knative")
        if port.get("name", "") not in ("", "h2c", "http1"):
            yield problem(doc, f"{CONTAINER}.ports[0].name", "must be empty, h2c or http1")
        if port.get("protocol", "TCP") != "TCP":
            yield problem(doc, f"{CONTAINER}.ports[0].protocol", "only TCP")
    context = box.get("securityContext") or {}
    if get(context, "capabilities.add"):
        yield problem(
            doc,
            f"{CONTAINER}.securityContext.capabilities.add",
            "not allowed unless kubernetes.containerspec-addcapabilities is enabled",
        )
    if context.get("privileged") is True:
        yield problem(doc, f"{CONTAINER}.securityContext.privileged", "only false is allowed")
    yield from _probes(doc, box, ports[0].get("name", "") if ports else "")
    yield from _volumes(doc, box, spec)


def _probes(doc: Document, box: Mapping[str, Any], port_name: str) -> Iterator[Problem]:
    for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
        probe = box.get(kind)
        if probe is None:
            continue
        field = f"{CONTAINER}.{kind}"
        handlers = [h for h in ("httpGet", "tcpSocket", "exec", "grpc") if h in probe]
        if len(handlers) != 1:
            yield problem(doc, field, f"exactly one handler, found {handlers or 'none'}")
        port = get(probe, f"{handlers[0]}.port") if handlers else None
        if isinstance(port, str) and port != (port_name or "http"):
            yield problem(doc, f"{field}.{handlers[0]}.port", "must match the container port")
        if kind == "readinessProbe" and not probe.get("periodSeconds"):
            for key in ("failureThreshold", "timeoutSeconds"):
                if probe.get(key):
                    yield problem(
                        doc, f"{field}.{key}", "disallowed when periodSeconds is zero (Knative)"
                    )


def _volumes(doc: Document, box: Mapping[str, Any], spec: Mapping[str, Any]) -> Iterator[Problem]:
    declared = {v.get("name"): v for v in spec.get("volumes") or []}
    mounted = set()
    seen_paths: set[str] = set()
    for index, mount in enumerate(box.get("volumeMounts") or []):
        field = f"{CONTAINER}.volumeMounts[{index}]"
        mounted.add(mount.get("name"))
        path = str(mount.get("mountPath", ""))
        clean = re.sub(r"/+$", "", re.sub(r"/+", "/", path)) or "/"
        if mount.get("name") not in declared:
            yield problem(doc, f"{field}.name", "volumeMount has no matching volume")
        if clean in RESERVED_MOUNTS or not path.startswith("/") or clean in seen_paths:
            yield problem(doc, f"{field}.mountPath", f"{path!r}: reserved, relative or repeated")
        seen_paths.add(clean)
    for index, (name, volume) in enumerate(declared.items()):
        field = f"spec.template.spec.volumes[{index}]"
        sources = [k for k in volume if k != "name"]
        if len(sources) != 1 or sources[0] not in ("secret", "configMap", "projected", "emptyDir"):
            yield problem(doc, field, f"{sources}: one of secret, configMap, projected, emptyDir")
        if name not in mounted:
            yield problem(doc, f"{field}.name", f"volume {name!r} not mounted")


def eventing(ctx: Context) -> Iterator[Problem]:
    """KafkaSource and KafkaSink webhooks, and eventing's DeliverySpec rules."""
    for doc in ctx.bundle.of_kind("KafkaSource"):
        spec = get(doc.body, "spec", {}) or {}
        for key in ("topics", "bootstrapServers"):
            if not spec.get(key):
                yield problem(doc, f"spec.{key}", "required")
        if spec.get("initialOffset", "latest") not in ("earliest", "latest"):
            yield problem(doc, "spec.initialOffset", "earliest or latest")
        if spec.get("ordering", "ordered") not in ("ordered", "unordered"):
            yield problem(doc, "spec.ordering", "ordered or unordered")
        sink = spec.get("sink") or {}
        if not sink.get("ref") and not sink.get("uri"):
            yield problem(doc, "spec.sink", "expected a ref or a uri")
        yield from _delivery(doc, spec.get("delivery") or {})
    for doc in ctx.bundle.of_kind("KafkaSink"):
        spec = get(doc.body, "spec", {}) or {}
        if spec.get("contentMode", "structured") not in ("structured", "binary"):
            yield problem(doc, "spec.contentMode", "structured or binary")
        for key in ("topic", "bootstrapServers"):
            if not spec.get(key):
                yield problem(doc, f"spec.{key}", "required")
        for key in ("numPartitions", "replicationFactor"):
            if key in spec and not (isinstance(spec[key], int) and spec[key] > 0):
                yield problem(doc, f"spec.{key}", "must be > 0")


def _delivery(doc: Document, delivery: Mapping[str, Any]) -> Iterator[Problem]:
    field = "spec.delivery"
    retry = delivery.get("retry", 0)
    if not isinstance(retry, int) or retry < 0:
        yield problem(doc, f"{field}.retry", "must be ≥ 0")
    if delivery.get("backoffPolicy", "exponential") not in ("linear", "exponential"):
        yield problem(doc, f"{field}.backoffPolicy", "linear or exponential")
    for key in ("backoffDelay", "timeout"):
        if key in delivery:
            try:
                seconds = parse_duration(str(delivery[key]))
            except ManifestError:
                yield problem(doc, f"{field}.{key}", f"{delivery[key]!r}: not an ISO-8601 duration")
                continue
            if key == "timeout" and seconds == 0:
                yield problem(doc, f"{field}.timeout", "must not be zero")
    if "retryAfterMax" in delivery:
        yield problem(doc, f"{field}.retryAfterMax", "needs the delivery-retryafter feature")


RULES: tuple[Rule, ...] = (autoscaling, revision_spec, container, eventing)
