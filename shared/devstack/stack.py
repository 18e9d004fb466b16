"""The whole system on one machine: servers, topics, the dev tenant, every function, the
KafkaSource dispatcher that wires them together, and Prometheus scraping them all.

:meth:`Stack.start` brings it up in dependency order and writes ``<dir>/endpoints.json``
(what is where, the dev tenant's secrets, a ready-made signed curl); :meth:`Stack.stop` stops
every process it started, by pid: the dispatcher first (no new deliveries), then the functions
(so none sees its servers vanish mid-request), then the servers in reverse start order.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from shared.channels.webchat import SPEC as WEBCHAT
from shared.dataclass import dataclass
from shared.devstack import (
    apitokens,
    dependencies,
    devdata,
    devtenant,
    dispatcher,
    endpoints,
    functions,
    oidc,
    postgres,
    prometheus,
    servers,
)
from shared.devstack.dependencies import Dependency
from shared.devstack.dispatcher import DispatcherProcess
from shared.devstack.functions import FunctionProcess
from shared.devstack.pids import PidFiles
from shared.devstack.sandbox import api_bases_setting
from shared.handlers import MODULES
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DATA_CHECK_INTERVAL_S = 300.0  # with --keep-data: how often the MongoDB data is counted


@dataclass(frozen=True)
class Options:
    state_dir: Path
    base_port: int = 8081
    root: Path = ROOT
    health_timeout_s: float = 60.0
    stop_timeout_s: float = 10.0
    keep_data: bool = False  # the embedded MongoDB's data of earlier runs (else a fresh one)
    prometheus: bool = True  # when installed (the benchmark leaves it out: it scrapes)


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
        self.dispatcher: DispatcherProcess | None = None
        self.prometheus: prometheus.PrometheusProcess | None = None
        self.issuer: oidc.Issuer | None = None
        self._reported_dead: set[str] = set()
        self._data_checked_at: float | None = None  # monotonic; None: not to be checked

    @property
    def topics(self) -> dict[str, str]:
        s = self.settings
        return {
            "inbound": s.inbound_topic,
            "overflow": s.overflow_topic,
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
        root, log_dir = self.options.root, self.log_dir
        standard_ports = self.options.base_port != 0
        self.say("starting Kafka, MongoDB, Redis and PostgreSQL …")
        self._add(dependencies.kafka(self.env, log_dir, standard_ports))
        keep = self.options.keep_data
        self._add(dependencies.mongodb(self.env, self.state_dir, log_dir, standard_ports, keep))
        if keep and self.dependency("mongodb").embedded:
            # Counted at the first check(), after the endpoints table: where a warning is seen.
            self._data_checked_at = -DATA_CHECK_INTERVAL_S
        self._add(dependencies.redis(self.env, log_dir))
        self._add(dependencies.postgres(self.env, self.state_dir, log_dir, standard_ports))
        dependencies.ensure_topics(self.dependency("kafka").url, list(self.topics.values()))
        self.say("starting the MCP engine, Security Hub and the channel sandbox …")
        self._add(dependencies.mcp_engine(self.env, root, log_dir, standard_ports))
        self._add(dependencies.security_hub(self.env, root, log_dir, standard_ports))
        self._add(dependencies.sandbox(root, log_dir, standard_ports))

        names = functions.discover(root / "functions")
        ports = functions.assign_ports(names, self.options.base_port)
        tenants_file = self.state_dir / "tenants.json"
        urls = {name: f"http://{functions.HOST}:{port}" for name, port in ports.items()}
        tenant = devtenant.write_tenants_file(tenants_file, urls)

        self.say(f"starting {len(names)} functions: {', '.join(names)} …")
        env = self._function_env(tenants_file)
        # Sender identity: every event handler verifies the dispatcher's tokens (OIDC).
        self.issuer = oidc.start(self.state_dir)
        handlers = set(MODULES)
        for name in names:
            own = self.issuer.handler_env(name) if name in handlers else {}
            if name == WEBCHAT.function:  # open widgets each hold a thread (their live stream)
                own["THREADS"] = "16"
            function = functions.start(
                name, ports[name], root, {**env, **own}, log_dir, self.state_dir / "metrics"
            )
            self.functions.append(function)
            self.pids.record(name, function.proc)

        # Beside the functions, so that its consumers' group joins (~3 s on the local broker)
        # overlap their start; it delivers nothing before they are all healthy (a delivery to
        # a function that is still importing would be a failed attempt).
        self.say("starting the KafkaSource dispatcher (kafka-sources/) …")
        healthy = self.state_dir / "functions-healthy"
        healthy.unlink(missing_ok=True)
        self.dispatcher = dispatcher.start(
            root,
            self.dependency("kafka").url,
            {f.name: f.url for f in self.functions},
            env,
            log_dir / "kafkasource-dispatcher.log",
            metrics_port=servers.free_port(),
            extra_args=[*self.issuer.dispatcher_args(), f"--hold-until={healthy}"],
        )
        self.pids.record("kafkasource-dispatcher", self.dispatcher.server.proc)
        functions.wait_healthy(self.functions, self.options.health_timeout_s)
        healthy.touch()
        if self.options.prometheus:
            self._start_prometheus(standard_ports)
        prefix = self.settings.topic_prefix
        elsewhere = [t for t in self.dispatcher.topics if not t.startswith(prefix + ".")]
        if elsewhere:  # the manifests name the production topics; nothing would be delivered
            self.say(
                f"!!! TOPIC_PREFIX is {prefix!r} but kafka-sources/ reads {', '.join(elsewhere)}:"
                " the handlers will not see what the webhooks publish"
            )

        document = endpoints.document(
            state_dir=self.state_dir,
            functions=self.functions,
            dependencies={d.name: d for d in self.dependencies},
            dispatcher_process=self.dispatcher,
            topics=self.topics,
            tenants_file=tenants_file,
            tenant=tenant,
            prometheus_process=self.prometheus,
            api=self._api_endpoints(),
        )
        if self.issuer is not None:  # how to deliver to a handler as the dispatcher does
            document["eventing_oidc"] = {
                "jwks_url": self.issuer.jwks_url,
                "key_file": str(self.issuer.key_file),
                "issuer": oidc.ISSUER,
                "audience": "the handler's name",
            }
        endpoints.write_private(self.endpoints_file, json.dumps(document, indent=2) + "\n")
        return document

    def _api_endpoints(self) -> dict[str, Any]:
        """The conversations API's URL and ready-made tokens (dev tenant, and another one)."""
        from dataclasses import replace

        settings = replace(self.settings, api_jwt_secret=apitokens.secret(self.state_dir))
        url = next((f.url for f in self.functions if f.name == "conversations-api"), None)
        now = time.time()
        return {
            "url": url,
            "conversations_url": f"{url}/api/v2/chat/conversations" if url else None,
            "openapi_url": f"{url}/api/v2/openapi.json" if url else None,
            "tokens": apitokens.tokens(settings, devtenant.TENANT_ID, ("agent", "admin"), now),
            "other_tenant": {
                "id": apitokens.OTHER_TENANT,
                "tokens": apitokens.tokens(settings, apitokens.OTHER_TENANT, ("admin",), now),
            },
        }

    def _start_prometheus(self, standard_ports: bool) -> None:
        if prometheus.binary() is None:
            self.say(
                f"Prometheus is not installed ({prometheus.INSTALL_HINT}): "
                "going on without metrics scraping"
            )
            return
        self.say("starting Prometheus (monitoring/prometheus rules) …")
        if self.dispatcher is None:
            raise RuntimeError("Prometheus is started after the KafkaSource dispatcher")
        self.prometheus = prometheus.start(
            self.options.root,
            self.state_dir,
            {f.name: f"{functions.HOST}:{f.port}" for f in self.functions},
            self.dispatcher.metrics_url.removeprefix("http://").removesuffix("/metrics"),
            self.log_dir / "prometheus.log",
            standard_ports=standard_ports,
        )
        if self.prometheus is not None:
            self.pids.record("prometheus", self.prometheus.server.proc)

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
            POSTGRES_URL=self.dependency("postgres").url,
            ANALYTICS_HASH_KEY=postgres.hash_key(self.state_dir),
            MCP_ENGINE_URL=self.dependency("mcp-engine").url,
            SECURITY_HUB_URL=self.dependency("security-hub").url,
            # Replies go to the sandbox, never to the real platforms, whatever the shell says.
            **api_bases_setting(self.dependency("sandbox").url),
            TENANTS_FILE=str(tenants_file),
            API_JWT_SECRET=apitokens.secret(self.state_dir),
            TOPIC_PREFIX=self.settings.topic_prefix,
            WORKERS="1",
            THREADS="4",
            PYTHONPATH=os.pathsep.join(python_path),
            PYTHONUNBUFFERED="1",
        )
        return env

    def _check_data(self) -> None:
        """With ``--keep-data``: warn once when the embedded MongoDB grew past the size where
        it slows down (:mod:`.devdata`); a failed count is not worth a message."""
        self._data_checked_at = time.monotonic()
        try:
            size = devdata.measure(self.dependency("mongodb").url)
        except Exception:  # the server is checked for life elsewhere
            return
        warning = size.warning()
        if warning is not None:
            self.say(f"!!! {warning}")
            self._data_checked_at = None  # once is enough

    def check(self) -> str | None:
        """Report processes that died; a message when the stack cannot go on without one."""
        checked = self._data_checked_at
        if checked is not None and time.monotonic() - checked >= DATA_CHECK_INTERVAL_S:
            self._check_data()
        for function in self.functions:
            code = function.proc.poll()
            if code is not None:
                self._report_dead(
                    function.name,
                    f"function {function.name} (pid {function.pid}) exited with code {code}"
                    " — the rest keeps running",
                    function.log_path,
                )
        if self.prometheus is not None and not self.prometheus.server.running:
            self._report_dead(
                "prometheus",
                f"Prometheus (pid {self.prometheus.server.proc.pid}) exited — the rest keeps "
                "running, without metrics",
                self.prometheus.server.log_path,
            )
        if self.dispatcher is not None and not self.dispatcher.server.running:
            server = self.dispatcher.server
            self._report_dead(
                server.name,
                f"the KafkaSource dispatcher (pid {server.proc.pid}) exited with code "
                f"{server.proc.returncode} — no event reaches a handler until the stack restarts",
                server.log_path,
            )
        for dependency in self.dependencies:
            if dependency.server is None or dependency.server.running:
                continue
            proc = dependency.server.proc
            message = f"{dependency.name} (pid {proc.pid}) exited with code {proc.returncode}"
            if dependency.essential:
                return f"{message}; log: {dependency.server.log_path}"
            self._report_dead(
                dependency.name,
                f"{message} — the rest keeps running{_without(dependency.name)}",
                dependency.server.log_path,
            )
        return None

    def _report_dead(self, name: str, message: str, log_path: Path | None) -> None:
        if name in self._reported_dead:
            return
        self._reported_dead.add(name)
        tail = functions.log_tail(log_path) if log_path else ""
        self.say(f"!!! {message}; log: {log_path}" + (f"\n{tail}" if tail else ""))

    def stop(self) -> None:
        """The dispatcher, then the functions (all at once), then the servers in reverse."""
        if self.prometheus is not None:
            self.prometheus.server.stop(self.options.stop_timeout_s)
        if self.dispatcher is not None:
            self.dispatcher.server.stop(self.options.stop_timeout_s)
        deadline = time.monotonic() + self.options.stop_timeout_s
        for function in self.functions:
            function.send_stop()
        for function in self.functions:
            function.wait_stopped(deadline - time.monotonic())
        for dependency in reversed(self.dependencies):
            if dependency.server is not None:
                dependency.server.stop()
        if self.issuer is not None:
            self.issuer.stop()
        self.endpoints_file.unlink(missing_ok=True)
        self.pids.release()


def _without(name: str) -> str:
    """What a developer sees while an optional server is down."""
    return {
        "mcp-engine": " (the bot answers from its fallback rules, or retries if "
        "FALLBACK_ENABLED=false)",
        "security-hub": " (messages wait: the processor answers 503 and the dispatcher retries)",
        "sandbox": " (replies fail and are retried by the dispatcher)",
        "postgres": " (analytics-sink answers 503: its events wait in Kafka)",
    }.get(name, "")
