"""audit-logger: every event on every topic, recorded once in the append-only audit trail."""

from typing import Any

import flask
import functions_framework

from shared import audit, eventfn, web

SERVICE = "audit-logger"

web.install(flask.current_app, SERVICE, audit.health, required=("mongodb",))


@functions_framework.cloud_event
def handle(event: Any) -> None:
    # No poison store: an event the trail cannot take is answered 400 and kept, whole, on the
    # dead-letter topic (writing it to MongoDB is what just failed).
    eventfn.run(event, audit.handle, service=SERVICE)
