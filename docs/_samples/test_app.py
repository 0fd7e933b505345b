"""Tests of the quick start's ``app.py``, as saved from the README: run ``python -m pytest``."""

import importlib
import sys

import pytest
from flask import Flask
from flask_token_vault_pytest.testing import LoginAs

CALENDAR_READ = "https://www.googleapis.com/auth/calendar.readonly"


@pytest.fixture
def app(token_vault_environ: dict[str, str]) -> Flask:
    """Import app.py afresh, once the environment it reads points at the emulator."""
    sys.modules.pop("app", None)
    return importlib.import_module("app").app


def test_home_offers_to_sign_in(app: Flask) -> None:
    """A visitor who is not signed in is offered to sign in."""
    assert "Sign in" in app.test_client().get("/").get_data(as_text=True)


def test_calendar_lists_the_users_next_events(app: Flask, token_vault_login_as: LoginAs) -> None:
    """A user who connected Google with the calendar scope sees their events."""
    client = app.test_client()
    token_vault_login_as(client, "alice@example.com", {"google-oauth2": [CALENDAR_READ]})
    answer = client.get("/calendar")
    assert answer.status_code == 200
    assert answer.get_json()["events"]  # the emulator's calendar holds a few


def test_calendar_asks_to_connect_google_first(app: Flask, token_vault_login_as: LoginAs) -> None:
    """Without Google connected, a JSON client is told what to connect and how."""
    client = app.test_client()
    token_vault_login_as(client, "bob@example.com")  # signed in, nothing connected
    answer = client.get("/calendar", headers={"Accept": "application/json"})
    assert answer.status_code == 401
    assert answer.get_json()["connection"] == "google-oauth2"
    assert CALENDAR_READ in answer.get_json()["required_scopes"]
