"""Provider-token cache: one exchange per key under concurrency, expiry, freshness, hygiene."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import redis
from cachelib import BaseCache, FileSystemCache
from flask import Flask
from flask.testing import FlaskClient

from flask_token_vault import (
    ProviderToken,
    TokenVault,
    forget_provider_tokens,
    get_provider_token,
    provider_session,
)
from flask_token_vault._cache import Slot, TokenCache
from flask_token_vault._config import default_settings
from flask_token_vault._store import CachelibStore
from flask_token_vault_emulator import Emulator
from flask_token_vault_pytest.testing import FakeClock, login_as
from tests.helpers.apps import (
    CAL_READ,
    CAL_WRITE,
    alice_client,
    cached_token,
    holding_a_token,
    make_app,
)
from tests.helpers.browser import held_cookie
from tests.helpers.processes import emulator_args, hammer, spawn_worker


def test_64_threads_cold_cache_one_exchange(app: Flask, emu: Emulator) -> None:
    client = alice_client(app, emu)
    statuses = hammer(app, held_cookie(client), 64)
    assert statuses == [200] * 64
    assert emu.exchange_count() == 1


def test_64_threads_on_redis_one_exchange(emu: Emulator, redis_url: str) -> None:
    app = make_app(emu, TOKEN_VAULT_CACHE=redis_url)
    client = alice_client(app, emu)
    assert hammer(app, held_cookie(client), 64) == [200] * 64
    assert emu.exchange_count() == 1


def test_4_processes_x_16_threads_share_one_exchange(emu: Emulator, redis_url: str) -> None:
    app = make_app(emu, TOKEN_VAULT_CACHE=redis_url)
    client = alice_client(app, emu)
    args = {
        "emulator": emulator_args(emu),
        "redis_url": redis_url,
        "cookie": held_cookie(client),
        "threads": 16,
        "start_at": time.time() + 4.0,
    }
    workers = [spawn_worker("fetch", args) for _ in range(4)]
    outputs = [json.loads(w.communicate(timeout=120)[0].strip().splitlines()[-1]) for w in workers]
    statuses = [status for out in outputs for status, *_ in out["results"]]
    assert statuses == [200] * 64
    bodies = {json.dumps(r[1], sort_keys=True) for out in outputs for r in out["results"]}
    assert len(bodies) == 1
    assert emu.exchange_count() == 1


def test_one_users_lock_does_not_hold_up_another_user(emu: Emulator, redis_url: str) -> None:
    app = make_app(emu, TOKEN_VAULT_CACHE=redis_url, TOKEN_VAULT_LOCK_TIMEOUT=5.0)
    alice, bob = app.test_client(), app.test_client()
    alice_sub = login_as(alice, emu, "alice@example.com", {"google-oauth2": [CAL_READ]})
    login_as(bob, emu, "bob@example.com", {"google-oauth2": [CAL_READ]})
    holder = spawn_worker(
        "hold",
        {
            "emulator": emulator_args(emu),
            "redis_url": redis_url,
            "sub": alice_sub,
            "scopes": [CAL_READ],
            "config": {"TOKEN_VAULT_LOCK_TIMEOUT": 30.0},
        },
    )
    try:
        assert holder.stdout is not None
        assert json.loads(holder.stdout.readline()) == {"acquired": True}
        started = time.monotonic()
        assert bob.get("/calendar").status_code == 200
        assert time.monotonic() - started < 2.0  # not the 5 s lock wait of Alice's slot
    finally:
        holder.kill()
        holder.wait(10)
        if holder.stdout is not None:
            holder.stdout.close()


def test_two_users_only_ever_get_their_own_token(app: Flask, emu: Emulator) -> None:
    clients = {}
    for email in ("alice@example.com", "bob@example.com"):
        c = app.test_client()
        login_as(c, emu, email, {"google-oauth2": [CAL_READ]})
        clients[email] = held_cookie(c)
    wrong: list[str] = []

    def run(email: str, rounds: int) -> None:
        c = app.test_client()
        c.set_cookie("session", clients[email])
        for _ in range(rounds):
            body = c.get("/calendar").get_json()
            if body["items"][0]["id"] != email:
                wrong.append(email)

    threads = [
        threading.Thread(target=run, args=(email, 50))
        for email in ("alice@example.com", "bob@example.com")
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []
    assert emu.exchange_count() == 2


def test_short_lived_token_is_used_and_expired_one_is_exchanged_again(
    app: Flask, emu: Emulator
) -> None:
    emu.set_provider_token_ttl("google-oauth2", 30)
    clock = FakeClock()
    TokenVault.state(app).set_clock(clock)
    client = alice_client(app, emu)
    assert client.get("/calendar").status_code == 200
    clock.advance(20)  # within 30 s minus the clamped leeway (7.5 s)
    assert client.get("/calendar").status_code == 200
    assert emu.exchange_count() == 1
    clock.advance(11)  # now past expiry
    assert client.get("/calendar").status_code == 200
    assert emu.exchange_count() == 2


def test_ttl_is_never_zero_nor_past_expiry(app: Flask) -> None:
    cache = TokenVault.state(app).cache
    assert cache.ttl_for(0.4) == 1
    assert cache.ttl_for(3540.9) == 3540
    assert cache.ttl_for(10**9) == 86_400


def test_failed_exchange_leaves_nothing_cached(app: Flask, emu: Emulator) -> None:
    @app.get("/force")
    def force() -> str:
        get_provider_token("google-oauth2", [CAL_READ], force_refresh=True)
        return "ok"

    client, sub = holding_a_token(app, emu)
    assert cached_token(app, sub, scopes=(CAL_READ,)) is not None
    emu.add_fault("token:exchange", status=503, times=-1)
    assert client.get("/force").status_code == 503
    assert cached_token(app, sub, scopes=(CAL_READ,)) is None
    emu.clear_faults()
    assert client.get("/calendar").status_code == 200
    assert emu.exchange_count() == 2


def test_provider_401_triggers_exactly_one_new_exchange(app: Flask, emu: Emulator) -> None:
    @app.get("/via-session")
    def via_session() -> Any:
        answer = provider_session("google-oauth2", [CAL_READ]).get(
            emu.google_api_base + "/calendar/v3/users/me/calendarList"
        )
        return {"status": answer.status_code}

    client = alice_client(app, emu)
    assert client.get("/via-session").get_json() == {"status": 200}
    assert emu.exchange_count() == 1
    emu.revoke_provider_tokens(email="alice@example.com", connection="google-oauth2")
    assert client.get("/via-session").get_json() == {"status": 200}
    assert emu.exchange_count() == 2
    assert client.get("/via-session").get_json() == {"status": 200}
    assert emu.exchange_count() == 2


def test_cache_keys_and_values_reveal_nothing(emu: Emulator, redis_url: str) -> None:
    app = make_app(emu, TOKEN_VAULT_CACHE=redis_url)
    _, sub = holding_a_token(app, emu)
    r: Any = redis.Redis.from_url(redis_url)
    dump = b""
    for key in r.scan_iter("*"):
        dump += key
        if r.type(key) == b"hash":
            for field, item in r.hgetall(key).items():
                dump += field + item
        else:
            dump += r.get(key) or b""
    tokens = list(emu.state.provider_tokens)
    assert tokens
    for secret in [sub, "alice", *tokens, *emu.state.refresh_tokens, emu.client_secret]:
        assert secret.encode() not in dump


def test_login_hint_selects_account_and_key(app: Flask, emu: Emulator) -> None:
    emu.connect_account(
        "alice@example.com", "google-oauth2", [CAL_READ], account="work@corp.example"
    )
    emu.connect_account("alice@example.com", "google-oauth2", [CAL_READ], account="me@home.example")

    @app.get("/cal/<hint>")
    def cal(hint: str) -> Any:
        answer = provider_session("google-oauth2", [CAL_READ], login_hint=hint).get(
            emu.google_api_base + "/calendar/v3/users/me/calendarList"
        )
        return answer.json()

    client = app.test_client()
    login_as(client, emu, "alice@example.com")
    work = client.get("/cal/work@corp.example").get_json()
    home = client.get("/cal/me@home.example").get_json()
    assert work["items"][0]["id"] == "work@corp.example"
    assert home["items"][0]["id"] == "me@home.example"
    assert client.get("/cal/work@corp.example").get_json() == work
    assert emu.exchange_count() == 2


def test_logout_drops_the_users_cached_tokens(app: Flask, emu: Emulator) -> None:
    client, sub = holding_a_token(app, emu)
    assert cached_token(app, sub, scopes=(CAL_READ,)) is not None
    page = client.get("/auth/logout").get_data(as_text=True)
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    client.post("/auth/logout", data={"csrf_token": token})
    assert cached_token(app, sub, scopes=(CAL_READ,)) is None


def test_an_entry_copied_to_another_users_key_does_not_decrypt(app: Flask, emu: Emulator) -> None:
    alice, bob = app.test_client(), app.test_client()
    alice_sub = login_as(alice, emu, "alice@example.com", {"google-oauth2": [CAL_READ]})
    bob_sub = login_as(bob, emu, "bob@example.com", {"google-oauth2": [CAL_READ]})
    assert alice.get("/calendar").status_code == 200
    cache = TokenVault.state(app).cache
    alice_key = cache.key_for(Slot(alice_sub, "google-oauth2", None, (CAL_READ,)))
    bob_slot = Slot(bob_sub, "google-oauth2", None, (CAL_READ,))
    stolen = cache.store.get(alice_key)
    assert stolen is not None
    cache.store.set(cache.key_for(bob_slot), stolen, 60)
    assert cache.get(bob_slot) is None
    assert bob.get("/calendar").get_json()["items"][0]["id"] == "bob@example.com"


def _redis_reads(url: str) -> int:
    """Count the reads clients sent (a lookup is one script call; its GETs count too)."""
    client = redis.Redis.from_url(url)
    stats: Any = client.info("commandstats")
    client.close()
    return sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("get", "evalsha"))


def test_near_cache_spares_the_redis_round_trip_within_its_ttl(
    emu: Emulator, redis_url: str
) -> None:
    app = make_app(emu, TOKEN_VAULT_CACHE=redis_url, TOKEN_VAULT_LOCAL_CACHE_TTL=5)
    client = alice_client(app, emu)
    assert client.get("/calendar").status_code == 200
    before = _redis_reads(redis_url)
    for _ in range(5):
        assert client.get("/calendar").status_code == 200
    assert _redis_reads(redis_url) == before
    strict = make_app(emu, TOKEN_VAULT_CACHE=redis_url, TOKEN_VAULT_LOCAL_CACHE_TTL=0)
    strict_client = strict.test_client()
    strict_client.set_cookie("session", held_cookie(client))
    before = _redis_reads(redis_url)
    for _ in range(5):
        assert strict_client.get("/calendar").status_code == 200
    # Each: one script call (two GETs in it), and the ended-session check's two GETs (one
    # pipeline: the session's and the user's records may lie in different hash slots).
    assert _redis_reads(redis_url) == before + 5 * 5
    assert emu.exchange_count() == 1


def test_a_delete_elsewhere_reaches_the_near_cache_within_its_ttl(
    emu: Emulator, redis_url: str
) -> None:
    clock = FakeClock()
    worker_a = make_app(emu, TOKEN_VAULT_CACHE=redis_url, TOKEN_VAULT_LOCAL_CACHE_TTL=5)
    worker_b = make_app(emu, TOKEN_VAULT_CACHE=redis_url, TOKEN_VAULT_LOCAL_CACHE_TTL=5)
    TokenVault.state(worker_a).set_clock(clock)
    TokenVault.state(worker_b).set_clock(clock)
    client_a = worker_a.test_client()
    sub = login_as(client_a, emu, "alice@example.com", {"google-oauth2": [CAL_READ]})
    client_b = worker_b.test_client()
    client_b.set_cookie("session", held_cookie(client_a))
    assert client_a.get("/calendar").status_code == 200
    assert client_b.get("/calendar").status_code == 200
    assert emu.exchange_count() == 1
    # Worker B drops the user's tokens (as logout or disconnect does).
    TokenVault.state(worker_b).cache.invalidate_user(sub)
    assert client_a.get("/calendar").status_code == 200
    assert emu.exchange_count() == 1  # A still serves from its near cache...
    clock.advance(6)
    assert client_a.get("/calendar").status_code == 200
    assert emu.exchange_count() == 2  # ...and no longer after the near cache's 5 s.


def test_after_a_reconsent_elsewhere_the_near_cache_does_not_refuse_the_new_scopes(
    emu: Emulator, redis_url: str
) -> None:
    worker_a = make_app(emu, TOKEN_VAULT_CACHE=redis_url, TOKEN_VAULT_LOCAL_CACHE_TTL=60)
    worker_b = make_app(emu, TOKEN_VAULT_CACHE=redis_url, TOKEN_VAULT_LOCAL_CACHE_TTL=60)
    client_a = worker_a.test_client()
    sub = login_as(client_a, emu, "alice@example.com", {"google-oauth2": [CAL_READ]})
    client_b = worker_b.test_client()
    client_b.set_cookie("session", held_cookie(client_a))
    assert client_b.get("/calendar/write").status_code == 302  # write scope not granted yet
    # The user consents to more through worker A (its callback drops the user's entries).
    emu.connect_account("alice@example.com", "google-oauth2", [CAL_READ, CAL_WRITE])
    TokenVault.state(worker_a).cache.invalidate_user(sub)
    assert client_a.get("/calendar/write").status_code == 200
    exchanges = emu.exchange_count()
    # Worker B's near cache still holds the narrower token, but it reads the shared one.
    assert client_b.get("/calendar/write").status_code == 200
    assert emu.exchange_count() == exchanges


# -- invalidation is exact: per-user generations ---------------------------------------------


def _token(name: str, lifetime: float = 3600) -> tuple[ProviderToken, float]:
    now = time.time()
    return ProviderToken(name, expires_at=now + lifetime, scopes=None, connection="c"), now


def test_concurrent_writes_then_a_disconnect_leave_nothing_served_on_a_file_cache(
    app: Flask, tmp_path: Path
) -> None:
    """25 tokens of one user written at once to a directory cache; after the drop, none is read."""
    state = TokenVault.state(app)
    store_dir = str(tmp_path / "cache")
    writer = make_cache_like(state, FileSystemCache(store_dir, threshold=10_000))
    slots = [Slot("auth0|ann", "google-oauth2", f"acct{i}@example.com", ()) for i in range(25)]
    barrier = threading.Barrier(len(slots))

    def write(slot: Slot) -> None:
        barrier.wait()
        writer.fetch_entry(slot, lambda: _token(f"token-{slot.login_hint}"))

    threads = [threading.Thread(target=write, args=(slot,)) for slot in slots]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Another process's view of the same directory sees every token...
    reader = make_cache_like(state, FileSystemCache(store_dir, threshold=10_000))
    assert all(reader.get(slot) is not None for slot in slots)
    writer.invalidate_user("auth0|ann")
    # ...and after the drop, neither process serves any of them.
    other = make_cache_like(state, FileSystemCache(store_dir, threshold=10_000))
    assert [s for s in slots if writer.get(s) or other.get(s)] == []


def make_cache_like(state: Any, backend: BaseCache) -> TokenCache:
    """A TokenCache with the app's keys over another backend (another process's cache)."""
    return TokenCache(
        CachelibStore(backend), state.crypto, state.clock, default_settings(local_cache_ttl=5.0)
    )


def _late_answer_app(emu: Emulator, **config: Any) -> Flask:
    app = make_app(emu, **config)

    @app.post("/forget")
    def forget() -> str:
        forget_provider_tokens()
        return "forgotten"

    return app


def _exchange_during_a_drop(emu: Emulator, slow: Flask, dropper: Flask) -> FlaskClient:
    """Start an exchange on ``slow`` that Auth0 answers late; drop the user's tokens meanwhile."""
    client = slow.test_client()
    login_as(client, emu, "lee@example.com", {"google-oauth2": [CAL_READ]})
    emu.add_fault("token:exchange", status=0, delay=1.0)
    statuses: list[int] = []
    in_flight = threading.Thread(
        target=lambda: statuses.append(client.get("/calendar").status_code)
    )
    in_flight.start()
    time.sleep(0.4)  # the exchange is under way at the emulator
    other = dropper.test_client()
    other.set_cookie("session", held_cookie(client))
    assert other.post("/forget").status_code == 200
    in_flight.join(10)
    assert statuses == [200]  # the request that asked still gets its answer
    return client


def test_an_exchange_answer_arriving_after_a_drop_is_not_served_in_process(emu: Emulator) -> None:
    app = _late_answer_app(emu)
    client = _exchange_during_a_drop(emu, app, app)
    assert client.get("/calendar").status_code == 200
    assert emu.exchange_count() == 2  # the late answer was not kept: a new exchange was made


def test_an_exchange_answer_arriving_after_a_drop_elsewhere_is_not_served_on_redis(
    emu: Emulator, redis_url: str
) -> None:
    worker_a = _late_answer_app(emu, TOKEN_VAULT_CACHE=redis_url)
    worker_b = _late_answer_app(emu, TOKEN_VAULT_CACHE=redis_url)
    client = _exchange_during_a_drop(emu, worker_a, worker_b)
    assert client.get("/calendar").status_code == 200  # on worker A, near cache included
    other = worker_b.test_client()
    other.set_cookie("session", held_cookie(client))
    assert other.get("/calendar").status_code == 200
    assert emu.exchange_count() == 2
