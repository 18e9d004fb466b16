"""whatsapp-webhook: Meta's subscription handshake and signed WhatsApp Cloud API webhooks."""

import flask
import functions_framework

from shared import web
from shared.channels import whatsapp
from shared.ingress import get_ingress, ingress_health

web.install(flask.current_app, "whatsapp-webhook", ingress_health, required=("kafka",))


@functions_framework.http
def handle(request: flask.Request) -> flask.Response:
    return web.dispatch(request, lambda r: whatsapp.handle(r, get_ingress()), channel="whatsapp")
