"""message-processor: the bot turn for each message KafkaSource delivers from the inbound topic."""

from typing import Any

import flask
import functions_framework

from shared import eventfn, web
from shared.bot.runtime import get_processor, processor_health
from shared.store.poison import recorder

SERVICE = "message-processor"

web.install(flask.current_app, SERVICE, processor_health, required=("mongodb", "kafka"))
_on_poison = recorder(SERVICE)  # connects to MongoDB on the first poison event, not here


@functions_framework.cloud_event
def handle(event: Any) -> None:
    eventfn.run(
        event, lambda e: get_processor().handle_event(e), service=SERVICE, on_poison=_on_poison
    )
