"""``python -m shared.kafkasource``: arguments, sink files and the manifest check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.kafkasource.__main__ import _sink_arg, _sinks_file, main


def test_check_prints_what_the_manifests_say(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5  # one line per KafkaSource
    assert lines[0].startswith("message-processor: chatbot.platform.messages.inbound")
    assert "dead letters → chatbot.platform.dlq.message-processor" in lines[0]


def test_broken_manifests_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--manifests", str(tmp_path), "--check"]) == 2
    assert "kafkasource:" in capsys.readouterr().err


def test_no_sink_urls_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--brokers", "127.0.0.1:1"]) == 2
    assert "no KafkaSource has a sink URL" in capsys.readouterr().err


def test_sinks_from_the_local_stack_endpoints_or_a_plain_mapping(tmp_path: Path) -> None:
    endpoints = tmp_path / "endpoints.json"
    endpoints.write_text(json.dumps({"functions": {"a": {"url": "http://x:1"}}, "kafka": {}}))
    assert _sinks_file(endpoints) == {"a": "http://x:1"}
    endpoints.write_text(json.dumps({"a": "http://x:1"}))
    assert _sinks_file(endpoints) == {"a": "http://x:1"}
    assert _sinks_file(None) == {}


def test_sink_argument() -> None:
    assert _sink_arg("message-processor=http://127.0.0.1:8085") == (
        "message-processor",
        "http://127.0.0.1:8085",
    )
    with pytest.raises(Exception, match="NAME=http"):
        _sink_arg("message-processor")
