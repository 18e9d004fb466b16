"""``conversations-api``: routes, authentication, per-token limits, and the answers.

Every route but the OpenAPI document needs a bearer token (:mod:`shared.api.auth`); the tenant
of every query is the token's. Errors answer in the service's JSON shape: 401 without a valid
token, 403 for a role the token lacks, 404 for what is not the caller's tenant's (never 403:
existence is not revealed), 400 naming the bad parameter, 409 for a state conflict, 429 with
``Retry-After`` when the token's per-minute budget is spent.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from shared.api import paging
from shared.api.actions import Actions, Producer
from shared.api.auth import Caller, TokenVerifier
from shared.api.gdpr import Subject
from shared.api.views import Views, conversation_view
from shared.auth import bearer_token
from shared.bot.session import SessionCache
from shared.caching import per_process
from shared.channels.registry import NAMES
from shared.clock import Clock, system_clock
from shared.dataclass import dataclass
from shared.errors import BadRequest, MethodNotAllowed, NotFound, RateLimited
from shared.ratelimit import RateLimiter
from shared.settings import Settings, get_settings
from shared.web import WebRequest, WebResponse, json_response

log = logging.getLogger(__name__)

SERVICE = "conversations-api"
OPENAPI_PATH = "/api/v2/openapi.json"
PREFIX = "/api/v2/chat"
_SEGMENT = r"([^/]+)"

Handler = Callable[["ConversationsApi", Caller, tuple[str, ...], WebRequest], WebResponse]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    role: str
    handler: Handler


def _route(method: str, path: str, role: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        pattern = re.compile("^" + PREFIX + path.replace("{}", _SEGMENT) + "$")
        ROUTES.append(Route(method, pattern, role, handler))
        return handler

    return register


ROUTES: list[Route] = []


@dataclass
class ConversationsApi:
    settings: Settings
    db: Any
    producer: Producer
    verifier: TokenVerifier
    limiter: RateLimiter
    sessions: SessionCache
    analytics: Callable[[], Any] = lambda: None  # the PostgreSQL pool, made on first use
    clock: Clock = system_clock

    def handle(self, request: WebRequest) -> WebResponse:
        if request.path == OPENAPI_PATH:
            if request.method != "GET":
                raise MethodNotAllowed("only GET", allowed=("GET",))
            return json_response(200, openapi_document())
        route, params = match(request.method, request.path)
        caller = self.verifier.verify(bearer_token(request.header("Authorization")))
        self._limit(caller)
        caller.require(route.role)
        return route.handler(self, caller, params, request)

    def _limit(self, caller: Caller) -> None:
        decision = self.limiter.check(caller.tenant_id, "api", caller.token_hash)
        if not decision.allowed:
            raise RateLimited(
                "too many requests for this token", retry_after_s=decision.retry_after_s
            )

    @property
    def views(self) -> Views:
        return Views(self.db)

    @property
    def actions(self) -> Actions:
        return Actions(self.db, self.producer, self.settings.outbound_topic)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)


def match(method: str, path: str) -> tuple[Route, tuple[str, ...]]:
    allowed = []
    for route in ROUTES:
        found = route.pattern.match(path)
        if found is None:
            continue
        if route.method == method:
            return route, found.groups()
        allowed.append(route.method)
    if allowed:
        raise MethodNotAllowed(f"{method} is not allowed here", allowed=tuple(sorted(allowed)))
    raise NotFound(f"no route {path}")


def body_of(request: WebRequest) -> dict[str, Any]:
    if not request.body:
        return {}
    try:
        document = json.loads(request.body)
    except (ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError and undecodable bytes; RecursionError a body
        # nested deeper than the parser goes (a 500 otherwise).
        raise BadRequest("the body is not JSON", code="malformed_json") from exc
    if not isinstance(document, dict):
        raise BadRequest("the body must be a JSON object", code="malformed_json")
    return document


# --- conversations ------------------------------------------------------------------------


@_route("GET", "/conversations", "agent")
def list_conversations(
    api: ConversationsApi, caller: Caller, _: tuple[str, ...], request: WebRequest
) -> WebResponse:
    return json_response(200, api.views.conversations(caller.tenant_id, request.query))


@_route("GET", "/conversations/{}", "agent")
def get_conversation(
    api: ConversationsApi, caller: Caller, params: tuple[str, ...], _: WebRequest
) -> WebResponse:
    return json_response(200, conversation_view(api.views.conversation(caller.tenant_id, *params)))


@_route("GET", "/conversations/{}/messages", "agent")
def list_messages(
    api: ConversationsApi, caller: Caller, params: tuple[str, ...], request: WebRequest
) -> WebResponse:
    return json_response(200, api.views.messages(caller.tenant_id, params[0], request.query))


@_route("POST", "/conversations/{}/messages", "agent")
def post_message(
    api: ConversationsApi, caller: Caller, params: tuple[str, ...], request: WebRequest
) -> WebResponse:
    key = request.header("Idempotency-Key")
    view, created = api.actions.reply(caller, params[0], body_of(request), key, api.now())
    log.info(
        "agent reply accepted",
        extra={"tenant": caller.tenant_id, "message_id": view["id"], "new": created},
    )
    return json_response(202 if created else 200, view)


@_route("POST", "/conversations/{}/handoff", "agent")
def handoff(
    api: ConversationsApi, caller: Caller, params: tuple[str, ...], request: WebRequest
) -> WebResponse:
    doc = api.actions.handoff(caller, params[0], body_of(request), api.now())
    return json_response(200, conversation_view(doc))


@_route("POST", "/conversations/{}/close", "agent")
def close(
    api: ConversationsApi, caller: Caller, params: tuple[str, ...], _: WebRequest
) -> WebResponse:
    return json_response(200, conversation_view(api.actions.close(caller, params[0], api.now())))


@_route("POST", "/conversations/{}/reopen", "agent")
def reopen(
    api: ConversationsApi, caller: Caller, params: tuple[str, ...], _: WebRequest
) -> WebResponse:
    return json_response(200, conversation_view(api.actions.reopen(caller, params[0], api.now())))


# --- GDPR ---------------------------------------------------------------------------------


def _subject(api: ConversationsApi, caller: Caller, params: tuple[str, ...]) -> Subject:
    channel, user_id = params
    paging.one_of({"channel": channel}, "channel", NAMES)
    return Subject(api.db, api.sessions, caller, channel, user_id)


@_route("GET", "/users/{}/{}/export", "admin")
def export_user(
    api: ConversationsApi, caller: Caller, params: tuple[str, ...], _: WebRequest
) -> WebResponse:
    return json_response(200, _subject(api, caller, params).export(api.now()))


def _erase(
    api: ConversationsApi, caller: Caller, params: tuple[str, ...], _: WebRequest
) -> WebResponse:
    removed = _subject(api, caller, params).erase(caller, api.now(), api.analytics)
    log.info("end user erased", extra={"tenant": caller.tenant_id, "removed": removed})
    return json_response(200, {"status": "erased", "removed": removed})


# The user's resource, and the export's path as well ("DELETE on the same path").
_route("DELETE", "/users/{}/{}", "admin")(_erase)
_route("DELETE", "/users/{}/{}/export", "admin")(_erase)


# --- reports ------------------------------------------------------------------------------


@_route("GET", "/reports/daily", "admin")
def daily(
    api: ConversationsApi, caller: Caller, _: tuple[str, ...], request: WebRequest
) -> WebResponse:
    """The tenant's daily numbers from the analytics store (the business dashboard's)."""
    from shared.analytics import daily_report

    date_from, date_to = paging.day(request.query, "from"), paging.day(request.query, "to")
    channel = paging.one_of(request.query, "channel", NAMES)
    days = daily_report(api.analytics(), caller.tenant_id, date_from, date_to, channel)
    body = {"from": date_from.isoformat(), "to": date_to.isoformat(), "channel": channel}
    return json_response(200, {**body, "days": days})


@per_process
def openapi_document() -> dict[str, Any]:
    text = resources.files("shared.api").joinpath("openapi.json").read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


@per_process
def get_api() -> ConversationsApi:
    """The process's API, built on first request (after gunicorn forked the worker)."""
    from shared.kafka import EventProducer
    from shared.store.mongo import database

    settings = get_settings()
    return ConversationsApi(
        settings=settings,
        db=database(settings),
        producer=EventProducer(settings),
        verifier=TokenVerifier(settings),
        limiter=RateLimiter(
            settings.redis_url,
            tenant_per_min=0,
            user_per_min=settings.api_rate_limit_per_min,
            prefix="api",
        ),
        sessions=SessionCache(settings.redis_url),
        analytics=_analytics_pool,
    )


def _analytics_pool() -> Any:
    from shared.analytics import get_pool

    return get_pool()


def health() -> dict[str, bool]:
    """MongoDB is required (every route reads it); Kafka only carries agents' replies."""
    from shared.cache import redis_reachable
    from shared.kafka import brokers_reachable
    from shared.store.mongo import mongodb_reachable

    settings = get_settings()
    return {
        "mongodb": mongodb_reachable(settings.mongodb_uri),
        "redis": redis_reachable(settings.redis_url),
        "kafka": brokers_reachable(settings.kafka_brokers),
    }
