"""Sessions that end, measured: lifetimes, logout, back-channel logout, rate limits, cookie size.

Each test asserts its target and records what it measured in ``SESSIONS`` (printed at the end of
``make reliability``); the refused inputs also count as hostile inputs.
"""

from __future__ import annotations

import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from flask_token_vault import TokenVault
from flask_token_vault._session import SESSION_KEY, make_record
from flask_token_vault_emulator import Emulator
from flask_token_vault_pytest.testing import login_as
from tests.helpers.apps import (
    CAL_READ,
    add_overview,
    app_clock,
    exchange_requests,
    make_app,
    overview_under_rate_limit,
)
from tests.helpers.browser import client_with_cookie, csrf, session_cookie, whoami

from .figures import HOSTILE, SESSIONS

ALICE = "alice@example.com"
DAY = 86_400


def _json_status(client: FlaskClient, path: str = "/calendar") -> int:
    return client.get(path, headers={"Accept": "application/json"}).status_code


def _record(name: str, ok: bool, detail: str) -> None:
    HOSTILE[name] = (ok, detail)
    assert ok, detail


def test_how_long_a_stolen_cookie_works(app: Flask, emu: Emulator) -> None:
    clock = app_clock(app)
    owner = app.test_client()
    login_as(owner, emu, ALICE, {"google-oauth2": [CAL_READ]})
    stolen = session_cookie(owner) or ""
    thief = client_with_cookie(app, stolen)
    # The thief keeps the copy busy (so it never idles) and re-signs it as they go.
    alive_until = 0.0
    for hour in range(1, 24 * 4):
        clock.advance(3600)
        if _json_status(thief) != 200:
            break
        alive_until = hour
    unused = client_with_cookie(app, stolen)
    clock.reset()
    clock.advance(DAY + 1)
    idle_refused = whoami(unused) is None
    _record("stolen cookie used past 3 days", alive_until < 72, f"worked {alive_until:g} h")
    _record("unused stolen cookie after 1 day", idle_refused, "refused" if idle_refused else "ok")
    SESSIONS["stolen session cookie"] = (
        f"kept busy, worked {alive_until:g} h then refused (absolute lifetime 72 h); "
        f"left unused, refused after 24 h (idle timeout)"
    )


def test_logout_when_auth0_hangs(app: Flask, emu: Emulator) -> None:
    client = app.test_client()
    login_as(client, emu, ALICE)
    refresh_token = next(iter(emu.state.refresh_tokens))
    emu.add_fault("revoke", status=0, delay=3.0)
    token = csrf(client)
    started = time.monotonic()
    answer = client.post("/auth/logout", data={"csrf_token": token})
    took = time.monotonic() - started
    assert answer.status_code == 302 and took < 1.0
    assert TokenVault.state(app).wait_for_revocations(timeout=20)
    revoked = not emu.refresh_token_active(refresh_token)
    assert revoked
    SESSIONS["logout with /oauth/revoke answering after 3 s"] = (
        f"answered in {took * 1000:.0f} ms; refresh token revoked in the background: "
        f"{'yes' if revoked else 'no'}"
    )


BAD_LOGOUT_TOKENS: dict[str, dict[str, Any]] = {
    "another issuer": {"iss": "https://evil.example/"},
    "another audience": {"aud": "another-client"},
    "expired": {"iat": 1_000_000_000, "exp": 1_000_000_120},
    "issued in the future": {"iat": 4_000_000_000},
    "no events": {"events": None},
    "another event": {"events": {"http://schemas.openid.net/event/other": {}}},
    "a nonce": {"nonce": "n"},
    "no jti": {"jti": None},
    # Numbers checked in the same place as an access token's (one helper for both).
    "nbf of minus 400 digits": {"nbf": -(10**400)},
    "auth_time of 400 digits": {"auth_time": 10**400},
    "iat NaN": {"iat": float("nan")},
}


def test_back_channel_logout_under_attack(app: Flask, emu: Emulator) -> None:
    client = app.test_client()
    login_as(client, emu, ALICE)
    (sid,) = emu.sessions_for(ALICE)
    server = app.test_client()
    raw_tokens = {
        name: emu.logout_token(ALICE, sid=sid, **overrides)
        for name, overrides in BAD_LOGOUT_TOKENS.items()
    }
    raw_tokens.update(
        {
            "no sid, no sub": emu.logout_token(None, sid=None),
            "garbage": "a.b.c",
            "empty": "",
            "9 KB": "a" * 9000,
        }
    )
    for name, raw in raw_tokens.items():
        status = server.post("/auth/backchannel-logout", data={"logout_token": raw}).status_code
        _record(f"logout token: {name}", status == 400, str(status))
    alive = whoami(client) is not None
    good = emu.logout_token(ALICE, sid=sid)
    first = server.post("/auth/backchannel-logout", data={"logout_token": good}).status_code
    replay = server.post("/auth/backchannel-logout", data={"logout_token": good}).status_code
    _record("logout token replayed", replay == 400, str(replay))
    ended = whoami(client) is None
    assert alive and first == 200 and ended
    bad = len(raw_tokens)
    SESSIONS["back-channel logout"] = (
        f"{bad} bad logout tokens answered 400 (no 500), session untouched; a valid one 200 "
        f"and the session ended on its next request; its replay 400"
    )


def test_back_channel_logout_reaches_other_processes(emu: Emulator, redis_url: str) -> None:
    one = make_app(emu, TOKEN_VAULT_CACHE=redis_url)
    two = make_app(emu, TOKEN_VAULT_CACHE=redis_url)
    clock = app_clock(two)
    client = one.test_client()
    login_as(client, emu, ALICE)
    (sid,) = emu.sessions_for(ALICE)
    other = client_with_cookie(two, session_cookie(client))
    assert whoami(other) is not None
    token = emu.logout_token(ALICE, sid=sid)
    assert one.test_client().post("/auth/backchannel-logout", data={"logout_token": token})
    waited = 0.0
    while whoami(other) is not None and waited < 10:
        clock.advance(0.5)
        waited += 0.5
    assert whoami(other) is None and waited <= 5.5
    SESSIONS["back-channel logout, two processes on one Redis"] = (
        f"the other process let the session go after {waited:g} s "
        f"(TOKEN_VAULT_LOCAL_CACHE_TTL = 5 s; exact with an in-process cache)"
    )


def test_auth0_cookie_of_another_client_or_tenant(emu: Emulator) -> None:
    emu.add_client("other-client", "other-client-secret")
    here = make_app(emu)
    cases = {
        "cookie of another client": make_app(
            emu, AUTH0_CLIENT_ID="other-client", AUTH0_CLIENT_SECRET="other-client-secret"
        ),
        "cookie of another tenant": make_app(
            emu, AUTH0_DOMAIN=emu.url.replace("127.0.0.1", "localhost")
        ),
    }
    for name, other in cases.items():
        client = other.test_client()
        login_as(client, emu, ALICE)
        intruder = client_with_cookie(here, session_cookie(client))
        status = _json_status(intruder)
        _record(name, status == 401, str(status))


def test_a_page_for_a_user_with_nothing_connected(app: Flask, emu: Emulator) -> None:
    add_overview(app)
    client = app.test_client()
    login_as(client, emu, ALICE)
    views = 20
    for _ in range(views):
        assert client.get("/overview").status_code == 200
    exchanges = exchange_requests(emu)
    assert exchanges == 2
    SESSIONS["user with nothing connected"] = (
        f"{views} views of a page showing 2 connections: {exchanges} exchanges "
        f"(the answer kept {TokenVault.state(app).settings.not_connected_ttl:g} s)"
    )


def test_a_page_under_auth0_rate_limits(app: Flask, emu: Emulator) -> None:
    answer, clock = overview_under_rate_limit(add_overview(app), emu)
    requests_made, waited = exchange_requests(emu), sum(clock.sleeps)
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "2"
    assert requests_made == 1 and waited == 0
    SESSIONS["page of 2 connections, Auth0 answering 429 (Retry-After 2 s)"] = (
        f"{requests_made} token request, {waited:g} s waited, answered "
        f"{answer.status_code} with Retry-After {answer.headers['Retry-After']}"
    )


def _set_cookie_size(answer: Any) -> int:
    sizes = [len(h) for h in answer.headers.getlist("Set-Cookie") if h.startswith("session=")]
    return max(sizes, default=0)


@pytest.mark.parametrize(("length", "signed_in"), [(1000, True), (1750, False), (2048, False)])
def test_the_cookie_after_sign_ins_with_long_next(
    client: FlaskClient, emu: Emulator, length: int, signed_in: bool
) -> None:
    if signed_in:
        login_as(client, emu, ALICE)
    largest = 0
    for _ in range(3):
        long_next = "/search?q=" + secrets.token_urlsafe(length)[: length - 10]
        answer = client.get("/auth/login", query_string={"next": long_next})
        largest = max(largest, _set_cookie_size(answer))
    emu.set_auto_login(ALICE)
    answer = client.get("/auth/login?next=/calendar")
    largest = max(largest, _set_cookie_size(answer))
    back = requests.get(answer.headers["Location"], allow_redirects=False, timeout=5)
    query = parse_qs(urlsplit(back.headers["Location"]).query)
    done = client.get(f"/auth/callback?code={query['code'][0]}&state={query['state'][0]}")
    who = "signed in, " if signed_in else ""
    _record(f"{who}3 sign-ins with a {length}-character next", largest <= 4093, f"{largest} B")
    assert done.status_code == 302 and whoami(client) is not None
    SESSIONS[f"session cookie, {who}3 sign-ins with a {length}-character next, then one more"] = (
        f"largest Set-Cookie {largest} bytes (browsers keep 4096); the last sign-in completed"
    )


# Each field with the one lifetime that reads it: the absolute lifetime reads ``at``, the idle
# timeout ``seen``.
_ONLY_LIFETIME = {
    "at": {"TOKEN_VAULT_SESSION_LIFETIME": DAY, "TOKEN_VAULT_SESSION_IDLE_TIMEOUT": 0},
    "seen": {"TOKEN_VAULT_SESSION_LIFETIME": 0, "TOKEN_VAULT_SESSION_IDLE_TIMEOUT": DAY},
}


@pytest.mark.parametrize("field", ["at", "seen"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), 10**400, -1, True])
def test_a_session_record_whose_time_is_not_a_time_reads_as_ended(
    emu: Emulator, field: str, value: object
) -> None:
    """Only a holder of SECRET_KEY can sign one; a NaN ``at`` or ``seen`` must not live forever."""
    app = make_app(emu, **_ONLY_LIFETIME[field])
    client = app.test_client()
    login_as(client, emu, ALICE)
    assert whoami(client) is not None
    with client.session_transaction() as session:
        session[SESSION_KEY] = {**session[SESSION_KEY], field: value}
    app_clock(app).advance(2 * DAY)  # past the lifetime: only a record read as a time ends
    gone = whoami(client) is None
    _record(f"session record with {field}={str(value)[:12]}", gone, "ended" if gone else "alive")


@pytest.mark.parametrize("revoke", [True, False], ids=["revoking", "not revoking"])
def test_signing_out_ends_every_copy_even_without_auth0s_sid(emu: Emulator, revoke: bool) -> None:
    """A tenant or connection that sends no ``sid``: a copy of the cookie still ends at sign-out.

    Ended for ``@login_required`` views too, not only for provider tokens (whose refresh token
    the sign-out revokes, when it does).
    """
    app = make_app(emu, TOKEN_VAULT_REVOKE_ON_LOGOUT=revoke)
    owner = app.test_client()
    login_as(owner, emu, ALICE, {"google-oauth2": [CAL_READ]})
    with owner.session_transaction() as session:
        session[SESSION_KEY] = {k: v for k, v in session[SESSION_KEY].items() if k != "sid"}
    copy = client_with_cookie(app, session_cookie(owner))
    assert whoami(copy) == emu.user_id_for(ALICE)
    assert owner.post("/auth/logout", data={"csrf_token": csrf(owner)}).status_code == 302
    ended = whoami(copy) is None
    _record(
        f"copy of a cookie without sid after sign-out ({'' if revoke else 'not '}revoking)",
        ended,
        "ended" if ended else "still signed in",
    )
    # Another sign-in of the same user, without sid either, is not touched.
    again = app.test_client()  # in the same second: the sign-in, not the time, tells them apart
    login_as(again, emu, ALICE)
    with again.session_transaction() as session:
        session[SESSION_KEY] = {k: v for k, v in session[SESSION_KEY].items() if k != "sid"}
    assert whoami(again) == emu.user_id_for(ALICE)


def test_signing_out_ends_the_other_sign_ins_of_the_same_auth0_session(
    app: Flask, emu: Emulator
) -> None:
    """Sign-out ends Auth0's session too (/v2/logout): every sign-in here under its sid ends."""
    owner = app.test_client()
    login_as(owner, emu, ALICE)
    with owner.session_transaction() as session:
        record = session[SESSION_KEY]
    tab = app.test_client()  # signed in again through Auth0's single sign-on: same sid
    claims = {"sub": record["sub"], "sid": record["sid"]}
    state = TokenVault.state(app)
    with tab.session_transaction() as session:
        session[SESSION_KEY] = make_record(state, claims, emu.issue_refresh_token(ALICE))
    assert whoami(tab) == emu.user_id_for(ALICE)
    assert owner.post("/auth/logout", data={"csrf_token": csrf(owner)}).status_code == 302
    ended = whoami(tab) is None
    _record("other sign-in of the Auth0 session after sign-out", ended, str(ended))
