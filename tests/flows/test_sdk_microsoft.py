"""msgraph-sdk, with credentials from the vault, against the emulator's Microsoft Graph."""

from __future__ import annotations

import asyncio
import time

import pytest

from flask_token_vault import InsufficientScope, JobTokenSource
from flask_token_vault.providers.microsoft import (
    VaultTokenCredential,
    graph_client,
)
from flask_token_vault_emulator import Emulator
from tests.helpers.apps import alice_client
from tests.helpers.sdk import job_source
from tests.helpers.sdk_apps import GRAPH_GRANTS, graph_app

EMAIL = "alice@example.com"
JOB = "nightly mail sync"


def test_a_view_reads_the_profile_through_graph_s_client(emu: Emulator) -> None:
    client = alice_client(graph_app(emu), emu, GRAPH_GRANTS)
    answer = client.get("/sdk/me")
    assert answer.status_code == 200 and answer.get_json()["mail"] == EMAIL
    assert client.get("/sdk/me-plain").get_json() == {"mail": EMAIL}
    assert emu.exchange_count() == 1


def test_a_token_graph_refuses_is_dropped_and_the_call_retried(emu: Emulator) -> None:
    client = alice_client(graph_app(emu), emu, GRAPH_GRANTS)
    assert client.get("/sdk/me").status_code == 200
    emu.revoke_provider_tokens(email=EMAIL, connection="windowslive")
    assert client.get("/sdk/me").status_code == 200
    assert emu.exchange_count() == 2
    assert client.get("/sdk/me").status_code == 200
    assert emu.exchange_count() == 2


def _job_source(emu: Emulator) -> JobTokenSource:
    return job_source(emu, "windowslive", ["User.Read", "Calendars.Read"], ["User.Read"], JOB)


def test_a_job_uses_the_sync_credential(emu: Emulator) -> None:
    source = _job_source(emu)
    credential = VaultTokenCredential(source, ["User.Read"])
    first = credential.get_token("https://graph.microsoft.com/.default")
    assert first.expires_on > time.time() + 60
    assert credential.get_token("User.Read").token == first.token
    assert emu.exchange_count() == 1
    with pytest.raises(InsufficientScope, match=r"Calendars\.Read"):
        credential.get_token("https://graph.microsoft.com/Calendars.Read")


def test_a_job_s_graph_call_renews_a_refused_token(emu: Emulator) -> None:
    source = _job_source(emu)
    graph = graph_client(source, base_url=emu.graph_api_base + "/v1.0")

    async def mail() -> str | None:
        user = await graph.me.get()
        return user.mail if user is not None else None

    assert asyncio.run(mail()) == EMAIL
    emu.revoke_provider_tokens(email=EMAIL, connection="windowslive")
    assert asyncio.run(mail()) == EMAIL
    assert emu.exchange_count() == 2


def test_scopes_may_be_named_as_azure_names_them(emu: Emulator) -> None:
    """``https://graph.microsoft.com/User.Read`` is the vault's ``User.Read``, for both entries."""
    source = _job_source(emu)
    credential = VaultTokenCredential(source, ["https://graph.microsoft.com/User.Read"])
    assert credential.get_token().token
    graph = graph_client(
        source, ["https://graph.microsoft.com/User.Read"], base_url=emu.graph_api_base + "/v1.0"
    )

    async def mail() -> str | None:
        user = await graph.me.get()
        return user.mail if user is not None else None

    assert asyncio.run(mail()) == EMAIL
