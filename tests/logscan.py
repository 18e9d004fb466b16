"""Every log line of a test run, scanned for secrets and message bodies (docs/reliability.md).

A pytest plugin (registered by tests/conftest.py): from the start of the session to its end,
every log record that reaches the root logger is formatted as production formats it
(:class:`shared.logs.JsonFormatter`, at INFO as production logs) and searched for

- every configured secret: the test tenants' app secrets, signing secrets, tokens and verify
  tokens (tests/conftest.py ``TENANTS``, tests/data/messenger/accounts.json), and the secrets the
  fixtures configure (the API's JWT secret, the analytics hash key, ...);
- anything shaped like a JWT (a bearer token, a web chat visitor token);
- the text of every message in the saved payloads (tests/data/<channel>/), e.g.
  "Hi, is my order on its way?".

The end-to-end stacks write their processes' logs to files (``<state dir>/logs``): the e2e
conftest hands each stack's files to :func:`scan_stack` when the stack stops, with the stack's
own secrets (its dev tenant's ``tenants.json``, the API's JWT secret, the analytics hash key).

Lines are not kept: each is searched as it is written, and only offending lines are (the first
:data:`MAX_FINDINGS`, cut to :data:`MAX_SHOWN` characters). At the end of the session any
finding fails the run, with the lines printed. The search is exact text, so the result is the
same on every run: it cannot make the suite flaky, only fail it when a leak is there.
"""

from __future__ import annotations

import importlib
import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from shared.logs import JsonFormatter

DATA = Path(__file__).parent / "data"
MAX_FINDINGS = 50
MAX_SHOWN = 400
MIN_SECRET_CHARS = 8
MIN_BODY_CHARS = 15  # a message body worth finding: a sentence, not "hello" or "Shipping"

# Keys of the tenant directory whose values are secrets (shared/channels/*/account.py).
SECRET_KEYS = frozenset(
    {
        "app_secret",
        "verify_token",
        "access_token",
        "signing_secret",
        "bot_token",
        "secret_token",
        "token_secret",
        "page_access_token",
    }
)
# Module constants with the secrets fixtures configure: names ending in SECRET or HASH_KEY.
SECRET_MODULES = (
    "tests.integration.api_support",
    "tests.integration.conftest",
    "tests.unit.api.test_auth",
)
BODY_KEYS = frozenset({"text", "body", "caption"})
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")


@dataclass(frozen=True)
class Finding:
    what: str  # "secret", "JWT" or "message body"
    where: str  # the test (or the stack's log file) that wrote the line
    line: str


@dataclass
class LogScan:
    needles: dict[str, str]  # text → what it is
    findings: list[Finding] = field(default_factory=list)
    found: int = 0
    lines: int = 0
    files: int = 0
    where: str = "session start"
    _pattern: re.Pattern[str] | None = None

    def pattern(self) -> re.Pattern[str]:
        if self._pattern is None:
            # Each needle as written and as JSON escapes it (a quote or a non-ASCII character).
            forms = {form for n in self.needles for form in _forms(n)}
            ordered = sorted(forms, key=len, reverse=True)
            self._pattern = re.compile("|".join([JWT.pattern, *map(re.escape, ordered)]))
        return self._pattern

    def add(self, needles: dict[str, str]) -> None:
        self.needles.update(needles)
        self._pattern = None

    def scan(self, line: str, where: str) -> None:
        self.lines += 1
        match = self.pattern().search(line)
        if match is None:
            return
        self.found += 1
        if len(self.findings) < MAX_FINDINGS:
            text = match.group(0)
            what = "JWT" if JWT.fullmatch(text) else self._what(text)
            self.findings.append(Finding(what, where, _shown(line, match)))

    def _what(self, text: str) -> str:
        for needle, what in self.needles.items():
            if text in _forms(needle):
                return what
        return "secret"

    def scan_file(self, path: Path, where: str) -> None:
        self.files += 1
        with path.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                self.scan(line.rstrip("\n"), where)

    def report(self) -> list[str]:
        out = [
            f"log scan: {self.found} log line(s) hold a secret, a token or a message body "
            f"(of {self.lines} lines scanned; the first {len(self.findings)} shown):"
        ]
        for finding in self.findings:
            out.append(f"  [{finding.what}] {finding.where}")
            out.append(f"      {finding.line}")
        return out


def _forms(needle: str) -> set[str]:
    return {needle, json.dumps(needle, ensure_ascii=False)[1:-1], json.dumps(needle)[1:-1]}


def _shown(line: str, match: re.Match[str]) -> str:
    start = max(0, match.start() - MAX_SHOWN // 2)
    shown = line[start : start + MAX_SHOWN]
    return ("…" if start else "") + shown + ("…" if start + MAX_SHOWN < len(line) else "")


# --- what to look for ---------------------------------------------------------------------------


def secrets_in(document: Any) -> Iterator[str]:
    """Every value under a secret key of a tenant directory document."""
    if isinstance(document, dict):
        for key, value in document.items():
            if key in SECRET_KEYS and isinstance(value, str) and len(value) >= MIN_SECRET_CHARS:
                yield value
            else:
                yield from secrets_in(value)
    elif isinstance(document, list):
        for value in document:
            yield from secrets_in(value)


def bodies_in(document: Any, key: str | None = None) -> Iterator[str]:
    if isinstance(document, dict):
        for k, value in document.items():
            yield from bodies_in(value, k)
    elif isinstance(document, list):
        for value in document:
            yield from bodies_in(value, key)
    elif isinstance(document, str) and key in BODY_KEYS and len(document) >= MIN_BODY_CHARS:
        yield document


def configured_needles() -> dict[str, str]:
    from tests.conftest import TENANTS

    needles = {s: "secret" for s in secrets_in(TENANTS)}
    needles.update({s: "secret" for s in secrets_in(_read(DATA / "messenger" / "accounts.json"))})
    for name in SECRET_MODULES:
        module = importlib.import_module(name)
        for constant, value in vars(module).items():
            named = constant.isupper() and constant.endswith(("SECRET", "HASH_KEY"))
            if named and isinstance(value, str) and len(value) >= MIN_SECRET_CHARS:
                needles[value] = "secret"
    for path in sorted(DATA.glob("*/*.json")):
        if path.parent.name in ("cloudevents", "deploy"):
            continue
        for body in bodies_in(_read(path)):
            needles.setdefault(body, "message body")
    return needles


def _read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


# --- the plugin ---------------------------------------------------------------------------------


class ScanHandler(logging.Handler):
    """Formats each record as production does and hands the line to the scan."""

    def __init__(self, scan: LogScan) -> None:
        super().__init__(level=logging.NOTSET)
        self.scan = scan
        self.formatter_ = JsonFormatter("test")

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.formatter_.format(record)
        except Exception:  # a record that cannot be formatted is the logging module's to report
            return
        self.scan.scan(line, self.scan.where)


_SCAN: LogScan | None = None


class LogScanPlugin:
    def __init__(self) -> None:
        self.scan = LogScan(configured_needles())
        self.handler = ScanHandler(self.scan)

    def install(self) -> None:
        root = logging.getLogger()
        if self.handler not in root.handlers:
            root.addHandler(self.handler)
        if root.level > logging.INFO or root.level == logging.NOTSET:
            root.setLevel(logging.INFO)  # what production logs (shared.logs.configure)
            kafka = logging.getLogger("kafka")  # chatty at INFO; production mutes it too
            if kafka.level == logging.NOTSET:
                kafka.setLevel(logging.WARNING)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        global _SCAN
        _SCAN = self.scan
        self.install()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        self.scan.where = item.nodeid
        self.install()  # a test (or shared.logs.configure) may have replaced the handlers

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        global _SCAN
        logging.getLogger().removeHandler(self.handler)
        _SCAN = None
        if self.scan.found and session.exitstatus in (0, pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        scan = self.scan
        if scan.found:
            terminalreporter.section("log scan", sep="=", red=True, bold=True)
            for line in scan.report():
                terminalreporter.write_line(line)
        else:
            terminalreporter.write_line(
                f"log scan: {scan.lines} log lines ({scan.files} files) hold no secret, "
                f"token or message body"
            )


def scan_stack(state_dir: Path, name: str) -> None:
    """Scan a stopped end-to-end stack's log files, with its own dev tenant's secrets too."""
    scan = _SCAN
    if scan is None:
        return
    tenants = state_dir / "tenants.json"
    if tenants.exists():
        scan.add({s: "secret" for s in secrets_in(_read(tenants))})
    for file_name, key in (("api.json", "jwt_secret"), ("analytics.json", "hash_key")):
        path = state_dir / file_name
        value = _read(path).get(key) if path.exists() else None
        if isinstance(value, str) and len(value) >= MIN_SECRET_CHARS:
            scan.add({value: "secret"})
    for path in sorted(_log_files(state_dir)):
        scan.scan_file(path, f"{name}: {path.relative_to(state_dir)}")


def _log_files(state_dir: Path) -> Iterable[Path]:
    return (state_dir / "logs").glob("*.log")
