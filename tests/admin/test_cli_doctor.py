"""``flask token-vault doctor`` on a good tenant and on a deliberately misconfigured one."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from flask_token_vault import management_client, setup_tenant
from flask_token_vault.admin.app_checks import FAIL, PASS, SKIP
from flask_token_vault.admin.cli import cli
from flask_token_vault.admin.doctor import run_doctor
from flask_token_vault_emulator import Emulator
from services.redis_servers import free_port
from tests.helpers.apps import make_app


def production_app(emu: Emulator, tmp_path: Path, **config: Any) -> Flask:
    settings: dict[str, Any] = {
        "SECRET_KEY": secrets.token_urlsafe(48),
        "SESSION_COOKIE_SECURE": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "TOKEN_VAULT_CACHE": str(tmp_path / "cache"),
    }
    settings.update(config)
    return make_app(emu, **settings)


def doctor_json(app: Flask, *args: str) -> tuple[int, dict[str, dict[str, str]]]:
    result = app.test_cli_runner().invoke(cli, ["doctor", "--json", *args])
    checks = json.loads(result.stdout)
    return result.exit_code, {check["name"]: check for check in checks}


def test_doctor_passes_everything_on_a_good_tenant(emu: Emulator, tmp_path: Path) -> None:
    app = production_app(emu, tmp_path)
    result = app.test_cli_runner().invoke(cli, ["doctor", "--processes", "4"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("[")]
    assert len(lines) == 26
    assert "21 passed, 0 failed, 5 skipped." in result.output
    # Skipped: the other flow's switch (not needed), the URLs (the address is unknown) and
    # Organizations (not used).
    skipped = [line for line in lines if line.startswith("[SKIP]")]
    assert sum("not needed with these settings" in line for line in skipped) == 2
    assert sum("the app's address is unknown" in line for line in skipped) == 2
    assert "fix: Run `flask token-vault setup --only connections`" in result.output


def test_doctor_passes_the_connected_accounts_checks_when_set_up(
    emu: Emulator, tmp_path: Path
) -> None:
    app = production_app(emu, tmp_path, TOKEN_VAULT_CONNECT_FLOW="connected_accounts")
    with app.app_context():
        for name in ("google-oauth2", "windowslive"):
            management_client().enable_connected_accounts(name)
    code, checks = doctor_json(app)
    assert code == 0
    assert {c["status"] for c in checks.values()} == {PASS, SKIP}
    assert checks["My Account API policy (client emulator-client-id)"]["status"] == PASS
    switch = checks["Connected Accounts switch (connection google-oauth2)"]
    assert switch["status"] == PASS and "connected_accounts.active" in switch["detail"]


def test_doctor_names_every_fault_of_a_misconfigured_tenant(emu: Emulator, tmp_path: Path) -> None:
    emu.add_fault("discovery", status=500, times=-1)
    client = emu.state.clients[emu.client_id]
    client.is_first_party = False
    client.token_endpoint_auth_method = "none"
    client.oidc_conformant = False
    client.grant_types = ["authorization_code", "client_credentials"]
    client.refresh_token = {"rotation_type": "rotating", "expiration_type": "expiring"}
    client.my_account_scopes = []
    emu.state.connections["google-oauth2"].options = {"scope": ["email"]}
    emu.state.connections["windowslive"].enabled_clients = []
    emu.set_mfa_policy(True)
    app = make_app(
        emu,
        SECRET_KEY="change-me-to-a-long-random-string",
        TOKEN_VAULT_ENCRYPTION_KEYS=["a-separate-encryption-key-0123456789"],
        SESSION_COOKIE_HTTPONLY=False,
        SESSION_COOKIE_SAMESITE="None",
        TOKEN_VAULT_CONNECT_FLOW="connected_accounts",
        TOKEN_VAULT_CONNECTIONS={
            "google-oauth2": {"scopes": ["openid"]},
            "windowslive": {"scopes": ["User.Read"]},
            "github": {"scopes": ["repo"]},
        },
    )
    code, checks = doctor_json(app, "--processes", "4")
    assert code == 1
    expected_faults = {
        "domain reachable and discovery valid": "answered 500",
        "Token Vault grant (client emulator-client-id)": "cannot use Token Vault",
        "refresh-token rotation off (client emulator-client-id)": "non-rotating",
        "My Account API policy (client emulator-client-id)": "create:me:connected_accounts",
        "Connected Accounts switch (connection google-oauth2)": "connected_accounts.active",
        "Connected Accounts switch (connection windowslive)": "connected_accounts.active",
        "connection enabled for the app (connection windowslive)": "not among",
        "TOKEN_VAULT_CONNECT_FLOW matches the tenant": "not set up for Connected Accounts",
        "connection exists (connection github)": "no connection",
        "MFA policy is not Always": "'Always'",
        "SECRET_KEY fit for production": "placeholder",
        "session cookie Secure": "SESSION_COOKIE_SECURE",
        "session cookie HttpOnly": "SESSION_COOKIE_HTTPONLY",
        "session cookie SameSite": "'None'",
        "cache shared between processes": "4 processes",
    }
    failed = {name for name, check in checks.items() if check["status"] == FAIL}
    assert failed == set(expected_faults)
    for name, found in expected_faults.items():
        assert found in checks[name]["detail"], (name, checks[name])
        assert checks[name]["fix"], name
    # Each problem of the client is named in the one grant check.
    grant = checks["Token Vault grant (client emulator-client-id)"]["detail"]
    for problem in ("not a first-party", "not confidential", "not OIDC conformant"):
        assert problem in grant
    # The other flow's switch is not needed: skipped, with the command that would set it.
    sign_in = checks["Token Vault switch (2025) (connection google-oauth2)"]
    assert sign_in["status"] == SKIP and "--only connections" in sign_in["fix"]
    assert checks["Management API access"]["status"] == PASS
    # The human report shows each fault with its fix.
    report = app.test_cli_runner().invoke(cli, ["doctor", "--processes", "4"]).output
    for name in expected_faults:
        assert f"[FAIL] {name}" in report
    assert report.count("       fix: ") >= len(expected_faults)
    assert "flask token-vault setup" in report


def test_doctor_says_how_to_grant_management_access(emu: Emulator, tmp_path: Path) -> None:
    emu.add_client("no-mgmt", "no-mgmt-secret", management_scopes=[])
    app = production_app(
        emu, tmp_path, AUTH0_CLIENT_ID="no-mgmt", AUTH0_CLIENT_SECRET="no-mgmt-secret"
    )
    code, checks = doctor_json(app)
    assert code == 1
    access = checks["Management API access"]
    assert access["status"] == FAIL and "read:clients" in access["fix"]
    assert checks["client exists"]["status"] == SKIP
    assert checks["Token Vault grant"]["status"] == SKIP
    assert checks["Token Vault on the connection"]["status"] == SKIP
    assert checks["SECRET_KEY fit for production"]["status"] == PASS


def test_doctor_reports_refused_client_credentials(emu: Emulator, tmp_path: Path) -> None:
    app = production_app(emu, tmp_path, AUTH0_CLIENT_SECRET="wrong-secret-value")
    code, checks = doctor_json(app)
    assert code == 1
    exists = checks["client exists"]
    assert exists["status"] == FAIL and "invalid_client" in exists["detail"]
    assert "wrong-secret-value" not in json.dumps(checks)


def test_doctor_without_the_processes_option_reads_web_concurrency(
    emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = production_app(emu, tmp_path, TOKEN_VAULT_CACHE=None)
    with app.app_context():
        one = {c.name: c for c in run_doctor()}["cache shared between processes"]
        assert one.status == PASS
        monkeypatch.setenv("WEB_CONCURRENCY", "3")
        three = {c.name: c for c in run_doctor()}["cache shared between processes"]
    assert three.status == FAIL and "3 processes" in three.detail
    assert "redis://" in three.fix


# -- which way the tenant fills the vault -----------------------------------------------------

FLOW = "TOKEN_VAULT_CONNECT_FLOW matches the tenant"


def shape_tenant(emu: Emulator, shape: str) -> None:
    """Set the emulator up for one flow, for the other, or for neither (a bare tenant)."""
    if shape == "neither":
        emu.bare_tenant()
        return
    for connection in emu.state.connections.values():
        if shape == "connected_accounts":
            connection.connected_accounts = {"active": True}
            connection.options.pop("federated_connections_access_tokens", None)


@pytest.mark.parametrize(
    ("shape", "flow", "status", "verdict", "fix"),
    [
        ("authorize", "authorize", PASS, "fills the vault by sign-in", ""),
        (
            "authorize",
            "connected_accounts",
            FAIL,
            "not set up for Connected Accounts",
            "Run `flask token-vault setup` to turn on Connected Accounts and the My Account API "
            "policy, or set TOKEN_VAULT_CONNECT_FLOW = 'authorize': this tenant fills the vault "
            "by sign-in.",
        ),
        ("connected_accounts", "connected_accounts", PASS, "uses Connected Accounts", ""),
        (
            "connected_accounts",
            "authorize",
            FAIL,
            "uses Connected Accounts",
            "Set TOKEN_VAULT_CONNECT_FLOW = 'connected_accounts': this tenant fills the vault "
            "through Connected Accounts.",
        ),
        (
            "neither",
            "authorize",
            FAIL,
            "fills the vault in neither way",
            "Run `flask token-vault setup`, then set TOKEN_VAULT_CONNECT_FLOW = "
            "'connected_accounts' (Auth0's current way; 'authorize' also works once the 2025 "
            "switch is on).",
        ),
        (
            "neither",
            "connected_accounts",
            FAIL,
            "not set up for Connected Accounts",
            "Run `flask token-vault setup`: it turns on Connected Accounts and the My Account "
            "API policy.",
        ),
    ],
)
def test_doctor_says_which_flow_the_tenant_uses_and_the_fix(
    emu: Emulator, tmp_path: Path, shape: str, flow: str, status: str, verdict: str, fix: str
) -> None:
    shape_tenant(emu, shape)
    app = production_app(emu, tmp_path, TOKEN_VAULT_CONNECT_FLOW=flow)
    _, checks = doctor_json(app)
    check = checks[FLOW]
    assert check["status"] == status, check
    assert verdict in check["detail"] and f"TOKEN_VAULT_CONNECT_FLOW is {flow!r}" in check["detail"]
    assert check["fix"] == fix
    # The switch the app's flow needs is a failed check until it is on; the other is skipped.
    on = {shape} - {"neither"}
    for switch_flow, step in (
        ("connected_accounts", "Connected Accounts switch"),
        ("authorize", "Token Vault switch (2025)"),
    ):
        switch = checks[f"{step} (connection google-oauth2)"]
        if switch_flow in on:
            assert switch["status"] == PASS, switch
        elif switch_flow == flow:
            assert switch["status"] == FAIL and "--only connections" in switch["fix"], switch
        else:
            assert switch["status"] == SKIP, switch


def test_doctor_after_setup_on_a_bare_tenant_passes_for_either_flow(
    emu: Emulator, tmp_path: Path
) -> None:
    emu.bare_tenant()
    for flow in ("connected_accounts", "authorize"):
        app = production_app(emu, tmp_path, TOKEN_VAULT_CONNECT_FLOW=flow)
        with app.app_context():
            setup_tenant(base_url="https://app.example.com")
        code, checks = doctor_json(app)
        assert code == 0, {n: c for n, c in checks.items() if c["status"] != PASS}
        detail = checks[FLOW]["detail"]
        assert "Connected Accounts on google-oauth2, windowslive" in detail
        assert "My Account API policy present" in detail


def test_connected_accounts_on_without_the_my_account_policy_is_not_ready(
    emu: Emulator, tmp_path: Path
) -> None:
    shape_tenant(emu, "connected_accounts")
    emu.state.clients[emu.client_id].my_account_scopes = []
    app = production_app(emu, tmp_path, TOKEN_VAULT_CONNECT_FLOW="connected_accounts")
    code, checks = doctor_json(app)
    assert code == 1
    assert checks[FLOW]["status"] == FAIL and "policy missing" in checks[FLOW]["detail"]
    assert checks[FLOW]["fix"].startswith("Run `flask token-vault setup`")


# -- what a newcomer runs into ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "secret", ["change-me-to-a-long-random-string", "a-test-secret-of-at-least-16-characters"]
)
def test_doctor_refuses_the_docs_placeholder_secret(
    emu: Emulator, tmp_path: Path, secret: str
) -> None:
    code, checks = doctor_json(production_app(emu, tmp_path, SECRET_KEY=secret))
    assert code == 1
    check = checks["SECRET_KEY fit for production"]
    assert check["status"] == FAIL and "placeholder" in check["detail"]


def test_doctor_recognises_the_emulator_reached_over_https(emu: Emulator, tmp_path: Path) -> None:
    """AUTH0_DOMAIN=127.0.0.1:PORT (the old banner's value) means https, which fails."""
    app = production_app(emu, tmp_path, AUTH0_DOMAIN=emu.domain, TOKEN_VAULT_MAX_RETRIES=0)
    code, checks = doctor_json(app)
    assert code == 1
    check = checks["domain reachable and discovery valid"]
    assert check["status"] == FAIL
    assert "SSLError" in check["detail"] and "answers over plain http" in check["detail"]
    assert check["fix"].startswith(f"Set AUTH0_DOMAIN={emu.url} (with http://)")


def test_signing_in_through_https_to_the_emulator_names_the_fix(emu: Emulator) -> None:
    app = make_app(emu, AUTH0_DOMAIN=emu.domain)
    answer = app.test_client().get("/auth/login", headers={"Accept": "application/json"})
    assert answer.status_code == 503
    assert f"set AUTH0_DOMAIN={emu.url}" in answer.get_json()["remedy"]


def test_doctor_names_views_that_need_unconfigured_connections(
    emu: Emulator, tmp_path: Path
) -> None:
    app = production_app(emu, tmp_path, TOKEN_VAULT_CONNECTIONS={"google-oauth2": {}})
    code, checks = doctor_json(app)
    assert code == 1
    check = checks["views name configured connections"]
    assert check["status"] == FAIL
    assert check["detail"] == "me needs 'windowslive' (configured: google-oauth2)"


def test_with_nothing_at_the_domain_doctor_names_one_cause_and_skips_the_rest(
    emu: Emulator, tmp_path: Path
) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    app = production_app(emu, tmp_path, AUTH0_DOMAIN=down, TOKEN_VAULT_MAX_RETRIES=0)
    code, checks = doctor_json(app)
    assert code == 1
    cause = checks["domain reachable and discovery valid"]
    assert cause["status"] == FAIL
    assert cause["detail"] == f"Nothing answers at {down}: is the local Auth0 server running?"
    assert "HTTPS" not in cause["fix"] and down in cause["fix"]
    # The rest follows from it: skipped, not failed.
    tenant_faults = {n for n, c in checks.items() if c["status"] == FAIL} - {cause["name"]}
    assert not any("Management" in n or "client" in n for n in tenant_faults), tenant_faults
    assert checks["Management API access"]["status"] == SKIP


def test_with_nothing_at_the_domain_setup_says_so_in_one_line(
    emu: Emulator, tmp_path: Path
) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    app = production_app(emu, tmp_path, AUTH0_DOMAIN=down, TOKEN_VAULT_MAX_RETRIES=0)
    result = app.test_cli_runner().invoke(cli, ["setup"])
    assert result.exit_code == 1
    said = (result.stdout + result.stderr).strip().splitlines()
    assert said == [
        f"Error: Nothing answers at {down}: is the local Auth0 server running? Start the local "
        f"Auth0 server at {down}, or set AUTH0_DOMAIN to your tenant's domain."
    ]
