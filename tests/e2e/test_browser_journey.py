"""A visitor's journey through the example app in a real Chromium, against the emulator."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from flask_token_vault.cli import cli

from .browser import LiveApp, Shots

pytestmark = pytest.mark.e2e

EMAIL = "casey@example.com"
NAME = "Casey Jones"
CAL_WRITE = "https://www.googleapis.com/auth/calendar.events"


def allow_on_emulator(page: Page, live_app: LiveApp, shots: Shots, name: str) -> None:
    """Sign in on the emulator's page as EMAIL (as a person would) and allow."""
    expect(page).to_have_url(re.compile("^" + re.escape(live_app.emulator.url) + "/authorize"))
    page.fill("#email", EMAIL)
    page.fill("#name", NAME)
    shots(name)
    page.click("#allow")
    expect(page).to_have_url(re.compile("^" + re.escape(live_app.url)))


def sign_in_and_connect_google(page: Page, live_app: LiveApp, shots: Shots) -> None:
    """Sign in from the home page, then connect Google by opening the calendar."""
    page.goto(live_app.url + "/")
    expect(page.locator("#sign-in")).to_be_visible()
    shots("home")
    page.click("#sign-in")
    allow_on_emulator(page, live_app, shots, "emulator-sign-in")
    expect(page.locator("#sign-out")).to_be_visible()
    expect(page.locator("#connection-google-oauth2")).to_contain_text("not connected")
    shots("signed-in")

    page.click("#nav-calendar")
    expect(page.locator("#connection-scopes")).to_contain_text("calendar.readonly")
    allow_on_emulator(page, live_app, shots, "emulator-connect-google")
    expect(page).to_have_url(live_app.url + "/calendar")


def test_sign_in_connect_step_up_disconnect_sign_out(
    page: Page, live_app: LiveApp, shots: Shots
) -> None:
    sign_in_and_connect_google(page, live_app, shots)
    events = page.locator("#events li")
    expect(events.first).to_be_visible()
    assert events.count() > 0
    expect(page.locator("#ask-write")).to_be_visible()
    shots.publish(shots("calendar"))

    page.click("#ask-write")
    expect(page.locator("#connection-scopes")).to_contain_text(CAL_WRITE)
    allow_on_emulator(page, live_app, shots, "emulator-step-up")
    expect(page).to_have_url(live_app.url + "/calendar")
    expect(page.locator("#write-access")).to_be_visible()
    expect(page.locator("#ask-write")).to_have_count(0)
    shots("write-access")

    page.goto(live_app.url + "/")
    card = page.locator("#connection-google-oauth2")
    expect(card.locator(".pill")).to_have_text("connected")
    expect(card).to_contain_text(CAL_WRITE)
    expect(page.locator("#connection-windowslive")).to_contain_text("not connected")
    shots("connections")

    card.locator("#disconnect-google-oauth2").click()
    expect(page).to_have_url(live_app.url + "/")
    expect(card.locator(".pill")).to_have_text("not connected")
    expect(page.locator("#disconnect-google-oauth2")).to_have_count(0)
    shots("disconnected")
    # With Google gone from the vault, the calendar asks to connect it again.
    page.click("#nav-calendar")
    expect(page.locator("#connection-scopes")).to_contain_text("calendar.readonly")
    page.goto(live_app.url + "/")

    page.click("#sign-out")
    expect(page).to_have_url(live_app.url + "/")
    expect(page.locator("#sign-in")).to_be_visible()
    expect(page.locator("#sign-out")).to_have_count(0)
    shots("signed-out")

    # The same browser, signed out, calling the page as an API client.
    answer = page.request.get(
        live_app.url + "/calendar", headers={"Accept": "application/json"}, max_redirects=0
    )
    assert answer.status == 401
    body = answer.json()
    assert body["error"] == "login_required"
    assert body["connection"] == "google-oauth2"
    assert body["connect_url"].startswith(live_app.url + "/auth/connect/google-oauth2?")
    assert exchanges_made(live_app) >= 2


def exchanges_made(live_app: LiveApp) -> int:
    """Count the Token Vault exchanges the emulator answered for EMAIL on Google."""
    emulator = live_app.emulator
    return emulator.exchange_count(emulator.user_id_for(EMAIL), "google-oauth2")


def test_denying_consent_shows_an_error_page(page: Page, live_app: LiveApp, shots: Shots) -> None:
    page.goto(live_app.url + "/calendar")
    expect(page.locator("#connection")).to_have_text("google-oauth2")
    shots("emulator-sign-in")
    page.click("#deny")
    expect(page.locator("main")).to_contain_text("Access was not granted")
    expect(page.locator(".card code")).to_have_text("access_denied")
    expect(page.locator("#sign-in")).to_be_visible()
    shots("denied")


def test_setup_on_a_bare_tenant_then_the_connected_accounts_journey(
    page: Page, unstarted_app: LiveApp, shots: Shots
) -> None:
    """A new tenant, `flask token-vault setup`, then sign in, connect, calendar, disconnect."""
    emulator = unstarted_app.emulator
    emulator.bare_tenant()
    setup = unstarted_app.app.test_cli_runner().invoke(
        cli, ["setup", "--base-url", unstarted_app.url]
    )
    assert setup.exit_code == 0, setup.output
    assert "8 changed, 0 unchanged, 0 skipped, 0 not made." in setup.output
    live = unstarted_app.start()

    page.goto(live.url + "/")
    page.click("#sign-in")
    allow_on_emulator(page, live, shots, "ca-emulator-sign-in")
    # The home page lists what the tenant lets this user connect (My Account API).
    expect(page.locator("#offered-by")).to_contain_text("My Account API")
    expect(page.locator("#connection-google-oauth2")).to_contain_text("not connected")
    expect(page.locator("#connection-windowslive")).to_contain_text("not connected")
    shots("ca-signed-in")

    # Connect Google through Connected Accounts: Auth0's consent page, not a sign-in.
    page.click("#nav-calendar")
    expect(page).to_have_url(
        re.compile("^" + re.escape(emulator.url) + "/connected-accounts/connect\\?ticket=")
    )
    expect(page.locator("#connection")).to_have_text("google-oauth2")
    expect(page.locator("#connection-scopes")).to_contain_text("calendar.readonly")
    shots("ca-emulator-consent")
    page.click("#allow")
    expect(page).to_have_url(live.url + "/calendar")
    expect(page.locator("#events li").first).to_be_visible()
    shots("ca-calendar")
    assert emulator.exchange_count(emulator.user_id_for(EMAIL), "google-oauth2") >= 1

    page.goto(live.url + "/")
    card = page.locator("#connection-google-oauth2")
    expect(card.locator(".pill")).to_have_text("connected")
    expect(card).to_contain_text("calendar.readonly")
    card.locator("#disconnect-google-oauth2").click()
    expect(page).to_have_url(live.url + "/")
    expect(card.locator(".pill")).to_have_text("not connected")
    shots("ca-disconnected")
    assert emulator.state.tokensets_for(emulator.user_id_for(EMAIL)) == []

    # The logout URL setup registered is where Auth0 sends the browser back.
    page.click("#sign-out")
    expect(page).to_have_url(live.url + "/")
    expect(page.locator("#sign-in")).to_be_visible()
