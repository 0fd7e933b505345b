"""The emulator as an API's tenant: APIs, access tokens, Custom API Clients, the SPA client.

Over real HTTP: ``/authorize`` with an ``audience``, the public SPA client with PKCE, the
access-token exchange and its errors, the Management endpoints for APIs and clients, CORS.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
import requests
from joserfc import jwt

from flask_token_vault_emulator import Emulator
from tests.helpers import TIMEOUT
from tests.helpers.apps import CAL_READ
from tests.helpers.oauth import (
    ACCESS_TOKEN_TYPE,
    FEDERATED_TOKEN_TYPE,
    REFRESH_TOKEN_TYPE,
    TOKEN_VAULT_GRANT,
    assert_error,
    authorize_request,
    bearer,
    code_grant,
    keyset,
    management_grant,
    management_token,
    pkce_pair,
    redirect_query,
    token_request,
)

API = "https://api.example.com/"


def authorize(emu: Emulator, **params: str | None) -> dict[str, str]:
    """Sign alice in at /authorize (auto-login) and return the query she is sent back with."""
    emu.set_auto_login("alice@example.com")
    return redirect_query(authorize_request(emu, nonce=None, **params))


def spa_code(emu: Emulator, challenge: str | None, **params: str) -> str:
    query: dict[str, str | None] = {"client_id": emu.spa_client_id, "audience": API, **params}
    if challenge is not None:
        query.update(code_challenge=challenge, code_challenge_method="S256")
    return authorize(emu, **query)["code"]


def spa_client(emu: Emulator) -> dict[str, str | None]:
    """Return the token request fields of the public SPA client: its client_id, no secret."""
    return {"client_id": emu.spa_client_id, "client_secret": None}


def spa_token_request(emu: Emulator, body: dict[str, str]) -> requests.Response:
    """POST to the token endpoint as a public client: client_id, no secret."""
    return token_request(emu, {**spa_client(emu), **body})


def access_exchange(
    emu: Emulator,
    subject_token: str,
    *,
    client_id: str | None = None,
    client_secret: str | None = None,
    connection: str = "google-oauth2",
    subject_token_type: str = ACCESS_TOKEN_TYPE,
) -> requests.Response:
    return token_request(
        emu,
        {
            "grant_type": TOKEN_VAULT_GRANT,
            "client_id": client_id or emu.api_client_id,
            "client_secret": client_secret or emu.api_client_secret,
            "subject_token_type": subject_token_type,
            "subject_token": subject_token,
            "requested_token_type": FEDERATED_TOKEN_TYPE,
            "connection": connection,
        },
    )


def management(emu: Emulator, method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = bearer(management_token(emu))
    return requests.request(
        method, emu.url + "/api/v2" + path, headers=headers, timeout=TIMEOUT, **kwargs
    )


# -- access tokens for an API ------------------------------------------------------------------


def test_authorize_with_an_unknown_audience_is_refused(emu: Emulator) -> None:
    answer = authorize(emu, audience="https://nope.example.com/")
    assert answer["error"] == "access_denied"
    assert answer["error_description"] == "Service not found: https://nope.example.com/"


def test_an_audience_gives_an_rs256_jwt_for_the_api_with_its_scopes(emu: Emulator) -> None:
    verifier, challenge = pkce_pair()
    code = authorize(
        emu,
        code_challenge=challenge,
        code_challenge_method="S256",
        audience=API,
        scope="openid profile read:calendar delete:everything",
    )["code"]
    answer = code_grant(emu, code, verifier)
    assert answer.status_code == 200, answer.text
    token = answer.json()["access_token"]
    decoded = jwt.decode(token, keyset(emu), algorithms=["RS256"])
    assert decoded.header["alg"] == "RS256" and decoded.header["kid"]
    claims = decoded.claims
    assert claims["aud"] == [API, emu.url + "/userinfo"]
    assert claims["scope"] == "openid profile read:calendar"  # not an API scope: dropped
    assert "permissions" not in claims
    assert answer.json()["scope"] == "openid profile read:calendar"


def test_the_spa_client_gets_tokens_with_pkce_and_no_secret(emu: Emulator) -> None:
    verifier, challenge = pkce_pair()
    code = spa_code(emu, challenge, scope="openid offline_access read:calendar")
    answer = code_grant(emu, code, verifier, **spa_client(emu))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    claims = jwt.decode(body["access_token"], keyset(emu)).claims
    assert claims["azp"] == emu.spa_client_id and API in claims["aud"]
    # Its refresh token gets a My Account API token (Multi-Resource Refresh Token).
    my_account = spa_token_request(
        emu,
        {
            "grant_type": "refresh_token",
            "refresh_token": body["refresh_token"],
            "audience": emu.url + "/me/",
            "scope": "create:me:connected_accounts",
        },
    )
    assert my_account.status_code == 200, my_account.text
    assert my_account.json()["scope"] == "create:me:connected_accounts"


def test_the_spa_client_must_use_pkce(emu: Emulator) -> None:
    code = spa_code(emu, None)
    answer = code_grant(emu, code, **spa_client(emu))
    assert_error(answer, 403, "invalid_grant")


def test_a_public_client_cannot_use_the_token_vault_grant(emu: Emulator) -> None:
    answer = spa_token_request(emu, {"grant_type": TOKEN_VAULT_GRANT})
    assert_error(answer, 403, "unauthorized_client")


def test_cors_lets_loopback_pages_call_the_token_endpoint(emu: Emulator) -> None:
    origin = "http://127.0.0.1:5000"
    preflight = requests.options(
        emu.url + "/oauth/token",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
        timeout=TIMEOUT,
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == origin
    assert "Content-Type" in preflight.headers["Access-Control-Allow-Headers"]
    assert emu.stats()["token_requests"] == {}  # a preflight is not a token request
    foreign = requests.options(
        emu.url + "/oauth/token", headers={"Origin": "https://evil.example.com"}, timeout=TIMEOUT
    )
    assert "Access-Control-Allow-Origin" not in foreign.headers


# -- the access-token exchange -----------------------------------------------------------------


def test_the_custom_api_client_exchanges_an_access_token(emu: Emulator) -> None:
    emu.connect_account("alice@example.com", "google-oauth2", [CAL_READ])
    token = emu.issue_access_token("alice@example.com", scope="read:calendar")
    answer = access_exchange(emu, token)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["issued_token_type"] == FEDERATED_TOKEN_TYPE
    assert CAL_READ in body["scope"].split()
    assert emu.stats()["exchanges"]["by_subject_token_type"] == {"access_token": 1}


def test_the_web_client_cannot_exchange_an_access_token(emu: Emulator) -> None:
    token = emu.issue_access_token("alice@example.com")
    answer = access_exchange(emu, token, client_id=emu.client_id, client_secret=emu.client_secret)
    body = assert_error(answer, 400, "invalid_request")
    assert "Custom API Client" in body["error_description"]


def test_the_custom_api_client_cannot_exchange_a_refresh_token(emu: Emulator) -> None:
    refresh_token = emu.issue_refresh_token("alice@example.com")
    answer = access_exchange(emu, refresh_token, subject_token_type=REFRESH_TOKEN_TYPE)
    assert_error(answer, 400, "invalid_request")


@pytest.mark.parametrize(
    ("claims", "status", "error"),
    [
        ({"exp": 1}, 401, "invalid_grant"),
        ({"iss": "https://evil.example.com/"}, 401, "invalid_grant"),
        ({"sub": "auth0|nobody"}, 401, "invalid_grant"),
        ({"aud": "https://other.example.com/"}, 403, "unauthorized_client"),
    ],
)
def test_the_access_token_exchange_refuses_bad_subject_tokens(
    emu: Emulator, claims: dict[str, Any], status: int, error: str
) -> None:
    emu.connect_account("alice@example.com", "google-oauth2", [CAL_READ])
    token = emu.issue_access_token("alice@example.com", claims=claims)
    assert_error(access_exchange(emu, token), status, error)
    assert_error(access_exchange(emu, token[:-4] + "AAAA"), 401, "invalid_grant")


def test_the_access_token_exchange_without_an_account(emu: Emulator) -> None:
    token = emu.issue_access_token("nobody-connected@example.com")
    answer = access_exchange(emu, token)
    assert_error(answer, 401, "federated_connection_refresh_token_not_found")


def test_a_rotated_key_still_verifies_tokens_it_signed(emu: Emulator) -> None:
    emu.connect_account("alice@example.com", "google-oauth2", [CAL_READ])
    before = emu.issue_access_token("alice@example.com")
    emu.rotate_signing_key()
    after = emu.issue_access_token("alice@example.com")
    keys = requests.get(emu.url + "/.well-known/jwks.json", timeout=TIMEOUT).json()["keys"]
    assert len(keys) == 2
    assert access_exchange(emu, before).status_code == 200
    assert access_exchange(emu, after).status_code == 200


# -- Management API: APIs and Custom API Clients -----------------------------------------------


def test_management_reads_apis_by_identifier_or_id(emu: Emulator) -> None:
    found = management(emu, "GET", "/resource-servers/" + quote(API, safe=""))
    assert found.status_code == 200, found.text
    server = found.json()
    assert server["identifier"] == API and server["signing_alg"] == "RS256"
    assert [s["value"] for s in server["scopes"]] == ["read:calendar", "write:calendar"]
    assert management(emu, "GET", "/resource-servers/" + server["id"]).json() == server
    missing = management(emu, "GET", "/resource-servers/" + quote("https://x.example/", safe=""))
    assert (
        missing.status_code == 404 and missing.json()["errorCode"] == "inexistent_resource_server"
    )
    listed = management(emu, "GET", "/resource-servers")
    assert [r["identifier"] for r in listed.json()] == [API]


def test_management_creates_a_custom_api_client_once_per_api(emu: Emulator) -> None:
    created = management(emu, "POST", "/resource-servers", json={"identifier": "https://b/"})
    assert created.status_code == 201, created.text
    body = {
        "name": "B (Custom API Client)",
        "app_type": "resource_server",
        "resource_server_identifier": "https://b/",
        "grant_types": [TOKEN_VAULT_GRANT],
    }
    client = management(emu, "POST", "/clients", json=body)
    assert client.status_code == 201, client.text
    document = client.json()
    assert document["client_secret"] and document["resource_server_identifier"] == "https://b/"
    again = management(emu, "POST", "/clients", json=body)
    assert again.status_code == 409
    listed = management(emu, "GET", "/clients", params={"app_type": "resource_server"}).json()
    assert sorted(c["client_id"] for c in listed) == sorted(
        [emu.api_client_id, document["client_id"]]
    )
    # The secret goes only to a token with read:client_keys, which the default client's has.
    assert all(
        c["client_secret"] == emu.state.clients[c["client_id"]].client_secret for c in listed
    )
    emu.add_client("reader", "reader-secret", management_scopes=["read:clients"])
    reader = management_grant(emu, client_id="reader", client_secret="reader-secret")
    reader_token = reader.json()["access_token"]
    hidden = requests.get(
        emu.url + "/api/v2/clients",
        params={"app_type": "resource_server"},
        headers=bearer(reader_token),
        timeout=TIMEOUT,
    ).json()
    assert len(hidden) == 2 and all("client_secret" not in c for c in hidden)
    unknown = management(
        emu, "POST", "/clients", json={**body, "resource_server_identifier": "https://none/"}
    )
    assert unknown.status_code == 404


def test_management_refuses_an_identifier_without_the_resource_server_type(emu: Emulator) -> None:
    answer = management(
        emu,
        "POST",
        "/clients",
        json={"name": "x", "app_type": "spa", "resource_server_identifier": API},
    )
    assert answer.status_code == 400 and answer.json()["errorCode"] == "invalid_body"
