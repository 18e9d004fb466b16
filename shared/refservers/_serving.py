"""What both reference servers share: a gRPC server, its port, and a graceful stop on signal."""

from __future__ import annotations

import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from types import FrameType
from typing import Any

import grpc

GRACE_S = 2.0


def new_server(name: str, max_workers: int = 8) -> grpc.Server:
    # SO_REUSEPORT is on by default in gRPC: two servers could then share a port silently.
    # Off, a taken port is an error at startup instead.
    pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=name)
    return grpc.server(pool, options=[("grpc.so_reuseport", 0)], interceptors=[_TraceLog(name)])


class _TraceLog(grpc.ServerInterceptor):
    """One line per call with the caller's ``traceparent`` (call metadata): the server's part
    of a message's path, found in its log by the trace id like every function's lines."""

    def __init__(self, name: str) -> None:
        self.name = name

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        metadata = dict(details.invocation_metadata or ())
        traceparent = metadata.get("traceparent", "-")
        print(f"{self.name} call {details.method} traceparent={traceparent}", flush=True)
        return continuation(details)


def address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def bind(server: grpc.Server, host: str, port: int) -> int:
    """Listen on ``host:port`` (plaintext); the port bound (``port`` 0 picks a free one)."""
    bound = server.add_insecure_port(address(host, port))
    if not bound:  # older grpcio returns 0 instead of raising
        raise RuntimeError(f"could not bind {address(host, port)}")
    return int(bound)


def run_until_signalled(server: grpc.Server, name: str, address: str) -> None:
    """Block until SIGINT/SIGTERM, then let in-flight calls finish for up to GRACE_S."""
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    print(f"{name} listening on {address}", flush=True)
    stopping.wait()
    server.stop(GRACE_S).wait()
    print(f"{name} stopped", file=sys.stderr, flush=True)
