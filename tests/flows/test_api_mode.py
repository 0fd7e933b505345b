"""API mode: requests carrying an Auth0 access token, over real HTTP to the emulator.

A request with ``Authorization: Bearer`` is an API call: its token is validated against the
tenant's JWKS, exchanged with the API's Custom API Client (``subject_token_type`` access token)
and the provider token is cached per user, connection, account hint and scopes.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from flask_token_vault import (
    ApiClientMisconfigured,
    TokenVault,
    current_access_token,
    get_provider_token,
)
from flask_token_vault_emulator import Emulator
from flask_token_vault_pytest.testing import FakeClock, login_as
from tests.helpers.apps import API_READ, CAL_READ, make_api_app
from tests.helpers.oauth import bearer

ALICE = "alice@example.com"
BOB = "bob@example.com"


@pytest.fixture
def api(emu: Emulator) -> Flask:
    return make_api_app(emu)


def connect(emu: Emulator, email: str, scopes: tuple[str, ...] = (CAL_READ,)) -> None:
    emu.connect_account(email, "google-oauth2", list(scopes))


def token_for(emu: Emulator, email: str = ALICE, scope: str = API_READ, **kw: Any) -> str:
    return emu.issue_access_token(email, scope=scope, **kw)


def exchanges(emu: Emulator) -> dict[str, int]:
    stats: dict[str, int] = emu.stats()["exchanges"]["by_subject_token_type"]
    return stats


def token_endpoint_calls(emu: Emulator) -> int:
    return sum(emu.stats()["token_requests"].values())


# -- the happy path, the cache and single flight ------------------------------------------------


def test_a_valid_access_token_gets_the_providers_data(emu: Emulator, api: Flask) -> None:
    connect(emu, ALICE)
    answer = api.test_client().get("/api/calendar", headers=bearer(token_for(emu)))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.json is not None
    assert answer.json["sub"] == emu.user_id_for(ALICE)
    assert answer.json["calendars"]["items"][0]["id"] == ALICE
    assert exchanges(emu) == {"access_token": 1}


def test_100_calls_with_50_access_tokens_of_one_user_cost_one_exchange(
    emu: Emulator, api: Flask
) -> None:
    connect(emu, ALICE)
    tokens = [token_for(emu) for _ in range(50)]
    assert len(set(tokens)) == 50
    client = api.test_client()
    for i in range(100):
        answer = client.get("/api/calendar", headers=bearer(tokens[i % 50]))
        assert answer.status_code == 200
    assert emu.exchange_count(emu.user_id_for(ALICE), "google-oauth2") == 1
    assert emu.stats()["jwks_requests"] == 1  # fetched once, never per request


def test_64_concurrent_cold_calls_cost_one_exchange(emu: Emulator, api: Flask) -> None:
    connect(emu, ALICE)
    emu.add_fault("token:exchange", status=0, delay=0.3)  # answered late: the others pile up
    tokens = [token_for(emu) for _ in range(64)]
    statuses, _ = run_at_once(api, [("/api/calendar", t) for t in tokens])
    assert statuses == [200] * 64
    assert emu.exchange_count() == 1


def run_at_once(app: Flask, calls: list[tuple[str, str]]) -> tuple[list[int], list[Any]]:
    """Send every (path, token) call at once, one thread each; return statuses and bodies."""
    barrier = threading.Barrier(len(calls))
    statuses = [0] * len(calls)
    bodies: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        path, token = calls[i]
        client = app.test_client()
        barrier.wait()
        answer = client.get(path, headers=bearer(token))
        statuses[i] = answer.status_code
        bodies[i] = answer.json

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses, bodies


def test_two_users_in_parallel_never_see_each_others_token(emu: Emulator, api: Flask) -> None:
    connect(emu, ALICE)
    connect(emu, BOB)
    calls = [("/api/calendar", token_for(emu, email)) for email in [ALICE, BOB] * 16]
    statuses, bodies = run_at_once(api, calls)
    assert statuses == [200] * 32
    for body, email in zip(bodies, [ALICE, BOB] * 16, strict=True):
        assert body["sub"] == emu.user_id_for(email)
        assert body["calendars"]["items"][0]["id"] == email
    assert emu.exchange_count(emu.user_id_for(ALICE)) == 1
    assert emu.exchange_count(emu.user_id_for(BOB)) == 1


def test_a_leaders_refused_token_does_not_fail_the_callers_that_joined_it(
    emu: Emulator, api: Flask
) -> None:
    """Auth0 refusing one caller's token (revoked) must not answer 401 to the others."""
    connect(emu, ALICE)
    emu.add_fault(
        "token:exchange",
        status=401,
        error="invalid_grant",
        error_description="Invalid subject token.",
        delay=0.3,
    )
    statuses, _ = run_at_once(api, [("/api/calendar", token_for(emu)) for _ in range(8)])
    assert sorted(statuses) == [200] * 7 + [401]
    assert emu.exchange_count() == 1


def test_permissions_claim_counts_as_api_scopes(emu: Emulator, api: Flask) -> None:
    connect(emu, ALICE)
    token = token_for(emu, scope="openid", claims={"permissions": [API_READ]})
    assert api.test_client().get("/api/calendar", headers=bearer(token)).status_code == 200


def test_an_rbac_api_puts_permissions_in_the_emulators_tokens(emu: Emulator) -> None:
    emu.add_api("https://rbac.example.com/", ["read:calendar"], rbac=True)
    token = emu.issue_access_token(ALICE, "https://rbac.example.com/", "read:calendar")
    public_key = RSAKey.import_key(dict(emu.state.signing_key.public_jwk()))
    claims = jwt.decode(token, public_key).claims
    assert claims["permissions"] == ["read:calendar"]


# -- the token is refused: 401 invalid_token, no call to Auth0's token endpoint ------------------


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(emu: Emulator) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": emu.issuer,
        "sub": emu.user_id_for(ALICE),
        "aud": emu.api_identifier,
        "iat": now,
        "exp": now + 600,
        "scope": API_READ,
    }


def _tampered(emu: Emulator) -> str:
    header, _, signature = token_for(emu).split(".")
    other = _b64({**_claims(emu), "sub": emu.user_id_for(BOB)})
    return f"{header}.{other}.{signature}"


BAD_TOKENS: dict[str, Callable[[Emulator], str]] = {
    "expired": lambda emu: token_for(emu, claims={"exp": int(time.time()) - 120}),
    "not yet valid": lambda emu: token_for(emu, claims={"nbf": int(time.time()) + 600}),
    "wrong audience": lambda emu: token_for(emu, claims={"aud": "https://other.example.com/"}),
    "wrong issuer": lambda emu: token_for(emu, claims={"iss": "https://evil.example.com/"}),
    "no sub": lambda emu: token_for(emu, claims={"sub": None}),
    "HS256 with the public key as secret": lambda emu: jwt.encode(
        {"alg": "HS256", "kid": emu.state.signing_key.kid},
        _claims(emu),
        OctKey.import_key(json.dumps(emu.state.signing_key.public_jwk())),
        algorithms=["HS256"],
    ),
    "alg none": lambda emu: _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(_claims(emu)) + ".",
    "unknown kid": lambda emu: jwt.encode(
        {"alg": "RS256", "kid": "not-a-tenant-key"},
        _claims(emu),
        RSAKey.generate_key(2048, parameters={"kid": "not-a-tenant-key"}),
    ),
    "a foreign key under the tenant's kid": lambda emu: jwt.encode(
        {"alg": "RS256", "kid": emu.state.signing_key.kid},
        _claims(emu),
        RSAKey.generate_key(2048),
    ),
    "tampered": _tampered,
    "not a JWT": lambda emu: "opaque-token-value",
    "empty": lambda emu: "",
    "too long": lambda emu: "a." * 5000 + "b",
}


@pytest.mark.parametrize("kind", sorted(BAD_TOKENS))
def test_a_bad_access_token_gets_401_invalid_token_without_a_token_request(
    emu: Emulator, api: Flask, kind: str
) -> None:
    connect(emu, ALICE)
    token = BAD_TOKENS[kind](emu)
    answer = api.test_client().get("/api/calendar", headers=bearer(token))
    assert answer.status_code == 401, answer.get_data(as_text=True)
    assert "Location" not in answer.headers
    challenge = answer.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer error="invalid_token", error_description="')
    body = answer.json
    assert body is not None and body["error"] == "invalid_token"
    if token:
        assert token not in answer.get_data(as_text=True)
    assert token_endpoint_calls(emu) == 0
    assert emu.stats()["jwks_requests"] <= 1


def test_a_bad_bearer_is_refused_even_with_a_signed_in_session(emu: Emulator, api: Flask) -> None:
    """The bearer decides: a bad one is never answered from the session cookie beside it."""
    client = api.test_client()
    login_as(client, emu, ALICE, {"google-oauth2": [CAL_READ]})
    assert client.get("/api/open").status_code == 200  # the session alone works
    answer = client.get("/api/open", headers=bearer(BAD_TOKENS["expired"](emu)))
    assert answer.status_code == 401
    assert answer.json is not None and answer.json["error"] == "invalid_token"


def test_a_valid_bearer_beside_a_session_is_the_one_that_counts(emu: Emulator, api: Flask) -> None:
    client = api.test_client()
    login_as(client, emu, ALICE, {"google-oauth2": [CAL_READ]})
    connect(emu, BOB)
    answer = client.get("/api/open", headers=bearer(token_for(emu, BOB)))
    assert answer.status_code == 200
    body = answer.json
    assert body is not None
    assert body["bearer"] == emu.user_id_for(BOB) and body["session"] is None


def test_login_required_takes_a_valid_access_token_and_refuses_a_bad_one(
    emu: Emulator, api: Flask
) -> None:
    client = api.test_client()
    answer = client.get("/api/whoami", headers=bearer(token_for(emu, BOB)))
    assert answer.status_code == 200
    assert answer.json == {"bearer": emu.user_id_for(BOB), "session": None}
    login_as(client, emu, ALICE, {"google-oauth2": [CAL_READ]})
    assert client.get("/api/whoami").json == {"bearer": None, "session": emu.user_id_for(ALICE)}
    refused = client.get("/api/whoami", headers=bearer(BAD_TOKENS["expired"](emu)))
    assert refused.status_code == 401 and "Location" not in refused.headers
    assert refused.json is not None and refused.json["error"] == "invalid_token"


def test_an_api_route_needs_an_access_token_even_with_a_session(emu: Emulator, api: Flask) -> None:
    """A session carries no API permissions: a route with api_scopes wants a bearer."""
    client = api.test_client()
    login_as(client, emu, ALICE, {"google-oauth2": [CAL_READ]})
    answer = client.get("/api/calendar", headers={"Accept": "application/json"})
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert answer.json is not None and answer.json["error"] == "access_token_required"
    assert emu.exchange_count() == 0


def test_missing_api_scope_gets_403_naming_it(emu: Emulator, api: Flask) -> None:
    connect(emu, ALICE)
    answer = api.test_client().get("/api/calendar", headers=bearer(token_for(emu, scope="openid")))
    assert answer.status_code == 403
    assert (
        answer.headers["WWW-Authenticate"]
        == 'Bearer error="insufficient_scope", scope="read:calendar"'
    )
    body = answer.json
    assert body is not None and body["error"] == "insufficient_api_scope"
    assert body["missing_api_scopes"] == [API_READ]
    assert token_endpoint_calls(emu) == 0


def test_an_app_without_an_api_refuses_access_tokens(emu: Emulator) -> None:
    app = make_api_app(
        emu,
        AUTH0_AUDIENCE=None,
        TOKEN_VAULT_API_CLIENT_ID=None,
        TOKEN_VAULT_API_CLIENT_SECRET=None,
    )
    answer = app.test_client().get("/api/open", headers=bearer(token_for(emu)))
    assert answer.status_code == 401
    assert answer.json is not None and "AUTH0_AUDIENCE" in answer.json["error_description"]
    assert emu.stats()["jwks_requests"] == 0


# -- the key set: cached, refreshed once on an unknown kid, rate-limited -------------------------


def test_a_rotated_signing_key_is_fetched_once_then_trusted(emu: Emulator, api: Flask) -> None:
    connect(emu, ALICE)
    client = api.test_client()
    assert client.get("/api/calendar", headers=bearer(token_for(emu))).status_code == 200
    emu.rotate_signing_key()
    for _ in range(5):
        assert client.get("/api/calendar", headers=bearer(token_for(emu))).status_code == 200
    assert emu.stats()["jwks_requests"] == 2


def test_unknown_key_ids_refresh_the_key_set_at_most_once_a_minute(
    emu: Emulator, api: Flask
) -> None:
    clock = FakeClock(start=time.time())
    TokenVault.state(api).set_clock(clock)
    connect(emu, ALICE)
    client = api.test_client()
    assert client.get("/api/calendar", headers=bearer(token_for(emu))).status_code == 200
    for _ in range(20):
        bad = BAD_TOKENS["unknown kid"](emu)
        assert client.get("/api/calendar", headers=bearer(bad)).status_code == 401
    assert emu.stats()["jwks_requests"] == 2  # the first fetch and one refresh
    clock.advance(61)
    assert client.get("/api/calendar", headers=bearer(bad)).status_code == 401
    assert emu.stats()["jwks_requests"] == 3


def test_no_key_set_answers_503_not_401(emu: Emulator, api: Flask) -> None:
    """When Auth0's JWKS cannot be read the token may be fine: the API says it is unavailable."""
    connect(emu, ALICE)
    emu.add_fault("jwks", status=503, times=-1)
    answer = api.test_client().get("/api/calendar", headers=bearer(token_for(emu)))
    assert answer.status_code == 503
    assert answer.json is not None and answer.json["error"] == "jwks_unavailable"
    assert token_endpoint_calls(emu) == 0


# -- not connected, scopes missing: 401 JSON a front end can act on ------------------------------


def test_not_connected_answers_401_json_with_the_my_account_connect_call(
    emu: Emulator, api: Flask
) -> None:
    answer = api.test_client().get("/api/calendar", headers=bearer(token_for(emu)))
    assert answer.status_code == 401
    body = answer.json
    assert body is not None
    assert body["error"] == "federated_connection_refresh_token_not_found"
    assert body["connection"] == "google-oauth2"
    assert body["required_scopes"] == [CAL_READ]
    assert "My Account API" in body["remedy"]
    assert body["connect"] == {
        "method": "POST",
        "url": emu.url + "/me/v1/connected-accounts/connect",
        "audience": emu.url + "/me/",
        "scope": "create:me:connected_accounts",
        "body": {"connection": "google-oauth2", "scopes": [CAL_READ]},
    }
    assert "connect_url" not in body and "Location" not in answer.headers


def test_scopes_missing_answers_401_json_asking_for_granted_and_required(
    emu: Emulator, api: Flask
) -> None:
    connect(emu, ALICE, ("https://www.googleapis.com/auth/drive.readonly",))
    answer = api.test_client().get("/api/calendar", headers=bearer(token_for(emu)))
    assert answer.status_code == 401
    body = answer.json
    assert body is not None and body["error"] == "insufficient_scope"
    assert CAL_READ in body["required_scopes"]
    assert "https://www.googleapis.com/auth/drive.readonly" in body["required_scopes"]
    assert body["connect"]["body"]["scopes"] == body["required_scopes"]


# -- the Custom API Client is missing or not linked: a typed error, a 503 --------------------------


def test_a_client_not_linked_to_the_api_is_a_typed_configuration_error(emu: Emulator) -> None:
    emu.add_api("https://other.example.com/", ["read:calendar"])
    # The configured Custom API Client is linked to another API than the callers' tokens.
    emu.state.clients[emu.api_client_id].resource_server_identifier = "https://other.example.com/"
    app = make_api_app(emu)
    connect(emu, ALICE)
    token = token_for(emu)
    with (
        app.test_request_context("/", headers=bearer(token)),
        pytest.raises(ApiClientMisconfigured, match="not linked") as raised,
    ):
        get_provider_token("google-oauth2")
    assert raised.value.upstream_status == 403 and raised.value.code == 503
    assert "api-client enable" in raised.value.remedy
    answer = app.test_client().get("/api/calendar", headers=bearer(token))
    assert answer.status_code == 503
    body = answer.json
    assert body is not None and body["error"] == "unauthorized_client"
    assert "TOKEN_VAULT_API_CLIENT_ID" in body["remedy"]


def test_an_api_without_a_custom_api_client_answers_503_before_asking_auth0(
    emu: Emulator,
) -> None:
    app = make_api_app(emu, TOKEN_VAULT_API_CLIENT_ID=None, TOKEN_VAULT_API_CLIENT_SECRET=None)
    connect(emu, ALICE)
    answer = app.test_client().get("/api/calendar", headers=bearer(token_for(emu)))
    assert answer.status_code == 503
    assert answer.json is not None and answer.json["error"] == "api_client_not_configured"
    assert token_endpoint_calls(emu) == 0


def test_a_custom_api_client_without_the_grant_answers_503(emu: Emulator, api: Flask) -> None:
    emu.state.clients[emu.api_client_id].grant_types = []
    connect(emu, ALICE)
    answer = api.test_client().get("/api/calendar", headers=bearer(token_for(emu)))
    assert answer.status_code == 503
    assert answer.json is not None and answer.json["error"] == "unauthorized_client"


@pytest.mark.parametrize(
    ("status", "error", "expected_status", "expected_error"),
    [
        (401, "invalid_grant", 401, "invalid_token"),
        (401, "invalid_client", 503, "invalid_client"),
        (403, "access_denied", 503, "access_denied"),
        (429, "too_many_requests", 503, "too_many_requests"),
        (503, "temporarily_unavailable", 503, "temporarily_unavailable"),
    ],
)
def test_auth0_refusals_of_the_access_token_exchange_map_to_the_right_answer(
    emu: Emulator, api: Flask, status: int, error: str, expected_status: int, expected_error: str
) -> None:
    connect(emu, ALICE)
    TokenVault.state(api).transport.max_retries = 0
    emu.add_fault("token:exchange", status=status, error=error, times=-1)
    answer = api.test_client().get("/api/calendar", headers=bearer(token_for(emu)))
    assert answer.status_code == expected_status
    assert answer.json is not None and answer.json["error"] == expected_error


# -- the cache: apart from sessions' tokens, dropped with them -----------------------------------


def test_bearer_and_session_tokens_are_cached_apart_and_dropped_together(
    emu: Emulator, api: Flask
) -> None:
    session_client = api.test_client()
    login_as(session_client, emu, ALICE, {"google-oauth2": [CAL_READ]})
    assert session_client.get("/api/open").status_code == 200
    api_client = api.test_client()
    token = token_for(emu)
    assert api_client.get("/api/open", headers=bearer(token)).status_code == 200
    assert exchanges(emu) == {"refresh_token": 1, "access_token": 1}
    assert api_client.get("/api/open", headers=bearer(token)).status_code == 200
    assert session_client.get("/api/open").status_code == 200
    assert emu.exchange_count() == 2  # both cached now
    # A sign-out (like a disconnect) drops every token of the user, the API's too.
    page = session_client.get("/auth/logout").get_data(as_text=True)
    csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
    assert session_client.post("/auth/logout", data={"csrf_token": csrf}).status_code == 302
    assert api_client.get("/api/open", headers=bearer(token)).status_code == 200
    assert emu.exchange_count() == 3


def test_the_access_token_never_reaches_logs_keys_or_answers(
    emu: Emulator, api: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    connect(emu, ALICE)
    client: FlaskClient = api.test_client()
    good = token_for(emu)
    bodies = [client.get("/api/calendar", headers=bearer(good)).get_data(as_text=True)]
    expired = BAD_TOKENS["expired"](emu)
    bodies.append(client.get("/api/calendar", headers=bearer(expired)).get_data(as_text=True))
    emu.add_fault("token:exchange", status=401, error="invalid_grant")
    TokenVault.state(api).cache.invalidate_user(emu.user_id_for(ALICE))
    bodies.append(client.get("/api/calendar", headers=bearer(good)).get_data(as_text=True))
    store: Any = TokenVault.state(api).cache.store
    keys = " ".join(key + repr(value) for key, value in store.items())
    with api.test_request_context("/", headers=bearer(good)):
        shown = repr(current_access_token) + str(current_access_token)
    for secret in (good, expired):
        for part in secret.split("."):
            assert part not in caplog.text
            assert part not in keys
            assert part not in shown
            assert all(part not in body for body in bodies)
    assert emu.user_id_for(ALICE) not in keys
