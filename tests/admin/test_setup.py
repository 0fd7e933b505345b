"""``flask token-vault setup``: a bare emulator tenant brought to a working state, idempotently."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask

from flask_token_vault import (
    ConfigurationError,
    SetupItem,
    SetupResult,
    disconnect,
    plan_setup,
    setup_tenant,
)
from flask_token_vault.admin.cli import cli
from flask_token_vault.admin.records import MY_ACCOUNT_POLICY_SCOPES, REQUIRED_GRANT_TYPES
from flask_token_vault.admin.setup_plan import (
    CHANGED,
    NOT_MADE,
    PLANNED,
    SKIPPED,
    UNCHANGED,
    SetupAction,
    SetupContext,
)
from flask_token_vault_emulator import Emulator
from tests.helpers import TIMEOUT
from tests.helpers.apps import CAL_READ, make_app
from tests.helpers.browser import follow_to_emulator, through_emulator

BASE = "http://localhost"
CALLBACKS = [BASE + "/auth/callback", BASE + "/auth/connect/callback"]


def ca_app(emu: Emulator, **config: Any) -> Flask:
    config.setdefault("TOKEN_VAULT_CONNECT_FLOW", "connected_accounts")
    app = make_app(emu, **config)

    @app.post("/drop/<connection>")
    def drop(connection: str) -> Any:
        return {"removed": disconnect(connection)}

    return app


def run(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(cli, ["setup", *args])


def statuses(result: SetupResult) -> dict[tuple[str, str], str]:
    return {(item.target, item.step): item.status for item in result.items}


def tenant_snapshot(emu: Emulator) -> str:
    """Everything setup may change, as one comparable string."""
    client = emu.state.clients[emu.client_id]
    connections = {
        name: (c.options, c.connected_accounts, c.enabled_clients)
        for name, c in emu.state.connections.items()
    }
    return json.dumps(
        [
            client.grant_types,
            client.refresh_token,
            client.my_account_scopes,
            client.other_refresh_policies,
            client.callbacks,
            client.allowed_logout_urls,
            connections,
        ],
        sort_keys=True,
    )


# -- the journey ------------------------------------------------------------------------------


def test_a_bare_tenant_refuses_the_app_until_setup(emu: Emulator) -> None:
    """The bare tenant really is bare: the sign-in's callback URL is not allowed yet."""
    emu.bare_tenant()
    app = ca_app(emu)
    answer = requests.get(follow_to_emulator(app.test_client(), "/auth/login"), timeout=TIMEOUT)
    assert answer.status_code == 400 and "Callback URL mismatch" in answer.text


def test_setup_on_a_bare_tenant_then_the_connected_accounts_journey(emu: Emulator) -> None:
    emu.bare_tenant()
    emu.set_auto_login("nia@example.com")
    app = ca_app(emu)
    result = run(app, "--base-url", BASE)
    assert result.exit_code == 0, result.output
    assert "9 changed, 2 unchanged, 0 skipped, 0 not made." in result.output

    client = app.test_client()
    signed_in = through_emulator(client, follow_to_emulator(client, "/auth/login?next=/"))
    assert signed_in.status_code == 302 and signed_in.headers["Location"] == "/"
    # Connect Google through Connected Accounts, as the calendar asks.
    consent = follow_to_emulator(client, "/calendar")
    assert urlsplit(consent).path == "/connected-accounts/connect"
    done = through_emulator(client, consent)
    assert done.status_code == 302 and done.headers["Location"] == "/calendar"
    page = client.get("/calendar")
    assert page.status_code == 200 and page.get_json()["items"][0]["id"] == "nia@example.com"
    assert client.post("/drop/google-oauth2").get_json() == {"removed": 1}
    assert emu.state.tokensets_for(emu.user_id_for("nia@example.com")) == []


def test_setup_a_second_time_changes_nothing(emu: Emulator) -> None:
    emu.bare_tenant()
    app = ca_app(emu)
    assert run(app, "--base-url", BASE).exit_code == 0
    after_first = tenant_snapshot(emu)
    again = run(app, "--base-url", BASE)
    assert again.exit_code == 0, again.output
    assert "0 changed, 11 unchanged, 0 skipped, 0 not made." in again.output
    assert "[changed]" not in again.output
    assert tenant_snapshot(emu) == after_first


def test_what_setup_writes_to_the_tenant(emu: Emulator) -> None:
    emu.bare_tenant()
    app = ca_app(emu)
    with app.app_context():
        result = setup_tenant(base_url=BASE)
    assert result.ok and not result.dry_run
    client = emu.state.clients[emu.client_id]
    assert set(REQUIRED_GRANT_TYPES) <= set(client.grant_types)
    assert "implicit" in client.grant_types  # kept
    assert client.refresh_token["rotation_type"] == "non-rotating"
    assert client.refresh_token["expiration_type"] == "expiring"  # kept
    assert client.my_account_scopes == list(MY_ACCOUNT_POLICY_SCOPES)
    assert client.callbacks == CALLBACKS
    assert client.allowed_logout_urls == [BASE + "/"]
    assert client.backchannel_logout_urls == [BASE + "/auth/backchannel-logout"]
    for name in ("google-oauth2", "windowslive"):
        connection = emu.state.connections[name]
        assert connection.connected_accounts == {"active": True}
        assert connection.vault_active


def test_setup_keeps_other_policies_settings_options_and_urls(emu: Emulator) -> None:
    emu.bare_tenant()
    client = emu.state.clients[emu.client_id]
    client.refresh_token = {
        "rotation_type": "rotating",
        "expiration_type": "expiring",
        "token_lifetime": 2592000,
        "leeway": 3,
    }
    client.other_refresh_policies = [{"audience": "https://api.example.com/", "scope": ["read"]}]
    client.my_account_scopes = ["read:me:connected_accounts"]
    client.callbacks = ["https://prod.example.com/auth/callback"]
    client.allowed_logout_urls = ["https://prod.example.com/"]
    emu.state.connections["google-oauth2"].options = {"scope": ["email"], "client_id": "gid"}
    app = ca_app(emu)
    with app.app_context():
        assert setup_tenant(base_url=BASE).ok
    assert client.refresh_token == {
        "rotation_type": "non-rotating",
        "expiration_type": "expiring",
        "token_lifetime": 2592000,
        "leeway": 3,
    }
    assert client.other_refresh_policies == [
        {"audience": "https://api.example.com/", "scope": ["read"]}
    ]
    assert client.my_account_scopes == [
        "read:me:connected_accounts",
        "create:me:connected_accounts",
        "delete:me:connected_accounts",
    ]
    assert client.callbacks == ["https://prod.example.com/auth/callback", *CALLBACKS]
    assert client.allowed_logout_urls == ["https://prod.example.com/", BASE + "/"]
    assert emu.state.connections["google-oauth2"].options == {
        "scope": ["email"],
        "client_id": "gid",
        "federated_connections_access_tokens": {"active": True},
    }


# -- dry run, Python API, output --------------------------------------------------------------


def test_dry_run_prints_the_plan_and_changes_nothing(emu: Emulator) -> None:
    emu.bare_tenant()
    app = ca_app(emu)
    before = tenant_snapshot(emu)
    result = run(app, "--dry-run", "--base-url", BASE)
    assert result.exit_code == 0, result.output
    assert "dry run: nothing is changed" in result.output
    assert result.output.count("[would change]") == 9
    assert "9 to change, 2 unchanged, 0 skipped, 0 not made." in result.output
    assert tenant_snapshot(emu) == before


def test_the_plan_from_python_then_applied(emu: Emulator) -> None:
    emu.bare_tenant()
    app = ca_app(emu)
    plan = plan_setup(app, base_url=BASE)
    # Only the connections' applications are already right on a bare tenant.
    assert {item.status for item in plan.items} == {PLANNED, UNCHANGED}
    assert len(plan.result().with_status(UNCHANGED)) == 2
    assert plan.result().dry_run
    grant = next(i for i in plan.items if i.step == "Token Vault grant")
    assert "federated-connection-access-token" in grant.detail
    assert grant.dashboard.endswith("Settings > Advanced Settings > Grant Types")
    result = plan.apply()
    assert {item.status for item in result.items} == {CHANGED, UNCHANGED}
    assert [i.target for i in result.with_status(CHANGED)][:3] == ["client emulator-client-id"] * 3
    assert setup_tenant(app, base_url=BASE).with_status(UNCHANGED) == list(
        setup_tenant(app, base_url=BASE, dry_run=True).items
    )


def test_json_output_for_scripts(emu: Emulator) -> None:
    emu.bare_tenant()
    result = run(ca_app(emu), "--json", "--dry-run", "--base-url", BASE)
    items = json.loads(result.stdout)
    assert {item["status"] for item in items} == {PLANNED, UNCHANGED}
    assert set(items[0]) == {"step", "target", "status", "detail", "dashboard", "fix"}


def test_without_the_apps_address_the_urls_are_left_with_the_dashboard_path(
    emu: Emulator,
) -> None:
    emu.bare_tenant()
    result = run(ca_app(emu))
    assert result.exit_code == 1
    assert "[not made]" in result.output and "app's address is unknown" in result.output
    assert "Allowed Callback URLs" in result.output and "--base-url" in result.output
    # Every other change was still made.
    assert "7 changed, 2 unchanged, 0 skipped, 2 not made." in result.output


def test_the_urls_come_from_server_name_and_the_url_prefix(emu: Emulator) -> None:
    emu.bare_tenant()
    app = ca_app(
        emu,
        SERVER_NAME="app.example.com",
        PREFERRED_URL_SCHEME="https",
        TOKEN_VAULT_URL_PREFIX="/account",
        TOKEN_VAULT_DEFAULT_NEXT="/home",
    )
    with app.app_context():
        assert setup_tenant().ok
    client = emu.state.clients[emu.client_id]
    assert client.callbacks == [
        "https://app.example.com/account/callback",
        "https://app.example.com/account/connect/callback",
    ]
    assert client.allowed_logout_urls == ["https://app.example.com/home"]


def test_a_configured_logout_return_to_is_the_logout_url(emu: Emulator) -> None:
    emu.bare_tenant()
    app = ca_app(emu, TOKEN_VAULT_LOGOUT_RETURN_TO="https://www.example.com/bye")
    with app.app_context():
        setup_tenant(base_url="https://app.example.com/")
    assert emu.state.clients[emu.client_id].allowed_logout_urls == ["https://www.example.com/bye"]


@pytest.mark.parametrize("bad", ["app.example.com", "ftp://x", "https://x/?a=b", "https://"])
def test_a_malformed_base_url_is_refused(emu: Emulator, bad: str) -> None:
    app = ca_app(emu)
    with pytest.raises(ConfigurationError, match="base_url"):
        plan_setup(app, base_url=bad)
    result = run(app, "--base-url", bad)
    assert result.exit_code == 2 and "--base-url" in result.output


# -- what setup cannot do ---------------------------------------------------------------------


def test_a_tenant_without_the_connected_accounts_switch(emu: Emulator) -> None:
    """The sign-in flow does not need it: skipped. The Connected Accounts flow does: not made."""
    emu.bare_tenant()
    emu.set_tenant_features(connected_accounts_switch=False)
    result = run(make_app(emu), "--base-url", BASE)
    assert result.exit_code == 0, result.output
    assert result.output.count("[skipped]") == 2 and "no such switch" in result.output
    assert all(c.vault_active for c in list(emu.state.connections.values())[:2])

    emu.bare_tenant()
    emu.set_tenant_features(connected_accounts_switch=False)
    result = run(ca_app(emu), "--base-url", BASE)
    assert result.exit_code == 1
    assert result.output.count("[not made]") == 2
    assert "TOKEN_VAULT_CONNECT_FLOW = 'authorize'" in result.output
    assert "Purpose: Connected Accounts for Token Vault" in result.output


def test_an_ineligible_client_is_named_with_its_problems(emu: Emulator) -> None:
    emu.bare_tenant()
    emu.state.clients[emu.client_id].token_endpoint_auth_method = "none"
    with ca_app(emu).app_context():
        result = setup_tenant(base_url=BASE)
    (grant,) = [i for i in result.items if i.step == "Token Vault grant"]
    assert grant.status == NOT_MADE and "not confidential" in grant.detail
    assert grant.fix and "Applications > Applications" in grant.dashboard
    assert not result.ok


def test_a_missing_connection_is_left_to_do_by_hand_and_a_disabled_one_enabled(
    emu: Emulator,
) -> None:
    emu.bare_tenant()
    emu.state.connections["windowslive"].enabled_clients = ["another-client"]
    app = make_app(emu, TOKEN_VAULT_CONNECTIONS={"windowslive": {}, "github": {}})
    with app.app_context():
        result = setup_tenant(base_url=BASE)
    found = {(i.target, i.step): i for i in result.items}
    missing = found[("connection github", "connection exists")]
    assert missing.status == NOT_MADE and "Create Connection" in missing.dashboard
    disabled = found[("connection windowslive", "connection enabled for the app")]
    assert disabled.status == CHANGED and emu.client_id in disabled.detail
    # Enabled through PATCH /connections/{id}/clients: the other client keeps it.
    assert emu.state.connections["windowslive"].enabled_clients == ["another-client", emu.client_id]


def test_without_management_write_access_each_change_says_why(emu: Emulator) -> None:
    emu.add_client(
        "read-only",
        "read-only-secret",
        management_scopes=["read:clients", "read:connections"],
    )
    emu.state.clients["read-only"].grant_types.remove("refresh_token")
    app = ca_app(emu, AUTH0_CLIENT_ID="read-only", AUTH0_CLIENT_SECRET="read-only-secret")
    with app.app_context():
        result = setup_tenant(base_url=BASE)
    (grant,) = [i for i in result.items if i.step == "Token Vault grant"]
    assert grant.status == NOT_MADE and "update:clients" in grant.detail
    assert "Machine To Machine" in grant.fix
    assert "read-only-secret" not in json.dumps(result.to_list())


def test_the_steps_are_a_list_others_can_extend(emu: Emulator) -> None:
    class Marker:
        key = "marker"
        name = "marker"

        def __init__(self) -> None:
            self.applied = 0

        def plan(self, context: SetupContext) -> Iterable[SetupAction]:
            def apply() -> str:
                self.applied += 1
                return "did it"

            item = SetupItem(self.name, f"client {context.client_id}", PLANNED, "do it")
            return [SetupAction(item, apply)]

    marker = Marker()
    app = ca_app(emu)
    result = setup_tenant(app, base_url=BASE, steps=[marker])
    assert [i.detail for i in result.items] == ["did it"] and marker.applied == 1
    assert setup_tenant(app, base_url=BASE, steps=[marker], dry_run=True).items[0].status == (
        PLANNED
    )
    assert marker.applied == 1


def test_the_sign_in_flow_works_after_setup_too(emu: Emulator) -> None:
    emu.bare_tenant()
    emu.set_auto_login("oli@example.com")
    app = make_app(emu)
    assert run(app, "--base-url", BASE).exit_code == 0
    client = app.test_client()
    location = follow_to_emulator(client, "/calendar")
    assert parse_qs(urlsplit(location).query)["connection"] == ["google-oauth2"]
    done = through_emulator(client, location)
    assert done.headers["Location"] == "/calendar"
    assert client.get("/calendar").status_code == 200
    assert SKIPPED not in {i.status for i in setup_tenant(app, base_url=BASE).items}
    assert CAL_READ in emu.state.tokensets_for(emu.user_id_for("oli@example.com"))[0].scopes


def test_setup_registers_the_back_channel_logout_url_keeping_the_others(emu: Emulator) -> None:
    emu.bare_tenant()
    client = emu.state.clients[emu.client_id]
    client.oidc_logout = {
        "backchannel_logout_urls": ["https://other.example.com/logout"],
        "backchannel_logout_initiators": {"mode": "all"},
    }
    app = ca_app(emu, TOKEN_VAULT_EXTERNAL_URL="https://app.example.com")
    with app.app_context():
        result = setup_tenant()
    item = next(i for i in result.items if i.step == "back-channel logout URL")
    assert item.status == CHANGED
    assert client.oidc_logout == {
        "backchannel_logout_urls": [
            "https://other.example.com/logout",
            "https://app.example.com/auth/backchannel-logout",
        ],
        "backchannel_logout_initiators": {"mode": "all"},
    }


def test_setup_does_not_register_a_plain_http_back_channel_url(emu: Emulator) -> None:
    emu.bare_tenant()
    app = ca_app(emu)
    with app.app_context():
        result = setup_tenant(base_url="http://app.example.com")
    item = next(i for i in result.items if i.step == "back-channel logout URL")
    assert item.status == NOT_MADE and "https" in item.detail
    assert emu.state.clients[emu.client_id].backchannel_logout_urls == []
