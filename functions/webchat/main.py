"""webchat: visitor sessions (signed tokens) and messages from the web chat widget."""

import flask
import functions_framework

from shared import web
from shared.channels import webchat
from shared.ingress import get_ingress, ingress_health

web.install(flask.current_app, "webchat", ingress_health, required=("kafka",))


@functions_framework.http
def handle(request: flask.Request) -> flask.Response:
    origin = request.headers.get("Origin")
    return web.dispatch(
        request,
        lambda r: webchat.handle(r, get_ingress()),
        channel="webchat",
        error_headers=lambda exc: webchat.error_cors_headers(exc, origin, get_ingress().tenants),
    )
