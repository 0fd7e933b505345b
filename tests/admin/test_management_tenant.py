"""The Management API client on tenants of every shape: no tokensets, client settings, users."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from flask_token_vault import (
    ManagementClient,
    ManagementError,
    ManagementForbidden,
    ManagementNotFound,
    TokensetsGone,
)
from flask_token_vault.admin.records import (
    MY_ACCOUNT_POLICY_SCOPES,
    vault_switches,
)
from flask_token_vault_emulator import Emulator
from tests.helpers import TIMEOUT
from tests.helpers.apps import CAL_READ
from tests.helpers.oauth import (
    TOKEN_VAULT_GRANT,
)

# -- tenants without the tokenset endpoints ---------------------------------------------------


def test_tokensets_gone_is_a_typed_error_pointing_to_connected_accounts(
    emu: Emulator, mgmt: ManagementClient
) -> None:
    emu.connect_account("hal@example.com", "google-oauth2", [CAL_READ])
    user_id = emu.user_id_for("hal@example.com")
    emu.set_tenant_features(tokenset_endpoints=False)
    raw = requests.get(
        f"{emu.url}/api/v2/users/{user_id}/federated-connections-tokensets", timeout=TIMEOUT
    )
    assert raw.status_code == 404
    assert raw.json() == {"statusCode": 404, "error": "Not Found", "message": "Not Found"}
    with pytest.raises(TokensetsGone) as listed:
        mgmt.list_legacy_tokensets(user_id)
    error = listed.value
    assert not isinstance(error, ManagementNotFound) and error.upstream_status == 404
    assert error.error == "tokensets_gone" and "gone on this tenant" in str(error.description)
    assert "/api/v2/users/{id}/connected-accounts" in error.remedy
    assert "/me/v1/connected-accounts" in error.remedy
    with pytest.raises(TokensetsGone):
        mgmt.delete_tokenset(user_id, "fcts_whatever")
    # Reads move to the Connected Accounts listing, which still answers.
    (listed_now,) = mgmt.list_tokensets(user_id)
    assert listed_now.id.startswith("cac_") and listed_now.connection == "google-oauth2"
    assert [a.connection for a in mgmt.list_connected_accounts(user_id)] == ["google-oauth2"]
    # A connected account cannot be deleted by the Management API: only by the user.
    with pytest.raises(TokensetsGone, match="only the user can"):
        mgmt.delete_tokenset(user_id, listed_now.id)


def test_an_unknown_user_or_tokenset_is_still_plain_not_found(
    emu: Emulator, mgmt: ManagementClient
) -> None:
    with pytest.raises(ManagementNotFound) as user:
        mgmt.list_tokensets("auth0|nobody")
    assert not isinstance(user.value, TokensetsGone) and user.value.error == "inexistent_user"
    emu.connect_account("ida@example.com", "google-oauth2")
    with pytest.raises(ManagementNotFound) as tokenset:
        mgmt.delete_tokenset(emu.user_id_for("ida@example.com"), "fcts_nope")
    assert not isinstance(tokenset.value, TokensetsGone)


# -- the client's refresh-token settings and URLs ---------------------------------------------


def test_allow_my_account_adds_the_policy_and_keeps_the_rest(
    emu: Emulator, mgmt: ManagementClient
) -> None:
    client = emu.state.clients[emu.client_id]
    client.my_account_scopes = []
    client.other_refresh_policies = [{"audience": "https://api.example.com/", "scope": ["a"]}]
    client.refresh_token = {"rotation_type": "non-rotating", "expiration_type": "expiring"}
    assert mgmt.allow_my_account() is True
    assert mgmt.allow_my_account() is False
    assert client.my_account_scopes == list(MY_ACCOUNT_POLICY_SCOPES)
    assert client.other_refresh_policies == [
        {"audience": "https://api.example.com/", "scope": ["a"]}
    ]
    assert client.refresh_token == {"rotation_type": "non-rotating", "expiration_type": "expiring"}


def test_rotation_off_keeps_the_other_refresh_token_settings(
    emu: Emulator, mgmt: ManagementClient
) -> None:
    client = emu.state.clients[emu.client_id]
    client.refresh_token = {"rotation_type": "rotating", "expiration_type": "expiring", "leeway": 2}
    assert mgmt.disable_refresh_token_rotation() is True
    assert mgmt.disable_refresh_token_rotation() is False
    assert client.refresh_token == {
        "rotation_type": "non-rotating",
        "expiration_type": "expiring",
        "leeway": 2,
    }
    assert client.my_account_scopes == list(MY_ACCOUNT_POLICY_SCOPES)


def test_the_emulator_replaces_refresh_token_whole_and_requires_its_types(
    emu: Emulator, mgmt: ManagementClient
) -> None:
    with pytest.raises(ManagementError, match="expiration_type") as refused:
        mgmt.request(
            "PATCH",
            f"/clients/{emu.client_id}",
            body={"refresh_token": {"rotation_type": "non-rotating"}},
        )
    assert refused.value.upstream_status == 400
    mgmt.request(
        "PATCH",
        f"/clients/{emu.client_id}",
        body={"refresh_token": {"rotation_type": "non-rotating", "expiration_type": "expiring"}},
    )
    # No policies sent: the My Account policy is gone with the rest of the old object.
    assert "policies" not in mgmt.get_client()["refresh_token"]


def test_add_client_urls_adds_only_what_is_missing(emu: Emulator, mgmt: ManagementClient) -> None:
    client = emu.state.clients[emu.client_id]
    client.callbacks = ["https://a.example.com/cb"]
    added = mgmt.add_client_urls(
        callbacks=["https://a.example.com/cb", "https://b.example.com/cb"],
        logout_urls=["https://b.example.com/"],
    )
    assert added == ["https://b.example.com/cb", "https://b.example.com/"]
    assert client.callbacks == ["https://a.example.com/cb", "https://b.example.com/cb"]
    assert mgmt.add_client_urls(callbacks=["https://b.example.com/cb"]) == []


def test_vault_switches_read_both_switches() -> None:
    assert vault_switches({}).flows == ()
    assert vault_switches({"connected_accounts": {"active": True}}).flows == ("connected_accounts",)
    both = vault_switches(
        {
            "connected_accounts": {"active": True},
            "options": {"federated_connections_access_tokens": {"active": True}},
        }
    )
    assert both.flows == ("connected_accounts", "authorize")
    assert vault_switches({"connected_accounts": {"active": False}}).connected_accounts is False
    assert vault_switches({"options": {}}).connected_accounts is None


# -- tenant shapes in the control API ---------------------------------------------------------


def test_control_api_makes_a_bare_tenant_and_switches_features(emu: Emulator) -> None:
    def control(path: str, body: dict[str, Any]) -> requests.Response:
        return requests.post(emu.url + "/__emulator/" + path, json=body, timeout=TIMEOUT)

    assert control("bare-tenant", {}).status_code == 200
    client = emu.state.clients[emu.client_id]
    assert TOKEN_VAULT_GRANT not in client.grant_types and not client.allow_loopback
    assert client.refresh_token["rotation_type"] == "rotating" and client.my_account_scopes == []
    assert not any(c.stores_tokens for c in emu.state.connections.values())
    assert control("tenant-features", {"tokenset_endpoints": False}).status_code == 200
    assert emu.state.tokenset_endpoints is False and emu.state.connected_accounts_switch
    bad = control("tenant-features", {"tokensets": False})
    assert bad.status_code == 400 and "unknown" in bad.json()["error"]
    assert control("tenant-features", {"connected_accounts_switch": "no"}).status_code == 400
    assert control("restore-tenant", {}).status_code == 200
    assert emu.state.tokenset_endpoints and emu.state.clients[emu.client_id].allow_loopback


def test_a_tenant_without_the_switch_refuses_it_and_does_not_show_it(
    emu: Emulator, mgmt: ManagementClient
) -> None:
    emu.state.connections["google-oauth2"].connected_accounts = {"active": True}
    emu.set_tenant_features(connected_accounts_switch=False)
    assert "connected_accounts" not in mgmt.find_connection("google-oauth2")
    with pytest.raises(ManagementError, match="connected_accounts") as refused:
        mgmt.enable_connected_accounts("windowslive")
    assert refused.value.upstream_status == 400


# -- users by email -------------------------------------------------------------------------------


def test_users_by_email_finds_the_user_id(emu: Emulator, mgmt: ManagementClient) -> None:
    emu.connect_account("Nora.Quinn@example.com", "google-oauth2", [CAL_READ])
    (user,) = mgmt.users_by_email("NORA.quinn@example.com")  # Auth0 ignores the case
    assert user.user_id == emu.user_id_for("nora.quinn@example.com")
    assert user.email == "nora.quinn@example.com" and user.name == "Nora Quinn"
    assert user.connections == ("Username-Password-Authentication",)
    assert user.created_at is not None
    assert user.to_dict()["user_id"] == user.user_id
    assert mgmt.users_by_email("nobody@example.com") == []


def test_users_by_email_needs_read_users(emu: Emulator) -> None:
    emu.add_client("narrow", "narrow-secret", management_scopes=["read:clients"])
    narrow = ManagementClient.from_credentials(emu.url, "narrow", "narrow-secret", deadline=5.0)
    with pytest.raises(ManagementForbidden, match="read:users"):
        narrow.users_by_email("nora@example.com")


def test_emulator_users_by_email_wants_an_email(emu: Emulator, mgmt: ManagementClient) -> None:
    with pytest.raises(ManagementError, match="email") as caught:
        mgmt.request("GET", "/users-by-email")
    assert caught.value.upstream_status == 400
