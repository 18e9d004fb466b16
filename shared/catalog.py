"""Every function of ``functions/``: its role and the settings groups it uses.

The one place that says which function needs what, read by the deployment checks (every
setting of a used group set, no Secret handed to a function that does not use it, event
handlers cluster-local) and tested against ``functions/`` and ``shared/settings.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["webhook", "event-handler"]

_CORE = ("core",)
_WEBHOOK = (*_CORE, "kafka", "redis", "tenants", "webhook")


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    role: Role
    uses: tuple[str, ...]  # settings groups (shared/settings.py)
    # The platform's deadline for answering a webhook, where it publishes one; the Knative
    # request timeout and the Kafka acknowledgement wait must both stay under it.
    ack_deadline_s: float | None = None

    @property
    def public(self) -> bool:
        return self.role == "webhook"


FUNCTIONS: tuple[FunctionSpec, ...] = (
    FunctionSpec("whatsapp-webhook", "webhook", _WEBHOOK),
    # Slack: "respond within 3 seconds" or the event is retried (api.slack.com/apis/events-api).
    FunctionSpec("slack-webhook", "webhook", _WEBHOOK, ack_deadline_s=3.0),
    FunctionSpec("telegram-webhook", "webhook", _WEBHOOK),
    FunctionSpec("webchat", "webhook", _WEBHOOK),
    FunctionSpec(
        "message-processor", "event-handler", (*_CORE, "kafka", "redis", "mongodb", "bot")
    ),
    FunctionSpec(
        "outbound-dispatcher",
        "event-handler",
        (*_CORE, "redis", "mongodb", "tenants", "channel-apis"),
    ),
    FunctionSpec("status-tracker", "event-handler", (*_CORE, "mongodb")),
    FunctionSpec("audit-logger", "event-handler", (*_CORE, "mongodb")),
)


def by_name() -> dict[str, FunctionSpec]:
    return {spec.name: spec for spec in FUNCTIONS}
