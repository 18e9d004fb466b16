"""Copies of saved payloads with one value replaced, for the wrong-type tests."""

from __future__ import annotations

import copy
from typing import Any


def replaced(document: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    """A deep copy of ``document`` whose value at ``path`` (keys and list indexes) is ``value``."""
    document = copy.deepcopy(document)
    node: Any = document
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return document
