"""status-tracker: delivery statuses from the status topic, applied forward-only."""

from typing import Any

import flask
import functions_framework

from shared import eventfn, status, web
from shared.store.poison import recorder

SERVICE = "status-tracker"

web.install(flask.current_app, SERVICE, status.health, required=("mongodb",))
_on_poison = recorder(SERVICE)


@functions_framework.cloud_event
def handle(event: Any) -> None:
    eventfn.run(event, status.get_tracker().handle, service=SERVICE, on_poison=_on_poison)
