"""Test sample_app against the bundled Auth0 emulator: no network, no Auth0 account."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from flask_token_vault.emulator import Emulator
from flask_token_vault.testing import login_as

from sample_app import CALENDAR_READ, create_app

GOOGLE = "google-oauth2"


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    """Run one emulator for the whole test session, on a free port."""
    with Emulator() as emu:
        yield emu


@pytest.fixture
def app(emulator: Emulator) -> Flask:
    """Build a fresh app per test, pointed at a freshly reset emulator."""
    emulator.reset()
    return create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "a-test-secret-of-at-least-16-characters",
            "AUTH0_DOMAIN": emulator.url,
            "AUTH0_CLIENT_ID": emulator.client_id,
            "AUTH0_CLIENT_SECRET": emulator.client_secret,
            "GOOGLE_API_BASE": emulator.google_api_base,
            "TOKEN_VAULT_MAX_RETRIES": 0,  # fail fast when a test injects a fault
        }
    )


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """Return a test client of the app."""
    return app.test_client()


def test_visitor_is_sent_to_connect_google(client: FlaskClient) -> None:
    """A browser that is not signed in is redirected to sign in through Google."""
    response = client.get("/calendars")
    assert response.status_code == 302
    assert urlsplit(response.location).path == f"/auth/connect/{GOOGLE}"


def test_api_client_gets_a_401_with_a_connect_url(client: FlaskClient) -> None:
    """A JSON client gets a 401 naming the connection and the scopes to ask for."""
    response = client.get("/calendars", headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert response.json is not None
    assert response.json["connection"] == GOOGLE
    assert response.json["required_scopes"] == [CALENDAR_READ]
    assert "/auth/connect/google-oauth2" in response.json["connect_url"]


def test_lists_calendars(client: FlaskClient, emulator: Emulator) -> None:
    """A user who granted the calendar scope sees their calendars."""
    login_as(client, emulator, "alice@example.com", {GOOGLE: [CALENDAR_READ]})
    response = client.get("/calendars")
    assert response.status_code == 200
    assert response.json == {"calendars": ["alice@example.com"]}


def test_full_sign_in_through_the_emulator(client: FlaskClient, emulator: Emulator) -> None:
    """The real login flow works end to end, following redirects without a browser."""
    emulator.set_auto_login("carol@example.com")  # /authorize answers at once, as if "Allow"
    emulator.connect_account("carol@example.com", GOOGLE, [CALENDAR_READ])
    start = client.get("/auth/login?next=/calendars")
    authorize = requests.get(start.location, allow_redirects=False, timeout=10)
    callback = client.get(authorize.headers["Location"])  # /auth/callback?code=...&state=...
    assert callback.location == "/calendars"
    assert client.get("/calendars").json == {"calendars": ["carol@example.com"]}


def test_second_request_reuses_the_cached_token(client: FlaskClient, emulator: Emulator) -> None:
    """Only the first request exchanges the refresh token at Auth0."""
    user_id = login_as(client, emulator, "alice@example.com", {GOOGLE: [CALENDAR_READ]})
    assert client.get("/calendars").status_code == 200
    assert client.get("/calendars").status_code == 200
    assert emulator.exchange_count(user_id, GOOGLE) == 1


def test_missing_scope_asks_for_it_on_top_of_the_granted_ones(
    client: FlaskClient, emulator: Emulator
) -> None:
    """A user who never granted the calendar scope is sent to consent to it."""
    login_as(client, emulator, "bob@example.com", {GOOGLE: ["openid", "email"]})
    response = client.get("/calendars")
    assert response.status_code == 302
    asked = parse_qs(urlsplit(response.location).query)["scope"][0].split()
    assert CALENDAR_READ in asked
    assert "email" in asked  # what was granted before is asked for again, not dropped


def test_refused_google_grant_asks_to_connect_again(
    client: FlaskClient, emulator: Emulator
) -> None:
    """When Google refuses the stored grant, the user is sent to connect Google again."""
    login_as(client, emulator, "alice@example.com", {GOOGLE: [CALENDAR_READ]})
    emulator.break_provider_refresh("alice@example.com", GOOGLE)
    response = client.get("/calendars")
    assert response.status_code == 302
    assert urlsplit(response.location).path == f"/auth/connect/{GOOGLE}"


def test_auth0_rate_limit_is_passed_on(client: FlaskClient, emulator: Emulator) -> None:
    """A 429 from Auth0 with a long Retry-After becomes a 429 for the client."""
    login_as(client, emulator, "alice@example.com", {GOOGLE: [CALENDAR_READ]})
    emulator.add_fault(
        "token:exchange", status=429, headers={"Retry-After": "60"}, error="too_many_requests"
    )
    response = client.get("/calendars", headers={"Accept": "application/json"})
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "60"


def test_auth0_outage_is_a_503(client: FlaskClient, emulator: Emulator) -> None:
    """Auth0 answering 503 to the exchange becomes a 503 with a remedy, not a 500."""
    login_as(client, emulator, "alice@example.com", {GOOGLE: [CALENDAR_READ]})
    emulator.add_fault("token:exchange", status=503, error="temporarily_unavailable")
    response = client.get("/calendars", headers={"Accept": "application/json"})
    assert response.status_code == 503
    assert response.json is not None
    assert response.json["error"] == "temporarily_unavailable"
