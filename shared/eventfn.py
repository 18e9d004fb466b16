"""The adapter for KafkaSource-triggered functions: a CloudEvent in, a Knative status out.

KafkaSource delivers each record as an HTTP binary-mode CloudEvent and reads the answer by the
Knative data-plane contract: 2xx done; 400 (and other 4xx but 404/409/429) never retried;
404, 409, 429 and 5xx retried with backoff, then dead-lettered. So a handler raises
:class:`~shared.errors.BadRequest` for a poison event, :class:`~shared.errors.RateLimited` or
:class:`~shared.errors.DependencyUnavailable` for a transient failure, and returns normally
otherwise — including for a redelivery whose work is already done.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

import flask

from shared import event_spec, events, logs, metrics
from shared.errors import BadRequest, ChatServiceError, describe
from shared.eventauth import SenderIdentity
from shared.web import WebResponse, error_response, internal_error

log = logging.getLogger(__name__)

EventHandler = Callable[[Any], str | None]  # returns an outcome label ("done", "duplicate", …)
PoisonSink = Callable[[Any, BadRequest], None]


def run(
    event: Any,
    handler: EventHandler,
    *,
    service: str,
    on_poison: PoisonSink | None = None,
    request: tuple[Mapping[str, str], bytes] | None = None,
    sender: SenderIdentity | None = None,
) -> None:
    """Handle one CloudEvent; a failure aborts the request with its Knative status code.

    ``sender``: with Eventing's sender identity on, the request's bearer token is verified
    first (:mod:`shared.eventauth`); 401 without a valid one.

    ``request`` (headers, body) is the HTTP request the event came in: checked against the
    CloudEvents specification first (:mod:`shared.event_spec`), since the parsed event has lost
    what would show a violation.
    """
    from shared import tracing

    event_type = str(event.get("type") or "")
    with (
        tracing.span(f"{service} {event_type}", event.get("traceparent"), kind="consumer"),
        logs.bound(
            event_id=event.get("id"),
            event_type=event_type,
            tenant=event.get("tenantid"),
            channel=_channel(event),
        ),
    ):
        label = events.type_label(event_type)
        _run(
            event,
            label,
            handler,
            service=service,
            on_poison=on_poison,
            request=request,
            sender=sender,
        )


def _run(
    event: Any,
    event_type: str,
    handler: EventHandler,
    *,
    service: str,
    on_poison: PoisonSink | None,
    request: tuple[Mapping[str, str], bytes] | None,
    sender: SenderIdentity | None = None,
) -> None:
    try:
        if sender is not None and sender.enabled:
            sender.verify(request[0] if request is not None else {})
        if request is not None:
            event_spec.check_request(*request)
        outcome = handler(event) or "done"
        metrics.events_handled.labels(service, event_type, outcome).inc()
        log.info("event handled", extra={"outcome": outcome})
    except ChatServiceError as exc:
        metrics.events_handled.labels(service, event_type, exc.code).inc()
        level = logging.ERROR if exc.status >= 500 or exc.status == 400 else logging.WARNING
        log.log(
            level,
            "event not handled",
            extra={"status": exc.status, "error": exc.code, "reason": exc.message},
        )
        if isinstance(exc, BadRequest) and on_poison is not None:
            _store_poison(on_poison, event, exc)
        flask.abort(_flask(error_response(exc)))
    except Exception:
        # A bug or an unforeseen failure, not the event's fault as far as we know: 500 (retried,
        # then dead-lettered), with the event id on the log line and a count.
        metrics.events_handled.labels(service, event_type, "error").inc()
        log.exception("event handler failed")
        flask.abort(_flask(internal_error()))


class _OfTenant(Protocol):
    @property
    def tenant_id(self) -> str: ...


T = TypeVar("T", bound=_OfTenant)


def decode(
    event: Any, from_dict: Callable[[dict[str, Any]], T], *, expected_type: str, what: str
) -> T:
    """The model in an event's data, or :class:`BadRequest` (poison) saying what is wrong.

    The ``tenantid`` attribute routed the event; data naming another tenant is not trusted.
    """
    if event.get("type") != expected_type:
        raise BadRequest(f"not a {expected_type} event", code="unexpected_event_type")
    data = getattr(event, "data", None)
    if not isinstance(data, dict):
        raise BadRequest("the event data is not a JSON object", code="malformed_event")
    try:
        value = from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BadRequest(
            f"the event data is not {what}: {describe(exc)}", code="malformed_event"
        ) from exc
    tenant_attribute = event.get("tenantid")
    if tenant_attribute and tenant_attribute != value.tenant_id:
        raise BadRequest("the tenantid attribute and the data disagree", code="tenant_mismatch")
    return value


def _store_poison(on_poison: PoisonSink, event: Any, exc: BadRequest) -> None:
    try:
        on_poison(event, exc)
    except Exception:  # the 400 stands; the event also reaches the dead-letter topic
        log.exception("poison event could not be stored", extra={"event_id": event.get("id")})


def _flask(response: WebResponse) -> flask.Response:
    return flask.Response(
        json.dumps(response.body),
        status=response.status,
        headers={**response.headers, "Content-Type": "application/json"},
    )


def _channel(event: Any) -> str | None:
    """The channel of every model our events carry (data ``channel``), for the log lines."""
    data = getattr(event, "data", None)
    channel = data.get("channel") if isinstance(data, dict) else None
    return channel if isinstance(channel, str) else None
