"""Setting up API mode: configuration, the Custom API Client from Python and the CLI, doctor."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from flask_token_vault import (
    ConfigurationError,
    ManagementClient,
    ManagementNotFound,
    TokenVault,
)
from flask_token_vault._exchange import GRANT_TYPE
from flask_token_vault.admin.app_checks import FAIL, PASS, SKIP
from flask_token_vault.admin.cli import cli
from flask_token_vault_emulator import Emulator
from tests.helpers.apps import make_api_app, make_app


@pytest.fixture
def mgmt(emu: Emulator) -> ManagementClient:
    return ManagementClient.from_credentials(emu.url, emu.client_id, emu.client_secret)


# -- configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"TOKEN_VAULT_API_CLIENT_ID": "api-client"}, "TOKEN_VAULT_API_CLIENT_SECRET"),
        ({"TOKEN_VAULT_API_CLIENT_SECRET": "s" * 32}, "TOKEN_VAULT_API_CLIENT_ID"),
        (
            {"TOKEN_VAULT_API_CLIENT_ID": "api-client", "TOKEN_VAULT_API_CLIENT_SECRET": "s" * 32},
            "AUTH0_AUDIENCE",
        ),
        (
            {
                "AUTH0_AUDIENCE": "https://api.example.com/",
                "TOKEN_VAULT_API_CLIENT_ID": "emulator-client-id",
                "TOKEN_VAULT_API_CLIENT_SECRET": "s" * 32,
            },
            "TOKEN_VAULT_API_CLIENT_ID",
        ),
    ],
)
def test_api_client_settings_are_checked_at_start_up(
    emu: Emulator, config: dict[str, Any], key: str
) -> None:
    with pytest.raises(ConfigurationError, match=f"^{key}: "):
        make_app(emu, **config)


def test_api_client_secret_stays_out_of_reprs(emu: Emulator) -> None:
    state = TokenVault.state(make_api_app(emu))
    shown = repr(state.settings) + repr(state.api_exchanger) + repr(state.bearer)
    assert emu.api_client_secret not in shown
    assert emu.api_client_id in repr(state.api_exchanger)


# -- the Custom API Client, from Python --------------------------------------------------------


def test_enable_api_client_creates_it_once_then_finds_it(
    emu: Emulator, mgmt: ManagementClient
) -> None:
    emu.add_api("https://new.example.com/", ["read:things"], name="New API")
    assert mgmt.find_api_client("https://new.example.com/") is None
    created = mgmt.enable_api_client("https://new.example.com/")
    assert created.created and created.client_secret
    assert created.name == "New API (Custom API Client)"
    assert created.grant_types == (GRANT_TYPE,)
    assert created.client_secret not in repr(created)
    again = mgmt.enable_api_client("https://new.example.com/")
    assert not again.created and again.client_id == created.client_id
    assert again.client_secret is None  # Auth0 shows a secret only when it creates the client
    assert mgmt.find_api_client("https://new.example.com/") == again
    linked = emu.state.api_client_for("https://new.example.com/")
    assert linked is not None and linked.client_id == created.client_id


def test_enable_api_client_adds_the_grant_an_existing_client_lacks(
    emu: Emulator, mgmt: ManagementClient
) -> None:
    emu.state.clients[emu.api_client_id].grant_types = ["client_credentials"]
    found = mgmt.enable_api_client(emu.api_identifier)
    assert not found.created and found.client_id == emu.api_client_id
    assert emu.state.clients[emu.api_client_id].grant_types == ["client_credentials", GRANT_TYPE]
    assert mgmt.enable_api_client(emu.api_identifier) == found  # nothing more to change
    assert emu.state.clients[emu.api_client_id].grant_types == ["client_credentials", GRANT_TYPE]


def test_enable_api_client_for_an_unknown_api_says_how_to_fix_it(mgmt: ManagementClient) -> None:
    with pytest.raises(ManagementNotFound, match="no API with the identifier") as raised:
        mgmt.enable_api_client("https://missing.example.com/")
    assert "RS256" in raised.value.remedy


def test_find_api_client_reads_every_page(emu: Emulator, mgmt: ManagementClient) -> None:
    for i in range(105):
        emu.add_api(f"https://api-{i}.example.com/")
        mgmt.enable_api_client(f"https://api-{i}.example.com/")
    found = mgmt.find_api_client("https://api-104.example.com/")
    assert found is not None and found.resource_server_identifier == "https://api-104.example.com/"


# -- the CLI -----------------------------------------------------------------------------------


def test_cli_api_client_enable_creates_then_finds(emu: Emulator) -> None:
    emu.add_api("https://cli.example.com/", ["read:things"])
    app = make_app(emu, AUTH0_AUDIENCE="https://cli.example.com/")
    runner = app.test_cli_runner()
    first = runner.invoke(cli, ["api-client", "enable", "--show-secret"])
    assert first.exit_code == 0, first.output
    assert first.output.startswith("Created the Custom API Client ")
    client = emu.state.api_client_for("https://cli.example.com/")
    assert client is not None
    assert f"TOKEN_VAULT_API_CLIENT_ID={client.client_id}\n" in first.output
    assert f"TOKEN_VAULT_API_CLIENT_SECRET={client.client_secret}\n" in first.output
    second = runner.invoke(cli, ["api-client", "enable"])
    assert second.exit_code == 0 and second.output.startswith("Found the Custom API Client ")
    assert client.client_secret not in second.output
    as_json = json.loads(runner.invoke(cli, ["api-client", "enable", "--json"]).output)
    assert as_json["client_id"] == client.client_id and "client_secret" not in as_json


def test_cli_api_client_enable_keeps_a_new_secret_to_itself_unless_asked(emu: Emulator) -> None:
    emu.add_api("https://quiet.example.com/")
    app = make_app(emu)
    result = app.test_cli_runner().invoke(
        cli, ["api-client", "enable", "https://quiet.example.com/"]
    )
    assert result.exit_code == 0, result.output
    client = emu.state.api_client_for("https://quiet.example.com/")
    assert client is not None and client.client_secret not in result.output
    assert "--show-secret" in result.output


def test_cli_api_client_enable_shows_an_existing_clients_secret_when_asked(
    emu: Emulator,
) -> None:
    """Created without --show-secret, the secret is still there to print, once per run."""
    emu.add_api("https://later.example.com/")
    runner = make_app(emu, AUTH0_AUDIENCE="https://later.example.com/").test_cli_runner()
    created = runner.invoke(cli, ["api-client", "enable"])
    assert created.exit_code == 0, created.output
    assert "`flask token-vault api-client enable --show-secret` prints it" in created.output
    client = emu.state.api_client_for("https://later.example.com/")
    assert client is not None and client.client_secret not in created.output

    shown = runner.invoke(cli, ["api-client", "enable", "--show-secret"])
    assert shown.exit_code == 0, shown.output
    assert shown.output.startswith("Found the Custom API Client ")
    assert shown.output.count(client.client_secret) == 1
    assert f"TOKEN_VAULT_API_CLIENT_SECRET={client.client_secret}\n" in shown.output
    assert "Dashboard" not in shown.output
    as_json = json.loads(
        runner.invoke(cli, ["api-client", "enable", "--show-secret", "--json"]).output
    )
    assert as_json["client_secret"] == client.client_secret


def test_cli_api_client_enable_without_read_client_keys_says_what_to_grant(
    emu: Emulator,
) -> None:
    emu.add_client(
        "no-keys",
        "no-keys-secret",
        management_scopes=["read:resource_servers", "read:clients", "create:clients"],
    )
    app = make_app(emu, AUTH0_CLIENT_ID="no-keys", AUTH0_CLIENT_SECRET="no-keys-secret")
    result = app.test_cli_runner().invoke(
        cli, ["api-client", "enable", emu.api_identifier, "--show-secret"]
    )
    assert result.exit_code == 0, result.output
    assert emu.api_client_secret not in result.output
    assert "TOKEN_VAULT_API_CLIENT_SECRET" not in result.output
    assert "read:client_keys" in result.output and "Machine To Machine" in result.output
    assert "> Credentials" in result.output


def test_cli_api_client_enable_fails_with_the_fix(emu: Emulator) -> None:
    app = make_app(emu)
    result = app.test_cli_runner().invoke(cli, ["api-client", "enable"])
    assert result.exit_code == 1 and "AUTH0_AUDIENCE" in result.output
    missing = app.test_cli_runner().invoke(cli, ["api-client", "enable", "https://no.example/"])
    assert missing.exit_code == 1 and "fix: Create the API" in missing.output


# -- doctor ------------------------------------------------------------------------------------

API_CHECKS = (
    "API https://api.example.com/ exists",
    "API signs access tokens with RS256",
    "Custom API Client configured",
    "Custom API Client linked to the API",
    "Custom API Client has the Token Vault grant",
)


def api_doctor(emu: Emulator, tmp_path: Path, **config: Any) -> tuple[int, dict[str, Any]]:
    app: Flask = make_api_app(
        emu,
        SECRET_KEY=secrets.token_urlsafe(48),
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_SAMESITE="Lax",
        TOKEN_VAULT_CACHE=str(tmp_path / "cache"),
        **config,
    )
    result = app.test_cli_runner().invoke(cli, ["doctor", "--json"])
    checks = {check["name"]: check for check in json.loads(result.stdout)}
    return result.exit_code, checks


def test_doctor_passes_the_api_checks_on_a_good_tenant(emu: Emulator, tmp_path: Path) -> None:
    code, checks = api_doctor(emu, tmp_path)
    assert code == 0, {n: c for n, c in checks.items() if c["status"] != PASS}
    for name in API_CHECKS:
        assert checks[name]["status"] == PASS, checks[name]


def test_doctor_names_each_api_fault(emu: Emulator, tmp_path: Path) -> None:
    emu.state.resource_servers[emu.api_identifier].signing_alg = "HS256"
    linked = emu.state.clients[emu.api_client_id]
    linked.resource_server_identifier = "https://elsewhere.example.com/"
    linked.grant_types = []
    code, checks = api_doctor(emu, tmp_path)
    assert code == 1
    assert checks["API signs access tokens with RS256"]["status"] == FAIL
    assert "HS256" in checks["API signs access tokens with RS256"]["detail"]
    assert checks["Custom API Client linked to the API"]["status"] == FAIL
    assert "elsewhere" in checks["Custom API Client linked to the API"]["detail"]
    assert "api-client enable" in checks["Custom API Client linked to the API"]["fix"]
    assert checks["Custom API Client has the Token Vault grant"]["status"] == FAIL


def test_doctor_without_the_api_or_its_client(emu: Emulator, tmp_path: Path) -> None:
    code, checks = api_doctor(
        emu,
        tmp_path,
        AUTH0_AUDIENCE="https://missing.example.com/",
        TOKEN_VAULT_API_CLIENT_ID=None,
        TOKEN_VAULT_API_CLIENT_SECRET=None,
    )
    assert code == 1
    assert checks["API https://missing.example.com/ exists"]["status"] == FAIL
    configured = checks["Custom API Client configured"]
    assert configured["status"] == SKIP and "api-client enable" in configured["fix"]
    assert "Custom API Client linked to the API" not in checks


def test_doctor_runs_no_api_check_without_an_audience(emu: Emulator, tmp_path: Path) -> None:
    app = make_app(emu)
    result = app.test_cli_runner().invoke(cli, ["doctor", "--json"])
    names = {check["name"] for check in json.loads(result.stdout)}
    assert not names & set(API_CHECKS)
