"""The ``Dockerfile`` read as data: its stages, final ``ENV`` and ``ENTRYPOINT``.

The tests run the image's exact entry command from the project's venv (there is no Docker
engine here), so they read the command and the environment from the one place they are
written. Only the instructions this project uses are understood (FROM, ENV, ENTRYPOINT, USER).
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

from shared.dataclass import dataclass, field


@dataclass
class Stage:
    base: str
    name: str | None
    env: dict[str, str] = field(default_factory=dict)
    entrypoint: list[str] = field(default_factory=list)
    user: str | None = None
    instructions: list[str] = field(default_factory=list)


def stages(path: Path) -> list[Stage]:
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    args: dict[str, str] = {}
    found: list[Stage] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "ARG" and not found:
            name, _, default = rest.partition("=")
            args[name] = default
        elif keyword == "FROM":
            words = rest.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), ""), words[0])
            found.append(Stage(base, words[2] if len(words) > 2 else None))
        elif found:
            stage = found[-1]
            stage.instructions.append(f"{keyword} {rest}")
            if keyword == "ENV":
                for pair in shlex.split(rest):
                    name, _, value = pair.partition("=")
                    stage.env[name] = value
            elif keyword == "ENTRYPOINT":
                stage.entrypoint = json.loads(rest)
            elif keyword == "USER":
                stage.user = rest
    return found
