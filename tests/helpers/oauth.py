"""Requests straight to the emulator's OAuth endpoints, the wire values they carry, tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from joserfc.jwk import KeySet

from flask_token_vault_emulator import Emulator
from flask_token_vault_emulator.signing import b64url_encode
from tests.helpers import TIMEOUT

# The wire values, spelled out here rather than imported, so the tests check them independently.
TOKEN_VAULT_GRANT = (
    "urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token"
)
REFRESH_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:refresh_token"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
FEDERATED_TOKEN_TYPE = "http://auth0.com/oauth/token-type/federated-connection-access-token"

#: Where the tests that speak to the emulator directly ask to be sent back after /authorize.
REDIRECT_URI = "http://127.0.0.1:5999/callback"

#: What Auth0's Management API answers when it rate-limits a request.
MANAGEMENT_RATE_LIMITED = {
    "statusCode": 429,
    "error": "Too Many Requests",
    "message": "Global limit has been reached",
    "errorCode": "too_many_requests",
}


def bearer(token: str) -> dict[str, str]:
    """Return the headers of an API call carrying ``token``."""
    return {"Authorization": f"Bearer {token}"}


def pkce_pair() -> tuple[str, str]:
    """Return a PKCE code verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_request(
    emu: Any, browser: requests.Session | None = None, /, **params: str | None
) -> requests.Response:
    """GET the emulator's /authorize as the test app's client, without following the redirect.

    ``params`` add to or replace the usual ones; a ``None`` leaves one out. ``browser`` keeps
    the emulator's cookie between calls.
    """
    query: dict[str, str | None] = {
        "client_id": emu.client_id,
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "scope": "openid profile email offline_access",
        "state": "state-123",
        "nonce": "nonce-123",
        **params,
    }
    sent = {name: value for name, value in query.items() if value is not None}
    return (browser or requests).get(
        emu.url + "/authorize", params=sent, allow_redirects=False, timeout=TIMEOUT
    )


def redirect_query(response: requests.Response) -> dict[str, str]:
    """Return the query of the redirect to :data:`REDIRECT_URI` that ``response`` is."""
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?"), location
    return {name: values[0] for name, values in parse_qs(urlsplit(location).query).items()}


def token_request(
    emu: Any,
    body: Mapping[str, str | None],
    *,
    as_json: bool = False,
    basic: bool = False,
    headers: Mapping[str, str] | None = None,
) -> requests.Response:
    """POST ``body`` to the emulator's token endpoint; a ``None`` value is left out.

    The test app's client authenticates in the body unless ``body`` names another (or, with
    ``basic``, with HTTP Basic); ``as_json`` sends JSON instead of a form.
    """
    client = {} if basic else {"client_id": emu.client_id, "client_secret": emu.client_secret}
    sent = {name: value for name, value in {**client, **body}.items() if value is not None}
    return requests.post(
        emu.url + "/oauth/token",
        data=None if as_json else sent,
        json=sent if as_json else None,
        auth=(emu.client_id, emu.client_secret) if basic else None,
        headers=headers,
        timeout=TIMEOUT,
    )


def code_grant(
    emu: Any, code: str, verifier: str | None = None, **client: str | None
) -> requests.Response:
    """Redeem an authorization code at the emulator (``client`` overrides the credentials)."""
    body = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
        **client,
    }
    return token_request(emu, body)


def vault_exchange(
    emu: Any,
    refresh_token: str,
    connection: str | None = "google-oauth2",
    *,
    as_json: bool = False,
    basic: bool = False,
    headers: Mapping[str, str] | None = None,
    **extra: str | None,
) -> requests.Response:
    """Exchange a refresh token at the emulator's Token Vault grant, as the test app's client."""
    body: dict[str, str | None] = {
        "grant_type": TOKEN_VAULT_GRANT,
        "subject_token_type": REFRESH_TOKEN_TYPE,
        "subject_token": refresh_token,
        "requested_token_type": FEDERATED_TOKEN_TYPE,
        "connection": connection,
        **extra,
    }
    return token_request(emu, body, as_json=as_json, basic=basic, headers=headers)


def assert_error(response: requests.Response, status: int, error: str) -> dict[str, Any]:
    """Check ``response`` is an OAuth error document with ``status`` and ``error``; return it."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["error"] == error, body
    assert isinstance(body["error_description"], str)
    return body


def sdk_error(error: Any) -> tuple[Any, Any, Any]:
    """Return what an Auth0 SDK error says (status, error code, message), to compare at once."""
    return error.status_code, error.error_code, error.message


def hs256_with_public_key(emu: Any, claims: dict[str, Any]) -> str:
    """Forge a JWT signed HS256 with the emulator's public key as the secret (alg confusion)."""
    header = {"alg": "HS256", "typ": "JWT", "kid": emu.state.signing_key.kid}
    signing_input = ".".join(b64url_encode(json.dumps(p).encode()) for p in (header, claims))
    key = json.dumps(emu.state.signing_key.public_jwk()).encode()
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url_encode(signature)


def keyset(emu: Any) -> KeySet:
    """Return the emulator's signing keys, as its JWKS document publishes them."""
    jwks = requests.get(emu.url + "/.well-known/jwks.json", timeout=TIMEOUT).json()
    keys: KeySet = KeySet.import_key_set(jwks)
    return keys


def access_token(emu: Any, body: Mapping[str, str]) -> str:
    """Return the access token the emulator's token endpoint issues for ``body``."""
    answer = token_request(emu, body)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def management_grant(emu: Any, **client: str) -> requests.Response:
    """Ask the emulator for a Management API token (client credentials), as it answers.

    ``client`` (``client_id`` and ``client_secret``) names another client than the test app's.
    """
    return token_request(
        emu, {"grant_type": "client_credentials", "audience": emu.url + "/api/v2/", **client}
    )


def management_token(emu: Any) -> str:
    """Return a Management API access token for the test app's client (client credentials)."""
    answer = management_grant(emu)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def my_account_access_token(emu: Any, email: str, scope: str) -> str:
    """Return a My Account API access token for ``email`` with ``scope`` (refresh-token grant)."""
    body = {
        "grant_type": "refresh_token",
        "refresh_token": emu.issue_refresh_token(email),
        "audience": emu.url + "/me/",
        "scope": scope,
    }
    return access_token(emu, body)


def client_credentials_requests(emu: Emulator) -> int:
    """Return how many client-credentials token requests the emulator answered."""
    return int(emu.stats()["token_requests"].get("client_credentials", 0))
