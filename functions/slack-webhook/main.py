"""slack-webhook: signed Slack Events API requests (url_verification and event_callback)."""

import flask
import functions_framework

from shared import web
from shared.channels import slack
from shared.ingress import get_ingress, ingress_health

web.install(flask.current_app, "slack-webhook", ingress_health, required=("kafka",))


@functions_framework.http
def handle(request: flask.Request) -> flask.Response:
    return web.dispatch(
        request,
        lambda r: slack.handle(r, get_ingress()),
        channel="slack",
        error_headers=slack.error_headers,
    )
