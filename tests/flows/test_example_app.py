"""The example app's own features, over HTTP against the emulator (its pages: tests/e2e)."""

from __future__ import annotations

import re
import socket
import sys
import time

from flask import Flask
from flask.testing import FlaskClient

from example_app import CAL_READ, CAL_WRITE
from flask_token_vault_emulator import Emulator
from flask_token_vault_emulator.fake_data import job_title
from flask_token_vault_pytest.testing import login_as
from tests.helpers import ROOT
from tests.helpers.browser import follow_to_emulator, form_fields, through_emulator
from tests.helpers.processes import environment_without, run_to_end

EMAIL = "sam@example.com"


def test_adding_an_event_asks_for_the_write_scope_once_then_uses_it(
    example: Flask, emu: Emulator
) -> None:
    client: FlaskClient = example.test_client()
    login_as(client, emu, EMAIL, {"google-oauth2": [CAL_READ]})
    calendar = client.get("/calendar").get_data(as_text=True)
    assert 'id="ask-write" href="/calendar/new"' in calendar

    # The first visit asks Google for the write scope, on top of what was granted.
    consent = follow_to_emulator(client, "/calendar/new")
    emu.set_auto_login(EMAIL)
    back = through_emulator(client, consent)
    assert back.status_code == 302 and back.headers["Location"].endswith("/calendar/new")
    (account,) = emu.state.tokensets_for(emu.user_id_for(EMAIL))
    assert {CAL_READ, CAL_WRITE} <= set(account.scopes)

    form = client.get("/calendar/new")
    assert form.status_code == 200
    fields = form_fields(form.get_data(as_text=True))
    refused = client.post("/calendar/new", data={**fields, "form_token": "forged"})
    assert refused.status_code == 400

    added = client.post("/calendar/new", data={**fields, "summary": "Lunch with Ada"})
    assert added.status_code == 302 and added.headers["Location"] == "/calendar"
    page = client.get("/calendar").get_data(as_text=True)
    assert "Added “Lunch with Ada”" in page
    assert 'id="add-event"' in page and 'id="ask-write"' not in page
    assert emu.stats()["provider_calls"]["google"].get("200", 0) >= 2


def test_the_calendar_and_the_profile_show_what_the_provider_sdks_read(
    example: Flask, emu: Emulator
) -> None:
    """The calendar through googleapiclient, the profile through msgraph-sdk, on the fakes."""
    client = example.test_client()
    login_as(client, emu, EMAIL, {"google-oauth2": [CAL_READ], "windowslive": ["User.Read"]})
    calendar = client.get("/calendar").get_data(as_text=True)
    assert calendar.count("<li>") >= 1 and "UTC</span>" in calendar
    profile = client.get("/profile").get_data(as_text=True)
    # Graph's model (display_name, mail, job_title) in the page, as its JSON was before.
    assert "<dd>Sam</dd>" in profile and f"<dd>{EMAIL}</dd>" in profile
    assert f"<dd>{job_title(EMAIL)}</dd>" in profile
    stats = emu.stats()["provider_calls"]
    assert stats["google"].get("200") == 1 and stats["microsoft"].get("200") == 1


def test_a_refusal_the_sdks_raise_shows_the_provider_s_status(
    example: Flask, emu: Emulator
) -> None:
    client = example.test_client()
    login_as(client, emu, EMAIL, {"google-oauth2": [CAL_READ], "windowslive": ["User.Read"]})
    emu.add_fault("google", status=403, body={"error": {"code": 403, "message": "no"}})
    assert "Google answered 403." in client.get("/calendar").get_data(as_text=True)
    emu.add_fault("microsoft", status=403, body={"error": {"code": "Forbidden", "message": "no"}})
    assert "Microsoft Graph answered 403." in client.get("/profile").get_data(as_text=True)


# -- what a browser asks for besides the page --------------------------------------------------


def icon_link(html: str) -> str | None:
    found = re.search(r'<link rel="icon" href="([^"]+)"', html)
    return found.group(1) if found else None


def test_every_page_has_an_icon_the_app_serves(example: Flask, emu: Emulator) -> None:
    """No favicon 404: pages name the app's icon, and /favicon.ico serves it for the rest."""
    client = example.test_client()
    assert icon_link(client.get("/").get_data(as_text=True)) == "/static/favicon.svg"
    login_as(client, emu, EMAIL, {"google-oauth2": [CAL_READ]})
    for path in ("/", "/calendar", "/spa"):
        page = client.get(path)
        assert page.status_code == 200, path
        assert icon_link(page.get_data(as_text=True)) == "/static/favicon.svg", path
    with client.get("/static/favicon.svg") as named:
        assert named.status_code == 200
    # The extension's own pages name no icon: the browser asks for /favicon.ico.
    assert icon_link(client.get("/auth/logout").get_data(as_text=True)) is None
    with client.get("/favicon.ico") as icon:
        assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"
        assert icon.get_data().startswith(b"<svg")


# -- make demo on a port that is taken ---------------------------------------------------------


def test_a_taken_port_stops_the_demo_at_once_with_the_make_line() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env = environment_without()
        env["PORT"] = str(port)
        # Some google-api-core releases (at the declared floor) warn at import about Python
        # 3.11's end of life: theirs to say, not this test's line to count.
        env["PYTHONWARNINGS"] = "ignore::FutureWarning"
        started = time.monotonic()
        result = run_to_end(
            [sys.executable, "-m", "example_app"],
            cwd=ROOT,
            env=env,
            timeout=60,
        )
    assert result.returncode == 1
    assert result.stdout == ""  # it never says it started, nor starts the emulator
    (line,) = result.stderr.splitlines()
    assert f"Port {port} on 127.0.0.1 is taken" in line
    assert re.search(rf"`make demo PORT={port + 1}\d*`|`make demo PORT=\d+`", line), line
    assert time.monotonic() - started < 30
