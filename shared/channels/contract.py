"""What a channel declares, in one place: its :class:`ChannelSpec`.

A channel is one package in ``shared/channels/`` whose ``__init__`` holds ``SPEC``: its name,
the function serving its webhook, how tenants configure an account, how a webhook request is
verified and published, how long the platform redelivers (the dedupe window), how a reply is
sent and the answer read, how the local sandbox stands in for its API, and its account on the
local stack. :mod:`shared.channels.registry` lists the packages; a test checks that each one
declares every part.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from shared.dataclass import dataclass

if TYPE_CHECKING:
    from shared.errors import ChatServiceError
    from shared.ingress import Ingress
    from shared.models import OutboundMessage
    from shared.outbound.api import ApiRequest
    from shared.settings import Settings
    from shared.web import WebRequest, WebResponse


class Account(Protocol):
    """A channel account in the tenant directory (a WhatsApp number, a Slack workspace, …)."""

    @property
    def tenant_id(self) -> str: ...

    @property
    def account_id(self) -> str: ...


@dataclass(frozen=True)
class AccountType:
    """How the tenant directory configures an account of this channel (``shared/tenants.py``):
    ``{"tenants": [{"id": …, "<channel>": [<entry>, …]}]}``."""

    key: str  # the entry's field that names the account, unique across tenants
    load: Callable[[str, Mapping[str, Any]], Account]  # (tenant id, entry) → the account
    example: Mapping[str, Any]  # a valid entry, for the docs (python -m shared.tenants)


@dataclass(frozen=True)
class SendContext:
    """What a renderer may need besides the message and account."""

    api_base: str  # the channel API's base URL (CHANNEL_API_BASES, else the channel's own)
    now: datetime
    last_inbound_at: datetime | None = None  # the user's last message (a service window)


@dataclass(frozen=True)
class Outbound:
    """How a reply leaves. An API channel renders one request and reads the provider's answer
    (the HTTP status classes 429 and 5xx are read the same for every channel, first); a channel
    without an API (our web widget) delivers the stored reply itself."""

    api_base: str = ""  # the production API; "" for a channel without one
    render: Callable[[OutboundMessage, Any, Settings, SendContext], ApiRequest] | None = None
    # (HTTP status, JSON document, seconds to wait if it says "later") → the provider's id
    interpret: Callable[[int, dict[str, Any], int], str] | None = None
    deliver: Callable[[OutboundMessage, Settings], str] | None = None
    # A provider id unique only within its chat (Slack ts, Telegram message_id) is stored
    # qualified with the chat, so the unique index and the status lookup stay exact.
    ids_unique_per_chat: bool = False
    # The renderer wants the user's last message time (WhatsApp's 24-hour window).
    needs_last_inbound: bool = False


Answer = tuple[int, dict[str, Any], dict[str, str]]  # status, JSON body, extra headers


class Described(NamedTuple):
    """A reply as the sandbox recorded it, for people: who it is for, its text, its buttons."""

    recipient: str
    text: str
    options: tuple[str, ...] = ()


class SandboxState:
    """What the sandbox's API stand-ins share: a lock, a counter and a clock for unique ids."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        # Seeded from the clock so a restarted sandbox does not hand out ids it gave before.
        self._counter = itertools.count(int(time.time() * 10) % 10**9)
        self._last = 0.0

    def number(self) -> int:
        with self.lock:
            return next(self._counter)

    def unique_time(self) -> float:
        """Now, but strictly later than the last time handed out (Slack's ``ts`` is an id)."""
        with self.lock:
            self._last = max(time.time(), self._last + 0.000001)
            return self._last


def bearer(headers: Mapping[str, str]) -> str:
    """The bearer token a sandbox request presents ("" for none): the credential of the
    channel APIs that take one in ``Authorization``."""
    from shared.auth import bearer_token
    from shared.errors import Unauthorized

    authorization = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
    try:
        return bearer_token(authorization)
    except Unauthorized:
        return ""


@dataclass(frozen=True)
class SandboxApi:
    """The local stand-in for the channel's API (``shared/devstack/sandbox.py``): it answers in
    the platform's shapes, records every call and fails on request."""

    base_path: str  # under the sandbox's URL, what the channel's API base becomes
    # (path, headers) → the credential presented, or None when the path is not this API's
    credential: Callable[[str, Mapping[str, str]], str | None]
    answer: Callable[[dict[str, Any], SandboxState], Answer]
    failure: Callable[[int, str | None, int | None], Answer]  # status, error, retry_after
    unauthorized: Callable[[], Answer]
    describe: Callable[[dict[str, Any]], Described]  # a recorded request, for people
    shown_path: Callable[[str], str] = lambda path: path  # a path as recorded (no secrets)


@dataclass(frozen=True)
class DevAccount:
    """The channel's account of the local stack's tenant ``dev``."""

    make: Callable[[], dict[str, Any]]  # a new entry with fresh random secrets
    # (entry, the function's URL) → the endpoints.json entry: ids, secrets and URLs to use
    endpoints: Callable[[dict[str, Any], str | None], dict[str, Any]]
    # (entry, the function's URL) → the entry updated for this run (web chat: its origins)
    refresh: Callable[[dict[str, Any], str | None], dict[str, Any]] = lambda entry, _url: entry


WebHandler = Callable[["WebRequest", "Ingress"], "WebResponse"]


@dataclass(frozen=True)
class ChannelSpec:
    name: str
    function: str  # functions/<function>/main.py serves the webhook (one Knative Service)
    account: AccountType
    handle: WebHandler  # verify, parse, publish one webhook request
    retry_window_s: int  # how long the platform redelivers a webhook: the dedupe TTL
    outbound: Outbound
    dev: DevAccount
    sandbox: SandboxApi | None = None  # None: no API to stand in for
    # The platform's deadline for answering a webhook, where it publishes one (deployment
    # checks keep the request timeout and the Kafka wait under it).
    ack_deadline_s: float | None = None
    # Settings groups its function uses besides a webhook's (shared/catalog.py): web chat also
    # reads conversations back from MongoDB.
    uses: tuple[str, ...] = ()
    # The channel's own headers on an error answer: (error, request headers, ingress) →
    # headers (Slack: X-Slack-No-Retry; web chat: CORS, so the widget can read the error).
    error_headers: (
        Callable[[ChatServiceError, Mapping[str, str], Ingress], Mapping[str, str]] | None
    ) = None
