"""The warm path: what a request served from the cache reads, keeps and checks."""

from __future__ import annotations

import pytest
from flask import Flask

from flask_token_vault import ConfigurationError, TokenVault
from flask_token_vault_emulator import Emulator
from flask_token_vault_pytest.testing import login_as
from tests.helpers.apps import CAL_READ, make_app
from tests.helpers.browser import session_cookie


def test_memory_per_user_is_bounded_by_the_max_users_setting(emu: Emulator) -> None:
    app = make_app(emu, TOKEN_VAULT_LOCAL_CACHE_MAX_USERS=3)
    state = TokenVault.state(app)
    clients = []
    for n in range(5):
        client = app.test_client()
        login_as(client, emu, f"user{n}@example.com", {"google-oauth2": [CAL_READ]})
        assert client.get("/calendar").status_code == 200
        clients.append(client)
    assert len(state.cache._near) <= 3 and len(state.sessions_seen) <= 3
    # The users it let go are read again from the store and the cookie, not exchanged again.
    for client in clients:
        assert client.get("/calendar").status_code == 200
    assert emu.exchange_count() == 5


def test_a_kept_session_record_that_no_longer_matches_is_checked_again(
    app: Flask, emu: Emulator
) -> None:
    client = app.test_client()
    login_as(client, emu, "alice@example.com", {"google-oauth2": [CAL_READ]})
    assert client.get("/calendar").status_code == 200  # the record is now kept
    with client.session_transaction() as session:
        record = dict(session["_token_vault"])
        record["aud"] = "another-client"
        session["_token_vault"] = record
    answer = client.get("/calendar", headers={"Accept": "application/json"})
    assert answer.status_code == 401 and answer.get_json()["error"] == "login_required"


def test_the_session_is_not_sent_again_on_a_warm_request(app: Flask, emu: Emulator) -> None:
    """A warm request changes nothing in the session, so no Set-Cookie goes out."""
    client = app.test_client()
    login_as(client, emu, "alice@example.com", {"google-oauth2": [CAL_READ]})
    assert client.get("/calendar").status_code == 200
    before = session_cookie(client)
    answer = client.get("/calendar")
    assert answer.status_code == 200 and "Set-Cookie" not in answer.headers
    assert session_cookie(client) == before


@pytest.mark.parametrize("value", [0, -1, 2.5, True, "10"])
def test_max_users_must_be_a_whole_number_of_at_least_one(emu: Emulator, value: object) -> None:
    with pytest.raises(ConfigurationError, match="TOKEN_VAULT_LOCAL_CACHE_MAX_USERS"):
        make_app(emu, TOKEN_VAULT_LOCAL_CACHE_MAX_USERS=value)
