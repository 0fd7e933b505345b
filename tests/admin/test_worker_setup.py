"""``worker setup`` and ``doctor`` hold the jobs' access to Auth0's Privileged Worker rules.

At least one ``--ip`` (addresses or CIDR ranges, at most 10), at most 5 connections and 20 scopes,
each granted connection enabled for the client; doctor checks the same for a client that has
privileged access, from the same step.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from flask_token_vault import Misconfigured, TokenVault, management_client
from flask_token_vault.admin.cli import cli
from flask_token_vault_emulator import Emulator
from tests.helpers.apps import CAL_READ, make_app
from tests.helpers.keys import keyed_config, register_client_key

from .test_cli_doctor import doctor_json, production_app

JOB = "nightly calendar sync"
GOOGLE = f"google-oauth2={CAL_READ}"


def _setup(app: Flask, *args: str, answer: str | None = None) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(cli, ["worker", "setup", *args], input=answer)
    return result.exit_code, result.output


def _access(app: Flask) -> object:
    return management_client(app).get_client()["token_vault_privileged_access"]


def test_worker_setup_needs_an_address(emu: Emulator) -> None:
    register_client_key(emu)
    app = make_app(emu, **keyed_config())
    code, output = _setup(app, "--grant", GOOGLE, "--yes")
    assert code == 2
    assert "--ip" in output and "empty" in output
    assert _access(app) is None


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--ip", "nowhere"], "not an IP address or CIDR range"),
        (["--ip", "10.1.2.3/8"], "host bits set: write 10.0.0.0/8"),
        ([arg for i in range(11) for arg in ("--ip", f"203.0.113.{i}")], "at most 10"),
        (
            ["--ip", "127.0.0.1", *[a for i in range(6) for a in ("--grant", f"c{i}=s")]],
            "at most 5",
        ),
        (
            ["--ip", "127.0.0.1", "--grant", "c=" + ",".join(f"s{i}" for i in range(21))],
            "at most 20",
        ),
        (["--ip", "127.0.0.1", "--grant", "google-oauth2"], "CONNECTION=SCOPE"),
    ],
)
def test_worker_setup_refuses_what_auth0_would_before_any_change(
    emu: Emulator, args: list[str], said: str
) -> None:
    register_client_key(emu)
    app = make_app(emu, **keyed_config())
    credentials = len(emu.state.clients[emu.client_id].credentials)
    code, output = _setup(app, *args, "--yes")
    assert code == 2, output
    assert said in output
    assert _access(app) is None
    assert len(emu.state.clients[emu.client_id].credentials) == credentials


def test_worker_setup_takes_ipv6_and_ranges(emu: Emulator) -> None:
    register_client_key(emu)
    app = make_app(emu, **keyed_config())
    ips = ["2001:db8::/32", "127.0.0.0/8", "::1"]
    code, output = _setup(app, "--grant", GOOGLE, *[a for ip in ips for a in ("--ip", ip)], "--yes")
    assert code == 0, output
    access = _access(app)
    assert isinstance(access, dict) and access["ip_allowlist"] == ips


def test_worker_setup_enables_each_granted_connection(emu: Emulator) -> None:
    register_client_key(emu)
    emu.state.connections["windowslive"].enabled_clients = ["another-client"]
    app = make_app(emu, **keyed_config())
    args = ["--grant", GOOGLE, "--grant", "windowslive=User.Read", "--ip", "127.0.0.1"]
    code, output = _setup(app, *args, answer="y\n")
    assert code == 0, output
    assert "[would change] connection windowslive: connection enabled for the app" in output
    assert "[changed]      connection windowslive" in output
    assert emu.client_id in emu.state.connections["windowslive"].enabled_clients
    assert "another-client" in emu.state.connections["windowslive"].enabled_clients
    # A job can now get the Microsoft token too.
    emu.connect_account("alice@example.com", "windowslive", ["User.Read"])
    user_id = emu.user_id_for("alice@example.com")
    token = TokenVault().worker_token(user_id, "windowslive", audit_context=JOB, app=app)
    assert token.access_token
    # Run again: nothing to change, nothing asked.
    code, output = _setup(app, *args)
    assert code == 0, output
    assert "[would change]" not in output and "Apply" not in output


def test_worker_setup_reads_the_connections_clients_where_auth0_moved_them(
    emu: Emulator,
) -> None:
    """Without ``enabled_clients`` in the record, ``GET /connections/{id}/clients`` answers."""
    emu.state.connections["windowslive"].enabled_clients = [f"client-{i}" for i in range(120)]
    app = make_app(emu)
    management = management_client(app)
    record = {"id": management.find_connection("windowslive")["id"]}
    assert management.connection_clients(record) == [f"client-{i}" for i in range(120)]
    assert management.enable_connection_for_client("windowslive") is True
    assert management.connection_clients(record)[-1] == emu.client_id
    assert management.enable_connection_for_client("windowslive") is False


# -- doctor -------------------------------------------------------------------------------------


def test_doctor_fails_an_access_auth0_would_refuse(emu: Emulator, tmp_path: Path) -> None:
    credential = register_client_key(emu)
    emu.set_privileged_access(credential, {"google-oauth2": [CAL_READ]}, ip_allowlist=[])
    app = production_app(emu, tmp_path, **keyed_config())
    code, checks = doctor_json(app)
    assert code == 1
    check = checks[f"Privileged Worker access (client {emu.client_id})"]
    assert check["status"] == "fail"
    assert "ip_allowlist is empty" in check["detail"]
    assert "flask token-vault worker setup" in check["fix"] and "--ip" in check["fix"]
    # The jobs do fail that way, with the same fix.
    emu.connect_account("alice@example.com", "google-oauth2", [CAL_READ])
    with pytest.raises(Misconfigured):
        TokenVault().worker_token(
            emu.user_id_for("alice@example.com"), "google-oauth2", audit_context=JOB, app=app
        )


def test_doctor_passes_a_good_access_and_names_a_disabled_granted_connection(
    emu: Emulator, tmp_path: Path
) -> None:
    credential = register_client_key(emu)
    emu.add_connection(
        "github", "github", {"federated_connections_access_tokens": {"active": True}}
    )
    emu.set_privileged_access(credential, {"google-oauth2": [CAL_READ], "github": ["repo"]})
    app = production_app(emu, tmp_path, **keyed_config())
    code, checks = doctor_json(app)
    assert code == 0, {k: v for k, v in checks.items() if v["status"] == "fail"}
    access = checks[f"Privileged Worker access (client {emu.client_id})"]
    assert access["status"] == "pass" and "github" in access["detail"]
    assert checks["connection enabled for the app (connection github)"]["status"] == "pass"
    emu.state.connections["github"].enabled_clients.remove(emu.client_id)
    code, checks = doctor_json(app)
    assert code == 1
    github = checks["connection enabled for the app (connection github)"]
    assert github["status"] == "fail" and "not among" in github["detail"]
    assert github["fix"].startswith("Run `flask token-vault worker setup --grant")
