"""login_required, the unauthorized handler, and views that name unconfigured connections."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask, jsonify

from flask_token_vault import (
    Challenge,
    ConfigurationError,
    TokenVault,
    current_user,
    login_required,
    provider_token_required,
)
from flask_token_vault_emulator import Emulator
from flask_token_vault_pytest.testing import login_as
from tests.helpers.apps import CAL_READ, CAL_WRITE, make_app


def app_with_account_page(emu: Emulator, **config: Any) -> Flask:
    app = make_app(emu, **config)

    @app.get("/account")
    @login_required
    def account() -> Any:
        assert current_user
        return jsonify(sub=current_user.sub)

    @app.get("/async-account")
    @login_required
    async def async_account() -> Any:
        assert current_user
        return jsonify(sub=current_user.sub)

    return app


# -- login_required -----------------------------------------------------------------------------


def test_login_required_sends_a_browser_to_sign_in_and_back(emu: Emulator) -> None:
    answer = app_with_account_page(emu).test_client().get("/account?tab=2")
    assert answer.status_code == 302
    target = urlsplit(answer.headers["Location"])
    assert target.path == "/auth/login"
    assert parse_qs(target.query) == {"next": ["/account?tab=2"]}


def test_login_required_gives_a_json_client_a_401_with_the_login_url(emu: Emulator) -> None:
    client = app_with_account_page(emu).test_client()
    answer = client.get("/account", headers={"Accept": "application/json"})
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == 'Bearer error="login_required"'
    body = answer.get_json()
    assert body["error"] == "login_required"
    assert body["login_url"] == "http://localhost/auth/login?next=%2Faccount"
    assert "connection" not in body and "connect_url" not in body


def test_login_required_runs_the_view_for_a_signed_in_user(emu: Emulator) -> None:
    client = app_with_account_page(emu).test_client()
    user_id = login_as(client, emu, "alice@example.com")  # no provider connected: not needed
    assert client.get("/account").get_json() == {"sub": user_id}
    assert client.get("/async-account").get_json() == {"sub": user_id}
    assert emu.exchange_count() == 0


def test_login_required_lets_options_through(emu: Emulator) -> None:
    answer = app_with_account_page(emu).test_client().options("/account")
    assert answer.status_code == 200


# -- the unauthorized handler ---------------------------------------------------------------------


def bare_app(emu: Emulator, vault: TokenVault) -> Flask:
    """Return an app set up like ``make_app``'s, with no routes, using ``vault``."""
    app = Flask(__name__)
    app.config.update(make_app(emu).config)
    vault.init_app(app)
    return app


def test_unauthorized_handler_answers_for_both_decorators(emu: Emulator) -> None:
    vault = TokenVault()
    app = bare_app(emu, vault)
    seen: list[Challenge] = []

    @vault.unauthorized_handler
    def ask(challenge: Challenge) -> Any:
        seen.append(challenge)
        return {"please": challenge.url, "why": challenge.error.error}, 401

    @app.get("/account")
    @login_required
    def account() -> str:
        return "account"

    @app.get("/calendar/write")
    @provider_token_required("google-oauth2", scopes=[CAL_READ, CAL_WRITE])
    def calendar_write() -> str:
        return "written"

    client = app.test_client()
    answer = client.get("/account")
    assert answer.status_code == 401
    assert answer.get_json() == {"please": "/auth/login?next=%2Faccount", "why": "login_required"}
    login_as(client, emu, "alice@example.com", {"google-oauth2": [CAL_READ]})
    assert client.get("/account").get_data(as_text=True) == "account"
    answer = client.get("/calendar/write")
    assert answer.status_code == 401 and answer.get_json()["why"] == "insufficient_scope"

    login, scope = seen
    assert login.connection is None and login.connect_url is None
    assert login.next == "/account" and login.required_scopes == ()
    assert scope.connection == "google-oauth2"
    assert scope.next == "/calendar/write"
    # Step-up asks for what was granted plus what is needed, never less.
    assert {CAL_READ, CAL_WRITE, "openid", "email", "profile"} <= set(scope.required_scopes)
    assert scope.connect_url is not None
    assert scope.connect_url.startswith("/auth/connect/google-oauth2?")
    assert scope.url == scope.connect_url


def test_unauthorized_handler_returning_none_keeps_the_default(emu: Emulator) -> None:
    vault = TokenVault()
    app = bare_app(emu, vault)
    calls: list[str | None] = []

    @vault.unauthorized_handler
    def only_for_sign_in(challenge: Challenge) -> Any:
        calls.append(challenge.connection)
        if challenge.connection is None:
            return "please sign in", 401
        return None

    @app.get("/account")
    @login_required
    def account() -> str:
        return "account"

    @app.get("/calendar")
    @provider_token_required("google-oauth2", scopes=[CAL_READ])
    def calendar() -> str:
        return "calendar"

    client = app.test_client()
    assert client.get("/account").get_data(as_text=True) == "please sign in"
    default = client.get("/calendar")
    assert default.status_code == 302
    assert urlsplit(default.headers["Location"]).path == "/auth/connect/google-oauth2"
    assert calls == [None, "google-oauth2"]


def test_unauthorized_handler_registered_before_init_app_serves_every_app(emu: Emulator) -> None:
    vault = TokenVault()

    @vault.unauthorized_handler
    def answer(challenge: Challenge) -> Any:
        return "custom", 403

    for _ in range(2):
        app = bare_app(emu, vault)

        @app.get("/account")
        @login_required
        def account() -> str:
            return "account"

        reply = app.test_client().get("/account")
        assert (reply.status_code, reply.get_data(as_text=True)) == (403, "custom")


# -- unconfigured connections ---------------------------------------------------------------------


def test_a_decorator_naming_an_unconfigured_connection_stops_the_first_request(
    emu: Emulator,
) -> None:
    app = make_app(emu)

    @app.get("/drive")
    @provider_token_required("gogle-oauth2", scopes=["drive"])
    def drive() -> str:
        return "drive"

    client = app.test_client()
    # Any first request, not only one to the faulty view: the developer hears of it at once.
    with pytest.raises(ConfigurationError, match=r"drive needs 'gogle-oauth2'.*configured"):
        client.get("/")
    with pytest.raises(ConfigurationError, match="gogle-oauth2"):
        client.get("/drive")


def test_views_are_checked_once(emu: Emulator) -> None:
    app = make_app(emu)
    client = app.test_client()
    assert client.get("/").status_code == 200
    assert TokenVault.state(app).views_checked


def test_a_view_added_after_the_check_fails_the_next_request(emu: Emulator) -> None:
    app = make_app(emu)
    app.test_client().get("/")  # the check ran: every view was fine then

    # Flask refuses new routes once it served a request; a view function registered through
    # another name in view_functions is the way such a view reaches the app.
    @provider_token_required("dropbox")
    def late() -> str:
        return "late"

    app.view_functions["late"] = late
    app.url_map.add(app.url_rule_class("/late", endpoint="late", methods=["GET"]))
    with pytest.raises(ConfigurationError, match=r"late needs 'dropbox'"):
        app.test_client().get("/late")


def test_stacked_decorators_name_each_connection(emu: Emulator) -> None:
    app = make_app(emu, TOKEN_VAULT_CONNECTIONS={"google-oauth2": {}})

    @app.get("/both")
    @provider_token_required("google-oauth2")
    @provider_token_required("windowslive")
    def both() -> str:
        return "both"

    with pytest.raises(ConfigurationError) as caught:
        app.test_client().get("/")
    # make_app's /me needs windowslive too; google-oauth2 is configured, so it is not named.
    assert "both needs 'windowslive'" in str(caught.value)
    assert "me needs 'windowslive'" in str(caught.value)
    assert "needs 'google-oauth2'" not in str(caught.value)
