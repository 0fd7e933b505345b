"""Agent tools: the user's token in any thread, and the interrupt that pauses and resumes a call."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask, jsonify
from flask.testing import FlaskClient

from flask_token_vault import (
    OnBehalf,
    TokenVaultInterrupt,
    acting_for,
    on_behalf,
    token_vault_tool,
    tool_token,
)
from flask_token_vault_emulator import Emulator
from flask_token_vault_pytest.testing import login_as
from tests.helpers import TIMEOUT
from tests.helpers.apps import CAL_READ, CAL_WRITE, make_app
from tests.helpers.browser import follow_to_emulator, sign_in_via_page
from tests.helpers.tools import count_calendars

GOOGLE = "google-oauth2"
ALICE = "alice@example.com"
CHAT = "/assistant"


@token_vault_tool(GOOGLE, scopes=[CAL_READ, CAL_WRITE])
def create_event(base: str, summary: str) -> str:
    """Create an event in the user's primary calendar."""
    answer = requests.post(
        base + "/calendar/v3/calendars/primary/events",
        headers={"Authorization": f"Bearer {tool_token().access_token}"},
        json={
            "summary": summary,
            "start": {"dateTime": "2030-01-01T10:00:00Z"},
            "end": {"dateTime": "2030-01-01T11:00:00Z"},
        },
        timeout=TIMEOUT,
    )
    answer.raise_for_status()
    return str(answer.json()["summary"])


@token_vault_tool(GOOGLE, scopes=[CAL_READ])
async def token_scopes() -> tuple[str, ...]:
    """An async tool."""
    await asyncio.sleep(0)
    return tool_token().scopes or ()


def app_with_chat(emu: Emulator) -> tuple[Flask, list[OnBehalf]]:
    """The test app with a chat endpoint that runs a tool and answers an interrupt as JSON."""
    app = make_app(emu)
    taken: list[OnBehalf] = []

    @app.post(CHAT)
    def chat() -> Any:
        handle = on_behalf(return_to=CHAT)
        taken.append(handle)
        try:
            with acting_for(handle):
                return jsonify(summary=create_event(emu.google_api_base, "Lunch"))
        except TokenVaultInterrupt as interrupt:
            return jsonify(interrupt=interrupt.to_dict()), interrupt.code

    return app, taken


def signed_in(emu: Emulator, scopes: list[str] | None) -> tuple[Flask, FlaskClient, list[OnBehalf]]:
    app, taken = app_with_chat(emu)
    client = app.test_client()
    login_as(client, emu, ALICE, None if scopes is None else {GOOGLE: scopes})
    return app, client, taken


def test_tools_in_threads_get_the_token_with_one_exchange(emu: Emulator) -> None:
    _, client, taken = signed_in(emu, [CAL_READ, CAL_WRITE])
    client.post(CHAT)
    handle = taken.pop()
    before = emu.exchange_count(handle.sub)
    start = threading.Barrier(20)

    def in_thread(_: int) -> int:
        start.wait(TIMEOUT)
        with acting_for(handle):  # a thread does not inherit the context: enter it there
            return count_calendars(emu.google_api_base)

    with ThreadPoolExecutor(20) as pool:
        counts = list(pool.map(in_thread, range(20)))
    assert len(counts) == 20 and all(count >= 1 for count in counts)
    assert emu.exchange_count(handle.sub) == before + 1


def test_an_async_tool_gets_the_token(emu: Emulator) -> None:
    _, client, taken = signed_in(emu, [CAL_READ])
    client.post(CHAT)
    with acting_for(taken.pop()):
        assert CAL_READ in asyncio.run(token_scopes())


def test_a_tool_outside_a_request_and_without_a_handle_says_how(emu: Emulator) -> None:
    with pytest.raises(RuntimeError, match="acting_for"):
        count_calendars(emu.google_api_base)
    with pytest.raises(RuntimeError, match="token_vault_tool"):
        tool_token()


def test_a_missing_scope_pauses_with_the_union_and_the_call_resumes(emu: Emulator) -> None:
    _, client, taken = signed_in(emu, [CAL_READ])
    answer = client.post(CHAT)
    assert answer.status_code == 403
    body = answer.get_json()["interrupt"]
    assert body["error"] == "insufficient_scope" and body["tool"] == "create_event"
    assert {CAL_READ, CAL_WRITE} <= set(body["scopes"])
    assert set(body["required_scopes"]) == {CAL_READ, CAL_WRITE}
    link = urlsplit(body["connect_url"])
    query = parse_qs(link.query)
    assert set(query["scope"][0].split()) == set(body["scopes"])
    assert query["next"] == [CHAT]
    # The page sends the user to the link; the emulator's consent brings them back to the chat.
    back = sign_in_via_page(client, follow_to_emulator(client, body["connect_url"]))
    assert back.headers["Location"] == CHAT
    with acting_for(taken.pop()):  # a tool in a thread or job sees the new grant too
        assert create_event(emu.google_api_base, "Tea") == "Tea"
    # The same call, run again with the arguments the interrupt kept, goes through.
    again = client.post(CHAT)
    assert again.status_code == 200 and again.get_json() == {"summary": "Lunch"}


def test_an_account_not_connected_pauses_with_a_connect_link(emu: Emulator) -> None:
    _, client, taken = signed_in(emu, None)
    answer = client.post(CHAT)
    body = answer.get_json()["interrupt"]
    assert answer.status_code == 401
    assert body["error"] in (
        "account_not_connected",
        "federated_connection_refresh_token_not_found",
    )
    assert urlsplit(body["connect_url"]).path == f"/auth/connect/{GOOGLE}"
    handle = taken.pop()
    with acting_for(handle), pytest.raises(TokenVaultInterrupt) as paused:
        create_event(emu.google_api_base, summary="Dinner")
    assert paused.value.arguments == {"base": emu.google_api_base, "summary": "Dinner"}
