"""What the browser tests build on: the example app served over HTTP, and a screenshot taker."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from flask import Flask

from flask_token_vault_emulator import Emulator
from tests.helpers.servers import LiveServer

if TYPE_CHECKING:
    from playwright.sync_api import Page


class LiveApp(LiveServer):
    """The example app served on a free 127.0.0.1 port, with the emulator it talks to."""

    def __init__(self, app: Flask, emulator: Emulator) -> None:
        super().__init__(app)
        self.app = app
        self.emulator = emulator


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
