"""Sessions, caches and links under races and replays: each case once let a user down."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from flask import jsonify

from flask_token_vault import ConfigurationError, TokenVault
from flask_token_vault._accounts import my_connected_accounts
from flask_token_vault._cache import CachedToken, Slot, TokenCache
from flask_token_vault._clock import Clock
from flask_token_vault._config import default_settings
from flask_token_vault._crypto import Crypto
from flask_token_vault._exchange import ProviderToken
from flask_token_vault._session import SESSION_KEY, make_record, read_user
from flask_token_vault._state import build_store
from flask_token_vault._store import MemoryStore
from flask_token_vault_emulator import Emulator
from flask_token_vault_pytest.testing import login_as
from tests.helpers.apps import CAL_READ, app_clock, make_app
from tests.helpers.browser import browser_login, csrf, session_cookie, whoami


def _put(client: Any, state: Any, sid: str, refresh_token: str) -> None:
    with client.session_transaction() as session:
        session.clear()
        session[SESSION_KEY] = make_record(state, {"sub": "auth0|alice", "sid": sid}, refresh_token)


def test_a_copy_from_before_a_logout_stays_ended_after_a_new_sign_in_with_the_same_sid(
    emu: Emulator,
) -> None:
    app = make_app(emu)
    clock = app_clock(app)
    state = TokenVault.state(app)
    old, new = app.test_client(), app.test_client()
    _put(old, state, "S1", "rt-old")  # the copy a thief keeps
    clock.advance(10)
    state.revocations.end(sid="S1")  # the user signs out
    clock.advance(10)
    _put(new, state, "S1", "rt-new")  # and signs in again in the same Auth0 session
    assert whoami(new) == "auth0|alice"
    assert whoami(old) is None


def test_replaying_an_ended_cookie_costs_the_users_live_sessions_nothing(emu: Emulator) -> None:
    app = make_app(emu)
    victim = app.test_client()
    assert browser_login(victim, "/calendar").status_code == 200
    old = session_cookie(victim)
    assert victim.post("/auth/logout", data={"csrf_token": csrf(victim)}).status_code == 302
    assert browser_login(victim, "/calendar").status_code == 200
    sub = whoami(victim)
    before = emu.exchange_count(sub)
    for _ in range(5):
        attacker = app.test_client()
        attacker.set_cookie("session", old or "")
        assert whoami(attacker) is None
        assert victim.get("/calendar").status_code == 200
    assert emu.exchange_count(sub) == before


def _hammer(work: Callable[[int], None], threads: int = 8, seconds: float = 3.0) -> list[str]:
    errors: list[str] = []
    stop = threading.Event()

    def run(start: int) -> None:
        i = start
        while not stop.is_set():
            try:
                work(i)
            except Exception as exc:  # the race shows as an exception in some thread
                errors.append(repr(exc))
                stop.set()
            i += 7

    workers = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    for worker in workers:
        worker.start()
    stop.wait(seconds)
    stop.set()
    for worker in workers:
        worker.join()
    return errors


def test_kept_session_records_are_bounded_safely_under_threads(emu: Emulator) -> None:
    app = make_app(emu, TOKEN_VAULT_LOCAL_CACHE_MAX_USERS=2)
    state = TokenVault.state(app)
    records = [
        {SESSION_KEY: make_record(state, {"sub": f"auth0|u{i}"}, f"rt-{i}")} for i in range(64)
    ]
    assert _hammer(lambda i: read_user(state, records[i % 64])) == []  # type: ignore[arg-type]
    assert len(state.sessions_seen) <= 2


def test_the_near_cache_is_bounded_safely_under_threads() -> None:
    clock = Clock()
    cache = TokenCache(
        MemoryStore(clock), Crypto([b"k" * 32]), clock, default_settings(local_cache_max_users=2)
    )
    token = ProviderToken("x", clock.time() + 3600, None, "c")
    cached = CachedToken(token, clock.monotonic() + 100)
    assert _hammer(lambda i: cache._near_put(Slot(f"u{i % 64}", "c", None, ()), cached)) == []
    assert len(cache._near) <= 2


class _LogoutDuringWrite(MemoryStore):
    """A logout in another thread lands while the exchange's answer is being stored."""

    cache: TokenCache | None = None

    def set(self, key: str, value: bytes, ttl: int) -> None:
        super().set(key, value, ttl)
        if "}:t:" in key and self.cache is not None:
            cache, self.cache = self.cache, None
            cache.invalidate_user("alice")


def test_a_token_invalidated_while_it_is_stored_is_not_kept_near() -> None:
    clock = Clock()
    store = _LogoutDuringWrite(clock)
    cache = TokenCache(store, Crypto([b"k" * 32]), clock, default_settings())
    store.cache = cache
    slot = Slot("alice", "google-oauth2", None, ())
    old = ProviderToken("OLD", clock.time() + 3600, None, "google-oauth2")
    cache.fetch_entry(slot, lambda: (old, clock.time()))
    assert cache.near(slot) is None


def test_a_late_not_connected_answer_does_not_hide_a_new_connection(emu: Emulator) -> None:
    app = make_app(emu)
    state = TokenVault.state(app)
    client = app.test_client()
    sub = login_as(client, emu)  # signed in, nothing connected yet
    real = state.exchanger.exchange

    def exchange(*args: Any, **kwargs: Any) -> ProviderToken:
        # The emulator cannot time this: the user finishes connecting in another tab while
        # Auth0's "not connected" answer to this request is on its way back.
        try:
            return real(*args, **kwargs)
        finally:
            emu.connect_account("alice@example.com", "google-oauth2", [CAL_READ])
            state.cache.invalidate_user(sub)
            state.exchanger.exchange = real  # type: ignore[method-assign]

    state.exchanger.exchange = exchange  # type: ignore[method-assign]
    assert client.get("/calendar").status_code == 302  # sent to connect: right at that time
    assert client.get("/calendar").status_code == 200


def test_my_account_tokens_are_kept_per_request_and_user(emu: Emulator) -> None:
    app = make_app(emu, TOKEN_VAULT_CONNECT_FLOW="connected_accounts")

    @app.get("/accounts")
    def accounts() -> Any:
        return jsonify([a.connection for a in my_connected_accounts()])

    alice, bob = app.test_client(), app.test_client()
    login_as(alice, emu, "alice@example.com", {"google-oauth2": [CAL_READ]})
    login_as(bob, emu, "bob@example.com")
    with app.app_context():  # one app context around several requests, as test fixtures do
        assert alice.get("/accounts").get_json() == ["google-oauth2"]
        assert bob.get("/accounts").get_json() == []


def test_a_non_ascii_digit_in_a_connect_link_is_a_400(emu: Emulator) -> None:
    app = make_app(emu)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    answer = app.test_client().get(
        f"/auth/connect/google-oauth2?scope={quote(CAL_READ)}&sig=abc&exp=%C2%B2"
    )
    assert answer.status_code == 400


def test_a_cache_url_with_a_password_stays_out_of_the_error() -> None:
    with pytest.raises(ConfigurationError, match="mongodb://") as raised:
        build_store(default_settings(cache="mongodb://default:Sup3rS3cret@cache.example.com/0"))
    assert "Sup3rS3cret" not in str(raised.value)


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://app:Sup3rS3cret@127.0.0.1:1/tv",
        "redis+cluster://app:Sup3rS3cret@127.0.0.1:1,127.0.0.1:2",
        "redis+cluster://app:Sup3rS3cret@no-port-here",
        "valkeys://app:Sup3rS3cret@cache.example.com:6380/0",
    ],
)
def test_a_store_url_password_stays_out_of_reprs_and_errors(url: str) -> None:
    """Built or refused, a store from a URL with a password never shows the password."""
    try:
        store = build_store(default_settings(cache=url))
    except ConfigurationError as exc:
        assert "Sup3rS3cret" not in str(exc) and "Sup3rS3cret" not in repr(exc)
        return
    assert "Sup3rS3cret" not in repr(store)
    assert "Sup3rS3cret" not in str(store)


def test_a_parsed_store_url_keeps_its_password_out_of_its_repr() -> None:
    from flask_token_vault._redis import parse_url

    address = parse_url("redis+sentinel://app:Sup3rS3cret@127.0.0.1:26379/tv/0")
    assert address.password == "Sup3rS3cret"
    assert "Sup3rS3cret" not in repr(address)
