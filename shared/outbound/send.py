"""The HTTP call to a channel API, and what its answer means.

One ``httpx.Client`` per process, created on first send (import time is cold-start time, and
a connection pool must not be shared across a fork). Every answer ends one of three ways:

- **sent**: the provider's message id is returned (WhatsApp ``messages[0].id``, Slack ``ts``,
  Telegram ``result.message_id``);
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

from shared.errors import DependencyUnavailable, RateLimited, describe
from shared.models import Channel
from shared.outbound.api import ApiRequest, Undeliverable

if TYPE_CHECKING:
    import httpx

# Graph API error codes that mean "slow down" or "our side is down" (Cloud API error-codes
# reference): 4 app rate limit, 80007 account rate limit, 130429 throughput, 131048 spam
# rate limit, 131056 pair rate limit; 1/2 service, 131000 unknown, 131016 service
# unavailable, 133004 server temporarily unavailable.
WHATSAPP_THROTTLED = frozenset({4, 80007, 130429, 131048, 131056})
WHATSAPP_UNAVAILABLE = frozenset({1, 2, 131000, 131016, 133004})
# chat.postMessage errors that are Slack's trouble, not ours.
SLACK_UNAVAILABLE = frozenset({"internal_error", "fatal_error", "service_unavailable"})
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
                request.method, request.url, headers=request.headers, json=request.json
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


def interpret(channel: Channel, status: int, retry_after: str | None, body: Any) -> str:
    """A channel API answer → the provider message id, or the exception that says what next."""
    document = body if isinstance(body, dict) else {}
    wait_s = _retry_after(retry_after, document)
    if status == 429:
        raise RateLimited(f"{channel} API rate limit (429)", retry_after_s=wait_s)
    if status >= 500:
        raise DependencyUnavailable(
            f"{channel} API answered {status}", dependency=f"{channel}-api", retry_after_s=wait_s
        )
    if channel is Channel.WHATSAPP:
        return _whatsapp(status, document, wait_s)
    if channel is Channel.SLACK:
        return _slack(status, document, wait_s)
    return _telegram(status, document, wait_s)


def _whatsapp(status: int, document: dict[str, Any], wait_s: int) -> str:
    error = document.get("error")
    if 200 <= status < 300 and not isinstance(error, dict):
        messages = document.get("messages")
        first = messages[0] if isinstance(messages, list) and messages else None
        return _provider_id(Channel.WHATSAPP, first.get("id") if isinstance(first, dict) else None)
    error = error if isinstance(error, dict) else {}
    code = error.get("code")
    message = str(error.get("message") or f"HTTP {status}")
    if code in WHATSAPP_THROTTLED:
        raise RateLimited(f"whatsapp API rate limit ({code}): {message}", retry_after_s=wait_s)
    if code in WHATSAPP_UNAVAILABLE:
        raise DependencyUnavailable(
            f"whatsapp API error {code}: {message}", dependency="whatsapp-api"
        )
    raise Undeliverable(str(code or f"http_{status}"), message, http_status=status)


def _slack(status: int, document: dict[str, Any], wait_s: int) -> str:
    if 200 <= status < 300 and document.get("ok") is True:
        return _provider_id(Channel.SLACK, document.get("ts"))
    error = str(document.get("error") or "")
    if 200 <= status < 300 and not error:
        raise _unreadable(Channel.SLACK, status)
    if error == "ratelimited":
        raise RateLimited("slack API rate limit (ratelimited)", retry_after_s=wait_s)
    if error in SLACK_UNAVAILABLE:
        raise DependencyUnavailable(f"slack API error {error}", dependency="slack-api")
    code = error or f"http_{status}"
    raise Undeliverable(code, f"chat.postMessage failed: {code}", http_status=status)


def _telegram(status: int, document: dict[str, Any], wait_s: int) -> str:
    if 200 <= status < 300 and document.get("ok") is True:
        result = document.get("result")
        return _provider_id(
            Channel.TELEGRAM, result.get("message_id") if isinstance(result, dict) else None
        )
    code = document.get("error_code")
    if 200 <= status < 300 and code is None:
        raise _unreadable(Channel.TELEGRAM, status)
    description = str(document.get("description") or f"HTTP {status}")
    if code == 429:
        raise RateLimited(f"telegram API rate limit: {description}", retry_after_s=wait_s)
    raise Undeliverable(str(code or f"http_{status}"), description, http_status=status)


def _provider_id(channel: Channel, value: Any) -> str:
    if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
        return str(value)
    raise _unreadable(channel, 200)


def _unreadable(channel: Channel, status: int) -> DependencyUnavailable:
    """A 2xx we cannot read: the message may well have been sent, so it is retried
    (at-least-once) rather than recorded as failed (maybe lost)."""
    return DependencyUnavailable(
        f"{channel} API answered {status} without a message id", dependency=f"{channel}-api"
    )


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
