"""Human approval with CIBA: approved, denied and expired each end as documented, in time."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
from flask import Flask, jsonify

from flask_token_vault import (
    Approval,
    LoginRequired,
    TokenVault,
    acting_for,
    on_behalf,
    request_approval,
    start_approval,
    wait_for_approval,
)
from flask_token_vault_emulator import Emulator
from flask_token_vault_pytest.testing import FakeClock, login_as
from tests.helpers import TIMEOUT
from tests.helpers.apps import SharedClock, make_app

ALICE = "alice@example.com"
DETAILS = [{"type": "calendar_event", "summary": "Lunch", "start": "2030-05-02T12:00:00Z"}]


@pytest.fixture
def clock(emulator_clock: FakeClock) -> SharedClock:
    return SharedClock(emulator_clock)


def app_on_fake_clock(emu: Emulator, clock: SharedClock) -> tuple[Flask, SharedClock, str]:
    """The test app on a clock whose waits pass at once, and Alice's user id."""
    app = make_app(emu)
    TokenVault.state(app).set_clock(clock)
    emu.set_ciba_interval(2)
    user_id = login_as(app.test_client(), emu, ALICE)
    return app, clock, user_id


def test_the_request_carries_what_auth0_documents(emu: Emulator, clock: SharedClock) -> None:
    app, _, user_id = app_on_fake_clock(emu, clock)
    with app.app_context():
        pending = start_approval("Create Lunch?", authorization_details=DETAILS, user_id=user_id)
    assert pending.interval == 2 and pending.user_id == user_id
    assert pending.auth_req_id not in repr(pending)
    [seen] = emu.ciba_requests()
    assert seen["user_id"] == user_id and seen["binding_message"] == "Create Lunch?"
    assert seen["authorization_details"] == DETAILS


def test_approved_ends_approved_with_the_details(emu: Emulator, clock: SharedClock) -> None:
    app, _, user_id = app_on_fake_clock(emu, clock)
    with app.app_context():
        pending = start_approval("Create Lunch?", authorization_details=DETAILS, user_id=user_id)
        emu.approve_ciba()
        approval = wait_for_approval(pending, deadline=60)
    assert approval == Approval("approved", tuple(DETAILS), approval.access_token)
    assert approval.approved and approval.access_token
    assert clock.sleeps == [2]  # one interval, then the answer


@pytest.mark.parametrize(
    ("answer", "status"), [(Emulator.deny_ciba, "denied"), (Emulator.expire_ciba, "expired")]
)
def test_denied_or_expired_at_auth0_ends_so(
    emu: Emulator, clock: SharedClock, answer: Callable[[Emulator], None], status: str
) -> None:
    app, _, user_id = app_on_fake_clock(emu, clock)
    with app.app_context():
        pending = start_approval("Create Lunch?", user_id=user_id)
        answer(emu)
        approval = wait_for_approval(pending, deadline=60)
    assert approval.status == status and not approval.approved
    assert emu.ciba_requests()[0]["polls"] == 1


def test_a_deadline_ends_the_wait_as_expired_on_time(emu: Emulator, clock: SharedClock) -> None:
    app, _, user_id = app_on_fake_clock(emu, clock)
    with app.app_context():
        pending = start_approval("Create Lunch?", user_id=user_id)
        approval = wait_for_approval(pending, deadline=7)
    assert approval.status == "expired"
    assert sum(clock.sleeps) == pytest.approx(7)  # bounded by the deadline, not Auth0's expiry
    assert clock.sleeps[:3] == [2, 2, 2]  # the interval Auth0 asked for
    assert emu.ciba_requests()[0]["polls"] == 3


def test_slow_down_adds_five_seconds_to_the_interval(emu: Emulator, clock: SharedClock) -> None:
    app, _, user_id = app_on_fake_clock(emu, clock)
    emu.add_fault("token:ciba", status=400, error="slow_down")
    with app.app_context():
        pending = start_approval("Create Lunch?", user_id=user_id)
        approval = wait_for_approval(pending, deadline=12)
    assert approval.status == "expired"
    assert clock.sleeps[:2] == [2, 7]


def test_a_tool_asks_the_user_it_acts_for_and_waits_in_real_time(emu: Emulator) -> None:
    app = make_app(emu)
    emu.set_ciba_interval(1)
    taken: list[Any] = []

    @app.get("/take")
    def take() -> Any:
        taken.append(on_behalf())
        return jsonify(ok=True)

    client = app.test_client()
    user_id = login_as(client, emu, ALICE)
    client.get("/take")

    def phone() -> None:  # the user approves on the emulator's page a moment later
        for _ in range(50):
            waiting = [r for r in emu.ciba_requests() if r["status"] == "pending"]
            if waiting:
                page = requests.get(emu.url + "/ciba", timeout=TIMEOUT)
                assert "Create Lunch?" in page.text
                requests.post(
                    emu.url + f"/ciba/{waiting[0]['auth_req_id']}",
                    data={"action": "approve"},
                    timeout=TIMEOUT,
                )
                return
            time.sleep(0.05)

    approver = threading.Thread(target=phone)
    approver.start()
    started = time.monotonic()
    with acting_for(taken.pop()):  # no request context: the handle names the user
        approval = request_approval("Create Lunch?", authorization_details=DETAILS, deadline=10)
    approver.join(TIMEOUT)
    assert approval.approved
    assert time.monotonic() - started < 5
    assert emu.ciba_requests()[0]["user_id"] == user_id


def test_no_user_no_request(emu: Emulator) -> None:
    app = make_app(emu)
    with app.app_context(), pytest.raises(LoginRequired):
        start_approval("Create Lunch?")


def test_the_emulator_refuses_a_login_hint_of_another_tenant(emu: Emulator) -> None:
    emu.issue_refresh_token(ALICE)
    hint = {"format": "iss_sub", "iss": "https://elsewhere.example/", "sub": emu.user_id_for(ALICE)}
    answer = requests.post(
        emu.url + "/bc-authorize",
        data={
            "client_id": emu.client_id,
            "client_secret": emu.client_secret,
            "login_hint": json.dumps(hint),
            "binding_message": "hello",
            "scope": "openid",
        },
        timeout=TIMEOUT,
    )
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"


@pytest.mark.parametrize("interval", [10**400, -1, 0, 86_401])
def test_an_interval_out_of_bounds_is_auth0_s_default(
    emu: Emulator, clock: SharedClock, interval: int
) -> None:
    """A hostile or broken answer cannot make the app wait forever, spin, or fail with a 500."""
    app, _, user_id = app_on_fake_clock(emu, clock)
    emu.set_ciba_interval(interval)
    with app.app_context():
        pending = start_approval("Create Lunch?", user_id=user_id)
    assert pending.interval == 5
