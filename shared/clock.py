"""The clock, injected wherever time decides an outcome (signature windows, token expiry)."""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], float]


def system_clock() -> float:
    return time.time()


def frozen(at: float) -> Clock:
    """A clock stopped at ``at`` seconds since the epoch, for tests and published vectors."""
    return lambda: at
