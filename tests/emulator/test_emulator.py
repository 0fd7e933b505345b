"""The emulator as Auth0: discovery and keys, the login page, non-interactive sign-in."""

from __future__ import annotations

import base64
import secrets

import requests
from joserfc import jwt

from flask_token_vault_emulator import Emulator
from flask_token_vault_pytest.testing import FakeClock
from tests.helpers import TIMEOUT
from tests.helpers.apps import CAL_READ
from tests.helpers.emulator import (
    CAL_EVENTS,
    LoginPage,
    google_get,
    login_code,
    submit,
)
from tests.helpers.oauth import (
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
