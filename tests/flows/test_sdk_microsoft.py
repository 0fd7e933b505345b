"""msgraph-sdk, with credentials from the vault, against the emulator's Microsoft Graph."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from flask import Flask, jsonify
from msgraph.graph_service_client import GraphServiceClient

from flask_token_vault import InsufficientScope, JobTokenSource, provider_token_required
from flask_token_vault.providers.microsoft import (
    AsyncVaultTokenCredential,
    VaultTokenCredential,
    graph_client,
)
from flask_token_vault_emulator import Emulator
from flask_token_vault_pytest.testing import login_as
from tests.helpers.apps import make_app
from tests.helpers.keys import keyed_config, register_client_key

EMAIL = "alice@example.com"
JOB = "nightly mail sync"


def graph_app(emu: Emulator) -> Flask:
    """The test app with views that call Graph through Microsoft's SDK.

    Calendars.Read is declared (a connect link asks only for scopes the app declares) but the
    user has not granted it.
    """
    connections = {
        "google-oauth2": {"scopes": ["openid"], "api_base": emu.google_api_base},
        "windowslive": {"scopes": ["User.Read", "Calendars.Read"], "api_base": emu.graph_api_base},
    }
    app = make_app(emu, TOKEN_VAULT_CONNECTIONS=connections)
    base = emu.graph_api_base + "/v1.0"

    @app.get("/sdk/me")
    @provider_token_required("windowslive", scopes=["User.Read"])
    def sdk_me() -> Any:
        graph = graph_client("windowslive", ["User.Read"], base_url=base)
        user = asyncio.run(graph.me.get())
        assert user is not None
        return jsonify(mail=user.mail, name=user.display_name)

    @app.get("/sdk/me-plain")
    @provider_token_required("windowslive", scopes=["User.Read"])
    async def me_plain() -> Any:
        # Microsoft's own constructor, as in its quick start, with the vault's credential.
        graph = GraphServiceClient(
            credentials=AsyncVaultTokenCredential("windowslive"), scopes=["User.Read"]
        )
        graph.request_adapter.base_url = base
        user = await graph.me.get()
        assert user is not None
        return jsonify(mail=user.mail)

    @app.get("/sdk/events")
    @provider_token_required("windowslive", scopes=["User.Read"])
    def sdk_events() -> Any:
        graph = graph_client("windowslive", ["Calendars.Read"], base_url=base)
        asyncio.run(graph.me.events.get())
        return jsonify(ok=True)

    return app


def _alice(app: Flask, emu: Emulator) -> Any:
    client = app.test_client()
    login_as(client, emu, EMAIL, {"windowslive": ["User.Read"]})
    return client


def test_a_view_reads_the_profile_through_graph_s_client(emu: Emulator) -> None:
    client = _alice(graph_app(emu), emu)
    answer = client.get("/sdk/me")
    assert answer.status_code == 200 and answer.get_json()["mail"] == EMAIL
    assert client.get("/sdk/me-plain").get_json() == {"mail": EMAIL}
    assert emu.exchange_count() == 1


def test_an_expired_token_is_renewed_once_for_many_threads(emu: Emulator) -> None:
    emu.set_provider_token_ttl("windowslive", 4)
    app = graph_app(emu)
    client = _alice(app, emu)
    assert client.get("/sdk/me").status_code == 200
    time.sleep(3.2)
    cookie = client.get_cookie("session")
    assert cookie is not None
    statuses: list[int] = []

    def call() -> None:
        other = app.test_client()
        other.set_cookie("session", cookie.value)
        statuses.append(other.get("/sdk/me").status_code)

    threads = [threading.Thread(target=call) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 6
    assert emu.exchange_count() == 2


def test_a_scope_not_granted_becomes_a_consent_step(emu: Emulator) -> None:
    client = _alice(graph_app(emu), emu)
    answer = client.get("/sdk/events")
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/auth/connect/windowslive?")
    assert "Calendars.Read" in answer.headers["Location"]


def test_a_token_graph_refuses_is_dropped_and_the_call_retried(emu: Emulator) -> None:
    client = _alice(graph_app(emu), emu)
    assert client.get("/sdk/me").status_code == 200
    emu.revoke_provider_tokens(email=EMAIL, connection="windowslive")
    assert client.get("/sdk/me").status_code == 200
    assert emu.exchange_count() == 2
    assert client.get("/sdk/me").status_code == 200
    assert emu.exchange_count() == 2


def _job_source(emu: Emulator, scopes: tuple[str, ...] = ("User.Read",)) -> JobTokenSource:
    credential = register_client_key(emu)
    emu.set_privileged_access(credential, {"windowslive": ["User.Read", "Calendars.Read"]})
    emu.connect_account(EMAIL, "windowslive", list(scopes))
    app = make_app(emu, **keyed_config())
    return JobTokenSource(emu.user_id_for(EMAIL), "windowslive", audit_context=JOB, app=app)


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
