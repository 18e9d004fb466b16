"""``scripts/bench`` is run as a script, its modules importing each other by name: the tests
import them the same way."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[3] / "scripts" / "bench"


def bench_module(name: str) -> ModuleType:
    if str(BENCH) not in sys.path:
        sys.path.append(str(BENCH))  # appended: never shadows an installed module
    return importlib.import_module(name)
