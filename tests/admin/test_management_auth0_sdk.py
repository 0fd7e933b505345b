"""Auth0's Management SDK (auth0-python) against the emulator gets Auth0's answers and errors."""

from __future__ import annotations

from typing import Any

import pytest
from auth0.authentication import GetToken
from auth0.exceptions import Auth0Error, RateLimitError
from auth0.management import Auth0
from auth0.rest import RestClientOptions

from flask_token_vault_emulator import Emulator
from tests.helpers.apps import CAL_READ
from tests.helpers.oauth import (
    MANAGEMENT_RATE_LIMITED,
    TOKEN_VAULT_GRANT,
    sdk_error,
    vault_exchange,
)


def management_token(emu: Emulator, client_id: str = "", secret: str = "") -> str:
    get_token = GetToken(
        emu.domain,
        client_id or emu.client_id,
        client_secret=secret or emu.client_secret,
        protocol="http",
    )
    answer: dict[str, Any] = get_token.client_credentials(emu.url + "/api/v2/")
    return str(answer["access_token"])


def sdk(emu: Emulator, token: str | None = None) -> Auth0:
    """Return the SDK for the emulator: its sub-clients build https URLs unless told http."""
    auth0 = Auth0(
        emu.domain,
        token or management_token(emu),
        rest_options=RestClientOptions(retries=0, telemetry=False),
    )
    for part in (auth0.users, auth0.connections, auth0.clients, auth0.resource_servers):
        part.protocol = "http"
    return auth0


def test_sdk_lists_and_deletes_tokensets(emu: Emulator) -> None:
    tokenset_id = emu.connect_account("ann@example.com", "google-oauth2", [CAL_READ])
    user_id = emu.user_id_for("ann@example.com")
    auth0 = sdk(emu)
    listed = auth0.users.list_tokensets(user_id)
    assert isinstance(listed, list) and len(listed) == 1
    assert listed[0]["id"] == tokenset_id and listed[0]["connection"] == "google-oauth2"
    assert CAL_READ in listed[0]["scope"].split()
    assert isinstance(listed[0]["issued_at"], int)
    assert auth0.users.delete_tokenset_by_id(user_id, tokenset_id) == ""  # 204, empty body
    assert auth0.users.list_tokensets(user_id) == []
    refresh_token = emu.issue_refresh_token("ann@example.com")
    answer = vault_exchange(emu, refresh_token)
    assert answer.json()["error"] == "federated_connection_refresh_token_not_found"


def test_sdk_tokensets_in_iso_time(emu: Emulator) -> None:
    emu.set_tokenset_timestamps("iso")
    emu.connect_account("bea@example.com", "google-oauth2")
    listed = sdk(emu).users.list_tokensets(emu.user_id_for("bea@example.com"))
    assert listed[0]["issued_at"].endswith("Z") and "T" in listed[0]["issued_at"]


def test_sdk_reads_options_and_patches_them_back(emu: Emulator) -> None:
    connection_id = emu.add_connection(
        "github", options={"client_id": "gh", "scope": ["repo"], "upstream_params": {"a": 1}}
    )
    auth0 = sdk(emu)
    current = auth0.connections.get(connection_id, fields=["options"])
    assert current == {
        "options": {"client_id": "gh", "scope": ["repo"], "upstream_params": {"a": 1}}
    }
    options = {**current["options"], "federated_connections_access_tokens": {"active": True}}
    updated = auth0.connections.update(connection_id, {"options": options})
    assert updated["id"] == connection_id and updated["name"] == "github"
    assert updated["options"] == options
    assert emu.state.connections["github"].vault_active


def test_sdk_connection_list_filters_and_paginates(emu: Emulator) -> None:
    auth0 = sdk(emu)
    totals = {"include_totals": "true"}
    paged = auth0.connections.all(per_page=2, page=0, extra_params=dict(totals))
    assert paged["total"] == 3 and paged["limit"] == 2 and len(paged["connections"]) == 2
    second = auth0.connections.all(per_page=2, page=1)
    assert isinstance(second, list) and len(second) == 1
    by_name = auth0.connections.all(name="windowslive", fields=["name", "strategy"])
    assert by_name == [{"name": "windowslive", "strategy": "windowslive"}]


def test_sdk_reads_and_updates_a_client(emu: Emulator) -> None:
    auth0 = sdk(emu)
    client = auth0.clients.get(emu.client_id)
    assert client["is_first_party"] is True and client["oidc_conformant"] is True
    assert TOKEN_VAULT_GRANT in client["grant_types"]
    assert client["client_secret"] == emu.client_secret  # the token has read:client_keys
    emu.add_client("reader", "reader-secret", management_scopes=["read:clients"])
    reader = sdk(emu, management_token(emu, "reader", "reader-secret"))
    assert "client_secret" not in reader.clients.get(emu.client_id)
    assert client["refresh_token"]["rotation_type"] == "non-rotating"
    updated = auth0.clients.update(emu.client_id, {"grant_types": ["authorization_code"]})
    assert updated["grant_types"] == ["authorization_code"]
    assert emu.state.clients[emu.client_id].grant_types == ["authorization_code"]


def test_sdk_sees_404_with_auth0_error_code(emu: Emulator) -> None:
    auth0 = sdk(emu)
    with pytest.raises(Auth0Error) as raised:
        auth0.users.list_tokensets("auth0|nobody")
    assert sdk_error(raised.value) == (404, "inexistent_user", "The user does not exist.")
    with pytest.raises(Auth0Error) as missing:
        auth0.connections.get("con_000000000000")
    assert missing.value.error_code == "inexistent_connection"


def test_sdk_sees_403_for_a_token_without_the_scope(emu: Emulator) -> None:
    emu.add_client("reader", "reader-secret", management_scopes=["read:clients"])
    auth0 = sdk(emu, management_token(emu, "reader", "reader-secret"))
    assert auth0.clients.get("reader")["client_id"] == "reader"
    with pytest.raises(Auth0Error) as raised:
        auth0.connections.update("con_x", {"options": {}})
    assert sdk_error(raised.value) == (
        403,
        "insufficient_scope",
        "Insufficient scope, expected any of: update:connections",
    )


def test_sdk_sees_401_for_a_bad_token(emu: Emulator) -> None:
    auth0 = sdk(emu, "not-a-token")
    with pytest.raises(Auth0Error) as raised:
        auth0.clients.get(emu.client_id)
    assert sdk_error(raised.value) == (401, "invalid_token", "Invalid token")


def test_sdk_sees_payload_validation_errors(emu: Emulator) -> None:
    with pytest.raises(Auth0Error) as raised:
        sdk(emu).connections.update(emu.state.connections["google-oauth2"].id, {"name": "renamed"})
    assert raised.value.status_code == 400 and raised.value.error_code == "invalid_body"
    assert "Additional properties not allowed: name" in raised.value.message


def test_sdk_raises_rate_limit_error_with_reset(emu: Emulator) -> None:
    auth0 = sdk(emu)
    emu.add_fault(
        "management",
        status=429,
        body=MANAGEMENT_RATE_LIMITED,
        headers={"X-RateLimit-Reset": "1700000000", "X-RateLimit-Limit": "10"},
    )
    with pytest.raises(RateLimitError) as raised:
        auth0.clients.get(emu.client_id)
    assert raised.value.reset_at == 1700000000
    assert sdk_error(raised.value) == (429, "too_many_requests", "Global limit has been reached")


def test_sdk_reads_an_api_and_creates_its_custom_api_client(emu: Emulator) -> None:
    auth0 = sdk(emu)
    emu.add_api("https://sdk.example.com/", ["read:things"], name="SDK API")
    server = auth0.resource_servers.get("https://sdk.example.com/")
    assert server["name"] == "SDK API" and server["signing_alg"] == "RS256"
    created = auth0.clients.create(
        {
            "name": "SDK API (Custom API Client)",
            "app_type": "resource_server",
            "resource_server_identifier": "https://sdk.example.com/",
            "grant_types": [TOKEN_VAULT_GRANT],
        }
    )
    assert created["client_secret"] and created["app_type"] == "resource_server"
    listed = auth0.clients.all(
        fields=["client_id", "resource_server_identifier"],
        extra_params={"app_type": "resource_server"},
    )
    assert {
        "client_id": created["client_id"],
        "resource_server_identifier": "https://sdk.example.com/",
    } in listed
    with pytest.raises(Auth0Error) as conflict:
        auth0.clients.create(
            {
                "name": "again",
                "app_type": "resource_server",
                "resource_server_identifier": "https://sdk.example.com/",
            }
        )
    assert conflict.value.status_code == 409
