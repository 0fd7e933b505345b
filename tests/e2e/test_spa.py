"""The example's single-page screen in a real Chromium: an access token, the API, Token Vault."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from flask_token_vault_emulator import Emulator

from .browser import LiveApp, Shots
from .steps import allow_calendar_on_connect_page, expect_url_starting

pytestmark = pytest.mark.e2e

EMAIL = "sam@example.com"


def test_spa_signs_in_connects_google_and_calls_the_api_with_its_token(
    page: Page, live_app: LiveApp, shots: Shots, emu: Emulator
) -> None:
    api_calls: list[dict[str, str]] = []
    page.on(
        "request",
        lambda request: (
            api_calls.append(request.headers)
            if request.url.startswith(live_app.url + "/api/")
            else None
        ),
    )
    page.goto(live_app.url + "/spa")
    expect(page.locator("#spa-status")).to_have_text("Not signed in.")
    shots("spa")

    # Sign in with the SPA's own client: the emulator's login page, then back with a code.
    page.click("#spa-sign-in")
    expect_url_starting(page, emu.url + "/authorize")
    assert "audience=" in page.url and "client_id=" + emu.spa_client_id in page.url
    page.fill("#email", EMAIL)
    shots("emulator-sign-in")
    page.click("#allow")

    # The API answers 401 with how to connect Google: the page offers to.
    expect(page.locator("#spa-connect")).to_be_visible()
    expect(page.locator("#spa-status")).to_contain_text("401")
    expect(page.locator("#spa-answer")).to_contain_text("connected-accounts/connect")
    shots("not-connected")

    # Connect Google through the My Account API, on the emulator's consent page.
    page.click("#spa-connect")
    allow_calendar_on_connect_page(page, emu.url, shots, "emulator-connect")

    # Back on the page: the API answers with the calendar, through Token Vault.
    events = page.locator("#spa-events li")
    expect(events.first).to_be_visible()
    assert events.count() > 0
    expect(page.locator("#spa-status")).to_contain_text("answered 200")
    expect(page.locator("#spa-answer")).to_be_hidden()
    shots("calendar")

    user_id = emu.user_id_for(EMAIL)
    assert emu.stats()["exchanges"]["by_subject_token_type"] == {"access_token": 1}
    assert emu.exchange_count(user_id, "google-oauth2") == 1
    assert api_calls and all(h["authorization"].startswith("Bearer ey") for h in api_calls)

    # A second call is served from the cache: no new exchange.
    page.click("#spa-call")
    expect(page.locator("#spa-status")).to_contain_text("answered 200")
    assert emu.exchange_count(user_id, "google-oauth2") == 1
