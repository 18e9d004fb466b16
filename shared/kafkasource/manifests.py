"""The KafkaSource and KafkaSink manifests in ``kafka-sources/``, read into frozen values.

The manifests are the one source of the topics, consumer groups, sinks and delivery policy
(retry, backoff, dead-letter topic) of every KafkaSource-triggered function: Knative reads them
in a cluster, the local dispatcher and the tests read them through this module. Only the
resources listed in the directory's ``kustomization.yaml`` count, as for ``kubectl apply -k``.

Field meanings follow the KafkaSource CRD (sources.knative.dev/v1) and Knative's DeliverySpec:
``retry`` is the number of retries after the first attempt; the wait before retry ``n`` is
``backoffDelay * 2^n`` (exponential) or ``backoffDelay * n`` (linear).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from shared.dataclass import dataclass

SOURCE_API = ("sources.knative.dev/v1", "KafkaSource")
SINK_API = ("eventing.knative.dev/v1alpha1", "KafkaSink")
SERVICE_API = ("serving.knative.dev/v1", "Service")

# ISO-8601 durations as Knative accepts them for delivery settings: days and time parts
# (years and months have no fixed length, so they are refused).
_DURATION = re.compile(
    r"P(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?"
)
_SECONDS = {"days": 86400.0, "hours": 3600.0, "minutes": 60.0, "seconds": 1.0}


class ManifestError(ValueError):
    pass


def parse_duration(text: str) -> float:
    """Seconds in an ISO-8601 duration such as ``PT0.5S``, ``PT2S``, ``PT1M`` or ``P1DT2H``."""
    match = _DURATION.fullmatch(text.strip())
    if match is None or text.strip() in ("P", "PT") or text.strip().endswith("T"):
        raise ManifestError(f"not an ISO-8601 duration (PnDTnHnMnS): {text!r}")
    return sum(float(v) * _SECONDS[k] for k, v in match.groupdict().items() if v)


# How long the local dispatcher's consumer lets the broker hold a fetch that finds nothing:
# idle, its polling rate. The local broker (Tansu) answers a waiting fetch when records arrive
# while the wait is 100 ms or less (measured: 6-9 ms from produce to fetch at 20, 50 and
# 100 ms), but not reliably beyond (30-50 ms at 200, 120-220 ms at 500): 100 ms for the
# sources a reply waits on (idle, the stack's CPU went from 0.52 to 0.33 of a core against
# 20 ms); a source nothing waits on (the audit trail, analytics) sets more in this annotation.
# Knative's own dispatcher ignores it (its fetch settings are the data plane's).
FETCH_WAIT_ANNOTATION = "chat-service.dev/local-fetch-wait-ms"
DEFAULT_FETCH_WAIT_MS = 100


@dataclass(frozen=True)
class KafkaSink:
    name: str
    topic: str
    bootstrap_servers: tuple[str, ...]
    partitions: int | None


@dataclass(frozen=True)
class Delivery:
    retry: int
    backoff_policy: str  # "exponential" | "linear"
    backoff_delay_s: float
    dead_letter_topic: str | None  # None: events that fail are dropped (Knative's rule)
    timeout_s: float | None = None  # per request; Knative's experimental `timeout`
    retry_after_max_s: float | None = None  # cap on a sink's Retry-After (`retryAfterMax`)

    def backoff_s(self, retry_number: int) -> float:
        """The wait before retry ``retry_number`` (1-based)."""
        if self.backoff_policy == "linear":
            return self.backoff_delay_s * retry_number
        return self.backoff_delay_s * 2.0**retry_number


@dataclass(frozen=True)
class KafkaSource:
    name: str
    topics: tuple[str, ...]
    consumer_group: str
    bootstrap_servers: tuple[str, ...]
    initial_offset: str  # "earliest" | "latest"
    ordering: str  # "ordered" | "unordered"
    sink_service: str
    delivery: Delivery
    path: Path
    # The local dispatcher's wait for an empty fetch (FETCH_WAIT_ANNOTATION); a cluster's
    # Knative dispatcher ignores it.
    local_fetch_wait_ms: int = DEFAULT_FETCH_WAIT_MS


def load(directory: Path) -> list[KafkaSource]:
    """Every KafkaSource in the directory's kustomization, with its dead-letter sink resolved."""
    documents = load_documents(directory)
    sinks: dict[str, KafkaSink] = {}
    for path, doc in documents:
        if (doc.get("apiVersion"), doc.get("kind")) == SINK_API:
            sink = _sink(path, doc)
            sinks[sink.name] = sink
    sources = [
        _source(path, doc, sinks)
        for path, doc in documents
        if (doc.get("apiVersion"), doc.get("kind")) == SOURCE_API
    ]
    names = [source.name for source in sources]
    if len(set(names)) != len(names):
        raise ManifestError(f"KafkaSource names repeat in {directory}: {sorted(names)}")
    return sources


def resource_files(directory: Path) -> list[Path]:
    kustomization = _yaml_documents(directory / "kustomization.yaml")
    resources = kustomization[0].get("resources") if kustomization else None
    if not isinstance(resources, list) or not resources:
        raise ManifestError(f"{directory / 'kustomization.yaml'} lists no resources")
    return [directory / str(name) for name in resources]


def load_documents(directory: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Every YAML document of the kustomization's resources (for schema checks)."""
    return [(path, doc) for path in resource_files(directory) for doc in _documents(path)]


def _documents(path: Path) -> list[dict[str, Any]]:
    documents = _yaml_documents(path)
    for document in documents:
        if not isinstance(document.get("metadata"), Mapping) or not document["metadata"].get(
            "name"
        ):
            raise ManifestError(f"{path}: a document without metadata.name")
    return documents


def _yaml_documents(path: Path) -> list[dict[str, Any]]:
    import yaml  # lazy: only the tools and the local stack read manifests

    try:
        loaded = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError) as exc:
        raise ManifestError(f"{path}: {exc}") from exc
    documents = [d for d in loaded if d is not None]
    if not all(isinstance(d, dict) for d in documents):
        raise ManifestError(f"{path}: every YAML document must be a mapping")
    return documents


def _sink(path: Path, doc: Mapping[str, Any]) -> KafkaSink:
    name = str(doc["metadata"]["name"])
    spec = _mapping(doc.get("spec"), f"{path}: KafkaSink {name}: spec")
    where = f"{path}: KafkaSink {name}"
    partitions = spec.get("numPartitions")
    if partitions is not None and (not isinstance(partitions, int) or partitions < 1):
        raise ManifestError(f"{where}: numPartitions must be a positive integer")
    if spec.get("contentMode", "binary") != "binary":
        raise ManifestError(f"{where}: contentMode must be binary (every topic is binary mode)")
    return KafkaSink(
        name=name,
        topic=_text(spec.get("topic"), f"{where}: spec.topic"),
        bootstrap_servers=_texts(spec.get("bootstrapServers"), f"{where}: bootstrapServers"),
        partitions=partitions,
    )


def _fetch_wait_ms(doc: Mapping[str, Any], where: str) -> int:
    annotations = (doc.get("metadata") or {}).get("annotations") or {}
    raw = annotations.get(FETCH_WAIT_ANNOTATION)
    if raw is None:
        return DEFAULT_FETCH_WAIT_MS
    if not str(raw).isdigit() or not 1 <= int(raw) <= 1000:
        raise ManifestError(f"{where}: {FETCH_WAIT_ANNOTATION} must be 1-1000 (milliseconds)")
    return int(raw)


def _source(path: Path, doc: Mapping[str, Any], sinks: Mapping[str, KafkaSink]) -> KafkaSource:
    name = str(doc["metadata"]["name"])
    where = f"{path}: KafkaSource {name}"
    spec = _mapping(doc.get("spec"), f"{where}: spec")
    sink_ref = _mapping(_mapping(spec.get("sink"), f"{where}: sink").get("ref"), f"{where}: ref")
    if (sink_ref.get("apiVersion"), sink_ref.get("kind")) != SERVICE_API:
        raise ManifestError(f"{where}: sink.ref must be a {SERVICE_API[0]} {SERVICE_API[1]}")
    return KafkaSource(
        name=name,
        topics=_texts(spec.get("topics"), f"{where}: topics"),
        consumer_group=_text(spec.get("consumerGroup"), f"{where}: consumerGroup"),
        bootstrap_servers=_texts(spec.get("bootstrapServers"), f"{where}: bootstrapServers"),
        initial_offset=_choice(spec, "initialOffset", ("earliest", "latest"), "latest", where),
        ordering=_choice(spec, "ordering", ("ordered", "unordered"), "ordered", where),
        sink_service=_text(sink_ref.get("name"), f"{where}: sink.ref.name"),
        delivery=_delivery(spec.get("delivery") or {}, sinks, where),
        path=path,
        local_fetch_wait_ms=_fetch_wait_ms(doc, where),
    )


def _delivery(spec: Mapping[str, Any], sinks: Mapping[str, KafkaSink], where: str) -> Delivery:
    retry = spec.get("retry", 0)
    if not isinstance(retry, int) or isinstance(retry, bool) or retry < 0:
        raise ManifestError(f"{where}: delivery.retry must be a whole number ≥ 0")
    dead_letter_topic = None
    if "deadLetterSink" in spec:
        ref = _mapping(spec["deadLetterSink"].get("ref"), f"{where}: deadLetterSink.ref")
        if (ref.get("apiVersion"), ref.get("kind")) != SINK_API:
            raise ManifestError(f"{where}: deadLetterSink.ref must be a {SINK_API[1]}")
        sink = sinks.get(str(ref.get("name")))
        if sink is None:
            raise ManifestError(f"{where}: dead-letter KafkaSink {ref.get('name')!r} not found")
        dead_letter_topic = sink.topic

    def duration(key: str) -> float | None:
        return parse_duration(_text(spec[key], f"{where}: {key}")) if key in spec else None

    return Delivery(
        retry=retry,
        backoff_policy=_choice(
            spec, "backoffPolicy", ("exponential", "linear"), "exponential", where
        ),
        backoff_delay_s=duration("backoffDelay") or 0.0,
        dead_letter_topic=dead_letter_topic,
        timeout_s=duration("timeout"),
        retry_after_max_s=duration("retryAfterMax"),
    )


def _choice(
    spec: Mapping[str, Any], key: str, allowed: tuple[str, ...], default: str, where: str
) -> str:
    value = spec.get(key, default)
    if value not in allowed:
        raise ManifestError(f"{where}: {key} must be one of {', '.join(allowed)}, got {value!r}")
    return str(value)


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ManifestError(f"{where} must be a mapping")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ManifestError(f"{where} must be a non-empty string")
    return value


def _texts(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, Iterable) or isinstance(value, str | bytes) or not value:
        raise ManifestError(f"{where} must be a non-empty list of strings")
    return tuple(_text(item, where) for item in value)
