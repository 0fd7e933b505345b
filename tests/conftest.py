"""Shared fixtures: one emulator per session (reset per test), a fresh app per test."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from flask import Flask, jsonify
from flask.testing import FlaskClient

from flask_token_vault import TokenVault, get_provider_token, provider_token_required
from flask_token_vault.emulator import Emulator

CAL_READ = "https://www.googleapis.com/auth/calendar.readonly"
CAL_WRITE = "https://www.googleapis.com/auth/calendar.events"


@pytest.fixture(scope="session")
def emulator_server(token_vault_emulator: Emulator) -> Emulator:
    # The package's own pytest plugin (flask_token_vault.pytest_plugin) runs the emulator.
    return token_vault_emulator


@pytest.fixture
def emu(emulator_server: Emulator) -> Iterator[Emulator]:
    emulator_server.reset()
    yield emulator_server
    emulator_server.reset()


@pytest.fixture(scope="module")
def _private_tenant_server() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


@pytest.fixture
def private_tenant(_private_tenant_server: Emulator) -> Iterator[Emulator]:
    """An emulator of this module's own, reset with its tenant restored around each test."""
    server = _private_tenant_server
    server.reset()
    server.restore_tenant()
    yield server
    server.reset()
    server.restore_tenant()


def make_app(emu: Any, **config: Any) -> Flask:
    """Build a small app using the extension against the emulator, with a few provider routes."""
    app = Flask(__name__)
    app.config.update(
        TESTING=True,
        SECRET_KEY="test-secret-key-0123456789abcdef",
        AUTH0_DOMAIN=emu.url,
        AUTH0_CLIENT_ID=emu.client_id,
        AUTH0_CLIENT_SECRET=emu.client_secret,
        TOKEN_VAULT_CONNECTIONS={
            "google-oauth2": {"scopes": ["openid", "email", "profile"]},
            "windowslive": {"scopes": ["User.Read"]},
        },
    )
    app.config.update(config)
    TokenVault(app)

    @app.get("/")
    def index() -> str:
        return "home"

    @app.get("/calendar")
    @provider_token_required("google-oauth2", scopes=[CAL_READ])
    def calendar() -> Any:
        token = get_provider_token("google-oauth2")
        answer = requests.get(
            emu.google_api_base + "/calendar/v3/users/me/calendarList",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        return jsonify(answer.json()), answer.status_code

    @app.get("/calendar/write")
    @provider_token_required("google-oauth2", scopes=[CAL_READ, CAL_WRITE])
    def calendar_write() -> Any:
        return jsonify(ok=True)

    @app.get("/async-calendar")
    @provider_token_required("google-oauth2", scopes=[CAL_READ])
    async def async_calendar() -> Any:
        return jsonify(token_length=len(get_provider_token("google-oauth2")))

    @app.get("/me")
    @provider_token_required("windowslive", scopes=["User.Read"])
    def me() -> Any:
        token = get_provider_token("windowslive")
        answer = requests.get(
            emu.graph_api_base + "/v1.0/me",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        return jsonify(answer.json()), answer.status_code

    return app


@pytest.fixture
def app(emu: Emulator) -> Flask:
    return make_app(emu)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


_INPUT = re.compile(r"<input\b[^>]*>", re.I)
_ATTR = re.compile(r'(\w+)="([^"]*)"')


def form_fields(html: str) -> dict[str, str]:
    """Return the name -> value of every input in an HTML page."""
    fields: dict[str, str] = {}
    for tag in _INPUT.findall(html):
        attrs = dict(_ATTR.findall(tag))
        if "name" in attrs:
            fields[attrs["name"]] = attrs.get("value", "")
    return fields


def follow_to_emulator(client: FlaskClient, path: str) -> str:
    """GET ``path`` on the app and follow its redirects until one leaves for the emulator."""
    response = client.get(path)
    for _ in range(5):
        assert response.status_code == 302, response.get_data(as_text=True)
        location = response.headers["Location"]
        if location.startswith("http"):
            return location
        response = client.get(location)
    raise AssertionError("no redirect to the emulator")


def sign_in_via_page(
    client: FlaskClient,
    authorize_url: str,
    email: str = "alice@example.com",
    action: str = "allow",
    account: str = "",
) -> Any:
    """Fill the emulator's login page like a person would and bring the answer back to the app."""
    page = requests.get(authorize_url, timeout=10)
    assert page.status_code == 200, page.text
    fields = form_fields(page.text)
    fields.update(email=email, name=email.split("@")[0].title(), action=action)
    if "account" in fields or account:
        fields["account"] = account
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(authorize_url))
    answer = requests.post(origin + "/u/login", data=fields, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    back = urlsplit(answer.headers["Location"])
    return client.get(back.path + "?" + back.query)


def browser_login(
    client: FlaskClient, path: str, email: str = "alice@example.com", account: str = ""
) -> Any:
    """Visit ``path``, go through login/connect on the emulator's page, return the final answer."""
    callback = sign_in_via_page(client, follow_to_emulator(client, path), email, account=account)
    assert callback.status_code == 302, callback.get_data(as_text=True)
    return client.get(callback.headers["Location"])
