"""The whole system on one machine: servers, topics, the dev tenant and every function.

:meth:`Stack.start` brings it up in dependency order and writes ``<dir>/endpoints.json``
(what is where, the dev tenant's secrets, a ready-made signed curl); :meth:`Stack.stop` stops
every process it started, by pid, functions first so none sees its servers vanish mid-request.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.channels.webchat import MESSAGES_PATH, SESSIONS_PATH
from shared.devstack import dependencies, devtenant, functions
from shared.devstack.dependencies import Dependency
from shared.devstack.functions import FunctionProcess
from shared.devstack.pids import PidFiles
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Options:
    state_dir: Path
    base_port: int = 8081
    root: Path = ROOT
    health_timeout_s: float = 60.0
    stop_timeout_s: float = 10.0


class Stack:
    def __init__(self, options: Options, env: Mapping[str, str], say: Callable[[str], None]):
        self.options = options
        self.env = dict(env)
        self.settings = Settings.from_env(env)
        self.say = say
        self.state_dir = options.state_dir.resolve()
        self.log_dir = self.state_dir / "logs"
        self.endpoints_file = self.state_dir / "endpoints.json"
        self.pids = PidFiles(self.state_dir)
        self.dependencies: list[Dependency] = []
        self.functions: list[FunctionProcess] = []
        self._reported_dead: set[str] = set()

    @property
    def topics(self) -> dict[str, str]:
        s = self.settings
        return {
            "inbound": s.inbound_topic,
            "outbound": s.outbound_topic,
            "status": s.status_topic,
            "audit": s.audit_topic,
        }

    def dependency(self, name: str) -> Dependency:
        return next(d for d in self.dependencies if d.name == name)

    def claim(self) -> None:
        """Make this the state dir's stack; :class:`StackRunning` if another one runs there."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for note in self.pids.claim():
            self.say(note)
        self.endpoints_file.unlink(missing_ok=True)

    def start(self) -> dict[str, Any]:
        """After :meth:`claim`. On an error, :meth:`stop` stops what was started."""
        standard_ports = self.options.base_port != 0
        self.say("starting Kafka, MongoDB and Redis …")
        self._add(dependencies.kafka(self.env, self.log_dir, standard_ports))
        self._add(dependencies.mongodb(self.env, self.state_dir, self.log_dir, standard_ports))
        self._add(dependencies.redis(self.env, self.log_dir))
        dependencies.ensure_topics(self.dependency("kafka").url, list(self.topics.values()))

        names = functions.discover(self.options.root / "functions")
        ports = functions.assign_ports(names, self.options.base_port)
        tenants_file = self.state_dir / "tenants.json"
        tenant = devtenant.write_tenants_file(tenants_file, ports.get("webchat"))

        self.say(f"starting {len(names)} functions: {', '.join(names)} …")
        env = self._function_env(tenants_file)
        for name in names:
            function = functions.start(name, ports[name], self.options.root, env, self.log_dir)
            self.functions.append(function)
            self.pids.record(name, function.proc)
        functions.wait_healthy(self.functions, self.options.health_timeout_s)

        endpoints = self._endpoints(tenant, tenants_file)
        _write_private(self.endpoints_file, json.dumps(endpoints, indent=2) + "\n")
        return endpoints

    def _add(self, dependency: Dependency) -> None:
        self.dependencies.append(dependency)
        if dependency.server is not None:
            self.pids.record(dependency.name, dependency.server.proc)

    def _function_env(self, tenants_file: Path) -> dict[str, str]:
        env = {k: v for k, v in self.env.items() if k != "TENANTS_JSON"}  # it would win
        python_path = [str(self.options.root), *filter(None, [env.get("PYTHONPATH")])]
        env.update(
            KAFKA_BROKERS=self.dependency("kafka").url,
            MONGODB_URI=self.dependency("mongodb").url,
            REDIS_URL=self.dependency("redis").url,
            TENANTS_FILE=str(tenants_file),
            TOPIC_PREFIX=self.settings.topic_prefix,
            WORKERS="1",
            THREADS="4",
            PYTHONPATH=os.pathsep.join(python_path),
            PYTHONUNBUFFERED="1",
        )
        return env

    def _endpoints(self, tenant: dict[str, Any], tenants_file: Path) -> dict[str, Any]:
        urls = {f.name: f.url for f in self.functions}
        kafka, mongodb, redis = (self.dependency(n) for n in ("kafka", "mongodb", "redis"))

        def server(dependency: Dependency, key: str) -> dict[str, Any]:
            entry: dict[str, Any] = {key: dependency.url, "embedded": dependency.embedded}
            entry["note"] = dependency.note
            if dependency.server is not None:
                entry["pid"] = dependency.server.proc.pid
                entry["log"] = str(dependency.server.log_path)
            return entry

        return {
            "state_dir": str(self.state_dir),
            "stack_pid": os.getpid(),
            "functions": {
                f.name: {"url": f.url, "health": f.health_url, "pid": f.pid, "log": str(f.log_path)}
                for f in self.functions
            },
            "kafka": server(kafka, "brokers"),
            "mongodb": server(mongodb, "uri"),
            "redis": server(redis, "url"),
            "topics": self.topics,
            "tenants_file": str(tenants_file),
            "tenant": _tenant_endpoints(tenant, urls),
            "samples": self._samples(tenant, urls),
        }

    def _samples(self, tenant: dict[str, Any], urls: Mapping[str, str]) -> dict[str, str]:
        url = urls.get("whatsapp-webhook")
        if url is None:
            return {}
        account = tenant["whatsapp"][0]
        body_file = self.state_dir / "sample-whatsapp.json"
        body_file.write_bytes(devtenant.whatsapp_sample(account["phone_number_id"]))
        return {
            "whatsapp_curl": devtenant.whatsapp_curl(url + "/", account["app_secret"], body_file),
            "whatsapp_body": str(body_file),
        }

    def check(self) -> str | None:
        """Report processes that died; a message when the stack cannot go on without one."""
        for function in self.functions:
            code = function.proc.poll()
            if code is not None and function.name not in self._reported_dead:
                self._reported_dead.add(function.name)
                tail = functions.log_tail(function.log_path)
                self.say(
                    f"!!! function {function.name} (pid {function.pid}) exited with code {code}"
                    f" — the rest keeps running; log: {function.log_path}"
                    + (f"\n{tail}" if tail else "")
                )
        for dependency in self.dependencies:
            if dependency.server is not None and not dependency.server.running:
                return (
                    f"{dependency.name} (pid {dependency.server.proc.pid}) exited with code "
                    f"{dependency.server.proc.returncode}; log: {dependency.server.log_path}"
                )
        return None

    def stop(self) -> None:
        """Functions first (all at once), then the servers in reverse start order."""
        deadline = time.monotonic() + self.options.stop_timeout_s
        for function in self.functions:
            function.send_stop()
        for function in self.functions:
            function.wait_stopped(deadline - time.monotonic())
        for dependency in reversed(self.dependencies):
            if dependency.server is not None:
                dependency.server.stop()
        self.endpoints_file.unlink(missing_ok=True)
        self.pids.release()


def _tenant_endpoints(tenant: dict[str, Any], urls: Mapping[str, str]) -> dict[str, Any]:
    whatsapp, slack = tenant["whatsapp"][0], tenant["slack"][0]
    telegram, webchat = tenant["telegram"][0], tenant["webchat"][0]

    def url(function: str, path: str) -> str | None:
        return urls[function] + path if function in urls else None

    return {
        "id": tenant["id"],
        "whatsapp": {
            "phone_number_id": whatsapp["phone_number_id"],
            "app_secret": whatsapp["app_secret"],
            "verify_token": whatsapp["verify_token"],
            "webhook_url": url("whatsapp-webhook", "/"),
        },
        "slack": {
            "team_id": slack["team_id"],
            "signing_secret": slack["signing_secret"],
            "bot_user_id": slack.get("bot_user_id", ""),
            "events_url": url("slack-webhook", "/events"),
        },
        "telegram": {
            "bot_id": telegram["bot_id"],
            "secret_token": telegram["secret_token"],
            "webhook_url": url("telegram-webhook", f"/webhook/{telegram['bot_id']}"),
        },
        "webchat": {
            "site_key": webchat["site_key"],
            "allowed_origins": webchat.get("allowed_origins", []),
            "sessions_url": url("webchat", SESSIONS_PATH),
            "messages_url": url("webchat", MESSAGES_PATH),
        },
    }


def _write_private(path: Path, text: str) -> None:
    """Atomically (readers never see half a file), readable by the owner only (secrets)."""
    temporary = path.with_suffix(".tmp")
    temporary.touch(mode=0o600, exist_ok=True)
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)
