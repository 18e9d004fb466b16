"""The project's rules for every workload (Services and Jobs) and for the event wiring.

Containers: locked-down security context, requests and limits, one pinned image, their own
ServiceAccount without a token, a writable volume where the image's TMPDIR points, the tenant
directory mounted where TENANTS_FILE points. Wiring: every KafkaSource delivers to a Service
of the bundle, dead-letters to a KafkaSink of it, and names the topics and brokers that
chat-service-config sets.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any

from shared.catalog import by_name
from shared.dataclass import dataclass
from shared.deploy.bundle import Document, Problem, problem
from shared.deploy.model import SERVICE_API, environment, get, services
from shared.deploy.project import SETTINGS_CONFIGMAP, Context, Rule
from shared.settings import Settings

# A digest, or a tag that names one release (a version or a commit), never a moving one.
PINNED_TAG = re.compile(r"^(v?\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?|[0-9a-f]{7,40})$")
SCRAPE = {"prometheus.io/scrape": "true", "prometheus.io/path": "/metrics"}


@dataclass(frozen=True)
class Workload:
    doc: Document
    pod: str  # dotted path of the pod spec
    containers: tuple[tuple[str, dict[str, Any]], ...]  # (dotted path, container)


def workloads(ctx: Context) -> Iterator[Workload]:
    for doc in ctx.bundle.documents:
        if (doc.api_version, doc.kind) == (SERVICE_API, "Service") or doc.kind == "Job":
            pod = "spec.template.spec"
        else:
            continue
        containers = get(doc.body, f"{pod}.containers", []) or []
        yield Workload(
            doc,
            pod,
            tuple((f"{pod}.containers.{i}", c) for i, c in enumerate(containers)),
        )


def security_context(ctx: Context) -> Iterator[Problem]:
    wanted = {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "seccompProfile.type": "RuntimeDefault",
    }
    for load in workloads(ctx):
        for path, container in load.containers:
            context = container.get("securityContext") or {}
            for key, value in wanted.items():
                if get(context, key) != value:
                    yield problem(load.doc, f"{path}.securityContext.{key}", f"must be {value}")
            if "ALL" not in (get(context, "capabilities.drop") or []):
                yield problem(
                    load.doc, f"{path}.securityContext.capabilities.drop", "must drop ALL"
                )
            if get(context, "runAsUser") in (0, None):
                yield problem(load.doc, f"{path}.securityContext.runAsUser", "a non-root number")


def resources(ctx: Context) -> Iterator[Problem]:
    for load in workloads(ctx):
        for path, container in load.containers:
            for kind in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if get(container, f"resources.{kind}.{resource}") is None:
                        yield problem(load.doc, f"{path}.resources.{kind}.{resource}", "not set")


def images(ctx: Context) -> Iterator[Problem]:
    """Every container runs the same image, pinned to a release (a version, a commit or a
    digest): `kubectl apply` of the same bundle twice must run the same code."""
    seen: dict[str, str] = {}
    for load in workloads(ctx):
        for path, container in load.containers:
            image = str(container.get("image", ""))
            field = f"{path}.image"
            if "@sha256:" not in image:
                last = image.rsplit("/", 1)[-1]
                tag = last.rpartition(":")[2] if ":" in last else ""
                if not PINNED_TAG.match(tag):
                    yield problem(load.doc, field, f"{image!r} is not pinned to a release")
            seen.setdefault(image, f"{load.doc.source}: {load.doc.label}")
    if len(seen) > 1:
        listed = "; ".join(f"{image} ({where})" for image, where in seen.items())
        yield Problem(ctx.bundle.name, "(bundle)", "image", f"more than one image: {listed}")


def service_accounts(ctx: Context) -> Iterator[Problem]:
    for load in workloads(ctx):
        name = get(load.doc.body, f"{load.pod}.serviceAccountName")
        field = f"{load.pod}.serviceAccountName"
        account = ctx.bundle.find("ServiceAccount", str(name)) if name else None
        if account is None:
            yield problem(load.doc, field, f"{name!r}: no such ServiceAccount in the bundle")
        elif get(account.body, "automountServiceAccountToken") is not False:
            yield problem(account, "automountServiceAccountToken", "must be false (no API use)")


def volumes(ctx: Context) -> Iterator[Problem]:
    """The image's TMPDIR is a writable emptyDir; TENANTS_FILE is inside a mounted Secret."""
    scratch = ctx.scratch_dir()
    for svc in services(ctx.bundle):
        pod_volumes = {v.get("name"): v for v in svc.spec.get("volumes") or []}
        mounts = {
            m.get("mountPath"): pod_volumes.get(m.get("name"), {})
            for m in svc.container.get("volumeMounts") or []
        }
        field = "spec.template.spec.containers.0.volumeMounts"
        if scratch and "emptyDir" not in mounts.get(scratch, {}):
            yield problem(svc.doc, field, f"no emptyDir at {scratch} (the image's TMPDIR)")
        function = by_name().get(svc.name)
        tenants_file = svc.literal("TENANTS_FILE")
        if function and "tenants" in function.uses and tenants_file:
            folder = str(PurePosixPath(tenants_file).parent)
            if "secret" not in mounts.get(folder, {}):
                yield problem(svc.doc, field, f"no Secret mounted at {folder} (TENANTS_FILE)")


def scrape_annotations(ctx: Context) -> Iterator[Problem]:
    for svc in services(ctx.bundle):
        port = str(get(svc.container, "ports.0.containerPort", 8080))
        for key, value in {**SCRAPE, "prometheus.io/port": port}.items():
            if svc.annotations.get(key) != value:
                yield problem(
                    svc.doc, f"spec.template.metadata.annotations.{key}", f"must be {value!r}"
                )


def wiring(ctx: Context) -> Iterator[Problem]:
    """KafkaSources deliver to Services of the bundle, on the configured topics and brokers."""
    config = ctx.configmap(SETTINGS_CONFIGMAP)
    settings = Settings.from_env(config)
    brokers = list(settings.kafka_brokers)
    service_names = {svc.name for svc in services(ctx.bundle)}
    sinks = {doc.name: doc for doc in ctx.bundle.of_kind("KafkaSink")}
    for doc in ctx.bundle.of_kind("KafkaSource"):
        ref = get(doc.body, "spec.sink.ref", {}) or {}
        if (ref.get("apiVersion"), ref.get("kind")) != (SERVICE_API, "Service") or ref.get(
            "name"
        ) not in service_names:
            yield problem(
                doc, "spec.sink.ref", f"{ref.get('name')!r}: no such Service in the bundle"
            )
        dead = get(doc.body, "spec.delivery.deadLetterSink.ref.name")
        sink = sinks.get(str(dead))
        if sink is None:
            yield problem(doc, "spec.delivery.deadLetterSink.ref", f"{dead!r}: no such KafkaSink")
        elif get(sink.body, "spec.topic") != f"{settings.topic_prefix}.dlq.{doc.name}":
            yield problem(
                sink, "spec.topic", f"must be {settings.topic_prefix}.dlq.{doc.name} (TOPIC_PREFIX)"
            )
        for index, topic in enumerate(get(doc.body, "spec.topics", []) or []):
            if topic not in settings.topics:
                yield problem(
                    doc,
                    f"spec.topics[{index}]",
                    f"{topic!r} is not a topic of TOPIC_PREFIX "
                    f"{settings.topic_prefix!r} ({', '.join(settings.topics)})",
                )
    for doc in (*ctx.bundle.of_kind("KafkaSource"), *sinks.values()):
        if get(doc.body, "spec.bootstrapServers") != brokers:
            yield problem(doc, "spec.bootstrapServers", f"must be KAFKA_BROKERS {brokers}")


def namespace(ctx: Context) -> Iterator[Problem]:
    namespaces = [doc.name for doc in ctx.bundle.of_kind("Namespace")]
    if len(namespaces) != 1:
        yield Problem(ctx.bundle.name, "(bundle)", "Namespace", f"want one, found {namespaces}")
        return
    for doc in ctx.bundle.documents:
        if doc.kind != "Namespace" and get(doc.body, "metadata.namespace") != namespaces[0]:
            yield problem(doc, "metadata.namespace", f"must be {namespaces[0]}")


def jobs_environment(ctx: Context) -> Iterator[Problem]:
    """A bootstrap Job's ``$(VAR)`` arguments name variables its container sets."""
    for doc in ctx.bundle.of_kind("Job"):
        for index, _ in enumerate(get(doc.body, "spec.template.spec.containers", []) or []):
            path = f"spec.template.spec.containers.{index}"
            env = environment(doc, path, ctx.bundle)
            for arg in get(doc.body, f"{path}.args", []) or []:
                for name in re.findall(r"\$\((\w+)\)", str(arg)):
                    if name not in env:
                        yield problem(doc, f"{path}.args", f"$({name}) is set nowhere")


RULES: tuple[Rule, ...] = (
    security_context,
    resources,
    images,
    service_accounts,
    volumes,
    scrape_annotations,
    wiring,
    namespace,
    jobs_environment,
)
