"""The HTTP call to a channel API, and what its answer means.

One ``httpx.Client`` per process, created on first send (import time is cold-start time, and
a connection pool must not be shared across a fork). Every answer ends one of three ways:

- **sent**: the provider's message id is returned (each channel's ``outbound.interpret`` reads
  it: WhatsApp ``messages[0].id``, Slack ``ts``, Telegram ``result.message_id``, …);
- **retry later**: :class:`RateLimited` for 429 and the platforms' rate-limit errors, with
  ``Retry-After`` (or Telegram's ``parameters.retry_after``) honoured;
  :class:`DependencyUnavailable` for 5xx, connect errors and timeouts;
- **never**: :class:`Undeliverable` with the provider's error, for any other refusal.

A 2xx answer is not enough: Slack answers 200 with ``{"ok": false, "error": …}`` and Telegram
``{"ok": false, "error_code", "description"}``. A 2xx without the success shape, a read
timeout or a dropped connection leaves the outcome unknown; those are retried (at-least-once),
see :mod:`shared.outbound.dispatcher`.
"""

from __future__ import annotations

import email.utils
import logging
import math
import threading
import time
from typing import TYPE_CHECKING, Any

from shared import tracing
from shared.errors import DependencyUnavailable, RateLimited, describe
from shared.outbound.api import ApiRequest

if TYPE_CHECKING:
    import httpx

DEFAULT_RETRY_AFTER_S = 1


class ChannelApi:
    def __init__(self, timeout_s: float, client: httpx.Client | None = None) -> None:
        self.timeout_s = timeout_s
        self._client = client
        self._lock = threading.Lock()
        quiet_request_logs()

    def client(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                import httpx  # lazy: keeps cold start short

                self._client = httpx.Client(timeout=httpx.Timeout(self.timeout_s))
            return self._client

    def send(self, request: ApiRequest) -> str:
        """The provider's id of the sent message, or the failure as an exception."""
        import httpx

        dependency = f"{request.channel}-api"
        try:
            response = self.client().request(
                request.method,
                request.url,
                headers={**request.headers, **tracing.outgoing()},
                json=request.json,
            )
        except httpx.TransportError as exc:  # connect/read/write errors and every timeout
            raise DependencyUnavailable(
                f"{request.channel} API unreachable: {describe(exc)}", dependency=dependency
            ) from exc
        return interpret(
            request.channel,
            response.status_code,
            response.headers.get("Retry-After"),
            _json(response),
        )


def quiet_request_logs() -> None:
    """httpx logs every request's URL at INFO, and a Telegram URL holds the bot token."""
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


def interpret(channel: str, status: int, retry_after: str | None, body: Any) -> str:
    """A channel API answer → the provider message id, or the exception that says what next.

    429 and 5xx mean the same on every channel; the rest is the channel's to read
    (its ``SPEC.outbound.interpret``).
    """
    from shared.channels.registry import spec

    document = body if isinstance(body, dict) else {}
    wait_s = _retry_after(retry_after, document)
    if status == 429:
        raise RateLimited(f"{channel} API rate limit (429)", retry_after_s=wait_s)
    if status >= 500:
        raise DependencyUnavailable(
            f"{channel} API answered {status}", dependency=f"{channel}-api", retry_after_s=wait_s
        )
    read = spec(channel).outbound.interpret
    if read is None:
        raise ValueError(f"{channel} replies are not sent over an API")
    return read(status, document, wait_s)


MAX_RETRY_AFTER_S = 3600  # a provider asking for more is treated as asking for an hour


def _retry_after(header: str | None, document: dict[str, Any]) -> int:
    """Seconds to wait: ``Retry-After`` (seconds or an HTTP date, RFC 9110 §10.2.3), else
    Telegram's ``parameters.retry_after``, else a second."""
    seconds = _header_seconds(header) if header else None
    parameters = document.get("parameters")
    if seconds is None and isinstance(parameters, dict):
        value = parameters.get("retry_after")
        seconds = float(value) if isinstance(value, int | float) else None
    if seconds is None or not math.isfinite(seconds):  # "inf"/"nan" would crash ceil()
        return DEFAULT_RETRY_AFTER_S
    return min(MAX_RETRY_AFTER_S, max(1, math.ceil(seconds)))


def _header_seconds(header: str) -> float | None:
    try:
        return float(header)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return when.timestamp() - time.time()


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
