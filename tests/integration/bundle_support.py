"""Run what the Knative bundle runs, from the project's venv: the image's entry command and
the bootstrap Jobs' commands, with the environment the manifests give each container.

Only what must differ on one machine is changed, and it is named here: the image's paths
(/app/functions, the mounted tenant directory, /tmp) map to the repository and the test's
directory; Secrets come from the test's servers; the cluster's addresses (Kafka, MongoDB,
Redis) become the test's servers.
"""

from __future__ import annotations

import json
import re
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

from shared.deploy import __main__ as deploy
from shared.deploy.bundle import Bundle, Document
from shared.deploy.dockerfile import stages
from shared.deploy.model import environment
from tests.conftest import TENANTS

ROOT = Path(__file__).resolve().parents[2]


@lru_cache(maxsize=2)
def bundle(overlay: str) -> Bundle:
    return deploy.load(ROOT / "knative" / "overlays" / overlay)


def image_env() -> dict[str, str]:
    final = stages(ROOT / "Dockerfile")[-1]
    return dict(final.env)


def entry_command() -> list[str]:
    """The image's ENTRYPOINT with the venv's interpreter for the image's `python`."""
    command = list(stages(ROOT / "Dockerfile")[-1].entrypoint)
    assert command[0] == "python"
    return [sys.executable, *command[1:]]


def container_env(
    doc: Document,
    container: str,
    source: Bundle,
    *,
    secrets: dict[tuple[str, str], str],
    overrides: dict[str, str],
    scratch: Path,
) -> dict[str, str]:
    """The container's environment as the kubelet would build it, mapped to this machine."""
    env = {k: v for k, v in image_env().items() if k != "PATH"}
    env["PATH"] = f"{Path(sys.executable).parent}:/usr/bin:/bin"
    for name, value in environment(doc, container, source).items():
        if value.kind == "secret":
            assert value.secret is not None
            env[name] = secrets[value.secret]
        elif value.value is not None:
            env[name] = value.value
    for name, text in list(env.items()):  # the /tmp emptyDir (TMPDIR, metrics directory, …)
        if text == "/tmp" or text.startswith("/tmp/"):
            env[name] = str(scratch) + text[len("/tmp") :]
    env.update(overrides)
    for name, text in list(env.items()):
        env[name] = text.replace("/app/functions/", f"{ROOT}/functions/")
    if env.get("TENANTS_FILE"):
        tenants = scratch / "tenants.json"
        tenants.write_text(json.dumps(TENANTS), encoding="utf-8")
        env["TENANTS_FILE"] = str(tenants)
    return env


def expand(args: list[Any], env: dict[str, str]) -> list[str]:
    """``$(VAR)`` in a container's command and args, as the kubelet expands them."""
    return [re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), str(a)) for a in args]
