"""telegram-webhook: Telegram Bot API updates, one webhook URL per bot (/webhook/<bot_id>)."""

import flask
import functions_framework

from shared import web
from shared.channels import telegram
from shared.ingress import get_ingress, ingress_health

web.install(flask.current_app, "telegram-webhook", ingress_health, required=("kafka",))


@functions_framework.http
def handle(request: flask.Request) -> flask.Response:
    return web.dispatch(request, lambda r: telegram.handle(r, get_ingress()), channel="telegram")
