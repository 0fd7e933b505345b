"""Browser fixtures: a real Chromium driven by Playwright, and the example app served over HTTP.

The browser is Debian's ``chromium`` (``/usr/bin/chromium``; ``E2E_CHROMIUM`` names another
binary), not one that Playwright downloads. Without it the e2e tests are skipped, unless
``E2E_REQUIRE_BROWSER=1`` (set by ``make e2e``) turns the skip into a failure, so CI cannot pass
by not running them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from example_app import create_app
from flask_token_vault_emulator import Emulator

from .browser import LiveApp, Shots

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "build" / "e2e"
README_SHOT = ROOT / "docs" / "_static" / "e2e-calendar.png"
CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 15_000

try:
    from playwright.sync_api import Browser, Page, ViewportSize, sync_playwright
except ImportError:  # pragma: no cover - only without the dev extra
    HAVE_PLAYWRIGHT = False
else:
    HAVE_PLAYWRIGHT = True

if not HAVE_PLAYWRIGHT and os.environ.get("E2E_REQUIRE_BROWSER") != "1":  # pragma: no cover
    # The test modules import Playwright; without it, skip them rather than fail collection.
    collect_ignore_glob = ["test_*.py"]


def _no_browser(reason: str) -> None:
    if os.environ.get("E2E_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (E2E_REQUIRE_BROWSER=1)", pytrace=False)
    pytest.skip(reason)


# Module scope, not session: Playwright's sync API keeps an asyncio loop marked as running in
# the main thread while it is open, which breaks later tests that run async views (asgiref).
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Launch one headless Chromium for the test module."""
    if not HAVE_PLAYWRIGHT:
        _no_browser("playwright is not installed (pip install -e '.[dev]')")
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        _no_browser(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


def _example_app(emu: Emulator, monkeypatch: pytest.MonkeyPatch, flow: str) -> LiveApp:
    """Build the example app against the session's emulator, ready to serve (not started)."""
    for key in (
        "AUTH0_DOMAIN",
        "AUTH0_CLIENT_ID",
        "AUTH0_CLIENT_SECRET",
        "AUTH0_AUDIENCE",
        "TOKEN_VAULT_CONNECT_FLOW",
    ):
        monkeypatch.delenv(key, raising=False)
    config = {
        "SECRET_KEY": "e2e-secret-key-0123456789abcdef-0123",
        "TOKEN_VAULT_CONNECT_FLOW": flow,
    }
    return LiveApp(create_app(config, emu), emu)


@pytest.fixture
def live_app(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveApp]:
    """Serve the example app, signing in through the connection, on the emulator's tenant."""
    server = _example_app(emu, monkeypatch, "authorize").start()
    yield server
    server.stop()


@pytest.fixture
def unstarted_app(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveApp]:
    """The example app with Connected Accounts, its address known, not serving yet."""
    server = _example_app(emu, monkeypatch, "connected_accounts")
    yield server
    server.stop()


def _tab(browser: Browser, viewport: ViewportSize, **options: Any) -> Iterator[Page]:
    """Open a page in a fresh browser context (no cookies); close the context afterwards."""
    context = browser.new_context(viewport=viewport, locale="en-GB", **options)
    context.set_default_timeout(TIMEOUT_MS)
    yield context.new_page()
    context.close()


def _shots(page: Page, request: pytest.FixtureRequest) -> Shots:
    """Give a screenshot taker for ``page`` writing to a clean build/e2e/<test name>/ folder."""
    folder = SHOTS / request.node.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return Shots(page, folder, README_SHOT)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """Open a page in a fresh browser context (no cookies), closed after the test."""
    yield from _tab(browser, {"width": 960, "height": 640})


#: A phone's screen (an iPhone 12 to 15 is 390 CSS pixels wide).
PHONE: ViewportSize = {"width": 390, "height": 844}


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    """Open a page in a fresh phone-sized context (390 px wide, a mobile viewport)."""
    yield from _tab(browser, PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)


@pytest.fixture
def phone_shots(phone: Page, request: pytest.FixtureRequest) -> Shots:
    """Give a screenshot taker for the phone page, writing to build/e2e/<test name>/."""
    return _shots(phone, request)


@pytest.fixture
def shots(page: Page, request: pytest.FixtureRequest) -> Shots:
    """Give a screenshot taker writing to a clean build/e2e/<test name>/ folder."""
    return _shots(page, request)
