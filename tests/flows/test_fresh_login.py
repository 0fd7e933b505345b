"""Fresh sign-in for sensitive views: ``auth_time``, ``max_age`` and ``fresh_login_required``."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from flask_token_vault import ConfigurationError, current_user, fresh_login_required
from flask_token_vault._session import SESSION_KEY
from flask_token_vault_emulator import Emulator
from flask_token_vault_pytest.testing import FakeClock, login_as
from tests.helpers import TIMEOUT
from tests.helpers.apps import app_clock, make_app
from tests.helpers.browser import follow_to_emulator, through_emulator
from tests.helpers.oauth import authorize_request, code_grant, pkce_pair, redirect_query

ALICE = "alice@example.com"


def fresh_app(emu: Emulator) -> Flask:
    app = make_app(emu)

    @app.get("/email")
    @fresh_login_required(max_age=300)
    def change_email() -> Any:
        user = current_user
        assert user is not None
        return {"sub": user.sub, "auth_time": user.auth_time}

    return app


def sign_in(client: FlaskClient, emu: Emulator, path: str = "/auth/login?next=/") -> Any:
    emu.set_auto_login(ALICE)
    return through_emulator(client, follow_to_emulator(client, path))


def test_the_id_tokens_auth_time_is_the_users(emu: Emulator) -> None:
    app = fresh_app(emu)
    client = app.test_client()
    assert sign_in(client, emu).status_code == 302
    (sid,) = emu.sessions_for(ALICE)
    started = emu.state.browser_sessions[sid].created_at
    assert client.get("/email").get_json()["auth_time"] == int(started)


def test_a_stale_sign_in_is_sent_to_sign_in_again_then_back(
    emu: Emulator, emulator_clock: FakeClock
) -> None:
    app = fresh_app(emu)
    client = app.test_client()
    # Signed in 301 s ago (authlib checks an ID token's iat by the real clock: the past it is).
    emulator_clock.step_wall(-301)
    sign_in(client, emu)
    emulator_clock.reset()
    stale = client.get("/email")
    assert stale.status_code == 302
    assert stale.headers["Location"] == "/auth/login?next=%2Femail&max_age=300"
    authorize = follow_to_emulator(client, "/email")
    query = parse_qs(urlsplit(authorize).query)
    assert query["max_age"] == ["300"] and query["prompt"] == ["login"]
    back = through_emulator(client, authorize)
    assert back.status_code == 302 and back.headers["Location"] == "/email"
    assert client.get("/email").status_code == 200


def test_a_json_client_gets_a_401_saying_why(emu: Emulator) -> None:
    app = fresh_app(emu)
    clock = app_clock(app)
    client = app.test_client()
    sign_in(client, emu)
    clock.advance(301)
    answer = client.get("/email", headers={"Accept": "application/json"})
    assert answer.status_code == 401
    body = answer.get_json()
    assert body["error"] == "fresh_login_required" and body["max_age"] == 300
    assert body["login_url"] == "http://localhost/auth/login?next=%2Femail&max_age=300"
    assert "recent sign-in" in body["error_description"]


def test_nobody_signed_in_is_asked_for_a_fresh_sign_in(emu: Emulator) -> None:
    answer = fresh_app(emu).test_client().get("/email")
    assert answer.headers["Location"] == "/auth/login?next=%2Femail&max_age=300"


def test_an_old_auth_time_after_max_age_is_refused(emu: Emulator) -> None:
    """Were Auth0 to pass an old session off as fresh, the callback would say so."""
    app = fresh_app(emu)
    clock = app_clock(app)
    client = app.test_client()
    emu.set_auto_login(ALICE)
    authorize = follow_to_emulator(client, "/auth/login?next=/email&max_age=300")
    clock.advance(600)  # the ID token's auth_time is now 10 minutes old for the app
    answer = through_emulator(client, authorize)
    assert answer.status_code == 400 and b"stale_authentication" in answer.data
    assert client.get("/whoami").get_json()["sub"] is None


def test_max_age_must_be_seconds(emu: Emulator) -> None:
    client = fresh_app(emu).test_client()
    assert client.get("/auth/login?max_age=-1").status_code == 400
    with pytest.raises(ConfigurationError, match="max_age"):
        fresh_login_required(max_age=-5)


# -- the emulator ------------------------------------------------------------------------------


def test_the_emulator_honours_max_age(emu: Emulator, emulator_clock: FakeClock) -> None:
    browser = requests.Session()
    page = authorize_request(emu, browser)
    fields = {"txn": page.text.split('name="txn" value="')[1].split('"')[0], "email": ALICE}
    signed = browser.post(emu.url + "/u/login", data=fields, allow_redirects=False, timeout=TIMEOUT)
    assert redirect_query(signed)["code"]
    emulator_clock.advance(120)
    # The Auth0 session is two minutes old: prompt=none signs in silently unless max_age < 120.
    silent = redirect_query(authorize_request(emu, browser, prompt="none", max_age="600"))
    assert "code" in silent
    stale = redirect_query(authorize_request(emu, browser, prompt="none", max_age="60"))
    assert stale["error"] == "login_required"
    bad = redirect_query(authorize_request(emu, browser, max_age="soon"))
    assert bad["error"] == "invalid_request"


def test_the_emulators_id_token_carries_auth_time(emu: Emulator) -> None:
    verifier, challenge = pkce_pair()
    emu.set_auto_login(ALICE)
    answer = authorize_request(emu, None, code_challenge=challenge, code_challenge_method="S256")
    tokens = code_grant(emu, redirect_query(answer)["code"], verifier).json()
    from joserfc import jwt

    from tests.helpers.oauth import keyset

    claims = jwt.decode(tokens["id_token"], keyset(emu), algorithms=["RS256"]).claims
    (sid,) = emu.sessions_for(ALICE)
    assert claims["auth_time"] == int(emu.state.browser_sessions[sid].created_at)


def test_a_sign_in_whose_id_token_had_no_auth_time_is_never_fresh(emu: Emulator) -> None:
    """A silent sign-in says nothing of when the password was typed: ask for a fresh one."""
    app = fresh_app(emu)
    client = app.test_client()
    login_as(client, emu, ALICE)
    assert client.get("/email").status_code == 200  # signed in just now, with auth_time
    with client.session_transaction() as session:
        record = dict(session[SESSION_KEY])
        del record["auth_time"]  # as the record of an ID token without one
        session[SESSION_KEY] = record
    answer = client.get("/email")
    assert answer.headers["Location"] == "/auth/login?next=%2Femail&max_age=300"
