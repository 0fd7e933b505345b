"""The emulator's tenant shapes and its own sign-in session (a cookie, as Auth0 keeps one)."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import requests

from flask_token_vault_emulator import Emulator
from flask_token_vault_emulator.__main__ import parse_args
from tests.helpers import TIMEOUT
from tests.helpers.apps import CAL_READ
from tests.helpers.emulator import (
    LoginPage,
    login_code,
    v2_logout,
)
from tests.helpers.oauth import (
    REDIRECT_URI,
    TOKEN_VAULT_GRANT,
    assert_error,
    authorize_request,
    redirect_query,
    token_request,
    vault_exchange,
)

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
