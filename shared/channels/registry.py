"""The channels this service speaks. Adding one: its package in ``shared/channels/``, then its
name here. Everything that depends on a channel — the tenant directory, sending, the local
stack's sandbox, dev tenant and endpoints file, the deployment catalog — iterates this table,
and a name that is not in it is an error, never a default.

Import-light on purpose (``shared.models`` validates channel names against :data:`NAMES`); a
channel's package is imported when its declaration is first asked for.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.channels.contract import ChannelSpec

NAMES: tuple[str, ...] = ("whatsapp", "slack", "telegram", "webchat", "messenger")


class UnknownChannel(KeyError):
    def __init__(self, name: object) -> None:
        super().__init__(f"unknown channel {name!r} (known: {', '.join(NAMES)})")


def spec(name: str) -> ChannelSpec:
    """The declaration of channel ``name``; :class:`UnknownChannel` for any other name."""
    if name not in NAMES:
        raise UnknownChannel(name)
    declared: ChannelSpec = import_module(f"shared.channels.{name}").SPEC
    return declared


def specs() -> list[ChannelSpec]:
    return [spec(name) for name in NAMES]
