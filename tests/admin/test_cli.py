"""The ``flask token-vault`` commands, run with the app's CLI runner against the emulator."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from importlib.metadata import entry_points
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.cli import FlaskGroup, ScriptInfo

from flask_token_vault import AccountNotConnected, get_provider_token
from flask_token_vault.admin.cli import cli, format_table
from flask_token_vault.admin.records import REQUIRED_GRANT_TYPES
from flask_token_vault_emulator import Emulator
from flask_token_vault_emulator.state import Tokenset
from flask_token_vault_pytest.testing import login_as
from tests.helpers.apps import CAL_READ, cached_token, holding_a_token, make_app


@pytest.fixture
def app(emu: Emulator) -> Flask:
    app = make_app(emu)

    @app.get("/raw-token")
    def raw_token() -> Any:
        try:
            return {"token_length": len(get_provider_token("google-oauth2", [CAL_READ]))}
        except AccountNotConnected as exc:
            return {"error": exc.error, "type": type(exc).__name__}, 401

    return app


def run(app: Flask, *args: str, input: str | None = None) -> Any:
    return app.test_cli_runner().invoke(cli, list(args), input=input)


def test_the_group_is_registered_as_a_flask_command(app: Flask) -> None:
    (entry,) = [e for e in entry_points(group="flask.commands") if e.name == "token-vault"]
    assert entry.value == "flask_token_vault.admin.cli:cli"
    # The `flask` command itself finds it through the entry point.
    group = FlaskGroup(create_app=lambda: app)
    result = CliRunner().invoke(
        group, ["token-vault", "--help"], obj=ScriptInfo(create_app=lambda: app)
    )
    assert result.exit_code == 0, result.output
    for name in ("setup", "users", "tokensets", "client", "accounts", "doctor"):
        assert name in result.output


def test_format_table_aligns_columns() -> None:
    text = format_table(["ID", "NAME"], [["a", "long name"], ["longer id", "x"]])
    lines = text.splitlines()
    assert lines == ["ID         NAME", "a          long name", "longer id  x"]


# -- tokensets --------------------------------------------------------------------------------


def test_tokensets_list_prints_a_table(app: Flask, emu: Emulator) -> None:
    emu.connect_account("ada@example.com", "google-oauth2", [CAL_READ])
    (account,) = emu.state.tokensets_for(emu.user_id_for("ada@example.com"))
    result = run(app, "tokensets", "list", emu.user_id_for("ada@example.com"))
    assert result.exit_code == 0, result.output
    header, row = result.output.splitlines()
    assert header.split() == ["ID", "CONNECTION", "SCOPES", "ISSUED", "EXPIRES", "LAST", "USED"]
    # Read as Connected Accounts: the id is the account's.
    assert row.startswith(account.account_id) and "google-oauth2" in row and CAL_READ in row
    assert header.index("CONNECTION") == row.index("google-oauth2")


@pytest.mark.parametrize("style", ["epoch", "iso"])
def test_tokensets_list_json_for_scripts(app: Flask, emu: Emulator, style: str) -> None:
    emu.set_tokenset_timestamps(style)
    emu.connect_account("bo@example.com", "windowslive", ["User.Read"])
    (account,) = emu.state.tokensets_for(emu.user_id_for("bo@example.com"))
    result = run(app, "tokensets", "list", emu.user_id_for("bo@example.com"), "--json")
    assert result.exit_code == 0, result.output
    (item,) = json.loads(result.stdout)
    assert item["id"] == account.account_id and item["connection"] == "windowslive"
    assert "User.Read" in item["scopes"]
    assert item["issued_at"].endswith("Z") and item["last_used_at"] is None


def test_tokensets_list_for_a_user_without_any(app: Flask, emu: Emulator) -> None:
    emu.issue_refresh_token("cy@example.com")  # the user exists, nothing connected
    result = run(app, "tokensets", "list", emu.user_id_for("cy@example.com"))
    assert result.exit_code == 0 and "has no tokensets" in result.output


def test_failure_exits_non_zero_with_the_reason_and_the_fix(app: Flask, emu: Emulator) -> None:
    result = run(app, "tokensets", "list", "auth0|nobody")
    assert result.exit_code == 1
    assert "The user does not exist" in result.stderr
    assert "inexistent_user" in result.stderr and "fix:" in result.stderr
    assert "Traceback" not in result.output


def google_tokenset(emu: Emulator, email: str) -> tuple[str, Tokenset]:
    """Connect Google (calendar read) for ``email``; return the user id and the vault's tokenset."""
    emu.connect_account(email, "google-oauth2", [CAL_READ])
    user_id = emu.user_id_for(email)
    (tokenset,) = emu.state.tokensets_for(user_id)
    return user_id, tokenset


def test_tokensets_delete_makes_the_next_token_call_fail_and_empties_the_cache(
    app: Flask, emu: Emulator
) -> None:
    client, user_id = holding_a_token(app, emu, "dee@example.com", "/raw-token")
    assert cached_token(app, user_id, scopes=(CAL_READ,)) is not None
    (tokenset,) = json.loads(run(app, "tokensets", "list", user_id, "--json").stdout)

    result = run(app, "tokensets", "delete", user_id, tokenset["id"], "--yes")
    assert result.exit_code == 0, result.output
    assert f"Deleted tokenset {tokenset['id']} of {user_id} (google-oauth2)." in result.output
    assert cached_token(app, user_id, scopes=(CAL_READ,)) is None
    answer = client.get("/raw-token")
    assert answer.status_code == 401
    assert answer.get_json() == {
        "error": "federated_connection_refresh_token_not_found",
        "type": "AccountNotConnected",
    }
    assert emu.exchange_count() == 1  # the second call asked Auth0 again, and was refused


def test_tokensets_delete_of_an_unknown_tokenset_fails(app: Flask, emu: Emulator) -> None:
    emu.connect_account("eli@example.com", "google-oauth2")
    result = run(app, "tokensets", "delete", emu.user_id_for("eli@example.com"), "fcts_nope")
    assert result.exit_code == 1 and "inexistent_tokenset" in result.stderr


def test_tokensets_delete_asks_first_and_no_keeps_the_tokenset(app: Flask, emu: Emulator) -> None:
    user_id, tokenset = google_tokenset(emu, "fay@example.com")
    refused = run(app, "tokensets", "delete", user_id, tokenset.account_id, input="n\n")
    assert refused.exit_code == 1 and "Aborted" in refused.output
    assert f"Delete tokenset {tokenset.account_id} (google-oauth2: " in refused.output
    assert CAL_READ in refused.output and "until they connect again" in refused.output
    assert emu.state.tokensets_for(user_id) == [tokenset]
    # No answer at all (a script, an empty stdin) is a no as well.
    assert run(app, "tokensets", "delete", user_id, tokenset.id).exit_code == 1
    assert emu.state.tokensets_for(user_id) == [tokenset]

    accepted = run(app, "tokensets", "delete", user_id, tokenset.account_id, input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert emu.state.tokensets_for(user_id) == []


def test_tokensets_delete_says_a_running_app_keeps_an_in_process_token(
    app: Flask, emu: Emulator
) -> None:
    user_id, tokenset = google_tokenset(emu, "gus@example.com")
    output = run(app, "tokensets", "delete", user_id, tokenset.account_id, "-y").output
    assert "through the old tokenset endpoint" in output and "still answers" in output
    # The CLI's process cannot reach a running app's memory: it says so, and what to do.
    assert "lives inside each running process, which this command cannot reach" in output
    assert "keeps using a token it already holds until that token expires" in output
    assert "TOKEN_VAULT_CACHE" in output
    assert "dropped" not in output
    assert "The provider's own tokens are not revoked" in output


def test_tokensets_delete_with_a_shared_cache_says_it_reaches_running_apps(
    emu: Emulator, redis_url: str
) -> None:
    app = make_app(emu, TOKEN_VAULT_CACHE=redis_url, TOKEN_VAULT_LOCAL_CACHE_TTL=3)
    user_id, tokenset = google_tokenset(emu, "hal@example.com")
    output = run(app, "tokensets", "delete", user_id, tokenset.id, "--yes").output
    assert "shared cache (redis) no longer serves the user's tokens" in output
    assert "within 3 s" in output


# -- users ----------------------------------------------------------------------------------------


def test_users_find_gives_the_user_id_of_an_email(app: Flask, emu: Emulator) -> None:
    emu.connect_account("ida@example.com", "google-oauth2")
    table = run(app, "users", "find", "IDA@example.com")
    assert table.exit_code == 0, table.output
    header, row = table.output.splitlines()
    assert header.split() == ["USER", "ID", "EMAIL", "NAME", "CONNECTIONS"]
    assert row.split()[:2] == [emu.user_id_for("ida@example.com"), "ida@example.com"]
    data = json.loads(run(app, "users", "find", "ida@example.com", "--json").stdout)
    assert [user["user_id"] for user in data] == [emu.user_id_for("ida@example.com")]


def test_users_find_without_a_match_exits_1(app: Flask, emu: Emulator) -> None:
    result = run(app, "users", "find", "nobody@example.com")
    assert result.exit_code == 1
    assert "No user of the tenant has the email address nobody@example.com." in result.stderr


# -- one step of setup -----------------------------------------------------------------------


def test_setup_only_one_step_lists_the_steps_in_its_help(app: Flask) -> None:
    result = run(app, "setup", "--help")
    for key in ("grant", "rotation", "my-account", "connections", "urls", "backchannel"):
        assert key in result.output
    assert run(app, "setup", "--only", "nope").exit_code == 2


def test_setup_only_connections_twice(emu: Emulator) -> None:
    emu.add_connection("github", options={"client_id": "gh", "scope": ["repo"]})
    app = make_app(emu, TOKEN_VAULT_CONNECTIONS={"github": {"scopes": ["repo"]}})
    first = run(app, "setup", "--only", "connections")
    assert first.exit_code == 0, first.output
    assert "connection github: Token Vault switch (2025): options." in first.output
    assert "2 changed, 1 unchanged" in first.output
    options = dict(emu.state.connections["github"].options)
    assert options == {
        "client_id": "gh",
        "scope": ["repo"],
        "federated_connections_access_tokens": {"active": True},
    }
    assert emu.state.connections["github"].connected_accounts_active
    second = run(app, "setup", "--only", "connections")
    assert second.exit_code == 0 and "[changed]" not in second.output
    assert emu.state.connections["github"].options == options


def test_setup_only_connections_names_an_unknown_connection(emu: Emulator) -> None:
    app = make_app(emu, TOKEN_VAULT_CONNECTIONS={"nope": {}})
    result = run(app, "setup", "--only", "connections")
    assert result.exit_code == 1 and "no connection named" in result.output


def test_setup_only_grant_keeps_the_other_grants(app: Flask, emu: Emulator) -> None:
    client = emu.state.clients[emu.client_id]
    client.grant_types = ["client_credentials", "implicit"]
    result = run(app, "setup", "--only", "grant")
    assert result.exit_code == 0, result.output
    assert f"client {emu.client_id}: Token Vault grant: added" in result.output
    assert client.grant_types == ["client_credentials", "implicit", *REQUIRED_GRANT_TYPES]
    again = run(app, "setup", "--only", "grant")
    assert again.exit_code == 0 and "1 unchanged" in again.output


# -- connected accounts -----------------------------------------------------------------------


def test_accounts_list_table_and_json(app: Flask, emu: Emulator) -> None:
    emu.connect_account("flo@example.com", "google-oauth2", [CAL_READ])
    emu.connect_account("flo@example.com", "windowslive", ["User.Read"])
    user_id = emu.user_id_for("flo@example.com")
    table = run(app, "accounts", "list", user_id)
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0].split() == ["ID", "CONNECTION", "SCOPES", "CREATED", "EXPIRES"]
    assert [line.split()[1] for line in lines[1:]] == ["google-oauth2", "windowslive"]
    data = json.loads(run(app, "accounts", "list", user_id, "--json").stdout)
    assert [a["connection"] for a in data] == ["google-oauth2", "windowslive"]
    assert all(a["id"].startswith("cac_") and a["access_type"] == "offline" for a in data)


# -- Auth0's documented shell recipe gives the same state as the command --------------------

SHELL_RECIPE = r"""
set -euo pipefail
TOKEN=$(jq -n --arg id "$CLIENT_ID" --arg secret "$CLIENT_SECRET" --arg aud "$DOMAIN/api/v2/" \
    '{grant_type: "client_credentials", client_id: $id, client_secret: $secret, audience: $aud}' \
  | curl -sS --fail -X POST "$DOMAIN/oauth/token" -H 'content-type: application/json' -d @- \
  | jq -r .access_token)
curl -sS --fail -H "Authorization: Bearer $TOKEN" \
    "$DOMAIN/api/v2/connections/$CONNECTION_ID?fields=options" \
  | jq '{options: (.options + {federated_connections_access_tokens: {active: true}})}' \
  | curl -sS --fail -X PATCH -H "Authorization: Bearer $TOKEN" \
      -H 'content-type: application/json' --data @- \
      "$DOMAIN/api/v2/connections/$CONNECTION_ID" > /dev/null
"""


def test_shell_recipe_and_setup_give_the_same_connection_options(app: Flask, emu: Emulator) -> None:
    missing = [tool for tool in ("jq", "curl") if shutil.which(tool) is None]
    if missing:
        # `make test` installs both on Debian; in CI their absence is a failure, not a skip.
        message = f"Auth0's documented shell recipe needs {' and '.join(missing)} on PATH"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message + " (`make test` installs them with apt-get)")
    options = {
        "client_id": "gh",
        "scope": ["repo", "read:user"],
        "upstream_params": {"screen_name": {"alias": "login_hint"}},
        "federated_connections_access_tokens": {"active": False},
    }
    by_shell = emu.add_connection("github-shell", options=json.loads(json.dumps(options)))
    emu.add_connection("github-cli", options=json.loads(json.dumps(options)))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DOMAIN": emu.url,
        "CLIENT_ID": emu.client_id,
        "CLIENT_SECRET": emu.client_secret,
        "CONNECTION_ID": by_shell,
    }
    shell = subprocess.run(
        ["bash", "-c", SHELL_RECIPE], env=env, capture_output=True, text=True, timeout=30
    )
    assert shell.returncode == 0, shell.stderr
    cli_app = make_app(emu, TOKEN_VAULT_CONNECTIONS={"github-cli": {}})
    result = run(cli_app, "setup", "--only", "connections")
    assert result.exit_code == 0, result.output

    shell_state = emu.state.connections["github-shell"]
    cli_state = emu.state.connections["github-cli"]
    assert shell_state.options == cli_state.options
    assert cli_state.options == {**options, "federated_connections_access_tokens": {"active": True}}
    assert shell_state.enabled_clients == cli_state.enabled_clients


def test_tokensets_on_a_tenant_without_them_point_to_connected_accounts(
    app: Flask, emu: Emulator
) -> None:
    emu.connect_account("kim@example.com", "google-oauth2", [CAL_READ])
    user_id = emu.user_id_for("kim@example.com")
    (account,) = emu.state.tokensets_for(user_id)
    emu.set_tenant_features(tokenset_endpoints=False)
    # Reads go to the Connected Accounts listing, which every tenant answers.
    result = run(app, "tokensets", "list", user_id)
    assert result.exit_code == 0 and account.account_id in result.output
    # Deletes cannot: the command says honestly that only the user can remove it now.
    deleted = run(app, "tokensets", "delete", user_id, account.account_id, "--yes")
    assert deleted.exit_code == 1 and "[tokensets_gone]" in deleted.output
    assert "only the user can, with their own My Account API token" in deleted.output
    assert "no longer answers the old tokenset endpoints" in deleted.output
    assert emu.state.tokensets_for(user_id) == [account]


def test_disconnect_in_the_sign_in_flow_on_a_tenant_without_tokensets(
    app: Flask, emu: Emulator
) -> None:
    client = app.test_client()
    login_as(client, emu, "lou@example.com", {"google-oauth2": [CAL_READ]})
    emu.set_tenant_features(tokenset_endpoints=False)
    page = client.get("/auth/logout").get_data(as_text=True)
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    answer = client.post(
        "/auth/disconnect/google-oauth2",
        data={"csrf_token": token},
        headers={"Accept": "application/json"},
    )
    # The delete goes to the My Account API as the user, Auth0's documented way.
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_json() == {"connection": "google-oauth2", "removed": 1}
    assert emu.state.tokensets_for(emu.user_id_for("lou@example.com")) == []
