"""What a renderer hands the sender, and how a message that can never be sent is reported.

:class:`ApiRequest` is one HTTP call to a channel API, built by a pure renderer and sent by
:mod:`shared.outbound.send`. :class:`Undeliverable` is a *permanent* failure: the message is
marked ``failed`` and the event is done (200, never retried). It is deliberately not a
:class:`~shared.errors.ChatServiceError`: it never becomes an HTTP status of ours.
Transient failures are :class:`~shared.errors.RateLimited` and
:class:`~shared.errors.DependencyUnavailable`, which do (429/503, so KafkaSource retries).
"""

from __future__ import annotations

from typing import Any

from shared.dataclass import dataclass, field
from shared.errors import DependencyUnavailable
from shared.models import Channel


@dataclass(frozen=True)
class ApiRequest:
    channel: Channel  # says which response shape to expect
    method: str
    url: str = field(repr=False)  # Telegram puts the bot token in the path: never log it
    headers: dict[str, str] = field(repr=False)  # holds the bearer token
    json: dict[str, Any] = field(default_factory=dict)


class Undeliverable(Exception):
    """The channel refused the message, or it can never be sent as it is."""

    def __init__(self, code: str, message: str, *, http_status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.http_status = http_status

    def to_dict(self) -> dict[str, Any]:
        """The ``delivery.error`` sub-document."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.http_status is not None:
            error["http_status"] = self.http_status
        return error


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def options_as_text(text: str, titles: list[str]) -> str:
    """Quick replies for a channel (or a size) without buttons: numbered lines under the text,
    so the user can still answer with the number or the words."""
    lines = [f"{number}. {title}" for number, title in enumerate(titles, start=1)]
    return "\n".join([text, "", *lines]) if text else "\n".join(lines)


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, with an ellipsis when something was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def provider_id(channel: str, value: Any) -> str:
    """The provider's id of a sent message, from a success answer; an unreadable one is
    :func:`unreadable`."""
    if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
        return str(value)
    raise unreadable(channel, 200)


def unreadable(channel: str, status: int) -> DependencyUnavailable:
    """A 2xx we cannot read: the message may well have been sent, so it is retried
    (at-least-once) rather than recorded as failed (maybe lost)."""
    return DependencyUnavailable(
        f"{channel} API answered {status} without a message id", dependency=f"{channel}-api"
    )
