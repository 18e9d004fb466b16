"""The committed stubs are exactly what scripts/gen-protos.sh makes from the protos."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
GENERATED = ROOT / "shared" / "grpc" / "gen"


def tree(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def generate(out: Path) -> None:
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "gen-protos.sh"), str(out)],
        cwd=ROOT,
        env={**os.environ, "PYTHON": sys.executable},
        check=True,
        capture_output=True,
    )


def test_committed_stubs_match_the_generator(tmp_path: Path) -> None:
    generate(tmp_path / "gen")
    fresh, committed = tree(tmp_path / "gen"), tree(GENERATED)
    differing = sorted(
        name for name in fresh.keys() | committed.keys() if fresh.get(name) != committed.get(name)
    )
    assert not differing, (
        f"shared/grpc/gen is stale ({', '.join(differing)}): run scripts/gen-protos.sh "
        "(the output also depends on the grpcio-tools version)"
    )


def test_the_generator_is_reproducible(tmp_path: Path) -> None:
    generate(tmp_path / "one")
    generate(tmp_path / "two")
    assert tree(tmp_path / "one") == tree(tmp_path / "two")


def test_the_generator_refuses_to_overwrite_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gen-protos.sh"), str(tmp_path)],
        cwd=ROOT,
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "refusing" in result.stderr
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_the_stubs_import_as_package_modules() -> None:
    from shared.grpc.gen.chatbot.mcp.v1 import mcp_engine_pb2, mcp_engine_pb2_grpc
    from shared.grpc.gen.chatbot.security.v1 import security_hub_pb2, security_hub_pb2_grpc

    assert mcp_engine_pb2.DESCRIPTOR.name == "chatbot/mcp/v1/mcp_engine.proto"
    assert security_hub_pb2.DESCRIPTOR.package == "chatbot.security.v1"
    assert hasattr(mcp_engine_pb2_grpc, "McpEngineStub")
    assert hasattr(security_hub_pb2_grpc, "SecurityHubStub")
