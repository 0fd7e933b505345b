"""Steps the browser tests share; only the test modules import it, so playwright is there."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from .browser import Shots


def expect_url_starting(page: Page, start: str) -> None:
    """Wait until the page's address starts with ``start``."""
    expect(page).to_have_url(re.compile("^" + re.escape(start)))


def expect_signed_out(page: Page) -> None:
    """See that the page offers to sign in, and nothing to sign out of."""
    expect(page.locator("#sign-in")).to_be_visible()
    expect(page.locator("#sign-out")).to_have_count(0)


def allow_calendar_on_connect_page(page: Page, emulator_url: str, shots: Shots, name: str) -> None:
    """On the emulator's Connected Accounts page, see that it asks for the calendar; allow."""
    expect_url_starting(page, emulator_url + "/connected-accounts/connect")
    expect(page.locator("#connection-scopes")).to_contain_text("calendar.readonly")
    shots(name)
    page.click("#allow")
