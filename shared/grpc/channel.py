"""gRPC channels to the MCP engine and the Security Hub: one per target per process, made lazily.

A channel is created on the first call that needs it (import time is cold-start time) and then
shared, because a channel multiplexes every call over one HTTP/2 connection and reconnects by
itself. Retries and reconnection follow the gRPC service-config and channel-argument specs:

- https://github.com/grpc/grpc/blob/master/doc/service_config.md
- https://github.com/grpc/proposal/blob/master/A6-client-retries.md (retryPolicy)
- https://github.com/grpc/grpc/blob/master/doc/connection-backoff.md

The caller's deadline (``Settings.grpc_deadline_s``) bounds the whole call, retries included.
"""

from __future__ import annotations

import json
import threading

import grpc

from shared.dataclass import dataclass
from shared.errors import BadRequest, ChatServiceError, DependencyUnavailable

# Only UNAVAILABLE is retried by the channel: the request never reached a handler, so a retry
# cannot do the work twice. Three attempts with 0.1 s → 0.2 s (±jitter) between them.
RETRY_ATTEMPTS = 3
SERVICE_CONFIG = {
    "methodConfig": [
        {
            "name": [{}],  # every method of every service on the channel
            "retryPolicy": {
                "maxAttempts": RETRY_ATTEMPTS,
                "initialBackoff": "0.1s",
                "maxBackoff": "1s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }
    ]
}

CHANNEL_OPTIONS: tuple[tuple[str, int | str], ...] = (
    ("grpc.enable_retries", 1),
    ("grpc.service_config", json.dumps(SERVICE_CONFIG)),
    # A restarted server is found again within about a second, not after the default
    # exponential backoff of up to two minutes.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    # Idle connections behind load balancers are dropped silently; pings notice it.
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
)


@dataclass(frozen=True)
class Target:
    address: str  # host:port, as gRPC's name resolver takes it
    tls: bool


def parse_target(url: str) -> Target:
    """``host:port``, ``grpc://host:port`` (plaintext) or ``grpcs://host:port`` (TLS)."""
    url = url.strip()
    tls = False
    for scheme, scheme_tls in (("grpcs://", True), ("grpc://", False)):
        if url.startswith(scheme):
            url, tls = url[len(scheme) :], scheme_tls
            break
    address = url.rstrip("/")
    if not address or "/" in address:
        raise ValueError(
            f"gRPC target must be host:port, grpc://host:port or grpcs://host:port: {url!r}"
        )
    return Target(address, tls)


_channels: dict[tuple[Target, bytes | None, str], grpc.Channel] = {}
_lock = threading.Lock()


def get_channel(
    url: str, *, dependency: str, root_certificates: bytes | None = None
) -> grpc.Channel:
    """The process's channel to ``url``; TLS uses ``root_certificates`` or the system roots.

    Every call on it is timed (``chat_dependency_call_seconds`` by ``dependency``, method and
    gRPC code) and carries the current ``traceparent`` in its metadata.
    """
    target = parse_target(url)
    key = (target, root_certificates if target.tls else None, dependency)
    with _lock:
        channel = _channels.get(key)
        if channel is None:
            from shared.grpc.observed import Observed

            channel = grpc.intercept_channel(
                _new_channel(target, root_certificates), Observed(dependency)
            )
            _channels[key] = channel
        return channel


def _new_channel(target: Target, root_certificates: bytes | None) -> grpc.Channel:
    if target.tls:
        credentials = grpc.ssl_channel_credentials(root_certificates=root_certificates)
        return grpc.secure_channel(target.address, credentials, options=CHANNEL_OPTIONS)
    return grpc.insecure_channel(target.address, options=CHANNEL_OPTIONS)


def close_channels() -> None:
    """Close every channel (process shutdown, tests); the next call makes new ones."""
    with _lock:
        channels = list(_channels.values())
        _channels.clear()
    for channel in channels:
        channel.close()


def rpc_error(exc: grpc.RpcError, dependency: str) -> ChatServiceError:
    """The service's error for a failed call (the one place gRPC codes become our errors).

    INVALID_ARGUMENT means this request can never succeed (400, poison). Every other code is
    the dependency failing, not the message: 503, so the processor retries or falls back.
    """
    code = exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNKNOWN
    details = (exc.details() if isinstance(exc, grpc.Call) else None) or str(exc)
    message = f"{dependency}: {code.name}: {details}"
    if code is grpc.StatusCode.INVALID_ARGUMENT:
        return BadRequest(message)
    return DependencyUnavailable(message, dependency=dependency)
