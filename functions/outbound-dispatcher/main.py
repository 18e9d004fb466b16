"""outbound-dispatcher: replies from the outbound topic, sent through the channel APIs."""

from typing import Any

import flask
import functions_framework

from shared import eventfn, web
from shared.outbound import dispatcher
from shared.store.poison import recorder

web.install(flask.current_app, dispatcher.SERVICE, dispatcher.health, required=("mongodb",))
_on_poison = recorder(dispatcher.SERVICE)


@functions_framework.cloud_event
def handle(event: Any) -> None:
    eventfn.run(
        event, dispatcher.get_dispatcher().handle, service=dispatcher.SERVICE, on_poison=_on_poison
    )
