"""What the browser tests build on: the example app served over HTTP, and a screenshot taker."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from flask_token_vault.emulator import Emulator

if TYPE_CHECKING:
    from playwright.sync_api import Page


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
        """Stop serving (if it was started) and wait for the thread."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=10)
        self._server.server_close()


class Shots:
    """Save numbered full-page screenshots of one test under build/e2e/<test>/."""

    def __init__(self, page: Page, folder: Path, readme_shot: Path) -> None:
        self.page = page
        self.folder = folder
        self.readme_shot = readme_shot
        self.count = 0

    def __call__(self, name: str) -> Path:
        """Save the page as ``NN-name.png`` and return the file."""
        self.count += 1
        path = self.folder / f"{self.count:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def publish(self, shot: Path) -> bool:
        """Copy ``shot`` to docs/_static/e2e-calendar.png (the README's picture) when asked.

        Only with ``E2E_PUBLISH_SCREENSHOT=1`` (``make e2e-screenshot``): a plain test run
        leaves the tracked picture, and so the working tree, untouched. Return whether it
        copied.
        """
        if os.environ.get("E2E_PUBLISH_SCREENSHOT") != "1":
            return False
        self.readme_shot.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, self.readme_shot)
        return True
