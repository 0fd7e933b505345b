"""A logout or disconnect the cache cannot take now is kept, checked here, and written later."""

from __future__ import annotations

from flask_token_vault._cache import Slot, TokenCache
from flask_token_vault._clock import Clock
from flask_token_vault._config import default_settings
from flask_token_vault._crypto import Crypto
from flask_token_vault._exchange import ProviderToken
from flask_token_vault._revocation import SessionRevocations
from flask_token_vault._store import MemoryStore
from flask_token_vault_pytest.testing import FakeClock


class _FlakyStore(MemoryStore):
    """A shared store that refuses every call while ``down`` (a failover in progress)."""

    shared = True

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise ConnectionError("no master")

    def set(self, key: str, value: bytes, ttl: int) -> None:
        self._check()
        super().set(key, value, ttl)

    def read(self, key: str) -> object:  # type: ignore[override]
        self._check()
        return super().read(key)


def _revocations(store: MemoryStore, clock: Clock) -> SessionRevocations:
    return SessionRevocations(
        store, Crypto([b"k" * 32]), clock, namespace="t", record_ttl=3600, local_ttl=0
    )


def test_a_logout_during_an_outage_holds_here_and_lands_for_everyone_later() -> None:
    fake = FakeClock(1_000_000.0)
    clock = Clock(fake)
    store = _FlakyStore(clock)
    here, elsewhere = _revocations(store, clock), _revocations(store, clock)
    signed_in = clock.time() - 60
    store.down = True
    assert here.end(sid="sid-1") is False  # not durable yet: the caller says so
    assert here.ended("alice", "sid-1", signed_in)  # but this process refuses the session now
    assert not here.ended("bob", "sid-2", signed_in)
    store.down = False
    fake.advance(1)
    assert here.ended("alice", "sid-1", signed_in)  # this request writes the pending end
    assert elsewhere.ended("alice", "sid-1", signed_in)  # another process now sees it
    assert not here._pending


def test_a_disconnect_during_an_outage_reaches_the_store_before_the_next_read() -> None:
    fake = FakeClock(1_000_000.0)
    clock = Clock(fake)
    store = _FlakyStore(clock)
    cache = TokenCache(store, Crypto([b"k" * 32]), clock, default_settings(), namespace="t")
    slot = Slot("alice", "google-oauth2", None, ())
    old = ProviderToken("OLD", clock.time() + 3600, None, "google-oauth2")
    cache.fetch_entry(slot, lambda: (old, clock.time()))
    generation = cache.generation("alice")
    store.down = True
    cache.invalidate_user("alice")
    store.down = False
    fake.advance(1)
    new = ProviderToken("NEW", clock.time() + 3600, None, "google-oauth2")
    assert cache.fetch_entry(slot, lambda: (new, clock.time())).token.access_token == "NEW"
    assert cache.generation("alice") != generation
