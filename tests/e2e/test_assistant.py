"""The example app's assistant in a real Chromium: connect, step up, approve on the "phone"."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from .browser import LiveApp, Shots
from .conftest import README_SHOT, SHOTS, TIMEOUT_MS
from .steps import expect_url_starting
from .test_browser_journey import fits

pytestmark = pytest.mark.e2e

EMAIL = "ada@example.com"
CAL_WRITE = "https://www.googleapis.com/auth/calendar.events"


def sign_in(page: Page, live_app: LiveApp) -> None:
    """Open the assistant: it sends the visitor to sign in on the emulator, then back."""
    page.goto(live_app.url + "/assistant")
    expect_url_starting(page, live_app.emulator.url + "/authorize")
    page.fill("#email", EMAIL)
    page.fill("#name", "Ada Lovelace")
    page.click("#allow")
    expect(page).to_have_url(live_app.url + "/assistant")


def allow_on_emulator(page: Page, live_app: LiveApp, shots: Shots, name: str) -> None:
    """Follow the assistant's "Allow access" and allow on the emulator's consent page."""
    page.click("#allow-access")
    expect_url_starting(page, live_app.emulator.url + "/authorize")
    expect(page.locator("#page-title")).to_have_text(re.compile("^Connect "))
    shots(name)
    page.click("#allow")


def approve_on_phone(page: Page, live_app: LiveApp, shots: Shots) -> str:
    """Approve the waiting request on the emulator's /ciba page, in a second tab."""
    message = page.locator("#binding-message").inner_text()
    phone = page.context.new_page()
    phone.goto(live_app.emulator.url + "/ciba")
    expect(phone.locator(".binding-message")).to_have_text(message)
    phone.screenshot(path=str(shots.folder / "phone.png"), full_page=True)
    phone.click("text=Approve")
    expect(phone.locator("body")).to_contain_text("Nothing is waiting.")
    phone.close()
    return message


def test_the_assistant_connects_steps_up_and_asks_approval(
    page: Page, live_app: LiveApp, shots: Shots
) -> None:
    live_app.emulator.set_ciba_interval(1)
    sign_in(page, live_app)
    expect(page.locator("#message")).to_be_visible()
    shots("assistant")
    page.click("#ask")

    # Google is not connected: the first tool call pauses before it runs.
    expect(page.locator("#consent")).to_be_visible()
    expect(page.locator("#transcript")).not_to_contain_text("list_events answered")
    shots("connect")
    allow_on_emulator(page, live_app, shots, "emulator-connect")

    # Back on the page, the same call runs; then adding the event needs the write scope.
    expect(page.locator("#transcript")).to_contain_text("list_events answered")
    expect(page.locator("#transcript")).to_contain_text("I suggest an hour of deep work")
    expect(page.locator("#consent-scopes")).to_contain_text(CAL_WRITE)
    shots("step-up")
    allow_on_emulator(page, live_app, shots, "emulator-step-up")

    # With the scope granted, the tool asks the user's approval before it creates anything.
    expect(page.locator("#approval")).to_be_visible()
    expect(page.locator("#binding-message")).to_contain_text("Add Deep work on ")
    shots("waiting-for-approval")
    approve_on_phone(page, live_app, shots)

    # The page sees the answer by itself; the same call then creates the event.
    expect(page.locator("#transcript")).to_contain_text("Done: “Deep work” is in your calendar")
    expect(page.locator("#approval")).to_have_count(0)
    shots("done")
    page.click("#nav-calendar")
    expect(page.locator("#events li", has_text="Deep work")).to_have_count(1)


@pytest.fixture
def page_without_js(browser: Browser) -> Iterator[Page]:
    """A page in a fresh context with JavaScript switched off."""
    context = browser.new_context(java_script_enabled=False, locale="en-GB")
    context.set_default_timeout(TIMEOUT_MS)
    yield context.new_page()
    context.close()


def test_the_assistant_works_without_javascript(
    page_without_js: Page, live_app: LiveApp, request: pytest.FixtureRequest
) -> None:
    page = page_without_js
    folder = SHOTS / request.node.name
    folder.mkdir(parents=True, exist_ok=True)
    shots = Shots(page, folder, README_SHOT)
    live_app.emulator.set_ciba_interval(1)
    sign_in(page, live_app)
    page.click("#ask")
    allow_on_emulator(page, live_app, shots, "emulator-connect")
    # Nothing continues by itself: the button does.
    expect(page.locator("#consent")).to_be_visible()
    page.click("#continue")
    expect(page.locator("#consent-scopes")).to_contain_text(CAL_WRITE)
    allow_on_emulator(page, live_app, shots, "emulator-step-up")
    page.click("#continue")
    expect(page.locator("#approval")).to_be_visible()
    page.click("#check-approval")  # not answered yet: still waiting
    expect(page.locator("#approval")).to_be_visible()
    approve_on_phone(page, live_app, shots)
    page.click("#check-approval")
    expect(page.locator("#transcript")).to_contain_text("Done: “Deep work” is in your calendar")


def test_the_assistant_fits_a_phone_screen(
    phone: Page, live_app: LiveApp, phone_shots: Shots
) -> None:
    page, shots = phone, phone_shots
    live_app.emulator.set_ciba_interval(1)
    sign_in(page, live_app)
    fits(page, shots, "assistant")
    page.click("#ask")
    allow_on_emulator(page, live_app, shots, "emulator-connect")
    # The longest lines: the tool calls with their arguments, and the scopes asked for.
    expect(page.locator("#consent-scopes")).to_contain_text(CAL_WRITE)
    page.locator("#transcript details").first.click()  # open a tool's answer
    fits(page, shots, "step-up")
    allow_on_emulator(page, live_app, shots, "emulator-step-up")
    expect(page.locator("#approval")).to_be_visible()
    fits(page, shots, "waiting-for-approval")
