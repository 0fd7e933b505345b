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

    # The API answers 401 with how to connect Google: the page says so in a sentence and
    # offers to, the error code kept under "Details".
    expect(page.locator("#spa-connect")).to_be_visible()
    expect(page.locator("#spa-status")).to_have_text(
        "Google is not connected for this account yet: connect it to load your calendar."
    )
    expect(page.locator("#spa-detail")).to_be_hidden()
    expect(page.locator("#spa-detail")).to_contain_text("federated_connection_refresh_token")
    assert "{" not in page.locator("#spa").inner_text()
    shots("not-connected")

    # Connect Google through the My Account API, on the emulator's consent page.
    page.click("#spa-connect")
    allow_calendar_on_connect_page(page, emu.url, shots, "emulator-connect")

    # Back on the page: the API answers with the calendar, through Token Vault.
    events = page.locator("#spa-events li")
    expect(events.first).to_be_visible()
    assert events.count() > 0
    expect(page.locator("#spa-status")).to_contain_text("answered 200")
    expect(page.locator("#spa-details")).to_be_hidden()
    shots("calendar")

    user_id = emu.user_id_for(EMAIL)
    assert emu.stats()["exchanges"]["by_subject_token_type"] == {"access_token": 1}
    assert emu.exchange_count(user_id, "google-oauth2") == 1
    assert api_calls and all(h["authorization"].startswith("Bearer ey") for h in api_calls)

    # A second call is served from the cache: no new exchange.
    page.click("#spa-call")
    expect(page.locator("#spa-status")).to_contain_text("answered 200")
    assert emu.exchange_count(user_id, "google-oauth2") == 1


def test_spa_on_a_refused_token_says_so_and_links_to_sign_in(
    page: Page, live_app: LiveApp, shots: Shots, emu: Emulator
) -> None:
    page.goto(live_app.url + "/spa")
    page.click("#spa-sign-in")
    page.fill("#email", EMAIL)
    page.click("#allow")
    expect(page.locator("#spa-connect")).to_be_visible()

    # The access token stops being good (expired, revoked): one sentence and a sign-in link.
    page.evaluate(
        """() => {
            const tokens = JSON.parse(sessionStorage.getItem("spa-tokens"));
            tokens.access_token = "expired." + tokens.access_token;
            sessionStorage.setItem("spa-tokens", JSON.stringify(tokens));
        }"""
    )
    page.click("#spa-call")
    expect(page.locator("#spa-status")).to_have_text(
        "Your sign-in has expired or was revoked. Sign in again."
    )
    expect(page.locator("#spa-detail")).to_contain_text("invalid_token")
    expect(page.locator("#spa-sign-in")).to_be_hidden()  # the link is the one way to sign in
    expect(page.locator("#spa-call")).to_be_hidden()
    assert len(page.locator("#spa").inner_text().splitlines()) <= 4
    shots("token-refused")
    page.click("#spa-sign-in-again")
    expect_url_starting(page, emu.url + "/authorize")
    expect(page.locator("#email")).to_be_visible()


def test_spa_signs_in_through_the_apps_own_sign_in_without_asking_again(
    page: Page, live_app: LiveApp, shots: Shots, emu: Emulator
) -> None:
    page.goto(live_app.url + "/")
    page.click("#sign-in")
    expect_url_starting(page, emu.url + "/authorize")
    page.fill("#email", EMAIL)
    page.click("#allow")
    expect(page.locator("#sign-out")).to_be_visible()

    login_pages: list[str] = []
    page.on(
        "response",
        lambda answer: (
            login_pages.append(answer.url)
            if answer.url.startswith(emu.url + "/authorize") and answer.status == 200
            else None
        ),
    )
    page.click("#nav-spa")
    # Signed in through the Auth0 session the app's sign-in started: no page, no second ask.
    expect(page.locator("#spa-connect")).to_be_visible()
    expect(page.locator("#spa-sign-in")).to_be_hidden()
    assert login_pages == []
    shots("spa-signed-in-silently")

    # Forgetting the tokens sticks: the page does not sign in again by itself.
    page.click("#spa-sign-out")
    page.reload()
    expect(page.locator("#spa-status")).to_have_text("Not signed in.")
    expect(page.locator("#spa-sign-in")).to_be_visible()
