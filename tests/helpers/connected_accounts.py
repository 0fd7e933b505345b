"""Helpers of the Connected Accounts tests: an app on that flow, signing in, finishing a connect."""

from __future__ import annotations

from typing import Any
from urllib.parse import SplitResult, parse_qs, urlsplit

import requests
from flask import Flask
from flask.testing import FlaskClient

from flask_token_vault import (
    connect_url,
    disconnect,
    disconnect_account,
    get_provider_token,
    my_connected_accounts,
)
from flask_token_vault_emulator import Emulator
from flask_token_vault_pytest.testing import login_as
from tests.helpers import TIMEOUT
from tests.helpers.apps import (
    CAL_READ,
    make_app,
)
from tests.helpers.browser import (
    emulator_redirect,
    follow_to_emulator,
)
from tests.helpers.oauth import bearer, my_account_access_token


def ca_app(emu: Emulator, **config: Any) -> Flask:
    config.setdefault("TOKEN_VAULT_CONNECT_FLOW", "connected_accounts")
    # The extra scope is declared (optional): only declared scopes go into signed links.
    config.setdefault(
        "TOKEN_VAULT_CONNECTIONS",
        {
            "google-oauth2": {
                "scopes": ["openid", "email", "profile"],
                "optional_scopes": ["https://extra.example/scope"],
            },
            "windowslive": {"scopes": ["User.Read"]},
        },
    )
    app = make_app(emu, **config)

    @app.get("/accounts")
    def accounts() -> Any:
        return [a.to_dict() for a in my_connected_accounts()]

    @app.get("/signed-connect")
    def signed_connect() -> str:
        return connect_url("google-oauth2", [CAL_READ, "https://extra.example/scope"], next="/")

    @app.post("/drop/<connection>")
    def drop(connection: str) -> Any:
        return {"removed": disconnect(connection)}

    @app.get("/ad-hoc/<hint>")
    def ad_hoc(hint: str) -> Any:
        # Scopes no view declares, as a tool or an SDK call asks for them.
        return get_provider_token("google-oauth2", [CAL_READ, "openid"], login_hint=hint)

    @app.get("/drop-account/<account_id>")
    def drop_account(account_id: str) -> Any:
        return disconnect_account(account_id).to_dict()

    return app


def turn_on_connected_accounts(emu: Emulator, *names: str) -> None:
    for name in names or ("google-oauth2", "windowslive"):
        emu.state.connections[name].connected_accounts = {"active": True}


def signed_in(
    emu: Emulator,
    email: str,
    grants: dict[str, list[str]] | None = None,
    *,
    auto_login: bool = True,
    consent: bool = True,
) -> tuple[Flask, FlaskClient]:
    """Turn Connected Accounts on and sign ``email`` in to a new app (auto-login at Auth0)."""
    turn_on_connected_accounts(emu)
    app = ca_app(emu)
    client = app.test_client()
    login_as(client, emu, email, grants)
    if auto_login:
        emu.set_auto_login(email, consent=consent)
    return app, client


def two_google_accounts(
    emu: Emulator, email: str = "ola@example.com", **config: Any
) -> tuple[Flask, FlaskClient, str]:
    """Turn Connected Accounts on; sign ``email`` in to a new :func:`ca_app` with ``config``.

    She has two Google accounts connected, ``ola.work@example.com`` (before signing in) and
    ``ola.home@example.com`` (after), and a Microsoft one. Returns the app, the client and the
    user id.
    """
    turn_on_connected_accounts(emu)
    app = ca_app(emu, **config)
    client = app.test_client()
    emu.connect_account(email, "google-oauth2", [CAL_READ], account="ola.work@example.com")
    user_id = login_as(client, emu, email, {"windowslive": ["User.Read"]})
    emu.connect_account(email, "google-oauth2", [CAL_READ], account="ola.home@example.com")
    return app, client, user_id


def connect_callback(client: FlaskClient, path: str) -> SplitResult:
    """Visit ``path`` until the app asks to connect; return where the emulator sends the user."""
    return urlsplit(emulator_redirect(follow_to_emulator(client, path)))


def complete_by_hand(
    emu: Emulator, session: Any, back: SplitResult, email: str, code_verifier: str
) -> requests.Response:
    """Complete the pending ``session`` at the My Account API directly, with ``code_verifier``."""
    token = my_account_access_token(emu, email, "create:me:connected_accounts")
    return requests.post(
        emu.url + "/me/v1/connected-accounts/complete",
        json={
            "auth_session": session.auth_session,
            "connect_code": parse_qs(back.query)["connect_code"][0],
            "redirect_uri": session.redirect_uri,
            "code_verifier": code_verifier,
        },
        headers=bearer(token),
        timeout=TIMEOUT,
    )
