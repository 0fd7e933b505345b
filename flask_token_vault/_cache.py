"""Provider-token cache: keyed hashes, encrypted values, generations, one exchange at a time.

(Layer: core, above the store and the exchange's :class:`ProviderToken`; knows nothing of Flask.)

* A token is found by its :class:`Slot`: the user, the connection, the account hint, the
  requested scopes and how it was obtained (a session's refresh token, or an API caller's access
  token: Auth0 authorizes each exchange for its own client). Its store key is an HMAC of the
  slot and of the cache's *namespace* (the app's tenant and client, so two apps sharing a store
  and a secret never meet), with a key derived from the app's secret, followed by the user's
  current *generation*: no user id or token ever appears in a key. Every key of a user carries
  one hash tag (an HMAC of the user), so they share a Redis Cluster slot and one round trip
  (a script that declares both keys) reads the generation and the token under it.
* Each user has a generation, a random value in the store that
  :meth:`TokenCache.invalidate_user` replaces: every key of the user's earlier tokens (and of
  Auth0's "not connected" answers, :meth:`TokenCache.known_absent`) is out of reach at once, on
  every backend, with no index to keep in step; old entries expire on their own.
* Values are the token encrypted with the store key as associated data before they reach the
  store. TTL is the token's lifetime minus a leeway clamped to a quarter of that lifetime, so a
  short-lived token is never expired on arrival, and never 0 (cachelib's "forever").
* Local lifetimes run on the monotonic clock (from when the exchange started, or the earlier
  of the wall-clock expiry and the store's own TTL for a token read from the store), so a step
  of the wall clock never keeps a token past its life here.
* A near cache in the process answers warm lookups without a round trip: exact with an
  in-process store, at most ``local_ttl`` seconds old with a shared one.
* Single flight: in one process, threads asking for the same slot wait for one leader; across
  processes sharing a store, a lock (``add`` with a TTL of the holder's own deadline) does the
  same. A waiter stops waiting at the lock timeout or at its own deadline, whichever comes
  first (counted from when it started looking), and exchanges itself rather than fail; when the
  store cannot be read or locked, it exchanges at once.
"""

from __future__ import annotations

import json
import logging
import math
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import NamedTuple

from ._clock import Clock
from ._config import Settings
from ._crypto import Crypto, InvalidToken
from ._exchange import ProviderToken
from ._store import (
    NO_GENERATION,
    Entry,
    PendingWrites,
    Store,
    StoreUnavailable,
    drop_oldest,
    generation_of,
    in_slot,
)

log = logging.getLogger("flask_token_vault")

#: A user's generation outlives any token stored under it (token TTLs are capped below it).
_GENERATION_TTL = 7 * 86_400
_MAX_TOKEN_TTL = 86_400
# A lock outlives its holder's deadline by this much (its store calls before and after).
_LOCK_MARGIN = 1.0


class Slot(NamedTuple):
    """What identifies one cached provider token."""

    #: The Auth0 user id.
    sub: str
    #: The connection name.
    connection: str
    #: The account hint, if any.
    login_hint: str | None
    #: The requested scopes, sorted.
    scopes: tuple[str, ...]
    #: How the token is obtained: ``"session"`` (refresh token) or ``"api"`` (access token).
    via: str = "session"


class CachedToken(NamedTuple):
    """A token and the monotonic time until which this process may use it."""

    #: The provider token.
    token: ProviderToken
    #: :meth:`Clock.monotonic <flask_token_vault._clock.Clock.monotonic>` time at which it stops
    #: being usable (its expiry less the leeway).
    until: float


def effective_leeway(lifetime: float, leeway: float) -> float:
    """Return the leeway to apply to a token living ``lifetime`` seconds (at most a quarter)."""
    return max(0.0, min(leeway, lifetime / 4))


class _Flight:
    __slots__ = ("done", "error", "result", "stale")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: CachedToken | None = None
        self.error: BaseException | None = None
        self.stale = False


class _Near(NamedTuple):
    """A near-cache entry: kept until ``keep`` (monotonic), usable until ``cached.until``."""

    keep: float
    cached: CachedToken


#: Produces a token and the wall-clock time its exchange started.
Producer = Callable[[], tuple[ProviderToken, float]]


class TokenCache:
    """Cache provider tokens for one app, safely shared by threads, processes and machines."""

    def __init__(
        self,
        store: Store,
        crypto: Crypto,
        clock: Clock,
        settings: Settings,
        *,
        namespace: str = "",
    ) -> None:
        self.store = store
        #: What every key is bound to besides the user: the tenant and client of the app.
        self.namespace = namespace
        self.crypto = crypto
        self.clock = clock
        self.leeway = settings.cache_leeway
        self.lock_timeout = settings.lock_timeout
        self.local_ttl = settings.local_cache_ttl
        #: How many users' tokens the near cache keeps at most (the oldest user goes first).
        self.max_users = max(1, settings.local_cache_max_users)
        #: How long one exchange may take (the transport's deadline): the lock's TTL follows it,
        #: and a waiter never waits past it.
        self.deadline = settings.deadline
        # Near cache: user -> slot -> entry (monotonic times).
        self._near: dict[str, dict[Slot, _Near]] = {}
        self._prefixes: dict[Slot, str] = {}
        self._flights: dict[Slot, _Flight] = {}
        self._flights_lock = threading.Lock()
        # Generations the store has not taken yet, written again before this process next reads
        # the store, until they land.
        self._pending = PendingWrites(
            clock, "new generations", lambda key, value: self.store.set(key, value, _GENERATION_TTL)
        )

    def __repr__(self) -> str:
        return f"TokenCache({self.store!r})"

    @property
    def shared(self) -> bool:
        """Return whether the store is shared between processes."""
        return self.store.shared

    # keys -----------------------------------------------------------------------------------
    def _user_key(self, sub: str, kind: str) -> str:
        """Return a key of the user's: all of them share one hash tag (one cluster slot)."""
        return in_slot(self.crypto.keyed_hash("user", self.namespace, sub), kind)

    def _generation_key(self, sub: str) -> str:
        return self._user_key(sub, "g")

    def _slot_prefix(self, slot: Slot) -> str:
        """Return the part of the slot's store keys that does not change: an HMAC, and ``:``."""
        found = self._prefixes.get(slot)
        if found is None:
            parts = [
                self.namespace,
                slot.sub,
                slot.connection,
                slot.login_hint or "",
                " ".join(slot.scopes),
            ]
            if slot.via != "session":
                parts.append(slot.via)
            found = self._user_key(slot.sub, "t:" + self.crypto.keyed_hash("token", *parts) + ":")
            if len(self._prefixes) >= 4096:
                self._prefixes.clear()
            self._prefixes[slot] = found
        return found

    def generation(self, sub: str) -> str | None:
        """Return the user's current generation, or ``None`` when the store cannot be read."""
        try:
            raw = self.store.get(self._generation_key(sub))
        except Exception as exc:  # a cache outage must not take the app down
            _failed("read", exc)
            return None
        return generation_of(raw)

    def key_for(self, slot: Slot) -> str:
        """Return the store key of ``slot`` under the user's current generation."""
        return self._slot_prefix(slot) + (self.generation(slot.sub) or NO_GENERATION)

    def _read_current(self, slot: Slot) -> tuple[str | None, CachedToken | None]:
        """Return the user's generation and the slot's usable token under it, in one read."""
        prefix = self._slot_prefix(slot)
        try:
            generation, entry = self.store.get_in_generation(self._generation_key(slot.sub), prefix)
        except Exception as exc:  # a cache outage must not take the app down
            _failed("read", exc)
            return None, None
        return generation, self._decode(prefix + generation, entry)

    # values ---------------------------------------------------------------------------------
    def _usable_life(self, lifetime: float) -> float:
        return lifetime - effective_leeway(lifetime, self.leeway)

    def _encode(self, key: str, token: ProviderToken, issued_at: float) -> bytes:
        data = token.to_dict()
        data["issued_at"] = issued_at
        return self.crypto.seal_cache(json.dumps(data, separators=(",", ":")).encode(), key)

    def _decode(self, key: str, entry: Entry | None) -> CachedToken | None:
        """Return the token while usable: until its expiry less the leeway, or the store's TTL."""
        if entry is None:
            return None
        try:
            data = json.loads(self.crypto.open_cache(entry.value, key))
            token = ProviderToken.from_dict(data)
            issued_at = float(data.get("issued_at", token.expires_at - 3600))
        except (InvalidToken, ValueError, KeyError, TypeError):
            log.info("ignored an unreadable cache entry")
            return None
        left = issued_at + self._usable_life(token.expires_at - issued_at) - self.clock.time()
        if entry.ttl is not None:
            left = min(left, entry.ttl)
        if not left > 0:
            return None
        return CachedToken(token, self.clock.monotonic() + left)

    def ttl_for(self, life: float) -> int:
        """Return the store TTL for a token usable ``life`` more seconds: whole, never 0."""
        return max(1, min(_MAX_TOKEN_TTL, math.floor(life)))

    # near cache -----------------------------------------------------------------------------
    def _near_get(self, slot: Slot) -> CachedToken | None:
        entries = self._near.get(slot.sub)
        entry = entries.get(slot) if entries is not None else None
        if entry is None:
            return None
        if self.clock.monotonic() < entry.keep:
            return entry.cached
        entries.pop(slot, None)  # type: ignore[union-attr]
        return None

    def _near_put(
        self, slot: Slot, cached: CachedToken, unless_stale: _Flight | None = None
    ) -> None:
        """Keep a token in this process's near cache.

        With an in-process store the near cache is exact, so it keeps the token for its whole
        usable life. With a shared store it keeps it ``local_ttl`` seconds at most: a change made
        by another process (logout, disconnect) reaches this one within that time.
        """
        now = self.clock.monotonic()
        keep = cached.until
        if self.shared:
            keep = min(keep, now + self.local_ttl)
        if keep <= now:
            return
        with self._flights_lock:  # every change to the near cache: readers need no lock
            if unless_stale is not None and unless_stale.stale:
                return  # invalidated between the exchange and now (checked under the lock)
            entries = self._near.get(slot.sub)
            if entries is None:
                if len(self._near) >= self.max_users:
                    # Drop the oldest user (insertion order): a bound on memory, not an LRU.
                    drop_oldest(self._near)
                entries = self._near.setdefault(slot.sub, {})
            entries[slot] = _Near(keep, cached)

    def forget_local(self, slot: Slot) -> bool:
        """Drop ``slot`` from the near cache; return whether a shared read may differ.

        Used when a near-cached token lacks scopes: another process may have stored a newer
        token (after a re-consent) that this process has not read yet.
        """
        entries = self._near.get(slot.sub)
        return self.shared and entries is not None and entries.pop(slot, None) is not None

    # operations -----------------------------------------------------------------------------
    def get(self, slot: Slot) -> ProviderToken | None:
        """Return the cached token of ``slot`` if it is still usable (near cache, then store)."""
        near = self._near_get(slot)
        if near is not None:
            return near.token
        _, found = self._read_current(slot)
        if found is None:
            return None
        self._near_put(slot, found)
        return found.token

    def _read(self, key: str) -> CachedToken | None:
        try:
            entry = self.store.read(key)
        except Exception as exc:  # a cache outage must not take the app down
            _failed("read", exc)
            return None
        return self._decode(key, entry)

    def _write(self, key: str, token: ProviderToken, issued_at: float, life: float) -> None:
        try:
            self.store.set(key, self._encode(key, token, issued_at), self.ttl_for(life))
        except Exception as exc:
            _failed("write", exc)

    def drop(self, slot: Slot) -> None:
        """Forget one cached token (before a forced refresh, or after a failed exchange)."""
        entries = self._near.get(slot.sub)
        if entries is not None:
            entries.pop(slot, None)
        try:
            self.store.delete(self.key_for(slot))
        except Exception as exc:
            _failed("delete", exc)

    def reject(self, sub: str, connection: str, access_token: str, slots: Iterable[Slot]) -> int:
        """Drop a token the provider refused, here and in the shared store; return slots dropped.

        ``slots`` are the slots the caller knows the token came from; the near cache adds the
        user's other slots of ``connection`` that hold the same token. A store entry is deleted
        only while it still holds that token (another process may already have stored a new
        one). When no slot is known at all, the user's whole generation is replaced instead.
        """
        found = set(slots)
        entries = self._near.get(sub) or {}
        for slot, near in list(entries.items()):
            if slot.connection == connection and near.cached.token.access_token == access_token:
                found.add(slot)
        if not found:
            self.invalidate_user(sub)
            return 0
        for slot in found:
            entries.pop(slot, None)
            prefix = self._slot_prefix(slot)
            try:
                generation, entry = self.store.get_in_generation(self._generation_key(sub), prefix)
                cached = self._decode(prefix + generation, entry)
                if (
                    entry is not None
                    and cached is not None
                    and cached.token.access_token == access_token
                ):
                    self.store.release(prefix + generation, entry.value)
            except Exception as exc:
                _failed("delete", exc)
        return len(found)

    def invalidate_user(self, sub: str) -> None:
        """Make every cached token of a user unreachable, here and in every process.

        Replaces the user's generation in the store, under the key derived from each secret the
        app accepts, and empties this process's near cache for them; exchanges of theirs still
        in flight here keep their answer to themselves.
        """
        with self._flights_lock:
            self._near.pop(sub, None)
            for slot, flight in self._flights.items():
                if slot.sub == sub:
                    flight.stale = True
        generation = secrets.token_hex(8).encode()
        for digest in self.crypto.keyed_hashes("user", self.namespace, sub):
            self._pending.put(in_slot(digest, "g"), generation)
        self._pending.flush()

    # "not connected" answers ---------------------------------------------------------------
    def _absent_prefix(self, sub: str, connection: str, login_hint: str | None) -> str:
        digest = self.crypto.keyed_hash(
            "not-connected", self.namespace, sub, connection, login_hint or ""
        )
        return self._user_key(sub, "n:" + digest + ":")

    def known_absent(
        self, sub: str, connection: str, login_hint: str | None
    ) -> tuple[bool, str | None]:
        """Return whether Auth0 said lately that the user has no account at ``connection``.

        Also returns the user's generation read with it (``None`` when the store could not be
        read), for :meth:`remember_absent`. The answer is kept under that generation, so a new
        connection (which replaces the generation) forgets it at once, in every process.
        """
        try:
            generation, found = self.store.get_in_generation(
                self._generation_key(sub), self._absent_prefix(sub, connection, login_hint)
            )
        except Exception as exc:  # a cache outage must not take the app down
            _failed("read", exc)
            return False, None
        return found is not None, generation

    def remember_absent(
        self,
        sub: str,
        connection: str,
        login_hint: str | None,
        ttl: float,
        generation: str | None,
    ) -> None:
        """Remember for ``ttl`` seconds that the user has no account at ``connection``.

        Kept under ``generation``, the one read before asking Auth0 (:meth:`known_absent`):
        an answer that arrives after the user connected (a new generation) is kept where no
        one reads it.
        """
        if ttl <= 0 or generation is None:
            return
        try:
            self.store.set(
                self._absent_prefix(sub, connection, login_hint) + generation,
                b"1",
                max(1, math.ceil(ttl)),
            )
        except Exception as exc:
            _failed("write", exc)

    # single flight --------------------------------------------------------------------------
    def near(self, slot: Slot) -> CachedToken | None:
        """Return the slot's token from this process's near cache (none while one is on its way).

        The warm path: no store round trip, no hashing, no lock.
        """
        if self._flights and slot in self._flights:
            return None
        return self._near_get(slot)

    def fetch_entry(self, slot: Slot, produce: Producer, *, refresh: bool = False) -> CachedToken:
        """Return the cached token of ``slot``, or ``produce`` one, once for all who ask at once.

        Also says until when the token is usable here. What ``produce`` returns is stored here
        (callers do not write it back). With ``refresh``, the cached token is dropped and a new
        one produced.
        """
        if refresh:
            self.drop(slot)
        else:
            near = self.near(slot)  # none while an exchange is under way here: join it instead
            if near is not None:
                return near
        started = self.clock.monotonic()
        if self._pending.due():
            self._pending.flush()
        with self._flights_lock:
            flight = self._flights.get(slot)
            leader = flight is None
            if flight is None:
                flight = self._flights[slot] = _Flight()
        if not leader:
            # The leader is bounded: its lock wait, its exchange, and a few store timeouts.
            flight.done.wait(self.lock_timeout + self.deadline + 10)
            if flight.error is not None:
                raise flight.error
            if flight.result is not None:
                return flight.result
            return self.fetch_entry(slot, produce)
        try:
            flight.result = self._lead(slot, produce, flight, refresh, started)
            return flight.result
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._flights_lock:
                self._flights.pop(slot, None)
            flight.done.set()

    def _lead(
        self, slot: Slot, produce: Producer, flight: _Flight, refresh: bool, started: float
    ) -> CachedToken:
        generation, found = self._read_current(slot)
        key = self._slot_prefix(slot) + (generation or NO_GENERATION)
        if found is None or refresh:
            if not self.shared or generation is None:
                return self._produce(slot, key, generation, produce, flight)
            with self.lock(key) as acquired:
                if acquired:
                    # Another process may have filled the cache between our read and our lock.
                    found = None if refresh else self._read(key)
                else:
                    found = self._wait_for_holder(
                        key, started + min(self.lock_timeout, self.deadline)
                    )
                    if found is None:
                        log.info("lock wait ended without a cached token; exchanging")
                if found is None:
                    return self._produce(slot, key, generation, produce, flight)
        self._near_put(slot, found)
        return found

    def _produce(
        self,
        slot: Slot,
        key: str,
        generation: str | None,
        produce: Producer,
        flight: _Flight,
    ) -> CachedToken:
        started = self.clock.monotonic()
        try:
            token, issued_at = produce()
        except BaseException:
            self.drop(slot)
            raise
        # Measured from the monotonic start of the exchange: a wall-clock step changes nothing.
        cached = CachedToken(token, started + self._usable_life(token.expires_at - issued_at))
        if flight.stale:
            return cached  # invalidated while in flight: the answer is this caller's alone
        if generation is not None:
            self._write(key, token, issued_at, cached.until - self.clock.monotonic())
            if self.shared and self.generation(slot.sub) != generation:
                return cached  # invalidated elsewhere while in flight
        self._near_put(slot, cached, unless_stale=flight)
        return cached

    def _wait_for_holder(self, key: str, until: float) -> CachedToken | None:
        """Wait for another process's exchange until ``until`` (monotonic), reading the store."""
        clock = self.clock
        delay = 0.01
        while True:
            left = until - clock.monotonic()
            if left <= 0:
                return None
            clock.sleep(min(delay, left))
            delay = min(delay * 1.5, 0.1)
            try:
                entry = self.store.read(key)
                if entry is None and not self.store.exists(self._lock_key(key)):
                    # The holder let go: it may have stored its token just before.
                    entry = self.store.read(key)
                    return self._decode(key, entry)
            except Exception as exc:
                _failed("read", exc)
                return None  # the store cannot tell us anything: exchange now
            found = self._decode(key, entry)
            if found is not None:
                return found

    def _lock_key(self, key: str) -> str:
        # "tv:{tag}:t:<hmac>:<generation>" -> "tv:{tag}:l:<hmac>:<generation>": one lock per
        # slot, in the user's hash slot.
        tag, _, rest = key.partition("}:t:")
        return f"{tag}}}:l:{rest}"

    @contextmanager
    def lock(self, key: str) -> Iterator[bool]:
        """Take the cross-process lock of a store key; yield whether this process holds it.

        The lock lives as long as its holder may need it (the exchange's deadline); only its
        holder can release it. When the store cannot take it, yield ``True``: the caller
        exchanges at once instead of waiting for a lock nobody holds.
        """
        lock_key = self._lock_key(key)
        token = secrets.token_hex(16).encode()
        try:
            acquired = self.store.add(lock_key, token, self.deadline + _LOCK_MARGIN)
        except Exception as exc:
            _failed("lock", exc)
            yield True
            return
        try:
            yield acquired
        finally:
            if acquired:
                try:
                    self.store.release(lock_key, token)
                except Exception as exc:
                    _failed("unlock", exc)


def _failed(what: str, exc: Exception) -> None:
    """Log a failed store call (quietly while the breaker is open: it logged once already)."""
    if isinstance(exc, StoreUnavailable):
        log.debug("cache %s skipped: the cache is not being asked for a while", what)
    else:
        log.warning("cache %s failed (%s); going on without it", what, type(exc).__name__)
