"""PyGithub, with the vault's VaultGithubAuth, against the emulator's fake GitHub API."""

from __future__ import annotations

import pytest

from flask_token_vault import InsufficientScope, JobTokenSource
from flask_token_vault.providers.github_auth import VaultGithubAuth
from flask_token_vault_emulator import Emulator
from tests.helpers.apps import alice_client
from tests.helpers.sdk import VAULT_ON, at_once, job_source
from tests.helpers.sdk_apps import GITHUB_GRANTS, github, github_app

EMAIL = "alice@example.com"


def test_a_view_reads_the_user_through_pygithub(emu: Emulator) -> None:
    client = alice_client(github_app(emu), emu, GITHUB_GRANTS)
    assert client.get("/sdk/user").get_json() == {"login": "alice"}
    assert client.get("/sdk/user").get_json() == {"login": "alice"}
    assert emu.exchange_count() == 1


def test_a_token_github_refuses_is_dropped_and_the_call_retried(emu: Emulator) -> None:
    client = alice_client(github_app(emu), emu, GITHUB_GRANTS)
    assert client.get("/sdk/user").status_code == 200
    emu.revoke_provider_tokens(email=EMAIL, connection="github")
    assert client.get("/sdk/user").get_json() == {"login": "alice"}  # 401, a new token, again
    assert emu.exchange_count() == 2
    assert emu.stats()["provider_calls"]["github"] == {"200": 2, "401": 1}


def test_without_call_a_refused_token_is_dropped_for_the_next_request(emu: Emulator) -> None:
    client = alice_client(github_app(emu), emu, GITHUB_GRANTS)
    assert client.get("/sdk/user-unretried").status_code == 200
    emu.revoke_provider_tokens(email=EMAIL, connection="github")
    answer = client.get("/sdk/user-unretried")
    assert answer.status_code == 502 and answer.get_json() == {"dropped": True}
    assert client.get("/sdk/user-unretried").get_json() == {"login": "alice"}
    assert emu.exchange_count() == 2


def _job_source(emu: Emulator) -> JobTokenSource:
    emu.add_connection("github", "github", VAULT_ON)
    return job_source(emu, "github", ["read:user", "user:email"], ["read:user"], "audit")


def test_a_job_shares_one_exchange_and_meets_a_missing_scope_as_a_typed_error(
    emu: Emulator,
) -> None:
    source = _job_source(emu)
    found: list[str] = []
    auth = VaultGithubAuth(source, ["read:user"])

    def call() -> None:
        found.append(auth.call(lambda: github(emu, auth).get_user().login))

    at_once(call)
    assert found == ["alice"] * 6
    assert emu.exchange_count() == 1
    wider = VaultGithubAuth(source, ["user:email"])
    with pytest.raises(InsufficientScope, match="user:email"):
        list(github(emu, wider).get_user().get_emails())
    assert "vault token removed" in wider._masked_token  # what PyGithub logs, not the token
