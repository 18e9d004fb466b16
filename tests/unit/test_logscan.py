"""The log scan (tests/logscan.py) finds what it looks for, and is on for the whole run."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from tests import logscan
from tests.logscan import LogScan, ScanHandler, configured_needles


def test_it_looks_for_every_tenant_secret_fixture_secret_and_saved_message_body() -> None:
    needles = configured_needles()

    for expected in (
        "wa-app-secret-acme",
        "slack-signing-globex",
        "tg-secret-acme-0123",
        "webchat-token-secret-acme-0123456789",
        "ms-page-token-acme",  # tests/data/messenger/accounts.json
        "integration-api-secret-0123456789-abcdefgh",  # the API fixtures' JWT secret
        "analytics-hash-key-for-tests-0123456789abcdef",
    ):
        assert needles.get(expected) == "secret", expected
    assert needles["Hi, is my order on its way?"] == "message body"
    assert "hello" not in needles  # too short to tell a body from a word


def test_a_line_with_a_secret_a_jwt_or_a_body_is_found_in_any_encoding() -> None:
    scan = LogScan({"wa-app-secret-acme": "secret", 'Say "ça va?"': "message body"})
    lines = [
        "nothing to see",
        '{"message": "verifying with wa-app-secret-acme"}',
        json.dumps({"text": 'Say "ça va?"'}),  # as JsonFormatter writes it: escaped
        json.dumps({"text": 'Say "ça va?"'}, ensure_ascii=False),
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXZhbHVl",
    ]

    for line in lines:
        scan.scan(line, "test_x")

    assert (scan.lines, scan.found) == (5, 4)
    assert [f.what for f in scan.findings] == ["secret", "message body", "message body", "JWT"]
    assert scan.report()[0].startswith("log scan: 4 log line(s)")


def test_findings_are_bounded_and_lines_are_shown_cut() -> None:
    scan = LogScan({"s3cr3t-value": "secret"})
    for _ in range(logscan.MAX_FINDINGS + 10):
        scan.scan("x" * 10_000 + "s3cr3t-value" + "y" * 10_000, "t")

    assert scan.found == logscan.MAX_FINDINGS + 10
    assert len(scan.findings) == logscan.MAX_FINDINGS
    assert "s3cr3t-value" in scan.findings[0].line
    assert len(scan.findings[0].line) <= logscan.MAX_SHOWN + 2


def test_a_stack_log_file_is_scanned_with_the_stacks_own_secrets(tmp_path: Path) -> None:
    scan = LogScan({})
    (tmp_path / "logs").mkdir()
    (tmp_path / "tenants.json").write_text(
        json.dumps({"tenants": [{"id": "dev", "telegram": [{"secret_token": "dev-token-1234"}]}]})
    )
    (tmp_path / "logs" / "telegram-webhook.log").write_text("ok\nleaked dev-token-1234\n")
    previous, logscan._SCAN = logscan._SCAN, scan
    try:
        logscan.scan_stack(tmp_path, "stack")
    finally:
        logscan._SCAN = previous

    assert (scan.files, scan.lines, scan.found) == (1, 2, 1)
    assert scan.findings[0].where == "stack: logs/telegram-webhook.log"


def test_the_scan_sees_every_log_line_of_this_run() -> None:
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, ScanHandler)]
    assert len(handlers) == 1
    before = handlers[0].scan.lines

    logging.getLogger("shared.test").info("a harmless line")

    assert handlers[0].scan.lines == before + 1
