"""slack_sdk's WebClient and AsyncWebClient, with tokens from the vault, against the fake Slack."""

from __future__ import annotations

import asyncio

import pytest
from slack_sdk.errors import SlackApiError

from flask_token_vault import InsufficientScope, JobTokenSource
from flask_token_vault.providers.slack_async import AsyncVaultWebClient
from flask_token_vault.providers.slack_client import VaultWebClient
from flask_token_vault_emulator import Emulator
from tests.helpers.apps import alice_client
from tests.helpers.sdk import at_once, job_source
from tests.helpers.sdk_apps import SLACK, SLACK_GRANTS, add_slack, slack_app

EMAIL = "alice@example.com"
CHANNELS = ["general", "random", "engineering", "design", "announcements"]


def test_a_view_lists_channels_through_slack_s_clients(emu: Emulator) -> None:
    client = alice_client(slack_app(emu), emu, SLACK_GRANTS)
    answer = client.get("/sdk/channels")
    assert answer.status_code == 200
    assert answer.get_json() == {"names": CHANNELS, "user": "alice"}
    assert client.get("/sdk/async-channels").get_json() == {"names": CHANNELS}
    assert emu.exchange_count() == 1  # four Slack calls, two requests: one token


def test_a_token_slack_refuses_is_dropped_and_the_call_retried(emu: Emulator) -> None:
    client = alice_client(slack_app(emu), emu, SLACK_GRANTS)
    assert client.get("/sdk/channels").status_code == 200
    emu.revoke_provider_tokens(email=EMAIL, connection=SLACK)  # Slack answers token_revoked
    assert client.get("/sdk/channels").status_code == 200
    assert client.get("/sdk/async-channels").status_code == 200
    assert emu.exchange_count() == 2  # one new token, cached for the calls after it


@pytest.mark.parametrize("said", ["invalid_auth", "token_expired", "token_revoked"])
def test_each_way_slack_refuses_a_token_drops_it_and_retries(emu: Emulator, said: str) -> None:
    client = alice_client(slack_app(emu), emu, SLACK_GRANTS)
    assert client.get("/sdk/channels").status_code == 200
    emu.add_fault("slack", status=200, body={"ok": False, "error": said})
    assert client.get("/sdk/channels").status_code == 200
    assert emu.exchange_count() == 2  # the refused token dropped, a new one asked for


def _job_source(emu: Emulator) -> JobTokenSource:
    add_slack(emu)
    return job_source(emu, SLACK, ["channels:read", "chat:write"], ["channels:read"], "digest")


def test_a_job_shares_one_exchange_across_threads_and_renews_a_refused_token(
    emu: Emulator,
) -> None:
    source = _job_source(emu)
    found: list[int] = []

    def call() -> None:
        client = VaultWebClient(source, ["channels:read"], base_url=emu.slack_api_base)
        found.append(len(client.conversations_list()["channels"]))

    at_once(call)
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
