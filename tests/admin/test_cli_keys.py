"""``flask token-vault client credentials add``, ``worker setup`` and doctor's key checks."""

from __future__ import annotations

import json
from pathlib import Path

from flask_token_vault import TokenVault, management_client
from flask_token_vault.admin.cli import cli
from flask_token_vault_emulator import Emulator
from tests.helpers.apps import CAL_READ, make_app
from tests.helpers.keys import ec_key_pem, keyed_config, register_client_key, rsa_key_pem
from tests.helpers.oauth import token_request

from .test_cli_doctor import doctor_json, production_app


def test_credentials_add_moves_the_app_from_its_secret_to_a_key(
    emu: Emulator, tmp_path: Path
) -> None:
    key_file = tmp_path / "client.pem"
    key_file.write_text(rsa_key_pem())
    app = make_app(emu)  # still on the secret
    result = app.test_cli_runner().invoke(
        cli, ["client", "credentials", "add", "--key", str(key_file), "--yes"]
    )
    assert result.exit_code == 0, result.output
    assert "Registered the public key as credential cred_" in result.output
    assert "BEGIN" not in result.output
    # The secret no longer works; the key does.
    keyed = make_app(emu, **keyed_config())
    assert management_client(keyed).get_client()["token_endpoint_auth_method"] is None
    refused = token_request(
        emu, {"grant_type": "client_credentials", "audience": emu.url + "/api/v2/"}
    )
    assert refused.status_code == 401


def test_credentials_add_asks_before_switching(emu: Emulator) -> None:
    app = make_app(emu, **{"TOKEN_VAULT_CONNECTIONS": {}})
    result = app.test_cli_runner().invoke(
        cli, ["client", "credentials", "add", "--key", rsa_key_pem()], input="n\n"
    )
    assert result.exit_code == 1 and "Aborted" in result.output
    client = management_client(app).get_client()
    assert client["token_endpoint_auth_method"] == "client_secret_post"


def test_worker_setup_prints_the_block_and_applies_it(emu: Emulator) -> None:
    register_client_key(emu)
    app = make_app(emu, **keyed_config())
    result = app.test_cli_runner().invoke(
        cli,
        ["worker", "setup", "--grant", f"google-oauth2={CAL_READ}", "--ip", "127.0.0.1/32"],
        input="y\n",
    )
    assert result.exit_code == 0, result.output
    block = json.loads(result.output[result.output.index("{") : result.output.rindex("}") + 1])
    access = block["token_vault_privileged_access"]
    assert access["grants"] == [{"connection": "google-oauth2", "scopes": [CAL_READ]}]
    assert access["ip_allowlist"] == ["127.0.0.1/32"]
    assert management_client(app).get_client()["token_vault_privileged_access"] == access
    # The jobs can now get tokens.
    emu.connect_account("alice@example.com", "google-oauth2", [CAL_READ])
    token = TokenVault().worker_token(
        emu.user_id_for("alice@example.com"),
        "google-oauth2",
        [CAL_READ],
        audit_context="calendar sync",
        app=app,
    )
    assert token.access_token


def test_worker_setup_changes_nothing_when_declined(emu: Emulator) -> None:
    register_client_key(emu)
    app = make_app(emu, **keyed_config())
    result = app.test_cli_runner().invoke(
        cli, ["worker", "setup", "--ip", "127.0.0.1"], input="n\n"
    )
    assert result.exit_code == 1
    assert '"google-oauth2"' in result.output  # the configured connections, for review
    assert management_client(app).get_client()["token_vault_privileged_access"] is None


def test_worker_setup_needs_a_key(emu: Emulator) -> None:
    result = make_app(emu).test_cli_runner().invoke(cli, ["worker", "setup", "--yes"])
    assert result.exit_code == 1 and "AUTH0_CLIENT_PRIVATE_KEY" in result.output


def test_doctor_checks_the_key_and_the_background_access(emu: Emulator, tmp_path: Path) -> None:
    credential = register_client_key(emu)
    app = production_app(emu, tmp_path, **keyed_config(TOKEN_VAULT_DPOP_KEY=ec_key_pem()))
    code, checks = doctor_json(app, "--processes", "1")
    assert code == 0
    assert checks["client key matches a credential"]["status"] == "pass"
    assert credential in checks["client key matches a credential"]["detail"]
    assert checks["background tokens (Privileged Worker)"]["status"] == "skip"
    assert checks["DPoP"]["status"] == "pass"
    emu.set_privileged_access(credential, {"google-oauth2": [CAL_READ]})
    _, checks = doctor_json(app, "--processes", "1")
    assert checks["background tokens (Privileged Worker)"]["status"] == "pass"


def test_doctor_says_when_the_key_is_not_registered(emu: Emulator, tmp_path: Path) -> None:
    register_client_key(emu)
    app = production_app(emu, tmp_path, **keyed_config(rsa_key_pem("other")))
    code, checks = doctor_json(app)
    assert code == 1
    assert "AUTH0_CLIENT_PRIVATE_KEY" in checks["client exists"]["detail"]
    assert "credentials add" in checks["client exists"]["fix"]
