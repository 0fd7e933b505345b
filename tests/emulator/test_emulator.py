"""The Auth0 Token Vault emulator, over real HTTP: login, tokens, Token Vault, providers, faults."""

from __future__ import annotations

import base64
import html
import os
import re
import secrets
import select
import signal
import subprocess
import sys
import time
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from joserfc import jwt

from flask_token_vault_emulator import Emulator
from flask_token_vault_emulator.__main__ import parse_args
from flask_token_vault_emulator.state import Connection
from flask_token_vault_pytest.testing import FakeClock
from tests.helpers import TIMEOUT
from tests.helpers.apps import CAL_READ
from tests.helpers.oauth import (
    ACCESS_TOKEN_TYPE,
    FEDERATED_TOKEN_TYPE,
    REDIRECT_URI,
    TOKEN_VAULT_GRANT,
    assert_error,
    authorize_request,
    code_grant,
    keyset,
    pkce_pair,
    redirect_query,
    token_request,
    vault_exchange,
)

CAL_EVENTS = "https://www.googleapis.com/auth/calendar.events"


# -- helpers -----------------------------------------------------------------------------------


class LoginPage(HTMLParser):
    """Read the emulator's login page: title, form, inputs, buttons and listed scopes."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.title = ""
        self.form_action = ""
        self.fields: dict[str, str] = {}
        self.ids: set[str] = set()
        self.buttons: dict[str, tuple[str, str, str]] = {}
        self.lists: dict[str, list[str]] = {}
        self._in_title = False
        self._list: str | None = None
        self._button: str | None = None
        self._text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {name: value or "" for name, value in attrs}
        if "id" in attr:
            self.ids.add(attr["id"])
        if tag == "title":
            self._in_title = True
        elif tag == "form":
            self.form_action = attr.get("action", "")
        elif tag == "input" and "name" in attr:
            self.fields[attr["name"]] = attr.get("value", "")
        elif tag == "button":
            self._button = attr.get("id", "")
            self.buttons[self._button] = (attr.get("name", ""), attr.get("value", ""), "")
            self._text = []
        elif tag == "ul":
            self._list = attr.get("id", "")
            self.lists[self._list] = []
        elif tag == "li":
            self._text = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag == "li" and self._list is not None:
            self.lists[self._list].append("".join(self._text).strip())
        elif tag == "ul":
            self._list = None
        elif tag == "button" and self._button is not None:
            name, value, _ = self.buttons[self._button]
            self.buttons[self._button] = (name, value, "".join(self._text).strip())
            self._button = None

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        self._text.append(data)


def submit(emu: Emulator, page: LoginPage, **fields: str) -> requests.Response:
    data = dict(page.fields)
    data.update(fields)
    return requests.post(
        emu.url + page.form_action, data=data, allow_redirects=False, timeout=TIMEOUT
    )


def login_code(
    emu: Emulator,
    email: str = "alice@example.com",
    account: str = "",
    challenge: str | None = None,
    **params: str | None,
) -> str:
    """Go through the login page and return the authorization code."""
    if challenge is not None:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    page = LoginPage(authorize_request(emu, **params).text)
    fields = {"email": email, "action": "allow"}
    if "account" in page.fields:
        fields["account"] = account
    return redirect_query(submit(emu, page, **fields))["code"]


def provider_token(
    emu: Emulator,
    email: str,
    connection: str = "google-oauth2",
    scopes: tuple[str, ...] = (CAL_READ,),
) -> str:
    emu.connect_account(email, connection, scopes)
    answer = vault_exchange(emu, emu.issue_refresh_token(email), connection)
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


def google_get(emu: Emulator, path: str, token: str | None, **params: str) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(emu.google_api_base + path, headers=headers, params=params, timeout=TIMEOUT)


def graph_get(emu: Emulator, path: str, token: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(emu.graph_api_base + path, headers=headers, timeout=TIMEOUT)


# -- discovery and keys ------------------------------------------------------------------------


def test_discovery_document_points_at_the_emulator(emu: Emulator) -> None:
    answer = requests.get(emu.url + "/.well-known/openid-configuration", timeout=TIMEOUT)
    assert answer.status_code == 200
    doc = answer.json()
    assert doc["issuer"] == emu.url + "/" == emu.issuer
    assert doc["authorization_endpoint"] == emu.url + "/authorize"
    assert doc["token_endpoint"] == emu.url + "/oauth/token"
    assert doc["userinfo_endpoint"] == emu.url + "/userinfo"
    assert doc["jwks_uri"] == emu.url + "/.well-known/jwks.json"
    assert doc["end_session_endpoint"] == emu.url + "/oidc/logout"
    assert doc["code_challenge_methods_supported"] == ["S256", "plain"]
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert "code" in doc["response_types_supported"]
    assert TOKEN_VAULT_GRANT in doc["grant_types_supported"]
    assert set(doc["token_endpoint_auth_methods_supported"]) >= {
        "client_secret_basic",
        "client_secret_post",
    }


def test_jwks_publishes_one_rsa_signing_key(emu: Emulator) -> None:
    keys = requests.get(emu.url + "/.well-known/jwks.json", timeout=TIMEOUT).json()["keys"]
    assert len(keys) == 1
    key = keys[0]
    assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["use"] == "sig"
    assert key["kid"] and key["n"] and key["e"] == "AQAB"
    assert len(base64.urlsafe_b64decode(key["n"] + "==")) == 256  # 2048 bits


def test_emulator_addresses_and_defaults(emu: Emulator) -> None:
    assert emu.url.startswith("http://127.0.0.1:") and not emu.url.endswith("/")
    assert emu.google_api_base == emu.url + "/google"
    assert emu.graph_api_base == emu.url + "/microsoft"
    assert (emu.client_id, emu.client_secret) == ("emulator-client-id", "emulator-client-secret")
    assert emu.user_id_for("Alice@Example.com") == emu.user_id_for("alice@example.com")
    assert emu.user_id_for("alice@example.com").startswith("auth0|")
    assert len(emu.user_id_for("alice@example.com")) == len("auth0|") + 24


# -- login page --------------------------------------------------------------------------------


def test_login_page_flow_gives_tokens_that_verify_against_jwks(emu: Emulator) -> None:
    verifier, challenge = pkce_pair()
    answer = authorize_request(emu, code_challenge=challenge, code_challenge_method="S256")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/html")
    page = LoginPage(answer.text)
    assert page.title == "Auth0 emulator — sign in"
    assert page.form_action == "/u/login"
    assert page.fields["email"] == "alice@example.com"
    assert page.fields["txn"]
    assert {"email", "name", "allow", "deny"} <= page.ids
    assert "account" not in page.ids  # no connection asked for
    assert page.buttons["allow"] == ("action", "allow", "Sign in and allow")
    assert page.buttons["deny"] == ("action", "deny", "Deny")
    assert "Token Vault Emulator App" in answer.text

    back = redirect_query(submit(emu, page, email="dana@example.com", name="Dana Scully"))
    assert back["state"] == "state-123"

    tokens = code_grant(emu, back["code"], verifier)
    assert tokens.status_code == 200, tokens.text
    assert tokens.headers["Cache-Control"] == "no-store"
    body = tokens.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 86400
    assert body["scope"] == "openid profile email offline_access"
    assert body["refresh_token"].startswith("v1.emu.")

    keys = keyset(emu)
    id_token = jwt.decode(body["id_token"], keys, algorithms=["RS256"])
    assert id_token.header["kid"] == keys.keys[0].kid
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": emu.issuer},
        aud={"essential": True, "value": emu.client_id},
        nonce={"essential": True, "value": "nonce-123"},
        sub={"essential": True, "value": emu.user_id_for("dana@example.com")},
    ).validate(id_token.claims)
    claims = id_token.claims
    assert claims["name"] == "Dana Scully" and claims["email"] == "dana@example.com"
    assert claims["email_verified"] is True and claims["sid"]
    assert claims["exp"] - claims["iat"] == 36000

    access = jwt.decode(body["access_token"], keys, algorithms=["RS256"]).claims
    assert access["iss"] == emu.issuer and access["azp"] == emu.client_id
    assert access["aud"] == emu.url + "/userinfo"
    assert access["scope"] == "openid profile email offline_access"


def test_login_page_shows_connection_scopes_and_account_field(emu: Emulator) -> None:
    answer = authorize_request(
        emu,
        connection="google-oauth2",
        connection_scope=f"{CAL_READ},{CAL_EVENTS}",
        login_hint="erin@example.com",
        access_type="offline",
        prompt="consent",
    )
    page = LoginPage(answer.text)
    assert page.fields["email"] == "erin@example.com"
    assert "account" in page.ids
    assert page.lists["connection-scopes"] == ["openid", "email", "profile", CAL_READ, CAL_EVENTS]
    assert page.lists["scopes"] == ["openid", "profile", "email", "offline_access"]
    assert "google-oauth2" in answer.text


def test_login_with_connection_records_connected_account(emu: Emulator) -> None:
    login_code(
        emu,
        "frank@example.com",
        account="frank.work@example.com",
        connection="google-oauth2",
        connection_scope=CAL_READ,
    )
    [tokenset] = emu.state.tokensets_for(emu.user_id_for("frank@example.com"))
    assert tokenset.account == "frank.work@example.com"
    assert tokenset.scopes == ["openid", "email", "profile", CAL_READ]
    assert tokenset.id.startswith("fcts_")


def test_no_refresh_token_without_offline_access(emu: Emulator) -> None:
    code = login_code(emu, scope="openid profile email")
    body = code_grant(emu, code).json()
    assert "refresh_token" not in body
    assert body["id_token"] and body["access_token"]


def test_pkce_mismatch_is_rejected(emu: Emulator) -> None:
    _, challenge = pkce_pair()
    code = login_code(emu, challenge=challenge)
    answer = code_grant(emu, code, "a-different-verifier-" + "x" * 30)
    body = assert_error(answer, 403, "invalid_grant")
    assert body["error_description"] == "Failed to verify code verifier"


def test_pkce_missing_verifier_is_rejected(emu: Emulator) -> None:
    _, challenge = pkce_pair()
    code = login_code(emu, challenge=challenge)
    assert_error(code_grant(emu, code), 403, "invalid_grant")


def test_plain_pkce_is_accepted(emu: Emulator) -> None:
    verifier = secrets.token_urlsafe(48)
    code = login_code(emu, code_challenge=verifier, code_challenge_method="plain")
    assert code_grant(emu, code, verifier).status_code == 200


def test_code_cannot_be_replayed(emu: Emulator) -> None:
    code = login_code(emu)
    assert code_grant(emu, code).status_code == 200
    body = assert_error(code_grant(emu, code), 403, "invalid_grant")
    assert body["error_description"] == "Invalid authorization code"


def test_code_expires_after_sixty_seconds(emu: Emulator, emulator_clock: FakeClock) -> None:
    code = login_code(emu)
    emulator_clock.advance(61)
    assert_error(code_grant(emu, code), 403, "invalid_grant")


def test_code_needs_the_same_redirect_uri(emu: Emulator) -> None:
    code = login_code(emu)
    body = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": "http://127.0.0.1:5999/other",
    }
    assert_error(token_request(emu, body), 403, "invalid_grant")


def test_authorize_refuses_a_redirect_uri_that_is_not_allowed(emu: Emulator) -> None:
    answer = authorize_request(emu, redirect_uri="https://evil.example.com/callback")
    assert answer.status_code == 400
    assert "Location" not in answer.headers
    assert "Callback URL mismatch" in answer.text
    assert authorize_request(emu, redirect_uri="http://localhost:3000/cb").status_code == 200


def test_authorize_refuses_an_unknown_client(emu: Emulator) -> None:
    answer = authorize_request(emu, client_id="nobody")
    assert answer.status_code == 400 and "Location" not in answer.headers
    assert answer.headers["Content-Type"].startswith("text/html")


def test_authorize_redirects_back_bad_requests(emu: Emulator) -> None:
    wrong_type = redirect_query(authorize_request(emu, response_type="token"))
    assert wrong_type["error"] == "unsupported_response_type"
    assert wrong_type["state"] == "state-123"
    unknown = redirect_query(authorize_request(emu, connection="myspace"))
    assert unknown["error"] == "invalid_request"
    bad_method = redirect_query(
        authorize_request(emu, code_challenge="abc", code_challenge_method="MD5")
    )
    assert bad_method["error"] == "invalid_request"


def test_deny_button_redirects_with_access_denied(emu: Emulator) -> None:
    page = LoginPage(authorize_request(emu, connection="google-oauth2").text)
    answer = submit(emu, page, action="deny")
    assert answer.status_code == 302
    assert answer.headers["Location"] == (
        REDIRECT_URI + "?error=access_denied"
        "&error_description=User%20did%20not%20authorize%20the%20request&state=state-123"
    )
    assert emu.stats()["users"] == 0 and emu.stats()["tokensets"] == 0


def test_login_transaction_is_single_use_and_expires(
    emu: Emulator, emulator_clock: FakeClock
) -> None:
    page = LoginPage(authorize_request(emu).text)
    assert submit(emu, page).status_code == 302
    reused = submit(emu, page)
    assert reused.status_code == 400 and "Login expired" in reused.text

    later = LoginPage(authorize_request(emu).text)
    emulator_clock.advance(601)
    assert submit(emu, later).status_code == 400


def test_login_form_asks_again_for_a_bad_email(emu: Emulator) -> None:
    page = LoginPage(authorize_request(emu).text)
    again = submit(emu, page, email="not-an-email")
    assert again.status_code == 400
    retry = LoginPage(again.text)
    assert "error" in retry.ids
    assert retry.fields["txn"] == page.fields["txn"]
    assert redirect_query(submit(emu, retry, email="gina@example.com"))["code"]


# -- non-interactive mode ----------------------------------------------------------------------


def test_auto_login_redirects_at_once_and_connects_the_account(emu: Emulator) -> None:
    emu.set_auto_login("hank@example.com", name="Hank", account="hank.work@example.com")
    verifier, challenge = pkce_pair()
    answer = authorize_request(
        emu,
        connection="google-oauth2",
        connection_scope=CAL_READ,
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    back = redirect_query(answer)
    assert back["state"] == "state-123"
    tokens = code_grant(emu, back["code"], verifier).json()
    claims = jwt.decode(tokens["id_token"], keyset(emu)).claims
    assert claims["email"] == "hank@example.com" and claims["name"] == "Hank"
    token = vault_exchange(emu, tokens["refresh_token"]).json()["access_token"]
    who = google_get(emu, "/oauth2/v3/userinfo", token).json()
    assert who["email"] == "hank.work@example.com"


def test_auto_login_without_consent_denies(emu: Emulator) -> None:
    emu.set_auto_login("ivy@example.com", consent=False)
    assert redirect_query(authorize_request(emu))["error"] == "access_denied"


def test_auto_login_over_the_control_api(emu: Emulator) -> None:
    set_it = requests.post(
        emu.url + "/__emulator/auto-login", json={"email": "jo@example.com"}, timeout=TIMEOUT
    )
    assert set_it.status_code == 200
    assert redirect_query(authorize_request(emu))["code"]
    clear = requests.post(emu.url + "/__emulator/auto-login", json={"email": None}, timeout=TIMEOUT)
    assert clear.status_code == 200
    assert authorize_request(emu).status_code == 200  # the page again


def test_prompt_none_without_auto_login_needs_login(emu: Emulator) -> None:
    assert redirect_query(authorize_request(emu, prompt="none"))["error"] == "login_required"


def test_auto_login_given_to_the_constructor_survives_reset() -> None:
    with Emulator(auto_login="kim@example.com") as emulator:
        emulator.reset()
        assert emulator.auto_login is not None and emulator.auto_login.email == "kim@example.com"
        answer = authorize_request(emulator, scope=None, state=None, nonce=None)
        assert answer.status_code == 302 and "code=" in answer.headers["Location"]


# -- refresh grant -----------------------------------------------------------------------------


def test_refresh_grant_issues_new_tokens_but_keeps_the_refresh_token(emu: Emulator) -> None:
    refresh_token = code_grant(emu, login_code(emu)).json()["refresh_token"]
    answer = token_request(emu, {"grant_type": "refresh_token", "refresh_token": refresh_token})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert "refresh_token" not in body
    assert body["scope"] == "openid profile email offline_access"
    claims = jwt.decode(body["id_token"], keyset(emu)).claims
    assert "nonce" not in claims and claims["aud"] == emu.client_id
    narrowed = token_request(
        emu, {"grant_type": "refresh_token", "refresh_token": refresh_token, "scope": "openid"}
    )
    assert narrowed.json()["scope"] == "openid"
    wider = token_request(
        emu,
        {"grant_type": "refresh_token", "refresh_token": refresh_token, "scope": "openid admin"},
    )
    assert_error(wider, 400, "invalid_scope")


def test_refresh_grant_refuses_unknown_and_foreign_tokens(emu: Emulator) -> None:
    unknown = token_request(emu, {"grant_type": "refresh_token", "refresh_token": "v1.emu.nope"})
    body = assert_error(unknown, 403, "invalid_grant")
    assert body["error_description"] == "Unknown or invalid refresh token."
    emu.add_client("other-client", "other-secret")
    foreign = emu.issue_refresh_token("lee@example.com", client_id="other-client")
    answer = token_request(emu, {"grant_type": "refresh_token", "refresh_token": foreign})
    assert_error(answer, 403, "invalid_grant")


def test_userinfo_answers_for_emulator_access_tokens_only(emu: Emulator) -> None:
    access = code_grant(emu, login_code(emu, "mia@example.com")).json()["access_token"]
    answer = requests.get(
        emu.url + "/userinfo", headers={"Authorization": f"Bearer {access}"}, timeout=TIMEOUT
    )
    assert answer.status_code == 200
    assert answer.json() == {
        "sub": emu.user_id_for("mia@example.com"),
        "name": "Mia",
        "nickname": "mia",
        "updated_at": answer.json()["updated_at"],
        "email": "mia@example.com",
        "email_verified": True,
    }
    bad = requests.get(
        emu.url + "/userinfo", headers={"Authorization": "Bearer x.y.z"}, timeout=TIMEOUT
    )
    assert bad.status_code == 401
    assert requests.get(emu.url + "/userinfo", timeout=TIMEOUT).status_code == 401


def test_client_credentials_needs_an_audience(emu: Emulator) -> None:
    assert_error(token_request(emu, {"grant_type": "client_credentials"}), 403, "access_denied")
    audience = emu.url + "/api/v2/"
    answer = token_request(emu, {"grant_type": "client_credentials", "audience": audience})
    assert answer.status_code == 200
    claims = jwt.decode(answer.json()["access_token"], keyset(emu)).claims
    assert claims["aud"] == audience and claims["sub"] == emu.client_id + "@clients"
    assert "read:users" in answer.json()["scope"].split()


def test_token_endpoint_rejects_bad_client_credentials(emu: Emulator) -> None:
    body = {"grant_type": "client_credentials", "audience": "x", "client_secret": "wrong"}
    assert_error(token_request(emu, body), 401, "invalid_client")
    basic = requests.post(
        emu.url + "/oauth/token",
        data={"grant_type": "client_credentials", "audience": "x"},
        auth=(emu.client_id, "wrong"),
        timeout=TIMEOUT,
    )
    assert_error(basic, 401, "invalid_client")
    assert_error(token_request(emu, {"grant_type": "password"}), 400, "unsupported_grant_type")
    assert_error(token_request(emu, {}), 400, "invalid_request")


# -- Token Vault exchange ----------------------------------------------------------------------


@pytest.mark.parametrize(("as_json", "basic"), [(False, False), (True, False), (False, True)])
def test_exchange_succeeds_with_form_json_and_basic_auth(
    emu: Emulator, as_json: bool, basic: bool
) -> None:
    emu.connect_account("nora@example.com", "google-oauth2", [CAL_READ])
    refresh_token = emu.issue_refresh_token("nora@example.com")
    answer = vault_exchange(emu, refresh_token, as_json=as_json, basic=basic)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Cache-Control"] == "no-store"
    body = answer.json()
    assert set(body) == {"access_token", "expires_in", "scope", "token_type", "issued_token_type"}
    assert body["access_token"].startswith("ya29.emu.")
    assert body["expires_in"] == 3600 and body["token_type"] == "Bearer"
    assert body["issued_token_type"] == FEDERATED_TOKEN_TYPE
    assert body["scope"].split(" ") == ["openid", "email", "profile", CAL_READ]
    assert emu.exchange_count(emu.user_id_for("nora@example.com"), "google-oauth2") == 1


def test_exchange_for_microsoft_gives_graph_tokens(emu: Emulator) -> None:
    token = provider_token(emu, "owen@example.com", "windowslive", ("Calendars.Read",))
    assert token.startswith("EwB.emu.")
    assert emu.exchange_count(connection="windowslive") == 1
    assert emu.exchange_count(connection="google-oauth2") == 0


def test_scopes_merge_across_connects(emu: Emulator) -> None:
    code = login_code(emu, "pat@example.com", connection="google-oauth2", connection_scope=CAL_READ)
    refresh_token = code_grant(emu, code).json()["refresh_token"]
    login_code(emu, "pat@example.com", connection="google-oauth2", connection_scope=CAL_EVENTS)
    scopes = vault_exchange(emu, refresh_token).json()["scope"].split(" ")
    assert scopes == ["openid", "email", "profile", CAL_READ, CAL_EVENTS]

    emu.connect_account("pat@example.com", "google-oauth2", "")  # asks for nothing new
    assert vault_exchange(emu, refresh_token).json()["scope"].split(" ") == scopes


def test_connection_scope_may_be_space_separated(emu: Emulator) -> None:
    login_code(
        emu,
        "quinn@example.com",
        connection="google-oauth2",
        connection_scope=f"{CAL_READ} {CAL_EVENTS}",
    )
    [tokenset] = emu.state.tokensets_for(emu.user_id_for("quinn@example.com"))
    assert CAL_READ in tokenset.scopes and CAL_EVENTS in tokenset.scopes


def test_exchange_joins_scopes_with_the_connection_separator(emu: Emulator) -> None:
    emu.state.connections["github"] = Connection(
        name="github",
        strategy="github",
        options={"federated_connections_access_tokens": {"active": True}},
        default_scopes=["read:user"],
        scope_separator=",",
        enabled_clients=[emu.client_id],
    )
    try:
        emu.connect_account("ruth@example.com", "github", "repo,gist")
        answer = vault_exchange(emu, emu.issue_refresh_token("ruth@example.com"), "github")
        assert answer.json()["scope"] == "read:user,repo,gist"
    finally:
        del emu.state.connections["github"]


def test_login_hint_picks_the_account(emu: Emulator) -> None:
    emu.connect_account("sam@example.com", "google-oauth2", [CAL_READ], account="sam@work.example")
    emu.connect_account("sam@example.com", "google-oauth2", [], account="sam@home.example")
    refresh_token = emu.issue_refresh_token("sam@example.com")

    def account_of(answer: requests.Response) -> str:
        token = answer.json()["access_token"]
        email: str = google_get(emu, "/oauth2/v3/userinfo", token).json()["email"]
        return email

    assert account_of(vault_exchange(emu, refresh_token, login_hint="sam@work.example")) == (
        "sam@work.example"
    )
    assert account_of(vault_exchange(emu, refresh_token)) == "sam@home.example"  # most recent
    work = vault_exchange(emu, refresh_token, login_hint="sam@work.example").json()
    assert CAL_READ in work["scope"].split()
    home = vault_exchange(emu, refresh_token, login_hint="sam@home.example").json()
    assert CAL_READ not in home["scope"].split()
    unknown = vault_exchange(emu, refresh_token, login_hint="sam@elsewhere.example")
    assert_error(unknown, 401, "federated_connection_refresh_token_not_found")


def test_exchange_without_connected_account_is_401_not_found(emu: Emulator) -> None:
    refresh_token = emu.issue_refresh_token("tom@example.com")
    body = assert_error(
        vault_exchange(emu, refresh_token), 401, "federated_connection_refresh_token_not_found"
    )
    assert body["error_description"] == "Federated connection Refresh Token not found."
    assert emu.stats()["exchanges"]["failed"] == 1
    assert emu.exchange_count() == 0


def test_broken_provider_refresh_is_401_flow_failed(emu: Emulator) -> None:
    emu.connect_account("uma@example.com", "google-oauth2", [CAL_READ])
    refresh_token = emu.issue_refresh_token("uma@example.com")
    emu.break_provider_refresh("uma@example.com", "google-oauth2")
    assert_error(
        vault_exchange(emu, refresh_token), 401, "federated_connection_refresh_token_flow_failed"
    )
    emu.break_provider_refresh("uma@example.com", "google-oauth2", broken=False)
    assert vault_exchange(emu, refresh_token).status_code == 200
    with pytest.raises(ValueError, match="no connected account"):
        emu.break_provider_refresh("uma@example.com", "windowslive")


def test_exchange_refuses_bad_subject_tokens(emu: Emulator) -> None:
    emu.connect_account("vic@example.com", "google-oauth2", [CAL_READ])
    refresh_token = emu.issue_refresh_token("vic@example.com")
    assert_error(vault_exchange(emu, "v1.emu.made-up"), 401, "invalid_grant")
    access_type = vault_exchange(emu, refresh_token, subject_token_type=ACCESS_TOKEN_TYPE)
    assert (
        "Custom API Client"
        in assert_error(access_type, 400, "invalid_request")["error_description"]
    )
    assert_error(
        vault_exchange(emu, refresh_token, subject_token_type="urn:x"), 400, "invalid_request"
    )
    assert_error(
        vault_exchange(emu, refresh_token, requested_token_type="x"), 400, "invalid_request"
    )
    assert_error(vault_exchange(emu, refresh_token, subject_token=None), 400, "invalid_request")

    emu.add_client("second-client", "second-secret")
    foreign = emu.issue_refresh_token("vic@example.com", client_id="second-client")
    assert_error(vault_exchange(emu, foreign), 401, "invalid_grant")


def test_exchange_refuses_bad_connections(emu: Emulator) -> None:
    refresh_token = emu.issue_refresh_token("wes@example.com")
    assert_error(vault_exchange(emu, refresh_token, connection=None), 400, "invalid_request")
    assert_error(vault_exchange(emu, refresh_token, connection="myspace"), 400, "invalid_request")
    no_vault = vault_exchange(emu, refresh_token, connection="Username-Password-Authentication")
    assert_error(no_vault, 403, "access_denied")


@pytest.mark.parametrize("parameter", ["audience", "resource"])
def test_exchange_refuses_audience_and_resource(emu: Emulator, parameter: str) -> None:
    emu.connect_account("xena@example.com", "google-oauth2", [CAL_READ])
    refresh_token = emu.issue_refresh_token("xena@example.com")
    if parameter == "audience":
        answer = vault_exchange(emu, refresh_token, audience="https://api.example.com")
    else:
        answer = vault_exchange(emu, refresh_token, resource="https://api.example.com")
    assert parameter in assert_error(answer, 400, "invalid_request")["error_description"]


def test_exchange_is_refused_to_a_client_without_the_grant(emu: Emulator) -> None:
    emu.add_client(
        "no-vault-client", "no-vault-secret", grant_types=["authorization_code", "refresh_token"]
    )
    emu.connect_account("yan@example.com", "google-oauth2", [CAL_READ])
    refresh_token = emu.issue_refresh_token("yan@example.com", client_id="no-vault-client")
    answer = vault_exchange(
        emu, refresh_token, client_id="no-vault-client", client_secret="no-vault-secret"
    )
    body = assert_error(answer, 403, "unauthorized_client")
    assert (
        body["error_description"] == f"Grant type '{TOKEN_VAULT_GRANT}' not allowed for the client."
    )


def test_exchange_scope_parameter_narrows_or_is_refused(emu: Emulator) -> None:
    emu.connect_account("zoe@example.com", "google-oauth2", [CAL_READ, CAL_EVENTS])
    refresh_token = emu.issue_refresh_token("zoe@example.com")
    narrow = vault_exchange(emu, refresh_token, scope=CAL_READ)
    assert narrow.json()["scope"] == CAL_READ
    token = narrow.json()["access_token"]
    assert google_get(emu, "/calendar/v3/users/me/calendarList", token).status_code == 200
    created = requests.post(
        emu.google_api_base + "/calendar/v3/calendars/primary/events",
        headers={"Authorization": f"Bearer {token}"},
        json={"summary": "x", "start": {"dateTime": "2030-01-01T10:00:00Z"}},
        timeout=TIMEOUT,
    )
    assert created.status_code == 403  # the narrowed token has no write scope
    too_wide = vault_exchange(emu, refresh_token, scope=f"{CAL_READ} https://mail.google.com/")
    assert_error(too_wide, 400, "invalid_scope")


def test_provider_token_ttl_is_reported_and_enforced(
    emu: Emulator, emulator_clock: FakeClock
) -> None:
    emu.set_provider_token_ttl("google-oauth2", 120)
    emu.connect_account("abe@example.com", "google-oauth2", [CAL_READ])
    answer = vault_exchange(emu, emu.issue_refresh_token("abe@example.com"))
    assert answer.json()["expires_in"] == 120
    token = answer.json()["access_token"]
    assert google_get(emu, "/calendar/v3/users/me/calendarList", token).status_code == 200
    emulator_clock.advance(121)
    assert google_get(emu, "/calendar/v3/users/me/calendarList", token).status_code == 401


def test_reset_restores_the_default_provider_token_ttl(emu: Emulator) -> None:
    emu.set_provider_token_ttl("google-oauth2", 5)
    emu.reset()
    assert emu.state.provider_ttl("google-oauth2") == 3600
    with pytest.raises(ValueError, match="unknown connection"):
        emu.set_provider_token_ttl("myspace", 10)


# -- provider APIs -----------------------------------------------------------------------------


def test_google_calendar_list_and_events(emu: Emulator) -> None:
    token = provider_token(emu, "bea@example.com")
    calendars = google_get(emu, "/calendar/v3/users/me/calendarList", token)
    assert calendars.status_code == 200
    body = calendars.json()
    assert body["kind"] == "calendar#calendarList"
    assert body["items"][0]["id"] == "bea@example.com" and body["items"][0]["primary"] is True

    events = google_get(emu, "/calendar/v3/calendars/primary/events", token).json()
    assert events["kind"] == "calendar#events"
    assert 3 <= len(events["items"]) <= 5
    first = events["items"][0]
    assert {"id", "summary", "start", "end", "htmlLink"} <= set(first)
    again = google_get(emu, "/calendar/v3/calendars/bea%40example.com/events", token).json()
    assert again["items"] == events["items"]  # deterministic, and the email works as calendarId
    limited = google_get(emu, "/calendar/v3/calendars/primary/events", token, maxResults="2")
    assert len(limited.json()["items"]) == 2
    future = google_get(
        emu, "/calendar/v3/calendars/primary/events", token, timeMin="2999-01-01T00:00:00Z"
    )
    assert future.json()["items"] == []
    other = google_get(emu, "/calendar/v3/calendars/someone@example.com/events", token)
    assert other.status_code == 404


def test_google_created_event_shows_up_in_listings(emu: Emulator) -> None:
    token = provider_token(emu, "cal@example.com", scopes=(CAL_EVENTS,))
    created = requests.post(
        emu.google_api_base + "/calendar/v3/calendars/primary/events",
        headers={"Authorization": f"Bearer {token}"},
        json={
            "summary": "Launch party",
            "start": {"dateTime": "2031-06-01T18:00:00Z"},
            "end": {"dateTime": "2031-06-01T21:00:00Z"},
        },
        timeout=TIMEOUT,
    )
    assert created.status_code == 200, created.text
    assert created.json()["summary"] == "Launch party"
    listed = google_get(
        emu, "/calendar/v3/calendars/primary/events", token, timeMin="2031-01-01T00:00:00Z"
    ).json()["items"]
    assert [event["id"] for event in listed] == [created.json()["id"]]
    assert listed[0]["start"]["dateTime"] == "2031-06-01T18:00:00Z"
    missing_end = requests.post(
        emu.google_api_base + "/calendar/v3/calendars/primary/events",
        headers={"Authorization": f"Bearer {token}"},
        json={"summary": "x", "start": {"dateTime": "2031-06-01T18:00:00Z"}},
        timeout=TIMEOUT,
    )
    assert missing_end.status_code == 400


def test_google_answers_401_and_403_in_its_own_shape(emu: Emulator) -> None:
    no_token = google_get(emu, "/calendar/v3/users/me/calendarList", None)
    assert no_token.status_code == 401
    error = no_token.json()["error"]
    assert error["code"] == 401 and error["status"] == "UNAUTHENTICATED"
    assert error["message"] == "Request had invalid authentication credentials."
    assert google_get(emu, "/calendar/v3/users/me/calendarList", "ya29.fake").status_code == 401

    basic = provider_token(emu, "dan@example.com", scopes=())
    lacking = google_get(emu, "/calendar/v3/users/me/calendarList", basic)
    assert lacking.status_code == 403
    assert lacking.json()["error"] == {
        "code": 403,
        "message": "Request had insufficient authentication scopes.",
        "errors": lacking.json()["error"]["errors"],
        "status": "PERMISSION_DENIED",
    }
    assert google_get(emu, "/oauth2/v3/userinfo", basic).json()["email"] == "dan@example.com"

    graph_token = provider_token(emu, "dan@example.com", "windowslive", ("Calendars.Read",))
    assert google_get(emu, "/oauth2/v3/userinfo", graph_token).status_code == 401


def test_graph_me_and_events(emu: Emulator) -> None:
    token = provider_token(emu, "eve@example.com", "windowslive", ("Calendars.Read",))
    me = graph_get(emu, "/v1.0/me", token)
    assert me.status_code == 200
    body = me.json()
    assert body["mail"] == body["userPrincipalName"] == "eve@example.com"
    assert body["id"] and body["displayName"] == "Eve" and body["jobTitle"]
    events = graph_get(emu, "/v1.0/me/events", token)
    assert events.status_code == 200
    assert events.json()["value"] and "subject" in events.json()["value"][0]


def test_graph_answers_401_and_403_in_its_own_shape(emu: Emulator) -> None:
    no_token = graph_get(emu, "/v1.0/me", None)
    assert no_token.status_code == 401
    assert no_token.json()["error"]["code"] == "InvalidAuthenticationToken"
    google_token = provider_token(emu, "fay@example.com")
    assert graph_get(emu, "/v1.0/me", google_token).status_code == 401

    user_read_only = provider_token(emu, "fay@example.com", "windowslive", ())
    assert graph_get(emu, "/v1.0/me", user_read_only).status_code == 200
    denied = graph_get(emu, "/v1.0/me/events", user_read_only)
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "Authorization_RequestDenied"
    assert denied.json()["error"]["message"] == "Insufficient privileges to complete the operation."


def test_revoked_provider_tokens_get_401_until_a_new_exchange(emu: Emulator) -> None:
    emu.connect_account("gus@example.com", "google-oauth2", [CAL_READ])
    refresh_token = emu.issue_refresh_token("gus@example.com")
    token = vault_exchange(emu, refresh_token).json()["access_token"]
    other = provider_token(emu, "hal@example.com")
    assert emu.revoke_provider_tokens(email="gus@example.com") == 1
    assert google_get(emu, "/calendar/v3/users/me/calendarList", token).status_code == 401
    assert google_get(emu, "/calendar/v3/users/me/calendarList", other).status_code == 200
    fresh = vault_exchange(emu, refresh_token).json()["access_token"]
    assert fresh != token
    assert google_get(emu, "/calendar/v3/users/me/calendarList", fresh).status_code == 200


# -- faults ------------------------------------------------------------------------------------


def test_fault_answers_status_and_body_for_the_given_times(emu: Emulator) -> None:
    emu.connect_account("ida@example.com", "google-oauth2", [CAL_READ])
    refresh_token = emu.issue_refresh_token("ida@example.com")
    emu.add_fault("token:exchange", status=503, body={"error": "temporarily_unavailable"}, times=2)
    for _ in range(2):
        answer = vault_exchange(emu, refresh_token)
        assert answer.status_code == 503
        assert answer.json() == {"error": "temporarily_unavailable"}
    assert vault_exchange(emu, refresh_token).status_code == 200
    stats = emu.stats()["exchanges"]
    assert (stats["succeeded"], stats["failed"], stats["total"]) == (1, 2, 3)


def test_fault_matches_by_grant_type(emu: Emulator) -> None:
    emu.add_fault("token:refresh_token", status=500)
    audience = {"grant_type": "client_credentials", "audience": "https://api.example.com"}
    assert token_request(emu, audience).status_code == 200  # another grant: untouched
    emu.connect_account("jay@example.com", "google-oauth2", [CAL_READ])
    refresh_token = emu.issue_refresh_token("jay@example.com")
    refresh = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    assert token_request(emu, refresh, as_json=True).status_code == 500


def test_fault_with_retry_after_and_oauth_error(emu: Emulator) -> None:
    emu.add_fault(
        "token",
        status=429,
        headers={"Retry-After": "1"},
        error="too_many_requests",
        error_description="Global limit has been reached",
    )
    answer = token_request(emu, {"grant_type": "client_credentials", "audience": "x"})
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "1"
    assert answer.json() == {
        "error": "too_many_requests",
        "error_description": "Global limit has been reached",
    }


def test_fault_with_a_raw_body(emu: Emulator) -> None:
    emu.add_fault("token", status=200, body='{"access_tok')
    truncated = token_request(emu, {"grant_type": "client_credentials", "audience": "x"})
    assert truncated.status_code == 200 and truncated.text == '{"access_tok'
    emu.add_fault(
        "discovery", status=502, body="<html>Bad gateway</html>", content_type="text/html"
    )
    page = requests.get(emu.url + "/.well-known/openid-configuration", timeout=TIMEOUT)
    assert page.status_code == 502 and page.headers["Content-Type"].startswith("text/html")
    assert page.text == "<html>Bad gateway</html>"


def test_fault_delay_slows_a_normal_answer(emu: Emulator) -> None:
    emu.add_fault("jwks", status=0, delay=0.3)
    started = time.monotonic()
    answer = requests.get(emu.url + "/.well-known/jwks.json", timeout=TIMEOUT)
    assert answer.status_code == 200 and answer.json()["keys"]
    assert time.monotonic() - started >= 0.3
    emu.add_fault("jwks", status=0, delay=1.0)
    with pytest.raises(requests.Timeout):
        requests.get(emu.url + "/.well-known/jwks.json", timeout=0.2)


def test_fault_drop_closes_the_connection(emu: Emulator) -> None:
    emu.add_fault("userinfo", drop=True)
    with pytest.raises(requests.ConnectionError):
        requests.get(emu.url + "/userinfo", timeout=TIMEOUT)
    assert requests.get(emu.url + "/userinfo", timeout=TIMEOUT).status_code == 401


def test_fault_until_cleared_and_wildcard_spare_the_control_api(emu: Emulator) -> None:
    emu.add_fault("*", status=500, times=-1)
    for _ in range(3):
        assert requests.get(emu.url + "/.well-known/jwks.json", timeout=TIMEOUT).status_code == 500
    stats = requests.get(emu.url + "/__emulator/stats", timeout=TIMEOUT)
    assert stats.status_code == 200
    cleared = requests.delete(emu.url + "/__emulator/faults", timeout=TIMEOUT)
    assert cleared.status_code == 200
    assert requests.get(emu.url + "/.well-known/jwks.json", timeout=TIMEOUT).status_code == 200


def test_provider_faults(emu: Emulator) -> None:
    token = provider_token(emu, "kay@example.com")
    emu.add_fault("google", status=503, body={"error": {"code": 503}})
    assert google_get(emu, "/calendar/v3/users/me/calendarList", token).status_code == 503
    assert google_get(emu, "/calendar/v3/users/me/calendarList", token).status_code == 200
    assert emu.stats()["provider_calls"]["google"] == {"503": 1, "200": 1}


def test_faults_over_the_control_api(emu: Emulator) -> None:
    added = requests.post(
        emu.url + "/__emulator/faults",
        json={"endpoint": "authorize", "status": 500, "body": "down", "content_type": "text/plain"},
        timeout=TIMEOUT,
    )
    assert added.status_code == 201
    listed = requests.get(emu.url + "/__emulator/faults", timeout=TIMEOUT).json()["faults"]
    assert [fault["endpoint"] for fault in listed] == ["authorize"]
    assert authorize_request(emu).text == "down"
    bad = requests.post(
        emu.url + "/__emulator/faults", json={"endpoint": "nowhere"}, timeout=TIMEOUT
    )
    assert bad.status_code == 400 and "unknown fault endpoint" in bad.json()["error"]
    with pytest.raises(ValueError, match="unknown fault endpoint"):
        emu.add_fault("nowhere")


# -- stats, reset and control API --------------------------------------------------------------


def test_stats_count_exchanges_requests_and_provider_calls(emu: Emulator) -> None:
    token = provider_token(emu, "lou@example.com")
    provider_token(emu, "lou@example.com")
    provider_token(emu, "max@example.com", "windowslive", ())
    vault_exchange(emu, emu.issue_refresh_token("ned@example.com"))  # not connected: fails
    google_get(emu, "/calendar/v3/users/me/calendarList", token)
    google_get(emu, "/calendar/v3/users/me/calendarList", "nope")

    stats = requests.get(emu.url + "/__emulator/stats", timeout=TIMEOUT).json()
    assert stats == emu.stats()
    assert stats["exchanges"]["total"] == 4 and stats["exchanges"]["failed"] == 1
    assert {
        (row["user_id"], row["connection"], row["count"])
        for row in stats["exchanges"]["by_user_connection"]
    } == {
        (emu.user_id_for("lou@example.com"), "google-oauth2", 2),
        (emu.user_id_for("max@example.com"), "windowslive", 1),
    }
    assert stats["token_requests"] == {TOKEN_VAULT_GRANT: 4}
    assert stats["provider_calls"]["google"] == {"200": 1, "401": 1}
    assert stats["users"] == 3 and stats["tokensets"] == 2
    assert emu.exchange_count(user_id=emu.user_id_for("lou@example.com")) == 2
    assert emu.exchange_count() == 3


def test_reset_forgets_everything_but_the_tenant_config(emu: Emulator) -> None:
    emu.add_client("kept-client", "kept-secret")
    try:
        token = provider_token(emu, "oli@example.com")
        refresh_token = emu.issue_refresh_token("oli@example.com")
        emu.set_auto_login("oli@example.com")
        emu.add_fault("jwks", times=-1)
        reset = requests.post(emu.url + "/__emulator/reset", timeout=TIMEOUT)
        assert reset.status_code == 200
        assert emu.stats()["users"] == 0 and emu.stats()["tokensets"] == 0
        assert emu.stats()["exchanges"]["total"] == 0
        assert emu.auto_login is None
        assert requests.get(emu.url + "/.well-known/jwks.json", timeout=TIMEOUT).status_code == 200
        assert_error(vault_exchange(emu, refresh_token), 401, "invalid_grant")
        assert google_get(emu, "/calendar/v3/users/me/calendarList", token).status_code == 401
        assert emu.state.get_client("kept-client") is not None
        assert set(emu.state.connections) >= {"google-oauth2", "windowslive"}
    finally:
        del emu.state.clients["kept-client"]


def test_control_api_drives_accounts_tokens_ttl_and_revocation(emu: Emulator) -> None:
    def control(path: str, body: dict[str, Any]) -> requests.Response:
        return requests.post(emu.url + "/__emulator/" + path, json=body, timeout=TIMEOUT)

    connected = control(
        "accounts",
        {"email": "pia@example.com", "connection": "google-oauth2", "scopes": [CAL_READ]},
    )
    assert connected.status_code == 200
    assert connected.json()["tokenset_id"].startswith("fcts_")
    assert connected.json()["user_id"] == emu.user_id_for("pia@example.com")
    issued = control("refresh-tokens", {"email": "pia@example.com"})
    refresh_token = issued.json()["refresh_token"]
    ttl = control("provider-token-ttl", {"connection": "google-oauth2", "seconds": 60})
    assert ttl.status_code == 200
    answer = vault_exchange(emu, refresh_token)
    assert answer.json()["expires_in"] == 60
    token = answer.json()["access_token"]

    revoked = control("revoke-provider-tokens", {"email": "pia@example.com"})
    assert revoked.json() == {"revoked": 1}
    assert google_get(emu, "/calendar/v3/users/me/calendarList", token).status_code == 401
    broken = control(
        "break-provider-refresh", {"email": "pia@example.com", "connection": "google-oauth2"}
    )
    assert broken.status_code == 200
    assert_error(
        vault_exchange(emu, refresh_token), 401, "federated_connection_refresh_token_flow_failed"
    )

    user = requests.get(emu.url + "/__emulator/users/pia@example.com", timeout=TIMEOUT).json()
    assert [t["connection"] for t in user["tokensets"]] == ["google-oauth2"]

    assert control("accounts", {"email": "pia@example.com"}).status_code == 400
    assert (
        control("accounts", {"email": "pia@example.com", "connection": "nope"}).status_code == 400
    )
    assert (
        control("provider-token-ttl", {"connection": "google-oauth2", "seconds": "x"}).status_code
        == 400
    )


# -- logout ------------------------------------------------------------------------------------


def v2_logout(
    emu: Emulator, return_to: str, browser: requests.Session | None = None
) -> requests.Response:
    """Sign out at the emulator's /v2/logout, asking to be sent to ``return_to``."""
    return (browser or requests).get(
        emu.url + "/v2/logout",
        params={"client_id": emu.client_id, "returnTo": return_to},
        allow_redirects=False,
        timeout=TIMEOUT,
    )


def test_logout_redirects_to_allowed_return_urls_only(emu: Emulator) -> None:
    back = v2_logout(emu, "http://localhost:5000/")
    assert back.status_code == 302 and back.headers["Location"] == "http://localhost:5000/"
    stranger = v2_logout(emu, "https://evil.example.com/")
    assert stranger.status_code == 200 and "Logged out" in stranger.text
    oidc = requests.get(
        emu.url + "/oidc/logout",
        params={
            "client_id": emu.client_id,
            "post_logout_redirect_uri": "http://127.0.0.1:5000/bye",
            "state": "s1",
        },
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert (
        oidc.status_code == 302 and oidc.headers["Location"] == "http://127.0.0.1:5000/bye?state=s1"
    )


# -- life cycle and CLI ------------------------------------------------------------------------


def test_start_is_idempotent_and_stop_frees_the_port() -> None:
    emulator = Emulator()
    with pytest.raises(RuntimeError):
        _ = emulator.url
    assert emulator.start() is emulator
    url = emulator.url
    assert emulator.start() is emulator and emulator.url == url
    assert requests.get(url + "/.well-known/jwks.json", timeout=TIMEOUT).status_code == 200
    emulator.stop()
    assert not emulator.running
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/.well-known/jwks.json", timeout=TIMEOUT)
    emulator.stop()  # a second stop is harmless


def test_command_line_prints_the_settings_and_stops_on_ctrl_c() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "flask_token_vault_emulator", "--port", "0", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 20)
        assert ready, "the emulator printed nothing"
        first = process.stdout.readline()
        assert first.startswith("Auth0 Token Vault emulator running at http://127.0.0.1:")
        url = first.rsplit(" ", 1)[1].strip()
        rest = [process.stdout.readline().rstrip("\n") for _ in range(13)]
        assert "emulator-client-id" in "\n".join(rest) and "emulator-client-secret" in "\n".join(
            rest
        )
        # The exact value to paste: with http://, since a bare host:port would mean https.
        assert f"  export AUTH0_DOMAIN={url}" in rest
        assert "  export AUTH0_CLIENT_ID=emulator-client-id" in rest
        assert not any(line.strip().startswith("domain:") for line in rest)
        discovery = requests.get(url + "/.well-known/openid-configuration", timeout=TIMEOUT)
        assert discovery.json()["issuer"] == url + "/"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


# -- tenant shapes: a bare tenant, the two Token Vault switches, the My Account policy --------


def test_a_bare_tenant_checks_callback_and_logout_urls_like_auth0(emu: Emulator) -> None:
    emu.bare_tenant()
    refused = authorize_request(emu)
    assert refused.status_code == 400 and "Callback URL mismatch" in refused.text
    logout = v2_logout(emu, "http://localhost:5000/")
    assert logout.status_code == 200 and "Logged out" in logout.text
    client = emu.state.clients[emu.client_id]
    client.callbacks = [REDIRECT_URI]
    client.allowed_logout_urls = ["http://localhost:5000/"]
    assert authorize_request(emu).status_code == 200
    logout = v2_logout(emu, "http://localhost:5000/")
    assert logout.status_code == 302


def test_a_bare_tenant_stores_nothing_at_sign_in_and_refuses_the_exchange(emu: Emulator) -> None:
    emu.bare_tenant()
    emu.state.clients[emu.client_id].callbacks = [REDIRECT_URI]
    login_code(emu, "ann@example.com", connection="google-oauth2", connection_scope=CAL_READ)
    assert emu.state.tokensets_for(emu.user_id_for("ann@example.com")) == []
    emu.state.clients[emu.client_id].grant_types.append(TOKEN_VAULT_GRANT)
    answer = vault_exchange(emu, emu.issue_refresh_token("ann@example.com"))
    assert_error(answer, 403, "access_denied")


def test_connected_accounts_alone_lets_the_exchange_serve_the_vault(emu: Emulator) -> None:
    """The 2026 switch is enough: accounts connected through it are exchanged."""
    google = emu.state.connections["google-oauth2"]
    google.options = {}
    google.connected_accounts = {"active": True}
    emu.connect_account("bob@example.com", "google-oauth2", [CAL_READ])
    answer = vault_exchange(emu, emu.issue_refresh_token("bob@example.com"))
    assert answer.status_code == 200, answer.text
    # Sign-in through the connection stores nothing without the 2025 switch.
    login_code(emu, "cat@example.com", connection="google-oauth2", connection_scope=CAL_READ)
    assert emu.state.tokensets_for(emu.user_id_for("cat@example.com")) == []


def test_my_account_tokens_only_within_the_refresh_token_policy(emu: Emulator) -> None:
    refresh_token = emu.issue_refresh_token("dan@example.com")

    def my_account(scope: str | None) -> requests.Response:
        return token_request(
            emu,
            {
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
                "audience": emu.url + "/me/",
                "scope": scope,
            },
        )

    assert my_account("read:me:connected_accounts").json()["scope"] == (
        "read:me:connected_accounts"
    )
    everything = my_account(None).json()["scope"].split()
    assert sorted(everything) == sorted(emu.state.clients[emu.client_id].my_account_scopes)
    emu.state.clients[emu.client_id].my_account_scopes = ["read:me:connected_accounts"]
    outside = assert_error(
        my_account("read:me:connected_accounts create:me:connected_accounts"), 403, "access_denied"
    )
    assert "create:me:connected_accounts" in outside["error_description"]
    emu.state.clients[emu.client_id].my_account_scopes = []
    assert_error(my_account("read:me:connected_accounts"), 403, "access_denied")


def test_the_command_line_can_start_a_bare_tenant() -> None:
    assert parse_args(["--bare"]).bare is True
    assert parse_args([]).bare is False


# -- the emulator's own sign-in session (a cookie, as Auth0 keeps one) --------------------------


def browser_authorize(browser: requests.Session, emu: Emulator, **params: str) -> LoginPage:
    """Open /authorize in a browser (a session keeping the emulator's cookie); read the page."""
    answer = authorize_request(emu, browser, nonce=None, **params)
    assert answer.status_code == 200, answer.text
    return LoginPage(answer.text)


def browser_submit(browser: requests.Session, emu: Emulator, page: LoginPage, **fields: str) -> str:
    """Submit the page in the browser; return the user the code was issued for."""
    answer = browser.post(
        emu.url + "/u/login", data={**page.fields, **fields}, allow_redirects=False, timeout=10
    )
    code = redirect_query(answer)["code"]
    return emu.state.codes[code].user_id


def test_a_connect_keeps_the_user_signed_in_at_the_emulator(emu: Emulator) -> None:
    browser = requests.Session()
    first = browser_authorize(browser, emu)
    assert first.title == "Auth0 emulator — sign in"
    ivy = browser_submit(browser, emu, first, email="ivy@example.com")
    assert ivy == emu.user_id_for("ivy@example.com")
    assert browser.cookies.get("auth0")

    connect = browser_authorize(browser, emu, connection="google-oauth2", connection_scope=CAL_READ)
    assert connect.title == "Auth0 emulator — connect"
    assert {"signed-in-as", "account", "switch-user"} <= connect.ids
    assert "email" not in connect.fields  # who connects is not the page's to change
    assert connect.buttons["allow"] == ("action", "allow", "Allow")
    # Even a form that names someone else connects the signed-in user's account.
    assert browser_submit(browser, emu, connect, email="mallory@example.com") == ivy
    [tokenset] = emu.state.tokensets_for(ivy)
    assert CAL_READ in tokenset.scopes
    assert emu.state.users_by_email("mallory@example.com") == []


def test_the_connect_page_names_the_signed_in_user(emu: Emulator) -> None:
    browser = requests.Session()
    browser_submit(browser, emu, browser_authorize(browser, emu), email="ivy@example.com")
    query = {"connection": "google-oauth2", "connection_scope": CAL_READ}
    answer = authorize_request(emu, browser, scope=None, state=None, nonce=None, **query)
    assert '<h1 id="page-title">Connect Google</h1>' in answer.text
    assert "Signed in as <strong>ivy@example.com</strong>" in answer.text


def test_sign_in_as_someone_else_leaves_the_connect_page(emu: Emulator) -> None:
    browser = requests.Session()
    browser_submit(browser, emu, browser_authorize(browser, emu), email="ivy@example.com")
    connect = authorize_request(
        emu,
        browser,
        scope=None,
        state=None,
        nonce=None,
        connection="google-oauth2",
        prompt="consent",  # what the extension sends for Google
    )
    link = re.search(r'<a href="([^"]+)" id="switch-user">', connect.text)
    assert link, connect.text
    switch = browser.get(html.unescape(link.group(1)), timeout=TIMEOUT)
    page = LoginPage(switch.text)
    assert page.title == "Auth0 emulator — sign in" and "email" in page.fields
    assert parse_qs(urlsplit(switch.url).query)["prompt"] == ["login"]


def test_sign_in_page_is_filled_in_with_the_signed_in_user(emu: Emulator) -> None:
    browser = requests.Session()
    browser_submit(browser, emu, browser_authorize(browser, emu), email="ivy@example.com")
    again = browser_authorize(browser, emu)
    assert again.title == "Auth0 emulator — sign in"
    assert again.fields["email"] == "ivy@example.com"


def test_prompt_login_and_logout_forget_the_signed_in_user(emu: Emulator) -> None:
    browser = requests.Session()
    browser_submit(browser, emu, browser_authorize(browser, emu), email="ivy@example.com")
    switch = browser_authorize(browser, emu, connection="google-oauth2", prompt="login")
    assert switch.title == "Auth0 emulator — sign in" and "email" in switch.fields
    jay = browser_submit(browser, emu, switch, email="jay@example.com")
    assert jay == emu.user_id_for("jay@example.com")

    out = v2_logout(emu, REDIRECT_URI, browser)
    assert out.status_code == 302 and not browser.cookies.get("auth0")
    after = browser_authorize(browser, emu, connection="google-oauth2")
    assert after.title == "Auth0 emulator — sign in"
    assert after.fields["email"] == "alice@example.com"


def test_prompt_none_signs_in_the_signed_in_user(emu: Emulator) -> None:
    browser = requests.Session()
    ivy = browser_submit(browser, emu, browser_authorize(browser, emu), email="ivy@example.com")
    answer = authorize_request(emu, browser, scope="openid", state=None, nonce=None, prompt="none")
    assert emu.state.codes[redirect_query(answer)["code"]].user_id == ivy


def test_an_unknown_session_cookie_is_ignored(emu: Emulator) -> None:
    browser = requests.Session()
    browser.cookies.set("auth0", "forged")
    page = browser_authorize(browser, emu, connection="google-oauth2")
    assert page.title == "Auth0 emulator — sign in"
