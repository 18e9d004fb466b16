"""``<state dir>/endpoints.json``: what is where, the dev tenant's secrets, a ready-made curl.

Scripts and the end-to-end tests read it instead of parsing the printed table, so everything a
developer could need to reach a piece of the stack (URL, pid, log) is in it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from shared.channels.registry import specs
from shared.devstack.dependencies import Dependency
from shared.devstack.dispatcher import DispatcherProcess
from shared.devstack.functions import FunctionProcess
from shared.devstack.prometheus import INSTALL_HINT, PrometheusProcess
from shared.devstack.sandbox import api_bases

# endpoints.json key → (dependency name, the key its address goes under)
SERVERS = {
    "kafka": ("kafka", "brokers"),
    "mongodb": ("mongodb", "uri"),
    "redis": ("redis", "url"),
    "postgres": ("postgres", "url"),
    "mcp_engine": ("mcp-engine", "address"),
    "security_hub": ("security-hub", "address"),
}


def server(dependency: Dependency, key: str) -> dict[str, Any]:
    entry: dict[str, Any] = {key: dependency.url, "embedded": dependency.embedded}
    entry["note"] = dependency.note
    if dependency.server is not None:
        entry["pid"] = dependency.server.proc.pid
        entry["log"] = str(dependency.server.log_path)
    return entry


def sandbox(dependency: Dependency) -> dict[str, Any]:
    url = dependency.url
    entry: dict[str, Any] = {
        "url": url,
        "calls_url": url + "/calls",  # GET: every call recorded; DELETE: forget them
        "fail_url": url + "/fail",  # POST {"channel", "status", "times"}: the next calls fail
        "api_bases": api_bases(url),
        "note": dependency.note,
    }
    if dependency.server is not None:
        entry["pid"] = dependency.server.proc.pid
        entry["log"] = str(dependency.server.log_path)
    return entry


def prometheus(process: PrometheusProcess | None) -> dict[str, Any]:
    """Where the local Prometheus is, or how to get one (it is optional)."""
    if process is None:
        return {"url": None, "note": f"not installed: {INSTALL_HINT}"}
    return {
        "url": process.url,
        "targets_url": process.url + "/targets",
        "pid": process.server.proc.pid,
        "log": str(process.server.log_path),
        "config": str(process.config),
    }


def dispatcher(process: DispatcherProcess) -> dict[str, Any]:
    return {
        "metrics_url": process.metrics_url,
        "pid": process.pid,
        "log": str(process.server.log_path),
        "manifests": str(process.manifests),
        "sinks": process.sinks,
        "dead_letter_topics": process.dead_letter_topics,
    }


def document(
    *,
    state_dir: Path,
    functions: Sequence[FunctionProcess],
    dependencies: Mapping[str, Dependency],
    dispatcher_process: DispatcherProcess,
    topics: Mapping[str, str],
    tenants_file: Path,
    tenant: dict[str, Any],
    prometheus_process: PrometheusProcess | None = None,
    api: dict[str, Any] | None = None,
) -> dict[str, Any]:
    urls = {f.name: f.url for f in functions}
    api = api or {}
    tenant_entry = {**tenant_endpoints(tenant, urls), "tokens": api.get("tokens", {})}
    return {
        "state_dir": str(state_dir),
        "stack_pid": os.getpid(),
        "functions": {
            f.name: {"url": f.url, "health": f.health_url, "pid": f.pid, "log": str(f.log_path)}
            for f in functions
        },
        **{
            key: server(dependencies[name], address)
            for key, (name, address) in SERVERS.items()
            if name in dependencies
        },
        "sandbox": sandbox(dependencies["sandbox"]),
        "dispatcher": dispatcher(dispatcher_process),
        "prometheus": prometheus(prometheus_process),
        "topics": dict(topics),
        "tenants_file": str(tenants_file),
        "tenant": tenant_entry,
        "other_tenant": api.get("other_tenant", {}),
        "conversations_api": {k: v for k, v in api.items() if k.endswith("url")},
        "samples": samples(state_dir, tenant, urls),
    }


def samples(state_dir: Path, tenant: dict[str, Any], urls: Mapping[str, str]) -> dict[str, str]:
    """A signed WhatsApp message to try the stack with (WhatsApp is the showcase channel)."""
    from shared.channels.whatsapp import SPEC as WHATSAPP
    from shared.channels.whatsapp import dev as whatsapp_dev

    url = urls.get(WHATSAPP.function)
    if url is None or not tenant.get(WHATSAPP.name):
        return {}
    account = tenant[WHATSAPP.name][0]
    body_file = state_dir / "sample-whatsapp.json"
    body_file.write_bytes(whatsapp_dev.sample(account["phone_number_id"]))
    return {
        "whatsapp_curl": whatsapp_dev.curl(url + "/", account["app_secret"], body_file),
        "whatsapp_body": str(body_file),
    }


def tenant_endpoints(tenant: dict[str, Any], urls: Mapping[str, str]) -> dict[str, Any]:
    """The dev tenant's id and, per channel, what to reach it with (its ``SPEC.dev``)."""
    entry: dict[str, Any] = {"id": tenant["id"]}
    for spec in specs():
        accounts = tenant.get(spec.name) or []
        if accounts:
            entry[spec.name] = spec.dev.endpoints(accounts[0], urls.get(spec.function))
    return entry


def write_private(path: Path, text: str) -> None:
    """Atomically (readers never see half a file), readable by the owner only (secrets)."""
    temporary = path.with_suffix(".tmp")
    temporary.touch(mode=0o600, exist_ok=True)
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)
