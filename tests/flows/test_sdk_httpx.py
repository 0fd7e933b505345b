"""httpx, with the vault's VaultAuth, against the emulator's fake Google API."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from flask import Flask, jsonify

from flask_token_vault import (
    InsufficientScope,
    RequestTokenSource,
    TokenSource,
    provider_token_required,
)
from flask_token_vault.providers.httpx_auth import VaultAuth
from flask_token_vault_emulator import Emulator
from flask_token_vault_pytest.testing import login_as
from tests.helpers import TIMEOUT
from tests.helpers.apps import CAL_READ, CAL_WRITE, alice_client, make_app
from tests.helpers.sdk import at_once, job_source

EMAIL = "alice@example.com"
CALENDARS = "/calendar/v3/users/me/calendarList"


def httpx_app(emu: Emulator) -> Flask:
    app = make_app(emu)

    @app.get("/sdk/calendars")
    @provider_token_required("google-oauth2", scopes=[CAL_READ])
    def calendars() -> Any:
        auth = VaultAuth("google-oauth2", [CAL_READ])
        with httpx.Client(auth=auth, base_url=emu.google_api_base, timeout=TIMEOUT) as google:
            answer = google.get(CALENDARS)
        return jsonify(status=answer.status_code, ids=[i["id"] for i in answer.json()["items"]])

    @app.get("/sdk/async-calendars")
    @provider_token_required("google-oauth2", scopes=[CAL_READ])
    async def async_calendars() -> Any:
        auth = VaultAuth("google-oauth2", [CAL_READ])
        async with httpx.AsyncClient(auth=auth, base_url=emu.google_api_base) as google:
            answer = await google.get(CALENDARS)
        return jsonify(status=answer.status_code)

    @app.post("/sdk/event")
    @provider_token_required("google-oauth2", scopes=[CAL_READ])
    def event() -> Any:
        auth = VaultAuth("google-oauth2", [CAL_READ, CAL_WRITE])
        with httpx.Client(auth=auth, base_url=emu.google_api_base, timeout=TIMEOUT) as google:
            google.post("/calendar/v3/calendars/primary/events", json={})
        return jsonify(ok=True)

    return app


def test_sync_and_async_clients_carry_the_token(emu: Emulator) -> None:
    client = alice_client(httpx_app(emu), emu)
    assert client.get("/sdk/calendars").get_json() == {"status": 200, "ids": [EMAIL]}
    assert client.get("/sdk/async-calendars").get_json() == {"status": 200}
    assert emu.exchange_count() == 1


def test_a_request_source_serves_only_the_user_it_was_made_for(emu: Emulator) -> None:
    app = make_app(emu)
    kept: list[RequestTokenSource] = []

    @app.get("/keep")
    @provider_token_required("google-oauth2", scopes=[CAL_READ])
    def keep() -> Any:
        if not kept:
            kept.append(RequestTokenSource("google-oauth2"))
        assert isinstance(kept[0], TokenSource)
        return jsonify(length=len(kept[0].token([CAL_READ]).access_token))

    assert alice_client(app, emu).get("/keep").status_code == 200
    bob = app.test_client()
    login_as(bob, emu, "bob@example.com", {"google-oauth2": [CAL_READ]})
    with pytest.raises(RuntimeError, match="another request's user"):
        bob.get("/keep")


def test_a_refused_token_is_dropped_and_the_post_sent_again(emu: Emulator) -> None:
    app = make_app(emu)
    sent: list[str] = []

    @app.post("/sdk/create")
    @provider_token_required("google-oauth2", scopes=[CAL_READ, CAL_WRITE])
    def create() -> Any:
        def note(request: httpx.Request) -> None:
            sent.append(request.headers["Authorization"])

        auth = VaultAuth("google-oauth2", [CAL_WRITE])
        with httpx.Client(
            auth=auth, base_url=emu.google_api_base, event_hooks={"request": [note]}
        ) as google:
            body = {
                "summary": "Plan",
                "start": {"date": "2030-01-01"},
                "end": {"date": "2030-01-02"},
            }
            return jsonify(
                status=google.post("/calendar/v3/calendars/primary/events", json=body).status_code
            )

    client = alice_client(app, emu)
    emu.connect_account(EMAIL, "google-oauth2", [CAL_READ, CAL_WRITE])
    assert client.post("/sdk/create").get_json() == {"status": 200}
    emu.revoke_provider_tokens(email=EMAIL, connection="google-oauth2")
    assert client.post("/sdk/create").get_json() == {"status": 200}
    assert emu.exchange_count() == 2
    first, refused, renewed = sent  # the POST after the 401 went again, with a new token
    assert first == refused != renewed


def test_a_scope_not_granted_becomes_a_consent_step(emu: Emulator) -> None:
    client = alice_client(httpx_app(emu), emu)
    answer = client.post("/sdk/event", headers={"Accept": "application/json"})
    assert answer.status_code == 401
    body = answer.get_json()
    assert body["error"] == "insufficient_scope" and CAL_WRITE in body["required_scopes"]


def test_a_job_renews_an_expired_token_once_for_many_threads(emu: Emulator) -> None:
    emu.set_provider_token_ttl("google-oauth2", 4)
    grantable = [CAL_READ, CAL_WRITE, "openid"]
    source = job_source(emu, "google-oauth2", grantable, [CAL_READ], "sync")
    google = httpx.Client(auth=VaultAuth(source, [CAL_READ]), base_url=emu.google_api_base)
    assert google.get(CALENDARS).status_code == 200
    time.sleep(3.2)
    statuses: list[int] = []
    at_once(lambda: statuses.append(google.get(CALENDARS).status_code))
    assert statuses == [200] * 6
    assert emu.exchange_count(source.user_id) == 2
    with pytest.raises(InsufficientScope):
        asyncio.run(_async_get(VaultAuth(source, [CAL_WRITE]), emu.google_api_base + CALENDARS))
    google.close()


async def _async_get(auth: httpx.Auth, url: str) -> int:
    async with httpx.AsyncClient(auth=auth) as client:
        return (await client.get(url)).status_code
