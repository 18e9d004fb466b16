"""Every function of ``functions/``: its role and the settings groups it uses.

Read from the declarations that make a function — a channel's ``SPEC``
(:mod:`shared.channels.registry`) for a webhook, an :class:`~shared.handlers.EventFunction`
for an event handler, :data:`APIS` for an HTTP API — and used by the deployment checks
(every setting of a used group set, no Secret handed to a function that does not use it,
event handlers cluster-local). A test compares it with ``functions/``.
"""

from __future__ import annotations

from functools import cache
from typing import Literal

from shared.dataclass import dataclass

Role = Literal["webhook", "event-handler", "api"]

# A webhook verifies, dedupes (Redis), publishes (Kafka) and reads the tenant directory.
WEBHOOK_USES = ("core", "kafka", "redis", "tenants", "webhook")
# The HTTP APIs for people and tools (bearer tokens), each served by shared.serving.api.
APIS = {"conversations-api": ("core", "kafka", "redis", "mongodb", "postgres", "api")}


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
        return self.role in ("webhook", "api")


@cache
def functions() -> tuple[FunctionSpec, ...]:
    from shared.channels.registry import specs
    from shared.handlers import declarations

    webhooks = [
        FunctionSpec(s.function, "webhook", (*WEBHOOK_USES, *s.uses), s.ack_deadline_s)
        for s in specs()
    ]
    # Every handler may verify Knative Eventing's sender identity (shared.eventauth).
    handlers = [
        FunctionSpec(d.name, "event-handler", (*d.uses, "eventing")) for d in declarations()
    ]
    apis = [FunctionSpec(name, "api", uses) for name, uses in APIS.items()]
    return (*webhooks, *handlers, *apis)


def by_name() -> dict[str, FunctionSpec]:
    return {spec.name: spec for spec in functions()}
