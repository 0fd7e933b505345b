"""slack_sdk's WebClient and AsyncWebClient, with tokens from the vault, against the fake Slack."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask, jsonify
from slack_sdk.errors import SlackApiError

from flask_token_vault import InsufficientScope, JobTokenSource, provider_token_required
from flask_token_vault.providers.slack_async import AsyncVaultWebClient
from flask_token_vault.providers.slack_client import VaultWebClient
from flask_token_vault_emulator import Emulator
from flask_token_vault_pytest.testing import login_as
from tests.helpers.apps import make_app
from tests.helpers.keys import keyed_config, register_client_key

EMAIL = "alice@example.com"
SLACK = "sign-in-with-slack"
CHANNELS = ["general", "random", "engineering", "design", "announcements"]
VAULT_ON = {"federated_connections_access_tokens": {"active": True}}


def add_slack(emu: Emulator) -> None:
    """Add Auth0's Sign in with Slack connection, Token Vault on, to the emulator's tenant."""
    emu.add_connection(SLACK, "oauth2", VAULT_ON)


def slack_app(emu: Emulator, **config: Any) -> Flask:
    """The test app with views that call Slack through ``slack_sdk``."""
    add_slack(emu)
    connections = {
        "google-oauth2": {"scopes": ["openid"], "api_base": emu.google_api_base},
        "windowslive": {"scopes": ["User.Read"], "api_base": emu.graph_api_base},
        SLACK: {"scopes": ["channels:read", "chat:write"]},
    }
    app = make_app(emu, TOKEN_VAULT_CONNECTIONS=connections, **config)

    @app.get("/sdk/channels")
    @provider_token_required(SLACK, scopes=["channels:read"])
    def channels() -> Any:
        client = VaultWebClient(SLACK, ["channels:read"], base_url=emu.slack_api_base)
        names = [
            channel["name"]
            for page in client.conversations_list(limit=2)  # Slack's cursor paging
            for channel in page["channels"]
        ]
        return jsonify(names=names, user=client.auth_test()["user"])

    @app.get("/sdk/async-channels")
    @provider_token_required(SLACK, scopes=["channels:read"])
    async def async_channels() -> Any:
        client = AsyncVaultWebClient(SLACK, ["channels:read"], base_url=emu.slack_api_base)
        found = await client.conversations_list()
        return jsonify(names=[channel["name"] for channel in found["channels"]])

    @app.post("/sdk/post")
    @provider_token_required(SLACK, scopes=["channels:read"])
    def post() -> Any:
        # The view asks for more than its decorator: the SDK call itself finds the gap.
        client = VaultWebClient(SLACK, ["chat:write"], base_url=emu.slack_api_base)
        client.chat_postMessage(channel="C1", text="hello")
        return jsonify(ok=True)

    return app


def _alice(app: Flask, emu: Emulator) -> Any:
    client = app.test_client()
    login_as(client, emu, EMAIL, {SLACK: ["channels:read", "users:read"]})
    return client


def test_a_view_lists_channels_through_slack_s_clients(emu: Emulator) -> None:
    client = _alice(slack_app(emu), emu)
    answer = client.get("/sdk/channels")
    assert answer.status_code == 200
    assert answer.get_json() == {"names": CHANNELS, "user": "alice"}
    assert client.get("/sdk/async-channels").get_json() == {"names": CHANNELS}
    assert emu.exchange_count() == 1  # four Slack calls, two requests: one token


def test_an_expired_token_is_renewed_once_for_many_threads(emu: Emulator) -> None:
    app = slack_app(emu)
    emu.set_provider_token_ttl(SLACK, 4)  # the vault renews after 3 s (a quarter early)
    client = _alice(app, emu)
    assert client.get("/sdk/channels").status_code == 200
    time.sleep(3.2)
    cookie = client.get_cookie("session")
    assert cookie is not None
    statuses: list[int] = []

    def call() -> None:
        other = app.test_client()
        other.set_cookie("session", cookie.value)
        statuses.append(other.get("/sdk/channels").status_code)

    threads = [threading.Thread(target=call) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 6
    assert emu.exchange_count() == 2


def test_a_token_slack_refuses_is_dropped_and_the_call_retried(emu: Emulator) -> None:
    client = _alice(slack_app(emu), emu)
    assert client.get("/sdk/channels").status_code == 200
    emu.revoke_provider_tokens(email=EMAIL, connection=SLACK)  # Slack answers token_revoked
    assert client.get("/sdk/channels").status_code == 200
    assert client.get("/sdk/async-channels").status_code == 200
    assert emu.exchange_count() == 2  # one new token, cached for the calls after it


@pytest.mark.parametrize("said", ["invalid_auth", "token_expired", "token_revoked"])
def test_each_way_slack_refuses_a_token_drops_it_and_retries(emu: Emulator, said: str) -> None:
    client = _alice(slack_app(emu), emu)
    assert client.get("/sdk/channels").status_code == 200
    emu.add_fault("slack", status=200, body={"ok": False, "error": said})
    assert client.get("/sdk/channels").status_code == 200
    assert emu.exchange_count() == 2  # the refused token dropped, a new one asked for


def test_a_scope_not_granted_becomes_a_consent_step(emu: Emulator) -> None:
    client = _alice(slack_app(emu), emu)
    answer = client.post("/sdk/post")
    assert answer.status_code == 302
    link = urlsplit(answer.headers["Location"])
    assert link.path == f"/auth/connect/{SLACK}"
    assert "chat:write" in parse_qs(link.query)["scope"][0].split()


def _job_source(emu: Emulator) -> JobTokenSource:
    add_slack(emu)
    credential = register_client_key(emu)
    emu.set_privileged_access(credential, {SLACK: ["channels:read", "chat:write"]})
    emu.connect_account(EMAIL, SLACK, ["channels:read"])
    app = make_app(emu, **keyed_config())
    return JobTokenSource(emu.user_id_for(EMAIL), SLACK, audit_context="digest", app=app)


def test_a_job_shares_one_exchange_across_threads_and_renews_a_refused_token(
    emu: Emulator,
) -> None:
    source = _job_source(emu)
    found: list[int] = []

    def call() -> None:
        client = VaultWebClient(source, ["channels:read"], base_url=emu.slack_api_base)
        found.append(len(client.conversations_list()["channels"]))

    threads = [threading.Thread(target=call) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert found == [len(CHANNELS)] * 6
    assert emu.exchange_count() == 1
    emu.revoke_provider_tokens(email=EMAIL, connection=SLACK)
    client = AsyncVaultWebClient(source, ["channels:read"], base_url=emu.slack_api_base)
    assert asyncio.run(client.auth_test())["user"] == "alice"
    assert emu.exchange_count() == 2


def test_a_job_s_missing_scope_is_a_typed_error_and_other_errors_pass_through(
    emu: Emulator,
) -> None:
    source = _job_source(emu)
    client = VaultWebClient(source, ["chat:write"], base_url=emu.slack_api_base)
    with pytest.raises(InsufficientScope, match="chat:write"):
        client.chat_postMessage(channel="C1", text="hello")
    plain = VaultWebClient(source, base_url=emu.slack_api_base)
    with pytest.raises(SlackApiError) as caught:
        plain.chat_postMessage(channel="C1", text="hello")  # Slack's own missing_scope
    assert caught.value.response["error"] == "missing_scope"
    assert emu.exchange_count() == 1  # not a refused token: nothing dropped, no retry


def test_a_fixed_token_is_refused(emu: Emulator) -> None:
    source = _job_source(emu)
    with pytest.raises(TypeError, match="from the vault"):
        VaultWebClient(source, token="xoxp-copied")
    client = VaultWebClient(source)
    with pytest.raises(AttributeError):
        client.token = "xoxp-copied"
