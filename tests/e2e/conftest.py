"""Browser fixtures: a real Chromium driven by Playwright, and the example app served over HTTP.

The browser is Debian's ``chromium`` (``/usr/bin/chromium``; ``E2E_CHROMIUM`` names another
binary), not one that Playwright downloads. Without it the e2e tests are skipped, unless
``E2E_REQUIRE_BROWSER=1`` (set by ``make e2e``) turns the skip into a failure, so CI cannot pass
by not running them.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from example_app import create_app
from flask_token_vault.emulator import Emulator

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
    from playwright.sync_api import Browser, Page, sync_playwright
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


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Keep the test output free of access-log lines."""


class LiveApp:
    """The example app served on a free 127.0.0.1 port, with the emulator it talks to."""

    def __init__(self, app: Flask, emulator: Emulator) -> None:
        self.app = app
        self.emulator = emulator
        self._server: BaseWSGIServer = make_server(
            "127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler
        )
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )

    def start(self) -> LiveApp:
        """Serve from a daemon thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        self._server.shutdown()
        self._thread.join(timeout=10)
        self._server.server_close()


@pytest.fixture
def live_app(
    token_vault_emulator_reset: Emulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LiveApp]:
    """Serve ``example_app.create_app`` against the plugin's (reset) emulator over real HTTP."""
    for key in ("AUTH0_DOMAIN", "AUTH0_CLIENT_ID", "AUTH0_CLIENT_SECRET", "AUTH0_AUDIENCE"):
        monkeypatch.delenv(key, raising=False)
    app = create_app({"SECRET_KEY": "e2e-secret-key-0123456789abcdef"}, token_vault_emulator_reset)
    server = LiveApp(app, token_vault_emulator_reset).start()
    yield server
    server.stop()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """Open a page in a fresh browser context (no cookies), closed after the test."""
    context = browser.new_context(viewport={"width": 960, "height": 640}, locale="en-GB")
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    yield tab
    context.close()


class Shots:
    """Save numbered full-page screenshots of one test under build/e2e/<test>/."""

    def __init__(self, page: Page, folder: Path) -> None:
        self.page = page
        self.folder = folder
        self.count = 0

    def __call__(self, name: str) -> Path:
        """Save the page as ``NN-name.png`` and return the file."""
        self.count += 1
        path = self.folder / f"{self.count:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def publish(self, shot: Path) -> None:
        """Copy ``shot`` to docs/_static/e2e-calendar.png, the picture the README shows."""
        README_SHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, README_SHOT)


@pytest.fixture
def shots(page: Page, request: pytest.FixtureRequest) -> Shots:
    """Give a screenshot taker writing to a clean build/e2e/<test name>/ folder."""
    folder = SHOTS / request.node.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return Shots(page, folder)
