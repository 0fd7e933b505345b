"""Sessions that end, in a real Chromium: an old cookie is refused, Auth0 ends an open session."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from flask_token_vault import TokenVault, management_client
from flask_token_vault_emulator import Emulator
from flask_token_vault_pytest.testing import FakeClock

from .browser import LiveApp, Shots
from .steps import expect_signed_out, expect_url_starting

pytestmark = pytest.mark.e2e

EMAIL = "robin@example.com"
HOUR = 3600


def sign_in(page: Page, live_app: LiveApp, shots: Shots) -> None:
    """Sign in from the home page on the emulator's page, as a person would."""
    page.goto(live_app.url + "/")
    page.click("#sign-in")
    expect_url_starting(page, live_app.emulator.url + "/authorize")
    page.fill("#email", EMAIL)
    page.click("#allow")
    expect(page.locator("#sign-out")).to_be_visible()
    shots("signed-in")


def test_an_old_session_cookie_is_refused(page: Page, live_app: LiveApp, shots: Shots) -> None:
    """Used every twelve hours (never idle), the session still ends three days after sign-in."""
    clock = FakeClock(running=True)
    TokenVault.state(live_app.app).set_clock(clock)
    sign_in(page, live_app, shots)
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "session"]
    for _ in range(5):
        clock.advance(12 * HOUR)
        page.reload()
        expect(page.locator("#sign-out")).to_be_visible()
    clock.advance(12 * HOUR + 1)
    page.reload()
    expect_signed_out(page)
    shots("session-ended")
    # The cookie as it was at sign-in (a stolen copy) is refused as well.
    page.context.clear_cookies()
    page.context.add_cookies([cookie])  # type: ignore[list-item]
    page.reload()
    expect_signed_out(page)


def test_back_channel_logout_ends_the_open_session(
    page: Page, live_app: LiveApp, shots: Shots, emu: Emulator
) -> None:
    """Auth0 (the emulator) posts a logout token to the app; the open page is signed out."""
    url = live_app.url + "/auth/backchannel-logout"
    with live_app.app.app_context():
        management_client().add_backchannel_logout_url(url)
    sign_in(page, live_app, shots)
    (delivery,) = emu.backchannel_logout(EMAIL)
    assert (delivery.url, delivery.status) == (url, 200)
    page.reload()
    expect_signed_out(page)
    shots("ended-by-auth0")


def test_signing_out_at_auth0_signs_out_of_the_app(
    page: Page, live_app: LiveApp, shots: Shots, emu: Emulator
) -> None:
    """Signing out at Auth0 in another tab ends the app's session through the back channel."""
    emu.set_backchannel_logout_urls([live_app.url + "/auth/backchannel-logout"])
    sign_in(page, live_app, shots)
    other = page.context.new_page()
    other.goto(emu.url + "/v2/logout")
    expect(other.locator("body")).to_contain_text("signed out")
    other.close()
    assert [d.status for d in emu.backchannel_deliveries] == [200]
    page.reload()
    expect_signed_out(page)
    shots("signed-out-at-auth0")
