"""``python -m shared.kafkasource``: deliver Kafka records to the local functions.

    python -m shared.kafkasource --manifests kafka-sources --sinks-from .devstack/endpoints.json
    python -m shared.kafkasource --sink message-processor=http://127.0.0.1:8085 --brokers HOST:PORT
    python -m shared.kafkasource --check      # validate the manifests and print what they say

``--metrics-port`` serves its metrics (deliveries, retries, dead letters, lag per source) for
Prometheus. ``--hold-until FILE``: the consumers join their groups at once, but nothing is
delivered before FILE exists (the local stack starts the dispatcher beside the functions and
creates the file once they are all healthy: the ~3 s group join overlaps their start).

Brokers come from ``--brokers``, else ``KAFKA_BROKERS`` (the manifests' ``bootstrapServers``
name the cluster's). Sink URLs come from ``--sinks-from`` (the local stack's endpoints.json,
whose ``functions`` map names to ``{"url": …}``, or a plain ``{"name": "url"}`` JSON object)
and ``--sink NAME=URL`` (wins). SIGINT/SIGTERM stop it after committing what was delivered.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from shared import logs
from shared.kafkasource import manifests
from shared.kafkasource.runner import Dispatcher
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
log = logging.getLogger("shared.kafkasource")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = Settings.from_env()
    logs.configure("kafkasource-dispatcher", settings.log_level)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # our "delivered" line says it all
    try:
        sources = manifests.load(args.manifests)
    except manifests.ManifestError as exc:
        print(f"kafkasource: {exc}", file=sys.stderr)
        return 2
    if args.check:
        for s in sources:
            d = s.delivery
            print(
                f"{s.name}: {', '.join(s.topics)} → service/{s.sink_service} "
                f"(group {s.consumer_group}; retry {d.retry} {d.backoff_policy} "
                f"{d.backoff_delay_s:g}s; dead letters → {d.dead_letter_topic or 'dropped'})"
            )
        return 0
    strays = [t for s in sources for t in s.topics if not t.startswith(settings.topic_prefix + ".")]
    if strays:
        log.warning(
            "TOPIC_PREFIX differs from the manifests' topics: the functions write elsewhere",
            extra={"topic_prefix": settings.topic_prefix, "topics": strays},
        )
    sink_urls = {**_sinks_file(args.sinks_from), **dict(args.sink)}
    brokers = [b.strip() for b in args.brokers.split(",")] if args.brokers else None
    minter = None
    if args.oidc_key is not None:
        from shared.kafkasource.oidc import TokenMinter

        minter = TokenMinter.from_file(args.oidc_key, issuer=args.oidc_issuer)
    gate = None if args.hold_until is None else threading.Event()
    dispatcher = Dispatcher(
        sources, sink_urls, brokers or settings.kafka_brokers, minter=minter, gate=gate
    )
    if not dispatcher.sources:
        print(
            "kafkasource: no KafkaSource has a sink URL (--sink or --sinks-from)", file=sys.stderr
        )
        return 2
    if args.metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(args.metrics_port, addr=args.metrics_host)
        log.info("metrics served", extra={"port": args.metrics_port, "path": "/metrics"})
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: dispatcher.stopping.set())
    dispatcher.start()
    if gate is not None:
        watch = (args.hold_until, gate, dispatcher.stopping)
        threading.Thread(target=_open_when_present, args=watch, daemon=True).start()
    while not dispatcher.stopping.wait(0.5):  # a timed wait lets the signal handlers run
        pass
    dispatcher.stop()
    return 1 if dispatcher.failed else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m shared.kafkasource", description=__doc__)
    parser.add_argument("--manifests", type=Path, default=ROOT / "kafka-sources")
    parser.add_argument("--sinks-from", type=Path, help="JSON file of sink URLs")
    parser.add_argument("--sink", action="append", default=[], type=_sink_arg, metavar="NAME=URL")
    parser.add_argument("--brokers", help="host:port,… (default: KAFKA_BROKERS)")
    parser.add_argument("--check", action="store_true", help="validate and print the manifests")
    parser.add_argument(
        "--metrics-port", type=int, help="serve Prometheus metrics on this port (default: none)"
    )
    parser.add_argument("--metrics-host", default="127.0.0.1", help="and this address")
    parser.add_argument(
        "--oidc-key",
        type=Path,
        help="sign a sender-identity token per sink with this EC P-256 key (PEM), as Knative "
        "Eventing does with authentication-oidc on; its file name (stem) is the key id",
    )
    parser.add_argument("--oidc-issuer", default="local-eventing", help="the tokens' iss")
    parser.add_argument(
        "--hold-until",
        type=Path,
        metavar="FILE",
        help="deliver nothing before FILE exists (the consumers join their groups meanwhile)",
    )
    return parser


def _open_when_present(path: Path, gate: threading.Event, stopping: threading.Event) -> None:
    log.info("deliveries held", extra={"until": str(path)})
    while not path.exists():
        if stopping.wait(0.05):
            return
    gate.set()
    log.info("deliveries released", extra={"file": str(path)})


def _sink_arg(text: str) -> tuple[str, str]:
    name, _, url = text.partition("=")
    if not name or not url.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"expected NAME=http://HOST:PORT, got {text!r}")
    return name, url


def _sinks_file(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    document: Any = json.loads(path.read_text(encoding="utf-8"))
    entries = document.get("functions", document) if isinstance(document, dict) else {}
    return {
        name: entry["url"] if isinstance(entry, dict) else str(entry)
        for name, entry in entries.items()
        if isinstance(entry, str) or (isinstance(entry, dict) and "url" in entry)
    }


if __name__ == "__main__":
    sys.exit(main())
