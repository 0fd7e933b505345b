"""The "on behalf of" handle: provider tokens in threads and jobs, away from the request."""

from __future__ import annotations

import pickle
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from flask import Flask, has_app_context, has_request_context
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flask_token_vault import (
    InvalidRequest,
    LoginRequired,
    OnBehalf,
    ProviderToken,
    TokenVault,
    current_user,
    on_behalf,
)
from flask_token_vault_emulator import Emulator
from flask_token_vault_pytest.testing import login_as
from tests.helpers import TIMEOUT
from tests.helpers.apps import CAL_READ, CAL_WRITE, make_api_app, make_app
from tests.helpers.browser import csrf
from tests.helpers.keys import keyed_config, register_client_key
from tests.helpers.oauth import bearer

GOOGLE = "google-oauth2"
ALICE, BOB = "alice@example.com", "bob@example.com"


def with_handle_route(app: Flask) -> list[OnBehalf]:
    """Add ``/take``, which keeps the request's handle in the returned list."""
    taken: list[OnBehalf] = []

    @app.get("/take")
    def take() -> str:
        taken.append(on_behalf())
        return "taken"

    @app.get("/rt")
    def refresh_token() -> str:
        return current_user.refresh_token if current_user else ""

    return taken


def take(client: FlaskClient, taken: list[OnBehalf], **kwargs: Any) -> OnBehalf:
    assert client.get("/take", **kwargs).status_code == 200
    return taken.pop()


def alice_signed_in(emu: Emulator) -> tuple[Flask, FlaskClient, list[OnBehalf], str]:
    """Build the app with :func:`with_handle_route`; sign Alice in, her calendar connected.

    Returns the app, Alice's client, the list of handles taken and her user id.
    """
    app = make_app(emu)
    taken = with_handle_route(app)
    client = app.test_client()
    user_id = login_as(client, emu, ALICE, {GOOGLE: [CAL_READ]})
    return app, client, taken, user_id


def account_of(emu: Emulator, token: ProviderToken) -> str:
    """Return the Google account the emulator says ``token`` belongs to."""
    answer = requests.get(
        emu.google_api_base + "/oauth2/v3/userinfo",
        headers={"Authorization": f"Bearer {token.access_token}"},
        timeout=TIMEOUT,
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["email"])


def test_twenty_tool_calls_at_once_make_one_exchange(emu: Emulator) -> None:
    _, client, taken, user_id = alice_signed_in(emu)
    handle = take(client, taken)
    start = threading.Barrier(20)

    def tool_call(_: int) -> tuple[bool, str]:
        start.wait(TIMEOUT)
        token = handle.token(GOOGLE, [CAL_READ])
        return has_request_context() or has_app_context(), token.access_token

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(tool_call, range(20)))
    assert not any(context for context, _ in results)
    assert len({token for _, token in results}) == 1
    assert emu.exchange_count(user_id) == 1


def test_a_view_and_a_handle_share_the_cache(emu: Emulator) -> None:
    _, client, taken, user_id = alice_signed_in(emu)
    assert client.get("/calendar").status_code == 200
    handle = take(client, taken)
    assert account_of(emu, handle.token(GOOGLE, [CAL_READ])) == ALICE
    assert emu.exchange_count(user_id) == 1


def test_a_pickled_handle_works_in_a_job_and_keeps_no_secret(emu: Emulator) -> None:
    app, client, taken, _ = alice_signed_in(emu)
    handle = take(client, taken)
    refresh_token = client.get("/rt").get_data(as_text=True)
    assert refresh_token
    queued = pickle.dumps(handle)  # what a job queue stores
    assert refresh_token not in repr(handle)
    assert refresh_token.encode() not in queued
    restored = pickle.loads(queued)  # noqa: S301 - our own bytes
    assert not has_app_context()
    with pytest.raises(RuntimeError, match="app_context"):
        restored.token(GOOGLE, [CAL_READ])
    with app.app_context():  # as a task runner sets it
        token = restored.token(GOOGLE, [CAL_READ])
    assert account_of(emu, token) == ALICE


def test_a_handle_stops_working_once_the_user_signs_out(emu: Emulator) -> None:
    _, client, taken, _ = alice_signed_in(emu)
    handle = take(client, taken)
    assert handle.token(GOOGLE, [CAL_READ]).access_token
    answer = client.post("/auth/logout", data={"csrf_token": csrf(client)})
    assert answer.status_code in (302, 303)
    with pytest.raises(LoginRequired):
        handle.token(GOOGLE, [CAL_READ])


def test_a_handle_of_an_api_call_exchanges_the_callers_access_token(emu: Emulator) -> None:
    app = make_api_app(emu)
    taken = with_handle_route(app)
    emu.connect_account(ALICE, GOOGLE, [CAL_READ])
    access_token = emu.issue_access_token(ALICE, scope="read:calendar")
    handle = take(app.test_client(), taken, headers=bearer(access_token))
    assert handle.via == "api" and handle.sub == emu.user_id_for(ALICE)
    assert access_token.encode() not in pickle.dumps(handle)
    result: list[ProviderToken] = []
    worker = threading.Thread(target=lambda: result.append(handle.token(GOOGLE, [CAL_READ])))
    worker.start()
    worker.join(TIMEOUT)
    assert account_of(emu, result[0]) == ALICE


def test_a_worker_handle_gets_a_token_in_a_job(emu: Emulator) -> None:
    credential = register_client_key(emu)
    emu.set_privileged_access(credential, {GOOGLE: [CAL_READ, "openid"]})
    emu.connect_account(ALICE, GOOGLE, [CAL_READ, CAL_WRITE])
    user_id = emu.user_id_for(ALICE)
    app = make_app(emu, **keyed_config())
    vault = TokenVault()  # what a task module imports; the app is given to each call
    with pytest.raises(InvalidRequest, match="audit_context"):
        vault.on_behalf(user_id=user_id, app=app)
    handle = vault.on_behalf(user_id=user_id, audit_context="assistant job", app=app)
    assert handle.via == "worker"
    with ThreadPoolExecutor(4) as pool:
        tokens = list(pool.map(lambda _: handle.token(GOOGLE, [CAL_READ, "openid"]), range(8)))
    assert {account_of(emu, t) for t in tokens} == {ALICE}
    assert emu.exchange_count(user_id) == 1


def test_a_handle_edited_to_name_another_user_is_refused(emu: Emulator) -> None:
    app = make_app(emu)
    taken = with_handle_route(app)
    alice, bob = app.test_client(), app.test_client()
    login_as(alice, emu, ALICE, {GOOGLE: [CAL_READ]})
    bob_id = login_as(bob, emu, BOB, {GOOGLE: [CAL_READ]})
    handle = take(alice, taken)
    handle.sub = bob_id  # Alice's sealed refresh token, Bob's id
    with pytest.raises(LoginRequired):
        handle.token(GOOGLE, [CAL_READ])
    assert emu.exchange_count(bob_id) == 0


@pytest.mark.parametrize(
    "edit",
    [
        {"sub": "BOB"},
        {"sub": "BOB", "_sealed": "x", "_sid": None, "_sign_in": ""},
        {"sub": "BOB", "_kind": "worker"},
    ],
    ids=["sub", "sub-and-secrets", "sub-as-a-worker"],
)
def test_an_edited_handle_cannot_read_another_users_cached_token(
    emu: Emulator, edit: dict[str, Any]
) -> None:
    """Bob's token is in the cache: an edited copy of Alice's handle must not reach it."""
    app = make_app(emu)
    taken = with_handle_route(app)
    alice, bob = app.test_client(), app.test_client()
    login_as(alice, emu, ALICE, {GOOGLE: [CAL_READ]})
    bob_id = login_as(bob, emu, BOB, {GOOGLE: [CAL_READ]})
    assert bob.get("/calendar").status_code == 200  # Bob's token is cached now
    state = take(alice, taken).__getstate__()  # what a job queue would keep of it
    state.update({k: bob_id if v == "BOB" else v for k, v in edit.items()})
    forged = OnBehalf.__new__(OnBehalf)
    forged.__setstate__(state)
    with app.app_context(), pytest.raises(LoginRequired, match="altered"):
        forged.token(GOOGLE, [CAL_READ])


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    calls=st.lists(
        st.tuples(
            st.sampled_from([0, 1, 2]),
            st.sampled_from([(CAL_READ,), (), (CAL_READ, "openid")]),
            st.booleans(),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_a_handle_never_yields_another_users_token(
    emu: Emulator, calls: list[tuple[int, tuple[str, ...], bool]]
) -> None:
    """Property: whatever the order, scopes and refreshes, each handle's token is its user's."""
    emails = ["alice@example.com", "bob@example.com", "carol@example.com"]
    app = make_app(emu)
    taken = with_handle_route(app)
    handles = []
    for email in emails:
        client = app.test_client()
        login_as(client, emu, email, {GOOGLE: [CAL_READ, "openid"]})
        handles.append(take(client, taken))
    for who, scopes, refresh in calls:
        token = handles[who].token(GOOGLE, scopes, force_refresh=refresh)
        assert account_of(emu, token) == emails[who]
