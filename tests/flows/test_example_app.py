"""The example app's own features, over HTTP against the emulator (its pages: tests/e2e)."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from example_app import CAL_READ, CAL_WRITE, create_app
from flask_token_vault_emulator import Emulator
from flask_token_vault_pytest.testing import login_as
from tests.helpers.browser import follow_to_emulator, form_fields, through_emulator

EMAIL = "sam@example.com"


@pytest.fixture
def example(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> Flask:
    """The example app on the session's emulator (its tenant as the test left it)."""
    for key in ("AUTH0_DOMAIN", "AUTH0_CLIENT_ID", "AUTH0_CLIENT_SECRET", "AUTH0_AUDIENCE"):
        monkeypatch.delenv(key, raising=False)
    app = create_app({"SECRET_KEY": "example-test-secret-key-0123456789abcdef"}, emu)
    app.config["TESTING"] = True
    return app


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
