"""The cache on a bad day: Redis hung, dead or full, the wall clock stepped, lock holders frozen
or dead, a key rotated, a provider token dying before Auth0 said it would.

Each Redis here is a real redis-server process of the test's own (frozen with SIGSTOP, killed, or
filled); lock holders are real separate processes.
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
import requests
from flask import Flask
from flask.testing import FlaskClient

from flask_token_vault import (
    TokenVault,
    get_provider_token,
    get_provider_token_set,
    provider_session,
    reject_provider_token,
    signals,
)
from flask_token_vault._cache import Slot
from flask_token_vault_emulator import Emulator
from flask_token_vault_pytest.testing import FakeClock, login_as
from services.redis_servers import RedisServer
from tests.helpers import TIMEOUT
from tests.helpers.apps import CAL_READ, alice_client, cached_token, holding_a_token, make_app
from tests.helpers.browser import csrf, held_cookie
from tests.helpers.processes import emulator_args, spawn_worker, worker_output

OLD_KEY = "old-secret-key-0123456789abcdef"
NEW_KEY = "new-secret-key-0123456789abcdef"


def _timed(client: FlaskClient, path: str = "/calendar") -> tuple[int, float]:
    started = time.monotonic()
    status = client.get(path).status_code
    return status, time.monotonic() - started


def _listen(app: Flask) -> list[tuple[str, dict[str, Any]]]:
    events: list[tuple[str, dict[str, Any]]] = []
    signals.cache_unavailable.connect(
        lambda sender, **kw: events.append(("unavailable", kw)), app, weak=False
    )
    signals.cache_recovered.connect(
        lambda sender, **kw: events.append(("recovered", kw)), app, weak=False
    )
    return events


# -- a hung, dead or full Redis ------------------------------------------------------------------


def test_a_hung_redis_costs_a_request_one_timeout_then_is_not_asked(
    emu: Emulator, own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """SIGSTOP: three calls to Redis pay the 0.4 s timeout (a request makes two: the session's
    revocation check and the token read), then the breaker opens (once) and the rest are
    served at once by direct exchanges; after the cooldown Redis is asked again."""
    app = make_app(
        emu,
        TOKEN_VAULT_CACHE=own_redis.url,
        TOKEN_VAULT_CACHE_TIMEOUT=0.4,
        TOKEN_VAULT_LOCAL_CACHE_TTL=0,  # every request asks the cache
    )
    clock = FakeClock(running=True)
    TokenVault.state(app).set_clock(clock)
    events = _listen(app)
    client = alice_client(app, emu)
    assert client.get("/calendar").status_code == 200
    own_redis.freeze()
    try:
        timed = [_timed(client) for _ in range(6)]
    finally:
        own_redis.thaw()
    assert [status for status, _ in timed] == [200] * 6
    latencies = [t for _, t in timed]
    # Three timeouts in all, none retried, then nothing: the breaker is open.
    assert 1.15 <= sum(latencies) < 1.2 + 1.0, latencies
    assert all(t < 0.35 for t in latencies[2:]), latencies
    assert events == [("unavailable", {"error": "TimeoutError", "retry_in": 5.0})]
    opened = [r for r in caplog.records if "did not answer" in r.getMessage()]
    assert len(opened) == 1 and opened[0].levelno == logging.WARNING
    clock.advance(5.1)  # the cooldown ends: the next request probes Redis, which answers
    assert client.get("/calendar").status_code == 200
    assert events[-1] == ("recovered", {})


def test_a_dead_redis_is_read_around(emu: Emulator, own_redis: RedisServer) -> None:
    """A refused connection on the read is caught: the request exchanges directly."""
    app = make_app(emu, TOKEN_VAULT_CACHE=own_redis.url, TOKEN_VAULT_LOCAL_CACHE_TTL=0)
    client = alice_client(app, emu)
    assert client.get("/calendar").status_code == 200
    own_redis.stop()
    status, elapsed = _timed(client)
    assert status == 200 and elapsed < 1.0
    assert emu.exchange_count() == 2


def test_a_redis_that_refuses_the_lock_means_exchanging_at_once(
    emu: Emulator, own_redis: RedisServer
) -> None:
    """Out of memory, Redis still reads but refuses the lock's SET: no waiting for a lock that
    nobody holds. An error answer is not an outage: the breaker stays closed."""
    app = make_app(
        emu,
        TOKEN_VAULT_CACHE=own_redis.url,
        TOKEN_VAULT_LOCK_TIMEOUT=5,
        TOKEN_VAULT_LOCAL_CACHE_TTL=0,
    )
    clock = FakeClock(running=True)  # records every wait the app asks for
    TokenVault.state(app).set_clock(clock)
    client = alice_client(app, emu)
    admin: Any = redis.Redis.from_url(own_redis.url)
    admin.config_set("maxmemory-policy", "noeviction")
    admin.config_set("maxmemory", 1)
    admin.close()
    timed = [_timed(client) for _ in range(3)]  # each: lock refused, token not stored
    assert [status for status, _ in timed] == [200] * 3
    assert max(elapsed for _, elapsed in timed) < 1.0
    assert clock.sleeps == []  # it never waited for the lock
    assert emu.exchange_count() == 3
    assert not TokenVault.state(app).cache.store.breaker.is_open  # type: ignore[attr-defined]


def test_a_waiter_whose_redis_dies_exchanges_at_once(emu: Emulator, own_redis: RedisServer) -> None:
    app = make_app(emu, TOKEN_VAULT_CACHE=own_redis.url, TOKEN_VAULT_LOCK_TIMEOUT=8)
    client = app.test_client()
    sub = login_as(client, emu, "alice@example.com", {"google-oauth2": [CAL_READ]})
    holder = _hold_lock(emu, own_redis.url, sub)
    try:
        killer = _after(1.0, own_redis.stop)
        status, elapsed = _timed(client)
        killer.join()
    finally:
        _end(holder)
    assert status == 200
    assert 0.9 <= elapsed < 3.0  # not the 8 s lock timeout
    assert emu.exchange_count() == 1


# -- lock holders: dead, frozen, and only the owner releases ------------------------------------


def _hold_lock(
    emu: Emulator, url: str, sub: str, hold_seconds: float = 3600, **config: Any
) -> subprocess.Popen[str]:
    """Start a worker process that takes the user's lock; return once it holds it."""
    holder = spawn_worker(
        "hold",
        {
            "emulator": emulator_args(emu),
            "redis_url": url,
            "sub": sub,
            "scopes": [CAL_READ],
            "config": config,
            "hold_seconds": hold_seconds,
        },
    )
    assert holder.stdout is not None
    assert json.loads(holder.stdout.readline()) == {"acquired": True}
    return holder


def _end(holder: subprocess.Popen[str]) -> None:
    if holder.poll() is None:
        holder.send_signal(signal.SIGKILL)  # also ends a stopped (SIGSTOP) process
    holder.wait(10)
    if holder.stdout is not None:
        holder.stdout.close()


def _after(seconds: float, action: Callable[[], None]) -> threading.Timer:
    timer = threading.Timer(seconds, action)
    timer.start()
    return timer


def test_a_frozen_lock_holder_is_waited_for_no_longer_than_the_waiters_deadline(
    emu: Emulator, redis_url: str
) -> None:
    """The waiter's own deadline (1.5 s) comes before its lock timeout (10 s): it stops there."""
    app = make_app(
        emu,
        TOKEN_VAULT_CACHE=redis_url,
        TOKEN_VAULT_LOCK_TIMEOUT=10,
        TOKEN_VAULT_HTTP_TIMEOUT=1.0,
        TOKEN_VAULT_DEADLINE=1.5,
    )
    client = app.test_client()
    sub = login_as(client, emu, "alice@example.com", {"google-oauth2": [CAL_READ]})
    holder = _hold_lock(emu, redis_url, sub)
    holder.send_signal(signal.SIGSTOP)
    try:
        status, elapsed = _timed(client)
    finally:
        _end(holder)
    assert status == 200
    assert 1.4 <= elapsed <= 2.0
    assert emu.exchange_count() == 1


def test_the_lock_lives_as_long_as_its_holders_deadline(emu: Emulator, redis_url: str) -> None:
    app = make_app(emu, TOKEN_VAULT_CACHE=redis_url, TOKEN_VAULT_DEADLINE=20)
    sub = emu.user_id_for("alice@example.com")
    cache = TokenVault.state(app).cache
    key = cache.key_for(Slot(sub, "google-oauth2", None, (CAL_READ,)))
    admin: Any = redis.Redis.from_url(redis_url)
    with cache.lock(key) as acquired:
        assert acquired
        ttl = admin.pttl(cache._lock_key(key))
    admin.close()
    assert 20_000 < ttl <= 21_000  # the deadline and a second for the holder's store calls


def test_only_its_owner_releases_a_lock(emu: Emulator, redis_url: str) -> None:
    """A holder whose lock expired while it worked must not delete the next holder's lock."""
    sub = emu.user_id_for("alice@example.com")
    # The worker's lock lives 1.3 s (deadline 0.3 s + 1 s); it lets go after 2.5 s.
    holder = _hold_lock(
        emu,
        redis_url,
        sub,
        TOKEN_VAULT_HTTP_TIMEOUT=0.2,
        TOKEN_VAULT_DEADLINE=0.3,
        hold_seconds=2.5,
    )
    app = make_app(emu, TOKEN_VAULT_CACHE=redis_url)
    cache = TokenVault.state(app).cache
    key = cache.key_for(Slot(sub, "google-oauth2", None, (CAL_READ,)))
    lock_key = cache._lock_key(key)
    time.sleep(1.6)
    try:
        with cache.lock(key) as acquired:
            assert acquired  # the worker's lock has expired
            assert worker_output(holder, timeout=10) == {"released": True}
            assert cache.store.exists(lock_key), "the earlier holder deleted our lock"
    finally:
        _end(holder)


@pytest.mark.parametrize("lock_timeout", [1.0, None], ids=["1s", "default"])
def test_a_killed_lock_holder_costs_the_waiter_its_lock_timeout(
    emu: Emulator, redis_url: str, lock_timeout: float | None
) -> None:
    config = {} if lock_timeout is None else {"TOKEN_VAULT_LOCK_TIMEOUT": lock_timeout}
    app = make_app(emu, TOKEN_VAULT_CACHE=redis_url, **config)
    expected = TokenVault.state(app).settings.lock_timeout
    client = app.test_client()
    sub = login_as(client, emu, "alice@example.com", {"google-oauth2": [CAL_READ]})
    holder = _hold_lock(emu, redis_url, sub)
    holder.send_signal(signal.SIGKILL)
    _end(holder)
    status, elapsed = _timed(client)
    assert status == 200
    # The dead holder's lock lives on (its deadline, 16 s), yet the waiter gave up in time.
    assert expected - 0.1 <= elapsed <= expected + 0.5
    assert emu.exchange_count() == 1


# -- expiry: never an expired token, whatever the wall clock does --------------------------------


@pytest.fixture(params=["in-process", "redis", "directory"])
def cache_setting(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    if request.param == "redis":
        return request.getfixturevalue("redis_url")
    if request.param == "directory":
        return str(tmp_path / "cache")
    return None


def test_an_expired_entry_is_never_served_on_the_first_lookup(
    emu: Emulator, emulator_clock: FakeClock, cache_setting: Any
) -> None:
    """The app and the provider share one clock; 31 s later a 40 s token is past its use."""
    app = make_app(emu, TOKEN_VAULT_CACHE=cache_setting)
    TokenVault.state(app).set_clock(emulator_clock)
    emu.set_provider_token_ttl("google-oauth2", 40)  # usable 30 s (leeway: a quarter)
    client, sub = holding_a_token(app, emu)
    assert cached_token(app, sub, scopes=(CAL_READ,)) is not None
    emulator_clock.advance(31)
    assert cached_token(app, sub, scopes=(CAL_READ,)) is None
    assert client.get("/calendar").status_code == 200  # a 401 would mean it sent the old one
    assert emu.exchange_count() == 2


def test_a_backward_step_of_the_wall_clock_keeps_no_token_past_its_life(
    emu: Emulator, emulator_clock: FakeClock
) -> None:
    """An NTP correction of 40 s back; then 5 s pass for the app and for the provider."""
    app = make_app(emu)
    clock = FakeClock()
    TokenVault.state(app).set_clock(clock)
    emu.set_provider_token_ttl("google-oauth2", 4)  # usable 3 s
    client = alice_client(app, emu)
    assert client.get("/calendar").status_code == 200
    clock.step_wall(-40)
    for _ in range(5):
        clock.advance(1)
        emulator_clock.advance(1)
        assert client.get("/calendar").status_code == 200  # the provider refuses expired ones
    assert emu.exchange_count() == 2


def test_the_request_memo_runs_on_the_monotonic_clock(
    app: Flask, emu: Emulator, emulator_clock: FakeClock
) -> None:
    """Within one request, a token past its life is not reused, whatever the wall clock says."""
    clock = FakeClock()
    TokenVault.state(app).set_clock(clock)
    emu.set_provider_token_ttl("google-oauth2", 8)  # usable 6 s

    @app.get("/twice")
    def twice() -> Any:
        first = get_provider_token("google-oauth2", [CAL_READ])
        clock.step_wall(-60)
        clock.advance(7)
        emulator_clock.advance(7)
        second = get_provider_token("google-oauth2", [CAL_READ])
        return {"same": first == second}

    client = alice_client(app, emu)
    assert client.get("/twice").get_json() == {"same": False}
    assert emu.exchange_count() == 2


# -- logout across a key rotation ---------------------------------------------------------------


@pytest.mark.parametrize("rotation", ["SECRET_KEY_FALLBACKS", "TOKEN_VAULT_ENCRYPTION_KEYS"])
def test_logout_after_a_key_rotation_drops_the_tokens_cached_under_the_old_key(
    emu: Emulator, redis_url: str, rotation: str
) -> None:
    old_config: dict[str, Any]
    if rotation == "SECRET_KEY_FALLBACKS":
        old_config = {"SECRET_KEY": OLD_KEY}
        new_config: dict[str, Any] = {"SECRET_KEY": NEW_KEY, "SECRET_KEY_FALLBACKS": [OLD_KEY]}
    else:
        old_config = {"TOKEN_VAULT_ENCRYPTION_KEYS": [OLD_KEY]}
        new_config = {"TOKEN_VAULT_ENCRYPTION_KEYS": [NEW_KEY, OLD_KEY]}
    old = make_app(emu, TOKEN_VAULT_CACHE=redis_url, **old_config)
    new = make_app(emu, TOKEN_VAULT_CACHE=redis_url, **new_config)
    on_old = old.test_client()
    sub = login_as(on_old, emu, "alice@example.com", {"google-oauth2": [CAL_READ]})
    assert on_old.get("/calendar").status_code == 200  # cached under the old key
    on_new = new.test_client()
    on_new.set_cookie("session", held_cookie(on_old))
    assert on_new.get("/calendar").status_code == 200  # and under the new one
    assert on_new.post("/auth/logout", data={"csrf_token": csrf(on_new)}).status_code == 302
    # A process of the old-key app that has nothing in memory yet, and the new app itself.
    fresh_old = make_app(emu, TOKEN_VAULT_CACHE=redis_url, **old_config)
    assert cached_token(fresh_old, sub, scopes=(CAL_READ,)) is None
    assert cached_token(new, sub, scopes=(CAL_READ,)) is None


# -- a provider token that dies early ------------------------------------------------------------


def _retrying_app(emu: Emulator, **config: Any) -> Flask:
    app = make_app(emu, **config)

    @app.get("/own-call")
    def own_call() -> Any:
        """The app calls the provider itself and reports a 401, as the docs say."""
        url = emu.google_api_base + "/calendar/v3/users/me/calendarList"
        token = get_provider_token("google-oauth2", [CAL_READ])
        answer = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT)
        if answer.status_code == 401:
            reject_provider_token("google-oauth2", token)
            token = get_provider_token("google-oauth2", [CAL_READ])
            answer = requests.get(
                url, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT
            )
        return {"status": answer.status_code}

    return app


def test_a_token_the_app_reports_refused_is_dropped_for_every_process(
    emu: Emulator, redis_url: str
) -> None:
    worker_a = _retrying_app(emu, TOKEN_VAULT_CACHE=redis_url)
    worker_b = _retrying_app(emu, TOKEN_VAULT_CACHE=redis_url, TOKEN_VAULT_LOCAL_CACHE_TTL=0)
    client_a = worker_a.test_client()
    login_as(client_a, emu, "alice@example.com", {"google-oauth2": [CAL_READ]})
    client_b = worker_b.test_client()
    client_b.set_cookie("session", held_cookie(client_a))
    assert client_a.get("/own-call").get_json() == {"status": 200}
    emu.revoke_provider_tokens()
    assert client_a.get("/own-call").get_json() == {"status": 200}
    assert emu.exchange_count() == 2
    # Worker B finds the new token in Redis, never the refused one.
    assert client_b.get("/calendar").status_code == 200
    assert emu.exchange_count() == 2


def test_rejecting_a_token_the_extension_did_not_give_drops_all_of_the_users_tokens(
    app: Flask, emu: Emulator
) -> None:
    @app.get("/reject-unknown")
    def reject_unknown() -> str:
        reject_provider_token("google-oauth2", "a-token-from-somewhere-else")
        return "ok"

    client, sub = holding_a_token(app, emu)
    assert client.get("/reject-unknown").status_code == 200
    assert cached_token(app, sub, scopes=(CAL_READ,)) is None


def test_a_token_that_dies_before_auth0_said_is_dropped_on_the_providers_401(
    app: Flask, emu: Emulator, emulator_clock: FakeClock
) -> None:
    """Auth0 gives no expires_in; the token really lives 5 s; the provider's 401 renews it."""
    emu.set_provider_token_ttl("google-oauth2", 5)
    emu.misreport_expires_in("google-oauth2")  # no expires_in at all

    @app.get("/via-session")
    def via_session() -> Any:
        answer = provider_session("google-oauth2", [CAL_READ]).get(
            emu.google_api_base + "/calendar/v3/users/me/calendarList"
        )
        token = get_provider_token_set("google-oauth2", [CAL_READ])
        return {"status": answer.status_code, "lifetime": round(token.expires_in())}

    client = alice_client(app, emu)
    first = client.get("/via-session").get_json()
    assert first == {"status": 200, "lifetime": 300}  # TOKEN_VAULT_DEFAULT_EXPIRES_IN
    emulator_clock.advance(6)
    assert client.get("/via-session").get_json()["status"] == 200
    assert emu.exchange_count() == 2
