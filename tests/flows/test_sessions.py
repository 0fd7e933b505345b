"""Sessions end: absolute and idle lifetimes, revocation at logout, bound to tenant and client."""

from __future__ import annotations

import time

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from flask_token_vault import ConfigurationError, TokenVault
from flask_token_vault._cache import Slot
from flask_token_vault._session import SESSION_KEY
from flask_token_vault_emulator import Emulator
from flask_token_vault_pytest.testing import login_as
from tests.helpers.apps import CAL_READ, app_clock, cached_token, make_app
from tests.helpers.browser import client_with_cookie, csrf, log_out, session_cookie, whoami
from tests.helpers.keys import keyed_config, register_client_key

DAY = 86_400
ALICE = "alice@example.com"


def _json(client: FlaskClient, path: str = "/calendar") -> int:
    return client.get(path, headers={"Accept": "application/json"}).status_code


# -- lifetimes -----------------------------------------------------------------------------------


def test_a_cookie_past_the_absolute_lifetime_is_refused(app: Flask, emu: Emulator) -> None:
    clock = app_clock(app)
    client = app.test_client()
    login_as(client, emu, ALICE, {"google-oauth2": [CAL_READ]})
    stolen = session_cookie(client)
    # Used every few hours, so never idle: only the absolute lifetime (3 days) can end it.
    for _ in range(11):
        clock.advance(6 * 3600)
        assert _json(client) == 200
    clock.advance(6 * 3600 + 1)
    assert _json(client) == 401
    with client.session_transaction() as session:
        assert SESSION_KEY not in session
    thief = client_with_cookie(app, stolen)
    assert _json(thief) == 401


def test_re_signing_the_cookie_does_not_stretch_its_life(app: Flask, emu: Emulator) -> None:
    """/auth/login re-signs the cookie with a new pending sign-in: the sign-in time stays."""
    clock = app_clock(app)
    client = app.test_client()
    login_as(client, emu, ALICE)
    for _ in range(13):
        clock.advance(6 * 3600)
        assert client.get("/auth/login?next=/").status_code == 302
    assert whoami(client) is None


def test_an_idle_session_ends_after_a_day(app: Flask, emu: Emulator) -> None:
    clock = app_clock(app)
    client = app.test_client()
    login_as(client, emu, ALICE)
    clock.advance(DAY - 60)
    assert whoami(client) == emu.user_id_for(ALICE)
    clock.advance(DAY - 60)  # active a day ago: still alive
    assert whoami(client) == emu.user_id_for(ALICE)
    clock.advance(DAY + 1)
    assert whoami(client) is None


def test_an_old_copy_of_an_active_session_idles_out(app: Flask, emu: Emulator) -> None:
    clock = app_clock(app)
    client = app.test_client()
    login_as(client, emu, ALICE)
    copy = session_cookie(client)
    clock.advance(DAY - 60)
    assert whoami(client) == emu.user_id_for(ALICE)  # the owner's cookie is renewed
    clock.advance(120)
    thief = client_with_cookie(app, copy)
    assert whoami(thief) is None
    assert whoami(client) == emu.user_id_for(ALICE)


def test_lifetimes_are_configurable_and_can_be_turned_off(emu: Emulator) -> None:
    short = make_app(emu, TOKEN_VAULT_SESSION_LIFETIME=60, TOKEN_VAULT_SESSION_IDLE_TIMEOUT=0)
    clock = app_clock(short)
    client = short.test_client()
    login_as(client, emu, ALICE)
    clock.advance(59)
    assert whoami(client) is not None
    clock.advance(2)
    assert whoami(client) is None

    endless = make_app(emu, TOKEN_VAULT_SESSION_LIFETIME=0, TOKEN_VAULT_SESSION_IDLE_TIMEOUT=None)
    clock = app_clock(endless)
    client = endless.test_client()
    login_as(client, emu, ALICE)
    clock.advance(400 * DAY)
    assert whoami(client) == emu.user_id_for(ALICE)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("TOKEN_VAULT_SESSION_LIFETIME", -1),
        ("TOKEN_VAULT_SESSION_IDLE_TIMEOUT", "1 day"),
        ("TOKEN_VAULT_REVOKE_ON_LOGOUT", "yes"),
        ("TOKEN_VAULT_EXTERNAL_URL", "https://app.example.com/path"),
        ("TOKEN_VAULT_EXTERNAL_URL", "ftp://app.example.com"),
        ("TOKEN_VAULT_CONNECT_LINK_LIFETIME", 0),
        ("TOKEN_VAULT_RATE_LIMIT_WAIT", -1),
    ],
)
def test_bad_session_settings_name_the_key(emu: Emulator, key: str, value: object) -> None:
    with pytest.raises(ConfigurationError, match=key):
        make_app(emu, **{key: value})


# -- revocation at logout ----------------------------------------------------------------------


def test_logout_revokes_the_refresh_token_at_auth0(app: Flask, emu: Emulator) -> None:
    client = app.test_client()
    login_as(client, emu, ALICE, {"google-oauth2": [CAL_READ]})
    refresh_token = next(iter(emu.state.refresh_tokens))
    stolen = session_cookie(client)
    log_out(app, client)
    assert not emu.refresh_token_active(refresh_token)
    assert emu.stats()["revocations"] == 1
    # A copy of the cookie made before the logout is no longer a session, nor reaches the vault.
    thief = client_with_cookie(app, stolen)
    assert whoami(thief) is None
    assert _json(thief) == 401


def test_a_copy_made_before_logout_reaches_no_vault_even_if_still_read(
    app: Flask, emu: Emulator
) -> None:
    """Without Auth0's sid the copy ends by its sign-in, and its revoked token is dead too."""
    client = app.test_client()
    login_as(client, emu, ALICE, {"google-oauth2": [CAL_READ]})
    with client.session_transaction() as session:
        record = dict(session[SESSION_KEY])
        record.pop("sid")
        session[SESSION_KEY] = record
    stolen = session_cookie(client)
    log_out(app, client)
    thief = client_with_cookie(app, stolen)
    assert _json(thief) == 401


def test_logout_revokes_with_a_client_key(emu: Emulator) -> None:
    """With private_key_jwt, the revocation authenticates with a fresh client assertion."""
    register_client_key(emu)
    app = make_app(emu, **keyed_config())
    client = app.test_client()
    login_as(client, emu, ALICE)
    refresh_token = next(iter(emu.state.refresh_tokens))
    log_out(app, client)
    assert not emu.refresh_token_active(refresh_token)


def test_logout_does_not_wait_for_auth0_when_it_is_down(app: Flask, emu: Emulator) -> None:
    emu.add_fault("revoke", status=0, delay=3.0, times=-1)
    client = app.test_client()
    login_as(client, emu, ALICE)
    token = csrf(client)
    started = time.monotonic()
    answer = client.post("/auth/logout", data={"csrf_token": token})
    took = time.monotonic() - started
    assert answer.status_code == 302 and took < 1.0
    assert whoami(client) is None
    emu.clear_faults()
    assert TokenVault.state(app).wait_for_revocations(timeout=20)


def test_logout_answers_when_auth0_refuses_the_revocation(app: Flask, emu: Emulator) -> None:
    emu.add_fault("revoke", status=503, times=-1)
    client = app.test_client()
    login_as(client, emu, ALICE)
    log_out(app, client)
    assert whoami(client) is None


def test_revoking_at_logout_can_be_turned_off(emu: Emulator) -> None:
    app = make_app(emu, TOKEN_VAULT_REVOKE_ON_LOGOUT=False)
    client = app.test_client()
    login_as(client, emu, ALICE)
    refresh_token = next(iter(emu.state.refresh_tokens))
    log_out(app, client)
    assert emu.refresh_token_active(refresh_token)
    assert emu.stats()["revocations"] == 0


# -- bound to the tenant and the client ----------------------------------------------------------


def test_a_cookie_made_for_another_client_is_not_a_session_here(emu: Emulator) -> None:
    emu.add_client("other-client", "other-client-secret")
    here = make_app(emu)
    other = make_app(emu, AUTH0_CLIENT_ID="other-client", AUTH0_CLIENT_SECRET="other-client-secret")
    # Alice uses this app: her token is in its cache.
    mine = here.test_client()
    user_id = login_as(mine, emu, ALICE, {"google-oauth2": [CAL_READ]})
    assert _json(mine) == 200 and cached_token(here, user_id, scopes=(CAL_READ,)) is not None
    # A cookie the other client's app made for her (same SECRET_KEY) is refused here, so it
    # cannot read her cached token nor act for her.
    foreign = other.test_client()
    login_as(foreign, emu, ALICE)
    intruder = client_with_cookie(here, session_cookie(foreign))
    assert whoami(intruder) is None
    assert _json(intruder) == 401


def test_a_cookie_made_for_another_tenant_is_not_a_session_here(emu: Emulator) -> None:
    here = make_app(emu)
    # The same emulator under another name is another issuer, as another tenant would be.
    elsewhere = make_app(emu, AUTH0_DOMAIN=emu.url.replace("127.0.0.1", "localhost"))
    client = elsewhere.test_client()
    with client.session_transaction() as session:
        session["x"] = 1  # make a cookie
    login_as(client, emu, ALICE)
    intruder = client_with_cookie(here, session_cookie(client))
    assert whoami(intruder) is None


def test_cache_keys_depend_on_tenant_and_client(emu: Emulator, redis_url: str) -> None:
    """Two apps with one SECRET_KEY and one Redis never read each other's tokens."""
    emu.add_client("other-client", "other-client-secret")
    here = make_app(emu, TOKEN_VAULT_CACHE=redis_url)
    other = make_app(
        emu,
        TOKEN_VAULT_CACHE=redis_url,
        AUTH0_CLIENT_ID="other-client",
        AUTH0_CLIENT_SECRET="other-client-secret",
    )
    client = here.test_client()
    user_id = login_as(client, emu, ALICE, {"google-oauth2": [CAL_READ]})
    assert _json(client) == 200
    slot = Slot(user_id, "google-oauth2", None, (CAL_READ,))
    assert TokenVault.state(here).cache.get(slot) is not None
    assert TokenVault.state(other).cache.get(slot) is None
    assert TokenVault.state(here).cache.key_for(slot) != TokenVault.state(other).cache.key_for(slot)
    keys = redis.Redis.from_url(redis_url).keys("tv:{*}:t:*")
    assert len(keys) == 1
