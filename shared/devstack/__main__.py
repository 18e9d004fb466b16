"""``python -m shared.devstack``: the whole system on this machine, until Ctrl-C.

Exit codes: 0 after Ctrl-C/SIGTERM, 1 when the stack could not start or a server it depends
on died. A function that dies while running is reported loudly and the others keep running,
so one broken function does not take down what the developer is trying in another.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from shared.devstack import report
from shared.devstack.pids import StackRunning
from shared.devstack.replies import ReplyWatcher
from shared.devstack.stack import ROOT, Options, Stack
from shared.devstack.watch import Watcher


class StopRequested(Exception):
    pass


def _request_stop(signum: int, frame: FrameType | None) -> None:
    raise StopRequested(signal.Signals(signum).name)


def say(line: str) -> None:
    with contextlib.suppress(OSError):  # a closed pipe (`| head`) must not stop the stop
        print(line, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m shared.devstack",
        description="Run Kafka, MongoDB, Redis, the MCP engine and Security Hub reference "
        "servers, a channel API sandbox, every function and the KafkaSource dispatcher locally; "
        "Ctrl-C stops it all. Servers given by KAFKA_BROKERS, MONGODB_URI, REDIS_URL, "
        "MCP_ENGINE_URL or SECURITY_HUB_URL are used instead of embedded ones.",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=ROOT / ".devstack",
        help="state directory: logs, tenants.json, endpoints.json, MongoDB data "
        "(default: .devstack at the repository root)",
    )
    parser.add_argument(
        "--base-port",
        type=int,
        default=8081,
        help="first function port; functions get consecutive ports in name order, a taken "
        "port is replaced by a free one; 0 = free ports only (default: 8081)",
    )
    parser.add_argument(
        "--keep-data",
        action="store_true",
        help="keep the embedded MongoDB's data of earlier runs (default: a fresh database every "
        "run, because the embedded server slows down as its data grows; a warning says when "
        "kept data got that large)",
    )
    parser.add_argument(
        "--no-watch",
        action="store_true",
        help="do not print the events arriving on the topics nor the replies the sandbox records",
    )
    parser.add_argument(
        "--ready-file",
        type=Path,
        help="write the endpoints JSON here once every function is healthy",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    options = Options(state_dir=args.dir, base_port=args.base_port, keep_data=args.keep_data)
    stack = Stack(options, os.environ, say)
    try:
        stack.claim()
    except StackRunning as exc:
        print(f"!!! {exc}", file=sys.stderr)
        return 1
    watcher: Watcher | None = None
    replies: ReplyWatcher | None = None
    signal.signal(signal.SIGINT, _request_stop)
    signal.signal(signal.SIGTERM, _request_stop)
    code = 0
    try:
        endpoints = stack.start()
        say("\n" + report.summary(endpoints) + "\n")
        if not args.no_watch:
            topics = [stack.topics[t] for t in ("inbound", "outbound", "status")]
            watcher = Watcher(
                endpoints["kafka"]["brokers"],
                topics,
                stack.settings.topic_prefix,
                say,
                from_beginning=bool(endpoints["kafka"]["embedded"]),
            )
            watcher.start()
            replies = ReplyWatcher(endpoints["sandbox"]["calls_url"], say)
            replies.start()
            say(
                "Events on "
                + ", ".join(topics)
                + " and the replies the channel sandbox receives (Ctrl-C stops the stack):"
            )
        if args.ready_file:
            args.ready_file.write_text(stack.endpoints_file.read_text(encoding="utf-8"))
        while (fatal := stack.check()) is None:
            time.sleep(0.5)  # a signal's handler raises StopRequested out of the sleep
        say(f"\n!!! {fatal}: stopping the stack")
        code = 1
    except StopRequested as stop:
        say(f"\n{stop}: stopping the stack …")
    except Exception as exc:
        print(f"\n!!! the stack failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the stop
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if watcher is not None:
            watcher.stop()
        if replies is not None:
            replies.stop()
        stack.stop()
        if args.ready_file:
            args.ready_file.unlink(missing_ok=True)
        say("stack stopped" + (" (with errors)" if code else ""))
    return code


if __name__ == "__main__":
    sys.exit(main())
