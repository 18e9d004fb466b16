"""The web chat widget in a real browser against the whole local stack.

Debian's chromium (``/usr/bin/chromium``), driven by Playwright, opens the webchat function's
demo page (``endpoints.json``: ``tenant.webchat.demo_url``), types a message, presses Enter
and sees the bot's reply arrive on the live stream — through Kafka, the message processor, the
reference engine and the outbound dispatcher. Without chromium the tests skip (and say how to
install it), except under CI, where they fail. Screenshots are kept under the test's tmp dir
and copied to ``test-artifacts/`` for CI to keep.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Request, expect, sync_playwright

from tests.e2e.conftest import module_stack
from tests.unit.monitoring.support import require_binary

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
RULES = json.loads((resources.files("shared.bot") / "default_rules.json").read_text())
GREETING = RULES["greeting"]["answer"]
HOURS = next(faq["answer"] for faq in RULES["faq"] if faq["intent"] == "faq_hours")
REPLY_TIMEOUT_MS = 30_000  # the first reply waits for the dispatcher's consumer groups


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with module_stack(tmp_path_factory) as (_running, endpoints):
        yield str(endpoints["tenant"]["webchat"]["demo_url"])


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = require_binary("chromium")  # Playwright's own browser download is not used
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True)
        yield launched
        launched.close()


class Watched:
    """A page and what it did: the requests it made and the errors it logged (a Content-
    Security-Policy violation is one)."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.requests: list[str] = []
        self.errors: list[str] = []
        page.on("request", self._request)
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def _request(self, request: Request) -> None:
        self.requests.append(f"{request.method} {request.url}")

    def called(self, method: str, path: str) -> bool:
        return any(r.startswith(method) and f"{path}" in r for r in self.requests)


def open_demo(browser: Browser, url: str, **context: Any) -> Watched:
    page = browser.new_page(**context)
    watched = Watched(page)
    page.goto(url)
    return watched


def screenshot(page: Page, tmp_path: Path, name: str) -> Path:
    """Saved in the test's tmp dir and copied to test-artifacts/ (gitignored; CI keeps it)."""
    path = tmp_path / name
    page.screenshot(path=str(path))
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(path, ARTIFACTS / name)
    return path


def test_a_visitor_says_hello_and_sees_the_bots_reply(
    demo_url: str, browser: Browser, tmp_path: Path
) -> None:
    watched = open_demo(browser, demo_url, viewport={"width": 1024, "height": 768})
    page = watched.page
    message = page.get_by_role("textbox", name="Message")
    expect(message).to_be_focused()  # data-open: the window opens with the focus in it

    message.fill("Hello")
    message.press("Enter")

    log = page.get_by_role("log", name="Conversation")
    expect(log).to_have_attribute("aria-live", "polite")
    expect(log.get_by_text("Hello", exact=True)).to_be_visible()
    expect(log.get_by_text(GREETING)).to_be_visible(timeout=REPLY_TIMEOUT_MS)
    expect(page.get_by_role("button", name="Opening hours")).to_be_visible()
    expect(log.get_by_text("Not sent.")).to_have_count(0)
    expect(message).to_have_value("")
    path = screenshot(page, tmp_path, "webchat-widget.png")

    assert path.stat().st_size > 0
    assert watched.called("POST", "/sessions")
    assert watched.called("POST", "/messages")
    assert watched.called("GET", "/stream?token=")  # live, not by polling
    assert not watched.called("GET", "/messages")
    assert watched.errors == []
    page.close()


def test_the_widget_works_by_keyboard_on_a_narrow_screen(
    demo_url: str, browser: Browser, tmp_path: Path
) -> None:
    watched = open_demo(browser, demo_url, viewport={"width": 360, "height": 640}, is_mobile=True)
    page = watched.page
    panel = page.get_by_role("region", name="Chat with us")
    launcher = page.get_by_role("button", name="Chat with us")
    box = panel.bounding_box()
    assert box is not None and box["width"] == 360 and box["height"] == 640  # the whole screen

    page.keyboard.press("Escape")  # closes, and the focus goes back to the launcher
    expect(panel).to_be_hidden()
    expect(launcher).to_be_focused()
    expect(launcher).to_have_attribute("aria-expanded", "false")
    page.keyboard.press("Enter")
    expect(panel).to_be_visible()
    expect(page.get_by_role("textbox", name="Message")).to_be_focused()

    page.keyboard.type("hi")
    page.keyboard.press("Enter")
    hours = page.get_by_role("button", name="Opening hours")
    expect(hours).to_be_visible(timeout=REPLY_TIMEOUT_MS)
    hours.focus()
    page.keyboard.press("Enter")  # a quick reply, chosen with the keyboard
    expect(page.get_by_role("log").get_by_text(HOURS)).to_be_visible(timeout=REPLY_TIMEOUT_MS)
    expect(page.get_by_role("textbox", name="Message")).to_be_focused()
    screenshot(page, tmp_path, "webchat-widget-narrow.png")

    assert watched.errors == []
    page.close()


def test_without_eventsource_the_widget_polls_and_a_reload_shows_the_conversation(
    demo_url: str, browser: Browser
) -> None:
    context = browser.new_context()
    context.add_init_script("delete window.EventSource;")  # a browser without SSE
    page = context.new_page()
    watched = Watched(page)
    page.goto(demo_url)
    message = page.get_by_role("textbox", name="Message")

    message.fill("Hello")
    message.press("Enter")

    log = page.get_by_role("log", name="Conversation")
    expect(log.get_by_text(GREETING)).to_be_visible(timeout=REPLY_TIMEOUT_MS)
    assert watched.called("GET", "/messages")
    assert not watched.called("GET", "/stream")

    # The token is kept: after a reload the same conversation is read back, once.
    page.reload()
    log = page.get_by_role("log", name="Conversation")
    expect(log.get_by_text(GREETING)).to_have_count(1, timeout=REPLY_TIMEOUT_MS)
    expect(log.get_by_text("Hello", exact=True)).to_have_count(1)
    sessions = [r for r in watched.requests if r.startswith("POST") and r.endswith("/sessions")]
    assert len(sessions) == 1
    assert watched.errors == []
    context.close()
