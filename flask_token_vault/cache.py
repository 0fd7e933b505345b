"""Provider-token cache: keyed hashes, encrypted values, generations, one exchange at a time.

(Layer: core, above the store and the exchange's :class:`ProviderToken`; knows nothing of Flask.)

* A token is found by its :class:`Slot`: the user, the connection, the account hint, the
  requested scopes and how it was obtained (a session's refresh token, or an API caller's access
  token: Auth0 authorizes each exchange for its own client). Its store key is an HMAC of the
  slot and of the cache's *namespace* (the app's tenant and client, so two apps sharing a store
  and a secret never meet), with a key derived from the app's secret, followed by the user's
  current *generation*: no user id or token ever appears in a key. One round trip reads the
  generation and the token under it.
* Auth0's answer "no account at this connection" is kept a short while under the generation
  too (:meth:`TokenCache.known_absent`), so connecting forgets it at once.
* Each user has a generation, a random value in the store. Logout, disconnect and
  :meth:`TokenCache.invalidate_user` replace it, so every key of the user's earlier tokens is
  out of reach at once, on every backend, with no index to keep in step; old entries expire on
  their own. An exchange still in flight when the generation changes stores its answer under the
  old generation, where nothing reads it.
* Values are the token encrypted with the store key as associated data before they reach the
  store. TTL is the token's lifetime minus a leeway clamped to a quarter of that lifetime, so a
  short-lived token is never expired on arrival, and never 0 (cachelib's "forever").
* A near cache in the process answers warm lookups without a round trip: exact with an
  in-process store, at most ``local_ttl`` seconds old with a shared one. Its lifetimes run on the
  monotonic clock, so a step of the wall clock does not stretch them.
* Single flight: in one process, threads asking for the same slot wait for one leader; across
  processes sharing a store, a lock (``add`` with a TTL) does the same, and a waiter gives up
  waiting at a deadline and exchanges itself rather than fail.
"""

from __future__ import annotations

import json
import logging
import math
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NamedTuple

from ._clock import Clock
from .crypto import Crypto, InvalidToken
from .exchange import ProviderToken
from .store import NO_GENERATION, Store

__all__ = ["Slot", "TokenCache", "effective_leeway"]

log = logging.getLogger("flask_token_vault")

#: A user's generation outlives any token stored under it (token TTLs are capped below it).
_GENERATION_TTL = 7 * 86_400
_MAX_TOKEN_TTL = 86_400
_MAX_NEAR_USERS = 10_000


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


def effective_leeway(lifetime: float, leeway: float) -> float:
    """Return the leeway to apply to a token living ``lifetime`` seconds (at most a quarter)."""
    return max(0.0, min(leeway, lifetime / 4))


class _Flight:
    __slots__ = ("done", "error", "result", "stale")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: ProviderToken | None = None
        self.error: BaseException | None = None
        self.stale = False


#: Produces a token and the wall-clock time its exchange started.
Producer = Callable[[], tuple[ProviderToken, float]]


class TokenCache:
    """Cache provider tokens for one app, safely shared by threads, processes and machines."""

    def __init__(
        self,
        store: Store,
        crypto: Crypto,
        clock: Clock,
        *,
        leeway: float = 60.0,
        lock_timeout: float = 10.0,
        local_ttl: float = 5.0,
        namespace: str = "",
    ) -> None:
        self.store = store
        #: What every key is bound to besides the user: the tenant and client of the app.
        self.namespace = namespace
        self.crypto = crypto
        self.clock = clock
        self.leeway = leeway
        self.lock_timeout = lock_timeout
        self.local_ttl = local_ttl
        # Near cache: user -> slot -> (use until, on the monotonic clock; token).
        self._near: dict[str, dict[Slot, tuple[float, ProviderToken]]] = {}
        self._prefixes: dict[Slot, str] = {}
        self._flights: dict[Slot, _Flight] = {}
        self._flights_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TokenCache({self.store!r})"

    @property
    def shared(self) -> bool:
        """Return whether the store is shared between processes."""
        return self.store.shared

    # keys -----------------------------------------------------------------------------------
    def _generation_key(self, sub: str) -> str:
        return "tv:g:" + self.crypto.keyed_hash("generation", self.namespace, sub)

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
            found = "tv:t:" + self.crypto.keyed_hash("token", *parts) + ":"
            if len(self._prefixes) >= 4096:
                self._prefixes.clear()
            self._prefixes[slot] = found
        return found

    def generation(self, sub: str) -> str | None:
        """Return the user's current generation, or ``None`` when the store cannot be read."""
        try:
            raw = self.store.get(self._generation_key(sub))
        except Exception as exc:  # a cache outage must not take the app down
            log.warning("cache read failed (%s); exchanging instead", type(exc).__name__)
            return None
        return raw.decode("ascii", "replace") if raw else NO_GENERATION

    def key_for(self, slot: Slot, generation: str | None = None) -> str:
        """Return the store key of ``slot`` under ``generation`` (default: the current one)."""
        if generation is None:
            generation = self.generation(slot.sub) or NO_GENERATION
        return self._slot_prefix(slot) + generation

    def _read_current(self, slot: Slot) -> tuple[str | None, tuple[ProviderToken, float] | None]:
        """Return the user's generation and the slot's usable token under it, in one read."""
        prefix = self._slot_prefix(slot)
        try:
            generation, raw = self.store.get_in_generation(self._generation_key(slot.sub), prefix)
        except Exception as exc:  # a cache outage must not take the app down
            log.warning("cache read failed (%s); exchanging instead", type(exc).__name__)
            return None, None
        return generation, self._decode(prefix + generation, raw)

    # values ---------------------------------------------------------------------------------
    def _usable_until(self, token: ProviderToken, issued_at: float) -> float:
        lifetime = token.expires_at - issued_at
        return token.expires_at - effective_leeway(lifetime, self.leeway)

    def _encode(self, key: str, token: ProviderToken, issued_at: float) -> bytes:
        data = token.to_dict()
        data["issued_at"] = issued_at
        return self.crypto.seal_cache(json.dumps(data, separators=(",", ":")).encode(), key)

    def _decode(self, key: str, raw: bytes | None) -> tuple[ProviderToken, float] | None:
        """Return the token and the wall-clock time it stops being usable, if it still is."""
        if raw is None:
            return None
        try:
            data = json.loads(self.crypto.open_cache(raw, key))
            token = ProviderToken.from_dict(data)
            issued_at = float(data.get("issued_at", token.expires_at - 3600))
        except (InvalidToken, ValueError, KeyError, TypeError):
            log.info("ignored an unreadable cache entry")
            return None
        usable_until = self._usable_until(token, issued_at)
        if not self.clock.time() < usable_until:
            return None
        return token, usable_until

    def ttl_for(self, token: ProviderToken, issued_at: float) -> int:
        """Return the store TTL in whole seconds: never 0, never past expiry minus leeway."""
        usable = self._usable_until(token, issued_at) - self.clock.time()
        return max(1, min(_MAX_TOKEN_TTL, math.floor(usable)))

    # near cache -----------------------------------------------------------------------------
    def _near_get(self, slot: Slot) -> ProviderToken | None:
        entries = self._near.get(slot.sub)
        entry = entries.get(slot) if entries is not None else None
        if entry is None:
            return None
        if self.clock.monotonic() < entry[0]:
            return entry[1]
        entries.pop(slot, None)  # type: ignore[union-attr]
        return None

    def _near_put(self, slot: Slot, token: ProviderToken, usable_until: float) -> None:
        """Keep a token in this process's near cache.

        With an in-process store the near cache is exact, so it keeps the token for its whole
        usable life. With a shared store it keeps it ``local_ttl`` seconds at most: a change made
        by another process (logout, disconnect) reaches this one within that time.
        """
        life = usable_until - self.clock.time()
        if self.shared:
            life = min(life, self.local_ttl)
        if life <= 0:
            return
        entries = self._near.get(slot.sub)
        if entries is None:
            if len(self._near) >= _MAX_NEAR_USERS:
                # Drop the oldest user (insertion order): a bound on memory, not an LRU.
                self._near.pop(next(iter(self._near)), None)
            entries = self._near.setdefault(slot.sub, {})
        entries[slot] = (self.clock.monotonic() + life, token)

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
            return near
        _, found = self._read_current(slot)
        if found is None:
            return None
        self._near_put(slot, *found)
        return found[0]

    def _read(self, key: str) -> tuple[ProviderToken, float] | None:
        try:
            raw = self.store.get(key)
        except Exception as exc:  # a cache outage must not take the app down
            log.warning("cache read failed (%s); exchanging instead", type(exc).__name__)
            return None
        return self._decode(key, raw)

    def _write(self, key: str, token: ProviderToken, issued_at: float) -> None:
        try:
            self.store.set(key, self._encode(key, token, issued_at), self.ttl_for(token, issued_at))
        except Exception as exc:
            log.warning("cache write failed (%s)", type(exc).__name__)

    def drop(self, slot: Slot) -> None:
        """Forget one cached token (before a forced refresh, or after a failed exchange)."""
        entries = self._near.get(slot.sub)
        if entries is not None:
            entries.pop(slot, None)
        try:
            self.store.delete(self.key_for(slot))
        except Exception as exc:
            log.warning("cache delete failed (%s)", type(exc).__name__)

    def invalidate_user(self, sub: str) -> None:
        """Make every cached token of a user unreachable, here and in every process.

        Replaces the user's generation in the store and empties this process's near cache for
        them; exchanges of theirs still in flight here keep their answer to themselves.
        """
        self._near.pop(sub, None)
        with self._flights_lock:
            for slot, flight in self._flights.items():
                if slot.sub == sub:
                    flight.stale = True
        try:
            self.store.set(
                self._generation_key(sub), secrets.token_hex(8).encode(), _GENERATION_TTL
            )
        except Exception as exc:
            log.warning(
                "cache write failed (%s); tokens stay until they expire", type(exc).__name__
            )

    # "not connected" answers ---------------------------------------------------------------
    def _absent_prefix(self, sub: str, connection: str, login_hint: str | None) -> str:
        digest = self.crypto.keyed_hash(
            "not-connected", self.namespace, sub, connection, login_hint or ""
        )
        return "tv:n:" + digest + ":"

    def known_absent(self, sub: str, connection: str, login_hint: str | None) -> bool:
        """Return whether Auth0 said lately that the user has no account at ``connection``.

        The answer is kept under the user's generation, so a new connection (which replaces the
        generation) forgets it at once, in every process.
        """
        try:
            _, raw = self.store.get_in_generation(
                self._generation_key(sub), self._absent_prefix(sub, connection, login_hint)
            )
        except Exception as exc:  # a cache outage must not take the app down
            log.warning("cache read failed (%s); exchanging instead", type(exc).__name__)
            return False
        return raw is not None

    def remember_absent(
        self, sub: str, connection: str, login_hint: str | None, ttl: float
    ) -> None:
        """Remember for ``ttl`` seconds that the user has no account at ``connection``."""
        if ttl <= 0:
            return
        generation = self.generation(sub)
        if generation is None:
            return
        try:
            self.store.set(
                self._absent_prefix(sub, connection, login_hint) + generation,
                b"1",
                max(1, math.ceil(ttl)),
            )
        except Exception as exc:
            log.warning("cache write failed (%s)", type(exc).__name__)

    # single flight --------------------------------------------------------------------------
    def fetch(self, slot: Slot, produce: Producer, *, refresh: bool = False) -> ProviderToken:
        """Return the cached token of ``slot``, or ``produce`` one, once for all who ask at once.

        What ``produce`` returns is stored here (callers do not write it back). With
        ``refresh``, the cached token is dropped and a new one produced.
        """
        if refresh:
            self.drop(slot)
        elif slot not in self._flights:  # when an exchange is under way here, join it instead
            near = self._near_get(slot)
            if near is not None:
                return near
        with self._flights_lock:
            flight = self._flights.get(slot)
            leader = flight is None
            if flight is None:
                flight = self._flights[slot] = _Flight()
        if not leader:
            flight.done.wait(self.lock_timeout + 60)
            if flight.error is not None:
                raise flight.error
            if flight.result is not None:
                return flight.result
            return self.fetch(slot, produce)
        try:
            flight.result = self._lead(slot, produce, flight, refresh)
            return flight.result
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._flights_lock:
                self._flights.pop(slot, None)
            flight.done.set()

    def _lead(self, slot: Slot, produce: Producer, flight: _Flight, refresh: bool) -> ProviderToken:
        generation, found = self._read_current(slot)
        key = self._slot_prefix(slot) + (generation or NO_GENERATION)
        if found is not None and not refresh:
            self._near_put(slot, *found)
            return found[0]
        if not self.shared or generation is None:
            return self._produce(slot, key, generation, produce, flight)
        with self.lock(key) as acquired:
            if acquired:
                # Another process may have filled the cache between our read and our lock.
                found = None if refresh else self._read(key)
                if found is not None:
                    self._near_put(slot, *found)
                    return found[0]
                return self._produce(slot, key, generation, produce, flight)
            found = self._wait_for_holder(key)
            if found is not None:
                self._near_put(slot, *found)
                return found[0]
            log.info("lock wait ended without a cached token; exchanging")
            return self._produce(slot, key, generation, produce, flight)

    def _produce(
        self,
        slot: Slot,
        key: str,
        generation: str | None,
        produce: Producer,
        flight: _Flight,
    ) -> ProviderToken:
        try:
            token, issued_at = produce()
        except BaseException:
            self.drop(slot)
            raise
        if flight.stale:
            return token  # invalidated while in flight: the answer is this caller's alone
        if generation is not None:
            self._write(key, token, issued_at)
            if self.shared and self.generation(slot.sub) != generation:
                return token  # invalidated elsewhere while in flight
        self._near_put(slot, token, self._usable_until(token, issued_at))
        return token

    def _wait_for_holder(self, key: str) -> tuple[ProviderToken, float] | None:
        """Wait for another process's exchange, up to the lock timeout."""
        clock = self.clock
        deadline = clock.monotonic() + self.lock_timeout
        delay = 0.01
        while clock.monotonic() < deadline:
            clock.sleep(delay)
            delay = min(delay * 1.5, 0.1)
            found = self._read(key)
            if found is not None:
                return found
            if not self._lock_held(key):
                # The holder may have stored its token between our read and its release.
                return self._read(key)
        return None

    def _lock_key(self, key: str) -> str:
        # "tv:t:<hmac>:<generation>" -> "tv:l:<hmac>:<generation>": one lock per slot.
        return "tv:l:" + key.removeprefix("tv:t:")

    def _lock_held(self, key: str) -> bool:
        try:
            return self.store.exists(self._lock_key(key))
        except Exception:
            return False

    @contextmanager
    def lock(self, key: str) -> Iterator[bool]:
        """Take the cross-process lock of a store key; yield whether this process holds it."""
        lock_key = self._lock_key(key)
        token = secrets.token_hex(16).encode()
        try:
            acquired = self.store.add(lock_key, token, self.lock_timeout)
        except Exception as exc:
            log.warning("cache lock failed (%s); exchanging without it", type(exc).__name__)
            yield True
            return
        try:
            yield acquired
        finally:
            if acquired:
                try:
                    self.store.release(lock_key, token)
                except Exception as exc:
                    log.warning("cache unlock failed (%s)", type(exc).__name__)
