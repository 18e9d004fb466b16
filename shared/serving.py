"""What a ``functions/<name>/main.py`` serves: one line, ``handle = webhook("whatsapp")``,
``handle = event_function("message-processor")`` or ``handle = api("conversations-api")``.

Both mount health, liveness and metrics on functions-framework's app and configure logging
(:func:`shared.web.install`), then return the entry point functions-framework calls (named
``handle``, registered as an HTTP or a CloudEvent function). Called at import, inside
functions-framework's app context; nothing connects until the first request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flask
import functions_framework

from shared import web


def webhook(channel: str) -> Callable[[flask.Request], flask.Response]:
    """A channel's webhook function (its ``SPEC``: handler, error headers)."""
    from shared.channels.registry import spec
    from shared.ingress import get_ingress, health

    declared = spec(channel)
    web.install(flask.current_app, declared.function, health, required=("kafka",))
    extra = declared.error_headers

    def handle(request: flask.Request) -> flask.Response:
        return web.dispatch(
            request,
            lambda r: declared.handle(r, get_ingress()),
            channel=declared.name,
            error_headers=(lambda exc, r: extra(exc, r, get_ingress())) if extra else None,
        )

    functions_framework.http(handle)  # registers `handle` as an HTTP function
    return handle


def api(name: str) -> Callable[[flask.Request], flask.Response]:
    """An HTTP API for people and tools (:data:`shared.catalog.APIS`)."""
    from shared.api.service import get_api, health

    web.install(flask.current_app, name, health, required=("mongodb",))

    def handle(request: flask.Request) -> flask.Response:
        return web.dispatch(request, lambda r: get_api().handle(r), channel=name)

    functions_framework.http(handle)
    return handle


def event_function(name: str) -> Callable[[Any], None]:
    """An event handler's function (its :class:`~shared.handlers.EventFunction`)."""
    from shared import eventfn
    from shared.eventauth import SenderIdentity
    from shared.handlers import declaration
    from shared.settings import get_settings
    from shared.store.poison import recorder

    declared = declaration(name)
    web.install(flask.current_app, name, declared.health, required=declared.required)
    # The poison sink connects to MongoDB on the first poison event, not here.
    on_poison = recorder(name) if declared.poison == "store" else None
    sender = SenderIdentity(get_settings())

    def handle(event: Any) -> None:
        request = (dict(flask.request.headers.items()), flask.request.get_data())
        eventfn.run(
            event,
            lambda e: declared.handler()(e),
            service=name,
            on_poison=on_poison,
            request=request,
            sender=sender,
        )

    functions_framework.cloud_event(handle)  # registers `handle` as a CloudEvent function
    return handle
