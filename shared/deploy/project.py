"""The project's own rules for a bundle, beyond what Knative's admission checks.

One function per rule, each yielding :class:`Problem` s that name the file, the document and
the field. The facts they compare with have one source each: the functions and what they use
(:mod:`shared.catalog`), the settings (:mod:`shared.settings`), the health paths
(:mod:`shared.web`), the image's writable directory (the ``Dockerfile``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

from shared.catalog import by_name
from shared.dataclass import dataclass
from shared.deploy.bundle import Bundle, Problem, problem
from shared.deploy.model import CONTAINER, get, services
from shared.settings import specs
from shared.web import HEALTH_PATH, LIVENESS_PATH

SETTINGS_CONFIGMAP = "chat-service-config"
DEPLOYMENT_CONFIGMAP = "chat-service-deployment"
# Set by the manifests for functions-framework and gunicorn, not read by shared/settings.py.
RUNTIME_ENV = {"FUNCTION_SOURCE", "FUNCTION_TARGET", "WORKERS", "THREADS"}
CREDENTIALS_IN_URL = re.compile(r"://[^/@\s]+:[^/@\s]+@")
SECRET_NAME = re.compile(r"(SECRET|PASSWORD|PASSWD|API_KEY|PRIVATE_KEY|_TOKEN)$", re.I)


@dataclass(frozen=True)
class Context:
    bundle: Bundle
    root: Path

    def configmap(self, name: str) -> dict[str, str]:
        doc = self.bundle.find("ConfigMap", name)
        data = get(doc.body, "data", {}) if doc else {}
        return {str(k): str(v) for k, v in (data or {}).items()}

    def scratch_dir(self) -> str | None:
        """The image's TMPDIR (Dockerfile ``ENV``): where a writable volume must be mounted."""
        dockerfile = self.root / "Dockerfile"
        text = dockerfile.read_text(encoding="utf-8") if dockerfile.is_file() else ""
        match = re.search(r"\bTMPDIR=(\S+)", text)
        return match.group(1) if match else None


Rule = Callable[[Context], Iterator[Problem]]


def functions_and_services(ctx: Context) -> Iterator[Problem]:
    """One Service per function in functions/, and no Service without one."""
    catalog = by_name()
    on_disk = {p.parent.name for p in (ctx.root / "functions").glob("*/main.py")}
    seen = set()
    for svc in services(ctx.bundle):
        seen.add(svc.name)
        if svc.name not in catalog or svc.name not in on_disk:
            yield problem(svc.doc, "metadata.name", f"no function {svc.name} in functions/")
        source = svc.literal("FUNCTION_SOURCE")
        if source != f"/app/functions/{svc.name}/main.py":
            yield problem(
                svc.doc,
                f"{CONTAINER}.env[FUNCTION_SOURCE]",
                f"must be /app/functions/{svc.name}/main.py (the image's path), got {source!r}",
            )
    for name in sorted((set(catalog) | on_disk) - seen):
        yield Problem(ctx.bundle.name, "(bundle)", "Service", f"function {name} has no Service")


def settings_are_set(ctx: Context) -> Iterator[Problem]:
    """Every setting a function uses is set; nothing is set that no setting reads."""
    known = {name for spec in specs() for name in spec.names} | RUNTIME_ENV
    for svc in services(ctx.bundle):
        function = by_name().get(svc.name)
        if function is None:
            continue
        for spec in specs():
            if spec.group in function.uses and not spec.optional and spec.env not in svc.env:
                yield problem(
                    svc.doc,
                    f"{CONTAINER}.env",
                    f"{spec.env} is not set, and {svc.name} uses it ({spec.group})",
                )
        for name, value in svc.env.items():
            if name not in known and value.kind != "configmap":
                yield problem(svc.doc, value.field, f"{name}: no setting reads it")
    doc = ctx.bundle.find("ConfigMap", SETTINGS_CONFIGMAP)
    if doc is None:
        yield Problem(ctx.bundle.name, "(bundle)", "ConfigMap", f"no {SETTINGS_CONFIGMAP}")
        return
    for key in ctx.configmap(SETTINGS_CONFIGMAP):
        if key not in known:
            yield problem(doc, f"data.{key}", "no setting reads it (shared/settings.py)")


def secrets_stay_secret(ctx: Context) -> Iterator[Problem]:
    """Secret settings come from a Secret, only to functions that use them; no literal secret."""
    secret_specs = {spec.env: spec for spec in specs() if spec.secret}
    for svc in services(ctx.bundle):
        function = by_name().get(svc.name)
        for name, value in svc.env.items():
            spec = secret_specs.get(name)
            if spec and value.kind != "secret":
                yield problem(svc.doc, value.field, f"{name} is secret: set it from a secretKeyRef")
            if spec and function and spec.group not in function.uses:
                yield problem(
                    svc.doc,
                    value.field,
                    f"{name} given to {svc.name}, which does not use {spec.group}",
                )
            if value.kind == "value" and _looks_secret(name, value.value or ""):
                yield problem(svc.doc, value.field, f"{name}: a literal secret")
    for doc in ctx.bundle.of_kind("ConfigMap"):
        for key, text in (get(doc.body, "data", {}) or {}).items():
            if key in secret_specs or _looks_secret(str(key), str(text)):
                yield problem(doc, f"data.{key}", "a secret in a ConfigMap: use a Secret")


def _looks_secret(name: str, value: str) -> bool:
    return bool(CREDENTIALS_IN_URL.search(value)) or bool(SECRET_NAME.search(name) and value)


def concurrency_is_workers_times_threads(ctx: Context) -> Iterator[Problem]:
    for svc in services(ctx.bundle):
        numbers = {}
        for name in ("WORKERS", "THREADS"):
            raw = svc.literal(name)
            if raw is None or not raw.isdigit() or int(raw) < 1:
                yield problem(svc.doc, f"{CONTAINER}.env[{name}]", "must be set to a number ≥ 1")
            else:
                numbers[name] = int(raw)
        if len(numbers) < 2:
            continue
        product = numbers["WORKERS"] * numbers["THREADS"]
        if svc.spec.get("containerConcurrency") != product:
            yield problem(
                svc.doc,
                "spec.template.spec.containerConcurrency",
                f"{svc.spec.get('containerConcurrency')} ≠ WORKERS x THREADS = "
                f"{numbers['WORKERS']} x {numbers['THREADS']} = {product}",
            )


def deadlines(ctx: Context) -> Iterator[Problem]:
    """A webhook answers within its platform's deadline and never waits on Kafka longer than
    Knative lets the request run (else Knative's 504 hides the 503 the sender should get)."""
    for svc in services(ctx.bundle):
        function = by_name().get(svc.name)
        if function is None:
            continue
        timeout = svc.spec.get("timeoutSeconds")
        field = "spec.template.spec.timeoutSeconds"
        if not isinstance(timeout, int):
            yield problem(svc.doc, field, "must be set (seconds)")
            continue
        if function.ack_deadline_s is not None and timeout >= function.ack_deadline_s:
            yield problem(
                svc.doc,
                field,
                f"{timeout} s is not under the platform's {function.ack_deadline_s:g} s",
            )
        ack = svc.literal("KAFKA_ACK_TIMEOUT_S")
        if "kafka" in function.uses and ack is not None and _float(ack) >= timeout:
            yield problem(svc.doc, field, f"{timeout} s is not above KAFKA_ACK_TIMEOUT_S = {ack} s")


def _float(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        return float("inf")


def probes(ctx: Context) -> Iterator[Problem]:
    for svc in services(ctx.bundle):
        for probe, path in (("readinessProbe", HEALTH_PATH), ("livenessProbe", LIVENESS_PATH)):
            field = f"{CONTAINER}.{probe}.httpGet.path"
            found = get(svc.container, f"{probe}.httpGet.path")
            if found != path:
                why = "dependencies" if probe == "readinessProbe" else "no dependencies"
                yield problem(svc.doc, field, f"must be {path} ({why}), got {found!r}")


def scaling(ctx: Context) -> Iterator[Problem]:
    """Scaling bounds are chosen, not defaulted; event handlers scale to zero. (Knative's own
    rules on the values are in :mod:`shared.deploy.knative`.)"""
    for svc in services(ctx.bundle):
        for key in ("min-scale", "max-scale", "initial-scale", "target", "metric"):
            if svc.scaling(key) is None:
                field = f"spec.template.metadata.annotations.autoscaling.knative.dev/{key}"
                yield problem(svc.doc, field, "must be set explicitly")
        function = by_name().get(svc.name)
        if function and not function.public and svc.scaling("min-scale") not in ("0", None):
            yield problem(
                svc.doc,
                "spec.template.metadata.annotations.autoscaling.knative.dev/min-scale",
                "event handlers scale to zero (the KafkaSource waits for a cold start)",
            )


def visibility(ctx: Context) -> Iterator[Problem]:
    """Event handlers are cluster-local and behind a NetworkPolicy; webhooks are public."""
    policies = [
        get(doc.body, "spec.podSelector.matchLabels", {}) or {}
        for doc in ctx.bundle.of_kind("NetworkPolicy")
    ]
    for svc in services(ctx.bundle):
        function = by_name().get(svc.name)
        if function is None:
            continue
        labels = get(svc.doc.body, "metadata.labels", {}) or {}
        local = labels.get("networking.knative.dev/visibility") == "cluster-local"
        field = "metadata.labels.networking.knative.dev/visibility"
        if not function.public and not local:
            yield problem(svc.doc, field, "an event handler must be cluster-local")
        if function.public and local:
            yield problem(svc.doc, field, "a public webhook cannot be cluster-local")
        if not function.public and not any(
            selector and all(svc.template_labels.get(k) == v for k, v in selector.items())
            for selector in policies
        ):
            yield problem(
                svc.doc,
                "spec.template.metadata.labels",
                "no NetworkPolicy selects this event handler's pods",
            )


RULES: tuple[Rule, ...] = (
    functions_and_services,
    settings_are_set,
    secrets_stay_secret,
    concurrency_is_workers_times_threads,
    deadlines,
    probes,
    scaling,
    visibility,
)


def check(ctx: Context) -> Iterator[Problem]:
    from shared.deploy import workloads  # the rules on containers, shared with the Jobs

    for rule in (*RULES, *workloads.RULES):
        yield from rule(ctx)
