"""PyGithub, with the vault's VaultGithubAuth, against the emulator's fake GitHub API."""

from __future__ import annotations

import threading
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask, jsonify
from github import BadCredentialsException, Github

from flask_token_vault import InsufficientScope, JobTokenSource, provider_token_required
from flask_token_vault.providers.github_auth import VaultGithubAuth
from flask_token_vault_emulator import Emulator
from flask_token_vault_pytest.testing import login_as
from tests.helpers.apps import make_app
from tests.helpers.keys import keyed_config, register_client_key

EMAIL = "alice@example.com"
VAULT_ON = {"federated_connections_access_tokens": {"active": True}}


def github(emu: Emulator, auth: VaultGithubAuth) -> Github:
    """PyGithub's client as its quick start makes it, pointed at the emulator."""
    return Github(auth=auth, base_url=emu.github_api_base, retry=None)


def github_app(emu: Emulator) -> Flask:
    """The test app with views that call GitHub through PyGithub."""
    emu.add_connection("github", "github", VAULT_ON)
    connections = {
        "google-oauth2": {"scopes": ["openid"], "api_base": emu.google_api_base},
        "windowslive": {"scopes": ["User.Read"], "api_base": emu.graph_api_base},
        "github": {"scopes": ["read:user", "user:email"]},
    }
    app = make_app(emu, TOKEN_VAULT_CONNECTIONS=connections)

    @app.get("/sdk/user")
    @provider_token_required("github", scopes=["read:user"])
    def user() -> Any:
        auth = VaultGithubAuth("github", ["read:user"])
        client = github(emu, auth)  # one client: a retry sends the renewed token through it
        return jsonify(login=auth.call(lambda: client.get_user().login))

    @app.get("/sdk/user-unretried")
    @provider_token_required("github", scopes=["read:user"])
    def user_unretried() -> Any:
        auth = VaultGithubAuth("github", ["read:user"])
        try:
            return jsonify(login=github(emu, auth).get_user().login)
        except BadCredentialsException:
            return jsonify(dropped=auth.reject_sent()), 502

    @app.get("/sdk/emails")
    @provider_token_required("github", scopes=["read:user"])
    def emails() -> Any:
        # The view asks for more than its decorator: the SDK call itself finds the gap.
        auth = VaultGithubAuth("github", ["user:email"])
        return jsonify(emails=[e.email for e in github(emu, auth).get_user().get_emails()])

    return app


def _alice(app: Flask, emu: Emulator) -> Any:
    client = app.test_client()
    login_as(client, emu, EMAIL, {"github": ["read:user"]})
    return client


def test_a_view_reads_the_user_through_pygithub(emu: Emulator) -> None:
    client = _alice(github_app(emu), emu)
    assert client.get("/sdk/user").get_json() == {"login": "alice"}
    assert client.get("/sdk/user").get_json() == {"login": "alice"}
    assert emu.exchange_count() == 1


def test_an_expired_token_is_renewed_once_for_many_threads(emu: Emulator) -> None:
    app = github_app(emu)
    emu.set_provider_token_ttl("github", 4)  # the vault renews after 3 s (a quarter early)
    client = _alice(app, emu)
    assert client.get("/sdk/user").status_code == 200
    time.sleep(3.2)
    cookie = client.get_cookie("session")
    assert cookie is not None
    statuses: list[int] = []

    def call() -> None:
        other = app.test_client()
        other.set_cookie("session", cookie.value)
        statuses.append(other.get("/sdk/user").status_code)

    threads = [threading.Thread(target=call) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 6
    assert emu.exchange_count() == 2


def test_a_token_github_refuses_is_dropped_and_the_call_retried(emu: Emulator) -> None:
    client = _alice(github_app(emu), emu)
    assert client.get("/sdk/user").status_code == 200
    emu.revoke_provider_tokens(email=EMAIL, connection="github")
    assert client.get("/sdk/user").get_json() == {"login": "alice"}  # 401, a new token, again
    assert emu.exchange_count() == 2
    assert emu.stats()["provider_calls"]["github"] == {"200": 2, "401": 1}


def test_without_call_a_refused_token_is_dropped_for_the_next_request(emu: Emulator) -> None:
    client = _alice(github_app(emu), emu)
    assert client.get("/sdk/user-unretried").status_code == 200
    emu.revoke_provider_tokens(email=EMAIL, connection="github")
    answer = client.get("/sdk/user-unretried")
    assert answer.status_code == 502 and answer.get_json() == {"dropped": True}
    assert client.get("/sdk/user-unretried").get_json() == {"login": "alice"}
    assert emu.exchange_count() == 2


def test_a_scope_not_granted_becomes_a_consent_step(emu: Emulator) -> None:
    client = _alice(github_app(emu), emu)
    answer = client.get("/sdk/emails")
    assert answer.status_code == 302
    link = urlsplit(answer.headers["Location"])
    assert link.path == "/auth/connect/github"
    assert "user:email" in parse_qs(link.query)["scope"][0].split()


def _job_source(emu: Emulator) -> JobTokenSource:
    emu.add_connection("github", "github", VAULT_ON)
    credential = register_client_key(emu)
    emu.set_privileged_access(credential, {"github": ["read:user", "user:email"]})
    emu.connect_account(EMAIL, "github", ["read:user"])
    app = make_app(emu, **keyed_config())
    return JobTokenSource(emu.user_id_for(EMAIL), "github", audit_context="audit", app=app)


def test_a_job_shares_one_exchange_and_meets_a_missing_scope_as_a_typed_error(
    emu: Emulator,
) -> None:
    source = _job_source(emu)
    found: list[str] = []
    auth = VaultGithubAuth(source, ["read:user"])

    def call() -> None:
        found.append(auth.call(lambda: github(emu, auth).get_user().login))

    threads = [threading.Thread(target=call) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert found == ["alice"] * 6
    assert emu.exchange_count() == 1
    wider = VaultGithubAuth(source, ["user:email"])
    with pytest.raises(InsufficientScope, match="user:email"):
        list(github(emu, wider).get_user().get_emails())
    assert "vault token removed" in wider._masked_token  # what PyGithub logs, not the token
