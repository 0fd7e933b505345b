"""A visitor's journey through the example app in a real Chromium, against the emulator."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from flask_token_vault.admin.cli import cli
from flask_token_vault_emulator import Emulator

from .browser import LiveApp, Shots
from .steps import allow_calendar_on_connect_page, expect_signed_out, expect_url_starting

pytestmark = pytest.mark.e2e

EMAIL = "casey@example.com"
NAME = "Casey Jones"
CAL_READ = "https://www.googleapis.com/auth/calendar.readonly"
CAL_WRITE = "https://www.googleapis.com/auth/calendar.events"


def on_emulator(page: Page, live_app: LiveApp) -> None:
    expect_url_starting(page, live_app.emulator.url + "/authorize")


def sign_in_on_emulator(page: Page, live_app: LiveApp, shots: Shots, name: str) -> None:
    """Sign in on the emulator's page as EMAIL (as a person would) and allow."""
    on_emulator(page, live_app)
    expect(page.locator("#page-title")).to_have_text("Sign in")
    page.fill("#email", EMAIL)
    page.fill("#name", NAME)
    shots(name)
    page.click("#allow")
    expect_url_starting(page, live_app.url)


def allow_connect_on_emulator(page: Page, live_app: LiveApp, shots: Shots, name: str) -> None:
    """Allow a connect: the emulator knows who is signed in and only asks for consent."""
    on_emulator(page, live_app)
    expect(page.locator("#page-title")).to_have_text(re.compile("^Connect "))
    expect(page.locator("#signed-in-as")).to_contain_text(EMAIL)
    expect(page.locator("#email")).to_have_count(0)  # nobody else can be picked here
    shots(name)
    page.click("#allow")
    expect_url_starting(page, live_app.url)


def sign_in_and_connect_google(page: Page, live_app: LiveApp, shots: Shots) -> None:
    """Sign in from the home page, then connect Google with its button."""
    page.goto(live_app.url + "/")
    expect_signed_out(page)
    shots("home")
    page.click("#sign-in")
    sign_in_on_emulator(page, live_app, shots, "emulator-sign-in")
    expect(page.locator("#sign-out")).to_be_visible()
    expect(page.locator("#connection-google-oauth2")).to_contain_text("not connected")
    shots("signed-in")

    page.locator("#connection-google-oauth2 a.button").click()
    # The scopes the app's pages need are asked for now, once.
    expect(page.locator("#connection-scopes")).to_contain_text("calendar.readonly")
    allow_connect_on_emulator(page, live_app, shots, "emulator-connect-google")
    expect(page).to_have_url(live_app.url + "/")
    # Still the same user: connecting did not sign the app in as anyone else.
    expect(page.locator("#user-name")).to_have_text(NAME)
    card = page.locator("#connection-google-oauth2")
    expect(card.locator(".pill")).to_have_text("connected")
    expect(card).to_contain_text(CAL_READ)


def test_sign_in_connect_step_up_disconnect_sign_out(
    page: Page, live_app: LiveApp, shots: Shots
) -> None:
    sign_in_and_connect_google(page, live_app, shots)
    # Right after connecting, the calendar opens with no second trip to the consent page.
    page.click("#nav-calendar")
    expect(page).to_have_url(live_app.url + "/calendar")
    events = page.locator("#events li")
    expect(events.first).to_be_visible()
    assert events.count() > 0
    expect(page.locator("#ask-write")).to_be_visible()
    shots.publish(shots("calendar"))

    # Adding an event asks Google once for the scope that allows it, then uses it.
    page.click("#ask-write")
    expect(page.locator("#connection-scopes")).to_contain_text(CAL_WRITE)
    allow_connect_on_emulator(page, live_app, shots, "emulator-step-up")
    expect(page).to_have_url(live_app.url + "/calendar/new")
    page.fill("#event-summary", "Team lunch")
    shots("new-event")
    page.click("#event-add")
    expect(page).to_have_url(live_app.url + "/calendar")
    expect(page.locator(".flash")).to_contain_text("Added “Team lunch”")
    expect(page.locator("#add-event")).to_be_visible()
    expect(page.locator("#ask-write")).to_have_count(0)
    shots("event-added")

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
    expect(page.locator("#signed-in-as")).to_contain_text(EMAIL)
    page.goto(live_app.url + "/")

    page.click("#sign-out")
    expect(page).to_have_url(live_app.url + "/")
    expect_signed_out(page)
    shots("signed-out")
    # Signing out ended the emulator's session too: the next sign-in asks who you are.
    page.click("#sign-in")
    on_emulator(page, live_app)
    expect(page.locator("#page-title")).to_have_text("Sign in")
    page.goto(live_app.url + "/")

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


def test_denying_consent_shows_a_friendly_error_page(
    page: Page, live_app: LiveApp, shots: Shots
) -> None:
    page.goto(live_app.url + "/calendar")
    expect(page.locator("#connection")).to_have_text("Google (google-oauth2)")
    shots("emulator-sign-in")
    page.click("#deny")
    expect(page.locator("#error-title")).to_have_text("Access not granted")
    expect(page.locator("main")).to_contain_text("Access to your Google account was not granted")
    expect(page.locator("main")).not_to_contain_text("Bad Request")
    expect(page.locator(".card code")).to_have_text("access_denied")
    expect_signed_out(page)
    shots("denied")
    # "Try again" asks Google again and, once allowed, lands on the page the user wanted.
    page.click("#retry")
    page.click("#allow")
    expect(page).to_have_url(live_app.url + "/calendar")


def test_setup_on_a_bare_tenant_then_the_connected_accounts_journey(
    page: Page, unstarted_app: LiveApp, shots: Shots, emu: Emulator
) -> None:
    """A new tenant, `flask token-vault setup`, then sign in, connect, calendar, disconnect."""
    emu.bare_tenant()
    setup = unstarted_app.app.test_cli_runner().invoke(
        cli, ["setup", "--base-url", unstarted_app.url]
    )
    assert setup.exit_code == 0, setup.output
    assert "9 changed, 2 unchanged, 0 skipped, 0 not made." in setup.output
    live = unstarted_app.start()

    page.goto(live.url + "/")
    page.click("#sign-in")
    sign_in_on_emulator(page, live, shots, "ca-emulator-sign-in")
    # The home page lists what the tenant lets this user connect (My Account API).
    expect(page.locator("#offered-by")).to_contain_text("My Account API")
    expect(page.locator("#connection-google-oauth2")).to_contain_text("not connected")
    expect(page.locator("#connection-windowslive")).to_contain_text("not connected")
    shots("ca-signed-in")

    # Connect Google through Connected Accounts: Auth0's consent page, not a sign-in.
    page.click("#nav-calendar")
    expect_url_starting(page, emu.url + "/connected-accounts/connect?ticket=")
    expect(page.locator("#connection")).to_have_text("Google (google-oauth2)")
    expect(page.locator("#page-title")).to_have_text("Connect Google")
    expect(page.locator("#signed-in-as")).to_contain_text(EMAIL)
    allow_calendar_on_connect_page(page, emu.url, shots, "ca-emulator-consent")
    expect(page).to_have_url(live.url + "/calendar")
    expect(page.locator("#events li").first).to_be_visible()
    shots("ca-calendar")
    assert emu.exchange_count(emu.user_id_for(EMAIL), "google-oauth2") >= 1

    page.goto(live.url + "/")
    card = page.locator("#connection-google-oauth2")
    expect(card.locator(".pill")).to_have_text("connected")
    expect(card).to_contain_text("calendar.readonly")
    card.locator("#disconnect-google-oauth2").click()
    expect(page).to_have_url(live.url + "/")
    expect(card.locator(".pill")).to_have_text("not connected")
    shots("ca-disconnected")
    assert emu.state.tokensets_for(emu.user_id_for(EMAIL)) == []

    # The logout URL setup registered is where Auth0 sends the browser back.
    page.click("#sign-out")
    expect(page).to_have_url(live.url + "/")
    expect_signed_out(page)


def test_the_extensions_sign_out_page_has_a_cancel(
    page: Page, live_app: LiveApp, shots: Shots
) -> None:
    """The page a plain link to /auth/logout shows (the quick start's), styled, with Cancel."""
    sign_in_and_connect_google(page, live_app, shots)
    page.goto(live_app.url + "/calendar")
    page.evaluate("location.assign('/auth/logout')")  # as a link would, with a Referer
    expect(page.locator("h1")).to_have_text("Sign out?")
    expect(page.locator("main")).to_contain_text(EMAIL)
    shots("sign-out-page")
    page.click("#cancel")
    expect(page).to_have_url(live_app.url + "/calendar")  # back where the user was
    expect(page.locator("#sign-out")).to_be_visible()
    page.goto(live_app.url + "/auth/logout")
    page.click("#sign-out")
    expect(page).to_have_url(live_app.url + "/")
    expect_signed_out(page)


# -- a phone-sized screen -------------------------------------------------------------------------

NO_OVERFLOW = (
    "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    " && document.body.scrollWidth <= document.documentElement.clientWidth"
)


def fits(page: Page, shots: Shots, name: str) -> None:
    """Fail when the page scrolls sideways or a visible element sticks out of the screen."""
    page.wait_for_load_state("load")
    shots(name)
    width = page.evaluate("document.documentElement.clientWidth")
    assert page.evaluate(NO_OVERFLOW), f"{name}: the page scrolls sideways at {width} px"
    clipped = page.evaluate(
        """(width) => [...document.querySelectorAll('body *')]
            .filter((el) => {
                const box = el.getBoundingClientRect();
                const out = box.right > width + 0.5 || box.left < -0.5;
                return box.width > 0 && box.height > 0 && out;
            })
            .map((el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : ''))""",
        width,
    )
    assert clipped == [], f"{name}: outside the screen: {clipped}"


def test_every_page_fits_a_phone_screen(phone: Page, live_app: LiveApp, phone_shots: Shots) -> None:
    page, shots = phone, phone_shots
    page.goto(live_app.url + "/")
    fits(page, shots, "home")
    page.click("#sign-in")
    on_emulator(page, live_app)
    fits(page, shots, "emulator-sign-in")
    page.fill("#email", EMAIL)
    page.fill("#name", NAME)
    page.click("#allow")
    expect(page.locator("#sign-out")).to_be_visible()
    fits(page, shots, "signed-in")
    expect(page.locator("#sign-out")).to_be_in_viewport()

    page.locator("#connection-google-oauth2 a.button").click()
    on_emulator(page, live_app)
    fits(page, shots, "emulator-connect")
    page.click("#allow")
    expect(page.locator("#connection-google-oauth2 .pill")).to_have_text("connected")
    fits(page, shots, "connected")
    page.click("#nav-calendar")
    expect(page.locator("#events li").first).to_be_visible()
    fits(page, shots, "calendar")
    page.click("#ask-write")
    on_emulator(page, live_app)
    page.click("#allow")
    expect(page.locator("#event-form")).to_be_visible()
    fits(page, shots, "new-event")
    page.click("#nav-profile")
    on_emulator(page, live_app)
    page.click("#allow")
    expect(page.locator("#profile")).to_be_visible()
    fits(page, shots, "profile")
    page.goto(live_app.url + "/auth/logout")
    fits(page, shots, "sign-out-page")
    page.goto(live_app.url + "/auth/connect/github")
    fits(page, shots, "error-page")
    page.goto(live_app.url + "/")
    page.click("#sign-out")
    expect_signed_out(page)
    fits(page, shots, "signed-out")
