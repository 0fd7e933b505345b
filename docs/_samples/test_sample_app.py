"""Test sample_app against the bundled Auth0 emulator: no network, no Auth0 account.

Every ``token_vault_*`` fixture comes from the pytest plugin that installing
Flask-Token-Vault registers: there is no conftest.py and no emulator to start by hand.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from flask_token_vault_pytest.testing import FailNextExchange, LoginAs

from sample_app import CALENDAR_READ, create_app

if TYPE_CHECKING:  # for the type hints only: the plugin starts the emulator
    from flask_token_vault_emulator import Emulator

GOOGLE = "google-oauth2"


@pytest.fixture
def app(token_vault_app_config: dict[str, str]) -> Flask:
    """Build a fresh app per test, pointed at the plugin's emulator and its fake Google API."""
    return create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "a-test-secret-of-at-least-16-characters",
            **token_vault_app_config,  # AUTH0_DOMAIN, AUTH0_CLIENT_ID, AUTH0_CLIENT_SECRET
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


def test_lists_calendars(client: FlaskClient, token_vault_login_as: LoginAs) -> None:
    """A user who granted the calendar scope sees their calendars."""
    token_vault_login_as(client, "alice@example.com", {GOOGLE: [CALENDAR_READ]})
    response = client.get("/calendars")
    assert response.status_code == 200
    assert response.json == {"calendars": ["alice@example.com"]}


def test_full_sign_in_through_the_emulator(
    client: FlaskClient, token_vault_emulator_reset: Emulator
) -> None:
    """The real login flow works end to end, following redirects without a browser."""
    emulator = token_vault_emulator_reset
    emulator.set_auto_login("carol@example.com")  # /authorize answers at once, as if "Allow"
    emulator.connect_account("carol@example.com", GOOGLE, [CALENDAR_READ])
    start = client.get("/auth/login?next=/calendars")
    authorize = requests.get(start.location, allow_redirects=False, timeout=10)
    callback = client.get(authorize.headers["Location"])  # /auth/callback?code=...&state=...
    assert callback.location == "/calendars"
    assert client.get("/calendars").json == {"calendars": ["carol@example.com"]}


def test_second_request_reuses_the_cached_token(
    client: FlaskClient, token_vault_login_as: LoginAs, token_vault_emulator_reset: Emulator
) -> None:
    """Only the first request exchanges the refresh token at Auth0."""
    user_id = token_vault_login_as(client, "alice@example.com", {GOOGLE: [CALENDAR_READ]})
    assert client.get("/calendars").status_code == 200
    assert client.get("/calendars").status_code == 200
    assert token_vault_emulator_reset.exchange_count(user_id, GOOGLE) == 1


def test_missing_scope_asks_for_it_on_top_of_the_granted_ones(
    client: FlaskClient, token_vault_login_as: LoginAs
) -> None:
    """A user who never granted the calendar scope is sent to consent to it."""
    token_vault_login_as(client, "bob@example.com", {GOOGLE: ["openid", "email"]})
    response = client.get("/calendars")
    assert response.status_code == 302
    asked = parse_qs(urlsplit(response.location).query)["scope"][0].split()
    assert CALENDAR_READ in asked
    assert "email" in asked  # what was granted before is asked for again, not dropped


def test_refused_google_grant_asks_to_connect_again(
    client: FlaskClient,
    token_vault_login_as: LoginAs,
    token_vault_fail_next_exchange: FailNextExchange,
) -> None:
    """When Google refuses the stored grant, the user is sent to connect Google again."""
    token_vault_login_as(client, "alice@example.com", {GOOGLE: [CALENDAR_READ]})
    token_vault_fail_next_exchange()  # federated_connection_refresh_token_flow_failed, 401
    response = client.get("/calendars")
    assert response.status_code == 302
    assert urlsplit(response.location).path == f"/auth/connect/{GOOGLE}"
    assert client.get("/calendars").status_code == 200  # the fault was for one exchange only


def test_refused_google_grant_tells_an_api_client_to_reconnect(
    client: FlaskClient,
    token_vault_login_as: LoginAs,
    token_vault_fail_next_exchange: FailNextExchange,
) -> None:
    """A JSON client gets a 401 with Auth0's error and the URL to connect Google again."""
    token_vault_login_as(client, "alice@example.com", {GOOGLE: [CALENDAR_READ]})
    token_vault_fail_next_exchange()
    response = client.get("/calendars", headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert response.json is not None
    assert response.json["error"] == "federated_connection_refresh_token_flow_failed"
    assert "/auth/connect/google-oauth2" in response.json["connect_url"]


def test_auth0_rate_limit_is_passed_on(
    client: FlaskClient, token_vault_login_as: LoginAs, token_vault_emulator_reset: Emulator
) -> None:
    """A 429 from Auth0 with a long Retry-After becomes a 503 with Retry-After, at once."""
    token_vault_login_as(client, "alice@example.com", {GOOGLE: [CALENDAR_READ]})
    token_vault_emulator_reset.add_fault(
        "token:exchange", status=429, headers={"Retry-After": "60"}, error="too_many_requests"
    )
    response = client.get("/calendars", headers={"Accept": "application/json"})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "60"


def test_auth0_outage_is_a_503(
    client: FlaskClient,
    token_vault_login_as: LoginAs,
    token_vault_fail_next_exchange: FailNextExchange,
) -> None:
    """Auth0 answering 503 to the exchange becomes a 503 with a remedy, not a 500."""
    token_vault_login_as(client, "alice@example.com", {GOOGLE: [CALENDAR_READ]})
    token_vault_fail_next_exchange("temporarily_unavailable", status=503)
    response = client.get("/calendars", headers={"Accept": "application/json"})
    assert response.status_code == 503
    assert response.json is not None
    assert response.json["error"] == "temporarily_unavailable"
