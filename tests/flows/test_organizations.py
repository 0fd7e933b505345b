"""Auth0 Organizations: sign in to one, check it in the ID token, carry org_id onwards."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask

from flask_token_vault import (
    ConfigurationError,
    ExchangeRejected,
    TokenVault,
    current_user,
    login_url,
)
from flask_token_vault_emulator import Emulator
from tests.helpers.apps import CAL_READ, make_app
from tests.helpers.browser import follow_to_emulator, through_emulator
from tests.helpers.connected_accounts import ca_app, turn_on_connected_accounts
from tests.helpers.keys import keyed_config, register_client_key

EMAIL = "alice@example.com"
JOB = "nightly calendar sync"


def org_app(emu: Emulator, **config: Any) -> Flask:
    app = make_app(emu, **config)

    @app.get("/org")
    def org() -> Any:
        return {"org_id": current_user.org_id if current_user else None}

    @app.get("/link")
    def link() -> str:
        return login_url("/org", organization="other")

    return app


def sign_in(app: Flask, path: str = "/auth/login?next=/org") -> tuple[Any, Any]:
    client = app.test_client()
    authorize = follow_to_emulator(client, path)
    return client, through_emulator(client, authorize)


def test_the_setting_signs_users_in_to_the_organization(emu: Emulator) -> None:
    org_id = emu.add_organization("acme")
    emu.set_auto_login(EMAIL)
    app = org_app(emu, AUTH0_ORGANIZATION=org_id)
    client = app.test_client()
    authorize = follow_to_emulator(client, "/auth/login?next=/org")
    assert parse_qs(urlsplit(authorize).query)["organization"] == [org_id]
    assert through_emulator(client, authorize).status_code == 302
    assert client.get("/org").get_json() == {"org_id": org_id}


def test_login_url_asks_for_an_organization_by_name(emu: Emulator) -> None:
    org_id = emu.add_organization("other")
    emu.set_auto_login(EMAIL)
    app = org_app(emu)
    client = app.test_client()
    link = client.get("/link").get_data(as_text=True)
    assert link == "/auth/login?next=%2Forg&organization=other"
    authorize = follow_to_emulator(client, link)
    assert through_emulator(client, authorize).status_code == 302
    assert client.get("/org").get_json() == {"org_id": org_id}


def test_an_id_token_for_another_organization_is_refused(emu: Emulator) -> None:
    """Were Auth0 to sign the user in elsewhere, the callback would not take it."""
    asked = emu.add_organization("acme")
    other = emu.add_organization("globex")
    emu.set_auto_login(EMAIL)
    app = org_app(emu, AUTH0_ORGANIZATION=asked)
    client = app.test_client()
    authorize = follow_to_emulator(client, "/auth/login?next=/org")
    forged = authorize.replace(asked, other)
    answer = through_emulator(client, forged)
    assert answer.status_code == 400 and b"organization_mismatch" in answer.data
    assert client.get("/org").get_json() == {"org_id": None}


def test_a_non_member_is_refused_by_auth0(emu: Emulator) -> None:
    org_id = emu.add_organization("closed", members=["bob@example.com"])
    emu.set_auto_login(EMAIL)
    _, answer = sign_in(org_app(emu, AUTH0_ORGANIZATION=org_id))
    assert answer.status_code == 403 and b"access_denied" in answer.data


def test_the_organization_setting_is_checked(emu: Emulator) -> None:
    with pytest.raises(ConfigurationError, match="AUTH0_ORGANIZATION"):
        make_app(emu, AUTH0_ORGANIZATION="Not An Org!")
    app = org_app(emu)
    assert app.test_client().get("/auth/login?organization=Bad%20Org").status_code == 400


def test_connected_accounts_carry_the_org_id(emu: Emulator) -> None:
    org_id = emu.add_organization("acme")
    turn_on_connected_accounts(emu)
    emu.set_auto_login(EMAIL)
    app = ca_app(emu, AUTH0_ORGANIZATION=org_id)
    client = app.test_client()
    through_emulator(client, follow_to_emulator(client, "/auth/login?next=/"))
    # Connected Accounts: the connect's My Account token comes from the organization's login.
    through_emulator(client, follow_to_emulator(client, "/auth/connect/google-oauth2?next=/"))
    (account,) = client.get("/accounts").get_json()
    assert account["connection"] == "google-oauth2" and account["org_id"] == org_id


def test_worker_subject_tokens_carry_the_org_id(emu: Emulator) -> None:
    org_id = emu.add_organization("acme", members=[EMAIL])
    credential = register_client_key(emu)
    emu.set_privileged_access(credential, {"google-oauth2": [CAL_READ, "openid"]})
    emu.connect_account(EMAIL, "google-oauth2", [CAL_READ])
    app = make_app(emu, **keyed_config())
    user_id = emu.user_id_for(EMAIL)
    vault = TokenVault()
    vault.worker_token(
        user_id, "google-oauth2", [CAL_READ], audit_context=JOB, org_id=org_id, app=app
    )
    assert [a.org_id for a in emu.privileged_access_log()] == [org_id]


def test_auth0_refuses_a_worker_org_id_the_user_is_not_in(emu: Emulator) -> None:
    org_id = emu.add_organization("closed", members=["bob@example.com"])
    credential = register_client_key(emu)
    emu.set_privileged_access(credential, {"google-oauth2": [CAL_READ, "openid"]})
    emu.connect_account(EMAIL, "google-oauth2", [CAL_READ])
    app = make_app(emu, **keyed_config())
    with pytest.raises(ExchangeRejected):
        TokenVault().worker_token(
            emu.user_id_for(EMAIL), "google-oauth2", audit_context=JOB, org_id=org_id, app=app
        )
    assert emu.privileged_access_log() == []
