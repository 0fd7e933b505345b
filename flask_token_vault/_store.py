"""Where cached provider tokens live: a small store interface and its implementations.

(Layer: core, beside the transport; knows nothing of Flask or of tokens.)

A shared store is wrapped in a :class:`GuardedStore`, so a hung backend costs a request at most
one timeout. The token cache above never asks which store it holds.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Sequence
from typing import Any, Concatenate, Literal, NamedTuple, ParamSpec, Protocol, TypeVar

from cachelib import BaseCache, SimpleCache

from ._clock import Clock

log = logging.getLogger("flask_token_vault")

#: What a store error means: it cannot be reached now, it moved (a failover or a resharding in
#: progress), or it is set up wrong (credentials, permissions, a key layout it refuses).
Kind = Literal["unreachable", "moved", "misconfigured"]


def in_slot(digest: str, kind: str) -> str:
    """Return the store key ``tv:{tag}:kind``: keys of one tag share a Redis Cluster hash slot.

    ``digest`` is a keyed hash (never a user id in clear); its first 128 bits make the tag.
    """
    return f"tv:{{{digest[:32]}}}:{kind}"


#: The generation of a user who has none stored yet.
NO_GENERATION = "0"
_T = TypeVar("_T")
_P = ParamSpec("_P")


def generation_of(raw: object) -> str:
    """Return the generation a store read: :data:`NO_GENERATION` when it holds none."""
    return raw.decode("ascii", "replace") if isinstance(raw, bytes) and raw else NO_GENERATION


def drop_oldest(entries: dict[Any, Any]) -> None:
    """Remove the oldest entry (insertion order) of a dict other threads may change meanwhile."""
    while entries:
        try:
            entries.pop(next(iter(entries)), None)
            return
        except (RuntimeError, StopIteration):  # changed under us: look again
            continue


class Entry(NamedTuple):
    """A value read from a store, with the seconds it has left there when the store can tell."""

    #: The stored bytes.
    value: bytes
    #: Seconds until the store drops it (its own clock), or ``None`` when the store cannot say.
    ttl: float | None = None


class StoreUnavailable(ConnectionError):
    """Raise instead of calling a store that keeps failing (its :class:`Breaker` is open)."""


class Store(Protocol):
    """The few operations the token cache needs from a backend. Values are bytes.

    A backend that subclasses this class gets :meth:`get`, :meth:`get_many`,
    :meth:`get_in_generation` and :meth:`exists` built on :meth:`read`, and overrides those it
    has a faster way to do.
    """

    #: Whether other processes see what this one writes.
    shared: bool
    #: A short name for reports (``doctor``), e.g. ``redis`` or ``FileSystemCache``.
    name: str

    def read(self, key: str) -> Entry | None:
        """Return the value at ``key`` with its time left, or ``None``."""

    def set(self, key: str, value: bytes, ttl: int) -> None:
        """Store ``value`` at ``key`` for ``ttl`` seconds (at least 1)."""

    def delete(self, key: str) -> None:
        """Remove ``key``."""

    def add(self, key: str, value: bytes, ttl: float) -> bool:
        """Store ``value`` only if ``key`` is absent; return whether it was stored (a lock)."""

    def release(self, key: str, value: bytes) -> None:
        """Remove ``key`` only while it still holds ``value`` (the lock is still ours)."""

    def get(self, key: str) -> bytes | None:
        """Return the value at ``key``, or ``None``."""
        entry = self.read(key)
        return entry.value if entry is not None else None

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Return the values at ``keys`` (``None`` for each miss), in one round trip if it can."""
        return [self.get(key) for key in keys]

    def get_in_generation(self, generation_key: str, prefix: str) -> tuple[str, Entry | None]:
        """Return the generation at ``generation_key`` and the entry at ``prefix + generation``.

        A missing generation reads as :data:`NO_GENERATION`.
        """
        generation = generation_of(self.get(generation_key))
        return generation, self.read(prefix + generation)

    def set_replicated(self, key: str, value: bytes, ttl: int, timeout: float) -> int:
        """Store ``value`` and wait for replicas where the store has them; return how many."""
        self.set(key, value, ttl)
        return 0

    def classify(self, exc: BaseException) -> Kind | None:
        """Return what an error of this store means: every error is "cannot be reached"."""
        return "unreachable"

    def layout_problem(self) -> str | None:
        """Return what is wrong with how the app reaches the store (``doctor`` asks), or None."""
        return None

    def fix_for(self, exc: BaseException) -> str:
        """Return what to change when the store refuses the extension (a misconfiguration)."""
        return "check TOKEN_VAULT_CACHE (`flask token-vault doctor` tries it)"

    def exists(self, key: str) -> bool:
        """Return whether ``key`` holds a value."""
        return self.read(key) is not None


def as_bytes(value: Any) -> bytes | None:
    """Return ``value`` when the store answered bytes, else None."""
    return value if isinstance(value, bytes) else None


class MemoryStore(Store):
    """The in-process :class:`Store`: a bounded dict whose entries expire on the monotonic clock.

    Not shared: each process has its own. Entries live by :meth:`Clock.monotonic
    <flask_token_vault._clock.Clock.monotonic>`, so a step of the wall clock (an NTP correction)
    does not keep a token past its lifetime. Past ``threshold`` keys, expired entries are swept,
    then the oldest dropped.
    """

    shared = False
    name = "MemoryStore"
    threshold = 10_000

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or Clock()
        self._data: dict[str, tuple[float, bytes]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return "MemoryStore()"

    def items(self) -> list[tuple[str, bytes]]:
        """Return the live keys and values (for inspection in tests and debugging)."""
        now = self.clock.monotonic()
        return [(k, v) for k, (until, v) in list(self._data.items()) if now < until]

    def read(self, key: str) -> Entry | None:
        """Return the value at ``key`` and its seconds left, or ``None``."""
        found = self._data.get(key)
        if found is None:
            return None
        left = found[0] - self.clock.monotonic()
        if left <= 0:
            self._data.pop(key, None)
            return None
        return Entry(found[1], left)

    def _put(self, key: str, value: bytes, ttl: float) -> None:
        if key not in self._data and len(self._data) >= self.threshold:
            now = self.clock.monotonic()
            for old in [k for k, (until, _) in list(self._data.items()) if until <= now]:
                self._data.pop(old, None)
            while len(self._data) >= self.threshold:
                drop_oldest(self._data)
        self._data[key] = (self.clock.monotonic() + ttl, value)

    def set(self, key: str, value: bytes, ttl: int) -> None:
        """Store ``value`` for ``ttl`` seconds (at least 1)."""
        with self._lock:
            self._put(key, value, max(1, int(ttl)))

    def delete(self, key: str) -> None:
        """Remove ``key``."""
        with self._lock:
            self._data.pop(key, None)

    def add(self, key: str, value: bytes, ttl: float) -> bool:
        """Store only if absent or expired, atomically."""
        with self._lock:
            if self.read(key) is not None:
                return False
            self._put(key, value, max(ttl, 0.001))
            return True

    def release(self, key: str, value: bytes) -> None:
        """Delete ``key`` if it still holds ``value``, atomically."""
        with self._lock:
            if self.get(key) == value:
                self._data.pop(key, None)


class CachelibStore(Store):
    """A :class:`Store` on any cachelib ``BaseCache``, through its public API.

    cachelib backends swallow most errors themselves; whatever still escapes counts as the
    store being unreachable (:meth:`Store.classify`).
    """

    def __init__(self, cache: BaseCache) -> None:
        self.cache = cache
        self.shared = not isinstance(cache, SimpleCache)
        self.name = type(cache).__name__

    def __repr__(self) -> str:
        return f"CachelibStore({self.name})"

    def get(self, key: str) -> bytes | None:
        """Return the value at ``key``, or ``None`` (cachelib answers ``None`` on a miss)."""
        return as_bytes(self.cache.get(key))

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Return the values at ``keys`` (one call of the backend's ``get_many``)."""
        return [as_bytes(value) for value in (self.cache.get_many(*keys) if keys else [])]

    def read(self, key: str) -> Entry | None:
        """Return the value at ``key`` (cachelib cannot tell the time left)."""
        value = self.get(key)
        return Entry(value) if value is not None else None

    def set(self, key: str, value: bytes, ttl: int) -> None:
        """Store with a timeout that is never 0 (cachelib's "forever")."""
        self.cache.set(key, value, timeout=max(1, int(ttl)))

    def delete(self, key: str) -> None:
        """Remove ``key``."""
        self.cache.delete(key)

    def add(self, key: str, value: bytes, ttl: float) -> bool:
        """Store only if absent (atomic where the backend's ``add`` is)."""
        return bool(self.cache.add(key, value, timeout=max(1, math.ceil(ttl))))

    def release(self, key: str, value: bytes) -> None:
        """Delete ``key`` if it still holds ``value`` (best effort: cachelib has no CAS)."""
        if self.cache.get(key) == value:
            self.cache.delete(key)


class PendingWrites:
    """Writes a store could not take yet, kept until it does (an end, a new generation).

    At most ``limit`` are kept (the oldest go first, logged); :meth:`due` says when to try
    again, at most every ``every`` seconds, so a store that is away costs no request more.
    Each is written with ``write`` (key, value).
    """

    every = 0.5
    limit = 10_000

    def __init__(self, clock: Clock, what: str, write: Callable[[str, bytes], object]) -> None:
        self.clock = clock
        self.what = what
        self.write = write
        self.items: dict[str, bytes] = {}
        self._next_try = 0.0
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self.items)

    def put(self, key: str, value: bytes) -> None:
        """Keep ``value`` for ``key`` (replacing what was kept for it)."""
        with self._lock:
            if key not in self.items and len(self.items) >= self.limit:
                drop_oldest(self.items)
                log.error("too many %s wait for the cache; the oldest is dropped", self.what)
            self.items[key] = value

    def due(self) -> bool:
        """Return whether writes are kept and it is time to try them again."""
        return bool(self.items) and self.clock.monotonic() >= self._next_try

    def flush(self) -> bool:
        """Try every kept write in turn; return whether none is left (stop at a failure)."""
        self._next_try = self.clock.monotonic() + self.every
        for key, value in list(self.items.items()):
            try:
                self.write(key, value)
            except Exception as exc:
                log.warning(
                    "%s not yet written to the cache (%s); kept, and written again until it is",
                    self.what,
                    type(exc).__name__,
                )
                return False
            with self._lock:
                if self.items.get(key) == value:
                    del self.items[key]
        return True


#: Seconds between two background probes of a cache whose breaker is open.
PROBE_INTERVAL = 0.25
#: Told when a breaker opens (``True``, the error's class name, seconds until it tries again)
#: or closes again (``False``, ``""``, ``0.0``).
BreakerListener = Callable[[bool, str, float], None]


class Breaker:
    """Stop calling a backend that keeps failing, for a while (a small circuit breaker).

    Closed, every call goes through; ``threshold`` failures in a row open it. Open, calls are
    refused at once. With a ``probe``, a background thread asks the backend every
    :data:`PROBE_INTERVAL` seconds and the first answer closes the breaker, so no request waits
    on a backend that is away and the cache is used again as soon as it answers (a failover
    costs its own length, not a fixed rest). Without one, after ``cooldown`` seconds one call
    goes through as the probe. Opening is logged once (a warning) and closing once (info);
    ``listener`` hears both.

    While closed, :meth:`allow` and :meth:`succeeded` read no clock and take no lock.
    """

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        threshold: int = 3,
        cooldown: float,
        what: str = "the cache",
        listener: BreakerListener | None = None,
        probe: Callable[[], object] | None = None,
    ) -> None:
        self.clock = clock or Clock()
        #: Asked in the background while the breaker is open: its first answer closes it.
        self.probe = probe
        self.threshold = max(1, threshold)
        self.cooldown = cooldown
        self.what = what
        self.listener = listener
        self._failures = 0
        self._open_until = 0.0  # 0.0 while closed
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Breaker({'open' if self.is_open else 'closed'})"

    @property
    def is_open(self) -> bool:
        """Return whether calls are being refused (or only a probe let through)."""
        return bool(self._open_until)

    def allow(self) -> bool:
        """Return whether a call may go to the backend now."""
        if not self._open_until:
            return True
        with self._lock:
            if not self._open_until:
                return True  # closed meanwhile
            now = self.clock.monotonic()
            if now < self._open_until:
                return False
            # This caller is the probe. The others keep being refused for another cooldown,
            # after which another probe goes, should this one never report back.
            self._open_until = now + self.cooldown
            return True

    def succeeded(self) -> None:
        """Record a call the backend answered."""
        if not self._failures and not self._open_until:
            return
        with self._lock:
            was_open = bool(self._open_until)
            self._failures = 0
            self._open_until = 0.0
        if was_open:
            log.info("%s answers again; using it", self.what)
            self._tell(False, "", 0.0)

    def failed(self, exc: BaseException) -> None:
        """Record a call the backend did not answer (a timeout, a refused connection)."""
        with self._lock:
            self._failures += 1
            was_open = bool(self._open_until)
            if not was_open and self._failures < self.threshold:
                return
            self._open_until = self.clock.monotonic() + self.cooldown
            failures = self._failures
        if was_open:
            log.debug("%s still does not answer; next try in %.1fs", self.what, self.cooldown)
            return
        if self.probe is not None:
            threading.Thread(
                target=self._probe, name="token-vault-cache-probe", daemon=True
            ).start()
        log.warning(
            "%s did not answer %d times in a row (%s); not asking it for %.1fs, "
            "serving from memory and exchanging directly meanwhile",
            self.what,
            failures,
            type(exc).__name__,
            self.cooldown,
        )
        self._tell(True, type(exc).__name__, self.cooldown)

    def _probe(self) -> None:
        """Ask the backend until it answers, then close the breaker (a background thread)."""
        probe, pause = self.probe, threading.Event()
        while probe is not None and self.is_open:
            pause.wait(min(self.cooldown, PROBE_INTERVAL))
            try:
                probe()
            except Exception as exc:  # still away: ask again after the pause
                log.debug("%s still does not answer (%s)", self.what, type(exc).__name__)
            else:
                self.succeeded()

    def _tell(self, opened: bool, error: str, retry_in: float) -> None:
        if self.listener is None:
            return
        try:
            self.listener(opened, error, retry_in)
        except Exception:  # a listener's bug must not break the cache call that tripped it
            log.exception("cache breaker listener failed")


def _guarded(
    operation: Callable[Concatenate[Store, _P], _T],
) -> Callable[Concatenate[GuardedStore, _P], _T]:
    """Return a :class:`GuardedStore` method that calls the inner store's ``operation``."""
    name = operation.__name__

    def guarded(self: GuardedStore, /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        method: Callable[_P, _T] = getattr(self.inner, name)
        return self._call(method, *args, **kwargs)

    guarded.__name__ = guarded.__qualname__ = name
    guarded.__doc__ = operation.__doc__
    return guarded


class GuardedStore:
    """A :class:`Store` that calls another through a :class:`Breaker`.

    While the breaker is open every call raises :class:`StoreUnavailable` at once, without
    touching the backend. The backend sorts its errors (:meth:`Store.classify`): "cannot be
    reached" (timeouts, refused or reset connections) and "moved" (a failover or resharding in
    progress) count as failures; "misconfigured" (credentials, permissions, a cluster reached
    through one node) is logged once with its fix; any other error *answer* (Redis out of
    memory, say) shows the backend is there.
    """

    def __init__(self, inner: Store, breaker: Breaker) -> None:
        self.inner = inner
        self.breaker = breaker
        self.shared: bool = inner.shared
        self.name: str = inner.name
        self._told: set[str] = set()

    def __repr__(self) -> str:
        return f"GuardedStore({self.inner!r}, {self.breaker!r})"

    def _call(self, method: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        breaker = self.breaker
        if not breaker.allow():
            raise StoreUnavailable(f"{self.name} is not being asked for a while")
        try:
            result = method(*args, **kwargs)
        except Exception as exc:
            kind = self.inner.classify(exc)
            if kind in ("unreachable", "moved"):
                breaker.failed(exc)
            else:
                breaker.succeeded()
                if kind == "misconfigured":
                    self._tell_misconfigured(exc)
            raise
        breaker.succeeded()
        return result

    def _tell_misconfigured(self, exc: BaseException) -> None:
        """Log, once per kind of mistake, why the cache refuses the extension and the fix."""
        fix = self.inner.fix_for(exc)
        if fix in self._told:
            return
        self._told.add(fix)
        log.error("the cache refuses the extension's calls (%s): %s", type(exc).__name__, fix)

    get = _guarded(Store.get)
    get_many = _guarded(Store.get_many)
    read = _guarded(Store.read)
    get_in_generation = _guarded(Store.get_in_generation)
    set = _guarded(Store.set)
    delete = _guarded(Store.delete)
    add = _guarded(Store.add)
    release = _guarded(Store.release)
    exists = _guarded(Store.exists)
    set_replicated = _guarded(Store.set_replicated)
    layout_problem = _guarded(Store.layout_problem)

    def fix_for(self, exc: BaseException) -> str:
        """Return the inner store's fix for a misconfiguration."""
        return self.inner.fix_for(exc)

    def classify(self, exc: BaseException) -> Kind | None:
        """Return what an error of the inner store means."""
        return self.inner.classify(exc)
