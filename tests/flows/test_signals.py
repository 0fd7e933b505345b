"""Signals for audit logs: connect, disconnect, back-channel logout and every end of a session."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from blinker import NamedSignal
from flask import Flask

from flask_token_vault import signals
from flask_token_vault_emulator import Emulator
from flask_token_vault_pytest.testing import login_as
from tests.helpers.apps import CAL_READ, app_clock
from tests.helpers.browser import csrf, follow_to_emulator, through_emulator, whoami
from tests.helpers.connected_accounts import signed_in

ALICE = "alice@example.com"
DAY = 86_400


@contextmanager
def recording(app: Flask, signal: NamedSignal) -> Iterator[list[dict[str, Any]]]:
    """Record the keyword arguments of every ``signal`` ``app`` sends meanwhile."""
    sent: list[dict[str, Any]] = []

    def receive(sender: Flask, **data: Any) -> None:
        assert sender is app
        sent.append(data)

    with signal.connected_to(receive, app):
        yield sent


def test_a_connected_account_is_signalled_with_its_id(emu: Emulator) -> None:
    app, client = signed_in(emu, "sig@example.com")
    with recording(app, signals.connected) as sent:
        through_emulator(client, follow_to_emulator(client, "/calendar"))
    (account,) = emu.state.tokensets_for(emu.user_id_for("sig@example.com"))
    assert sent == [
        {
            "user_id": emu.user_id_for("sig@example.com"),
            "connection": "google-oauth2",
            "account_id": account.account_id,
        }
    ]


def test_a_connect_by_sign_in_is_signalled_without_an_id(app: Flask, emu: Emulator) -> None:
    client = app.test_client()
    login_as(client, emu, ALICE)
    emu.set_auto_login(ALICE)
    with recording(app, signals.connected) as sent:
        through_emulator(client, follow_to_emulator(client, "/auth/connect/google-oauth2"))
    assert sent == [
        {"user_id": emu.user_id_for(ALICE), "connection": "google-oauth2", "account_id": None}
    ]


def test_a_disconnect_is_signalled_with_the_ids_removed(emu: Emulator) -> None:
    app, client = signed_in(emu, "dis@example.com", {"google-oauth2": [CAL_READ]})
    user_id = emu.user_id_for("dis@example.com")
    (account,) = emu.state.tokensets_for(user_id)
    with recording(app, signals.disconnected) as sent:
        answer = client.post(
            "/auth/disconnect/google-oauth2",
            data={"csrf_token": csrf(client)},
            headers={"Accept": "application/json"},
        )
    assert answer.status_code == 200
    assert sent == [
        {"user_id": user_id, "connection": "google-oauth2", "account_ids": (account.account_id,)}
    ]


def test_a_back_channel_logout_is_signalled_then_the_session_end(app: Flask, emu: Emulator) -> None:
    client = app.test_client()
    login_as(client, emu, ALICE)
    (sid,) = emu.sessions_for(ALICE)[-1:]
    with recording(app, signals.backchannel_logout) as logouts:
        answer = app.test_client().post(
            "/auth/backchannel-logout", data={"logout_token": emu.logout_token(ALICE, sid=sid)}
        )
    assert answer.status_code == 200
    assert logouts == [{"sub": emu.user_id_for(ALICE), "sid": sid}]
    with recording(app, signals.session_ended) as ended:
        assert whoami(client) is None
    assert ended == [{"user_id": emu.user_id_for(ALICE), "reason": "backchannel"}]


def test_a_sign_out_ends_the_session_by_logout(app: Flask, emu: Emulator) -> None:
    client = app.test_client()
    login_as(client, emu, ALICE)
    with recording(app, signals.session_ended) as ended:
        client.post("/auth/logout", data={"csrf_token": csrf(client)})
    assert ended == [{"user_id": emu.user_id_for(ALICE), "reason": "logout"}]


def test_a_session_past_its_lifetime_or_idle_ends_with_that_reason(
    app: Flask, emu: Emulator
) -> None:
    clock = app_clock(app)
    idle, old = app.test_client(), app.test_client()
    login_as(idle, emu, ALICE)
    login_as(old, emu, "bob@example.com")
    with recording(app, signals.session_ended) as ended:
        for hours in range(6, 78, 6):  # bob comes back every 6 hours: never idle
            clock.advance(6 * 3600)
            whoami(old)
            if hours == 30:  # alice has been away for more than a day
                whoami(idle)
        clock.advance(1)
        whoami(old)
    assert ended == [
        {"user_id": emu.user_id_for(ALICE), "reason": "idle"},
        {"user_id": emu.user_id_for("bob@example.com"), "reason": "lifetime"},
    ]
