"""Auth0's own SDK (auth0-python) against the emulator gets Auth0's answers and typed errors."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from auth0.authentication import GetToken
from auth0.authentication.token_verifier import AsymmetricSignatureVerifier, TokenVerifier
from auth0.exceptions import Auth0Error, RateLimitError

from flask_token_vault_emulator import Emulator
from tests.helpers import TIMEOUT
from tests.helpers.apps import CAL_READ
from tests.helpers.oauth import (
    ACCESS_TOKEN_TYPE,
    FEDERATED_TOKEN_TYPE,
    REFRESH_TOKEN_TYPE,
    authorize_request,
    sdk_error,
)

REDIRECT_URI = "http://127.0.0.1:5998/callback"


@pytest.fixture
def get_token(emu: Emulator) -> GetToken:
    return GetToken(
        domain=emu.domain,
        client_id=emu.client_id,
        client_secret=emu.client_secret,
        protocol="http",
    )


def auto_login_code(emu: Emulator, email: str, **params: str) -> str:
    """Sign ``email`` in without the page and return the authorization code."""
    emu.set_auto_login(email)
    answer = authorize_request(
        emu, redirect_uri=REDIRECT_URI, state="xyz", nonce="n-0S6_WzA2Mj", **params
    )
    assert answer.status_code == 302, answer.text
    code: str = parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]
    return code


def sdk_exchange(
    get_token: GetToken, subject: str, subject_type: str = REFRESH_TOKEN_TYPE, **extra: str
) -> dict[str, Any]:
    """Ask for a Google token with the SDK's ``access_token_for_connection``."""
    answer: dict[str, Any] = get_token.access_token_for_connection(
        subject_token_type=subject_type,
        subject_token=subject,
        requested_token_type=FEDERATED_TOKEN_TYPE,
        connection="google-oauth2",
        **extra,
    )
    return answer


def test_sdk_authorization_code_grant_and_token_verifier(
    emu: Emulator, get_token: GetToken
) -> None:
    code = auto_login_code(emu, "alice@example.com")
    tokens: dict[str, Any] = get_token.authorization_code(code, REDIRECT_URI)
    assert {"access_token", "id_token", "refresh_token", "expires_in", "scope"} <= set(tokens)
    assert tokens["token_type"] == "Bearer"

    verifier = TokenVerifier(
        signature_verifier=AsymmetricSignatureVerifier(emu.url + "/.well-known/jwks.json"),
        issuer=emu.issuer,
        audience=emu.client_id,
    )
    claims = verifier.verify(tokens["id_token"], nonce="n-0S6_WzA2Mj")
    assert claims["sub"] == emu.user_id_for("alice@example.com")
    assert claims["email"] == "alice@example.com"


def test_sdk_refresh_token_grant_keeps_the_refresh_token(
    emu: Emulator, get_token: GetToken
) -> None:
    refresh_token = emu.issue_refresh_token("bob@example.com")
    answer: dict[str, Any] = get_token.refresh_token(refresh_token)
    assert answer["access_token"] and answer["id_token"]
    assert "refresh_token" not in answer  # rotation is off, as Token Vault needs


def test_sdk_access_token_for_connection(emu: Emulator, get_token: GetToken) -> None:
    code = auto_login_code(
        emu, "carol@example.com", connection="google-oauth2", connection_scope=CAL_READ
    )
    refresh_token = get_token.authorization_code(code, REDIRECT_URI)["refresh_token"]
    answer = sdk_exchange(get_token, refresh_token, login_hint="carol@example.com")
    assert answer["issued_token_type"] == FEDERATED_TOKEN_TYPE
    assert answer["token_type"] == "Bearer" and answer["expires_in"] == 3600
    assert CAL_READ in answer["scope"].split(" ")
    calendars = requests.get(
        emu.google_api_base + "/calendar/v3/users/me/calendarList",
        headers={"Authorization": f"Bearer {answer['access_token']}"},
        timeout=TIMEOUT,
    )
    assert calendars.json()["items"][0]["id"] == "carol@example.com"
    assert emu.exchange_count(emu.user_id_for("carol@example.com"), "google-oauth2") == 1


def test_sdk_raises_typed_error_for_an_account_not_connected(
    emu: Emulator, get_token: GetToken
) -> None:
    refresh_token = emu.issue_refresh_token("dave@example.com")
    with pytest.raises(Auth0Error) as raised:
        sdk_exchange(get_token, refresh_token)
    assert sdk_error(raised.value) == (
        401,
        "federated_connection_refresh_token_not_found",
        "Federated connection Refresh Token not found.",
    )


def test_sdk_raises_rate_limit_error_for_a_429_fault(emu: Emulator, get_token: GetToken) -> None:
    emu.connect_account("erin@example.com", "google-oauth2", [CAL_READ])
    refresh_token = emu.issue_refresh_token("erin@example.com")
    emu.add_fault(
        "token:exchange",
        status=429,
        error="too_many_requests",
        error_description="Rate limit exceeded",
        headers={"X-RateLimit-Reset": "1700000000", "Retry-After": "1"},
    )
    with pytest.raises(RateLimitError) as raised:
        sdk_exchange(get_token, refresh_token)
    assert raised.value.reset_at == 1700000000
    assert raised.value.error_code == "too_many_requests"


def test_sdk_sees_bad_client_credentials(emu: Emulator) -> None:
    wrong = GetToken(
        domain=emu.domain, client_id=emu.client_id, client_secret="wrong", protocol="http"
    )
    with pytest.raises(Auth0Error) as raised:
        wrong.refresh_token(emu.issue_refresh_token("fred@example.com"))
    assert raised.value.status_code == 401
    assert raised.value.error_code == "invalid_client"


def test_sdk_verifies_an_api_access_token_against_the_jwks(emu: Emulator) -> None:
    token = emu.issue_access_token("gina@example.com", scope="read:calendar")
    verifier = AsymmetricSignatureVerifier(emu.url + "/.well-known/jwks.json")
    claims = verifier.verify_signature(token)
    assert claims["aud"] == emu.api_identifier
    assert claims["sub"] == emu.user_id_for("gina@example.com")


def test_sdk_access_token_exchange_as_the_custom_api_client(emu: Emulator) -> None:
    emu.connect_account("hank@example.com", "google-oauth2", [CAL_READ])
    api_client = GetToken(
        domain=emu.domain,
        client_id=emu.api_client_id,
        client_secret=emu.api_client_secret,
        protocol="http",
    )
    token = emu.issue_access_token("hank@example.com", scope="read:calendar")
    answer = sdk_exchange(api_client, token, ACCESS_TOKEN_TYPE)
    assert answer["issued_token_type"] == FEDERATED_TOKEN_TYPE
    assert CAL_READ in answer["scope"].split(" ")
    with pytest.raises(Auth0Error) as expired:
        expired_token = emu.issue_access_token("hank@example.com", claims={"exp": 1})
        sdk_exchange(api_client, expired_token, ACCESS_TOKEN_TYPE)
    assert expired.value.status_code == 401 and expired.value.error_code == "invalid_grant"
    with pytest.raises(Auth0Error) as not_linked:
        other_api = {"aud": "https://other.example.com/"}
        other_token = emu.issue_access_token("hank@example.com", claims=other_api)
        sdk_exchange(api_client, other_token, ACCESS_TOKEN_TYPE)
    assert not_linked.value.status_code == 403
    assert not_linked.value.error_code == "unauthorized_client"
