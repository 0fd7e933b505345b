"""Where cached provider tokens live: a small store interface and its implementations.

(Layer: core, beside the transport; knows nothing of Flask or of tokens.)

:class:`RedisStore` talks to Redis natively (``SET NX PX`` locks, a compare-and-delete release in
one script, every call bounded by a socket and connect timeout and never retried by the client).
:class:`MemoryStore` is the default in-process store; its entries expire on the monotonic clock,
so a step of the wall clock neither stretches nor cuts them. :class:`CachelibStore` uses any
cachelib ``BaseCache`` through cachelib's public API (a directory, memcached, or a ``RedisCache``
the app already has). A shared store is wrapped in a :class:`GuardedStore`: after a few failures
in a row it stops calling the backend for a while (a :class:`Breaker`), so a hung Redis costs a
request at most one timeout. The token cache above never asks which one it holds.
"""

from __future__ import annotations

import logging
import math
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol, TypeVar
from urllib.parse import urlsplit

from cachelib import BaseCache, FileSystemCache, MemcachedCache, SimpleCache

from ._clock import Clock
from .config import Settings
from .errors import ConfigurationError

__all__ = [
    "NO_GENERATION",
    "Breaker",
    "CachelibStore",
    "Entry",
    "GuardedStore",
    "MemoryStore",
    "RedisStore",
    "Store",
    "StoreUnavailable",
    "build_store",
    "drop_oldest",
]

log = logging.getLogger("flask_token_vault")

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
# Read a generation, the value stored under it and that value's TTL in one round trip.
_GET_IN_GENERATION = """
local generation = redis.call('get', KEYS[1]) or ARGV[2]
local key = ARGV[1] .. generation
return {generation, redis.call('get', key), redis.call('pttl', key)}
"""
_GET_WITH_TTL = """
return {redis.call('get', KEYS[1]), redis.call('pttl', KEYS[1])}
"""
#: The generation of a user who has none stored yet.
NO_GENERATION = "0"
#: Seconds each Redis call may take (socket and connect timeouts), unless configured.
_T = TypeVar("_T")


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
    """The few operations the token cache needs from a backend. Values are bytes."""

    #: Whether other processes see what this one writes.
    shared: bool
    #: A short name for reports (``doctor``), e.g. ``redis`` or ``FileSystemCache``.
    name: str

    def get(self, key: str) -> bytes | None:
        """Return the value at ``key``, or ``None``."""

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Return the values at ``keys`` (``None`` for each miss), in one round trip."""

    def read(self, key: str) -> Entry | None:
        """Return the value at ``key`` with its time left, or ``None``."""

    def get_in_generation(self, generation_key: str, prefix: str) -> tuple[str, Entry | None]:
        """Return the generation at ``generation_key`` and the entry at ``prefix + generation``.

        A missing generation reads as :data:`NO_GENERATION`.
        """

    def set(self, key: str, value: bytes, ttl: int) -> None:
        """Store ``value`` at ``key`` for ``ttl`` seconds (at least 1)."""

    def delete(self, key: str) -> None:
        """Remove ``key``."""

    def add(self, key: str, value: bytes, ttl: float) -> bool:
        """Store ``value`` only if ``key`` is absent; return whether it was stored (a lock)."""

    def release(self, key: str, value: bytes) -> None:
        """Remove ``key`` only while it still holds ``value`` (the lock is still ours)."""

    def exists(self, key: str) -> bool:
        """Return whether ``key`` holds a value."""


def _ttl_from_millis(millis: Any) -> float | None:
    return millis / 1000 if isinstance(millis, int) and millis >= 0 else None


class RedisStore:
    """A :class:`Store` on a ``redis.Redis`` client."""

    shared = True
    name = "redis"

    def __init__(self, client: Any, prefix: str = "") -> None:
        import redis.exceptions

        self.client = client
        self.prefix = prefix
        self._release = client.register_script(_RELEASE)
        self._get_in_generation = client.register_script(_GET_IN_GENERATION)
        self._get_with_ttl = client.register_script(_GET_WITH_TTL)
        #: What a Redis that cannot be reached raises (an error *answer* is not among them).
        self.unreachable: tuple[type[BaseException], ...] = (
            redis.exceptions.ConnectionError,
            redis.exceptions.TimeoutError,
            OSError,
        )

    def __repr__(self) -> str:
        return "RedisStore()"

    def get(self, key: str) -> bytes | None:
        """Return the value at ``key``, or ``None``."""
        value = self.client.get(self.prefix + key)
        return value if isinstance(value, bytes) else None

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """``MGET`` the keys."""
        values = self.client.mget([self.prefix + key for key in keys])
        return [value if isinstance(value, bytes) else None for value in values]

    def read(self, key: str) -> Entry | None:
        """Return the value and its remaining TTL (``PTTL``) in one round trip (a script)."""
        value, millis = self._get_with_ttl(keys=[self.prefix + key])
        return Entry(value, _ttl_from_millis(millis)) if isinstance(value, bytes) else None

    def get_in_generation(self, generation_key: str, prefix: str) -> tuple[str, Entry | None]:
        """Read the generation, the entry under it and its TTL in one round trip (a script)."""
        generation, value, millis = self._get_in_generation(
            keys=[self.prefix + generation_key], args=[self.prefix + prefix, NO_GENERATION]
        )
        text = generation.decode("ascii", "replace") if isinstance(generation, bytes) else ""
        entry = Entry(value, _ttl_from_millis(millis)) if isinstance(value, bytes) else None
        return text or NO_GENERATION, entry

    def set(self, key: str, value: bytes, ttl: int) -> None:
        """Store ``value`` with an expiry."""
        self.client.set(self.prefix + key, value, ex=max(1, int(ttl)))

    def delete(self, key: str) -> None:
        """Remove ``key``."""
        self.client.delete(self.prefix + key)

    def add(self, key: str, value: bytes, ttl: float) -> bool:
        """``SET key value NX PX ttl``."""
        millis = max(1, math.ceil(ttl * 1000))
        return bool(self.client.set(self.prefix + key, value, nx=True, px=millis))

    def release(self, key: str, value: bytes) -> None:
        """Delete ``key`` if it still holds ``value``, atomically."""
        self._release(keys=[self.prefix + key], args=[value])

    def exists(self, key: str) -> bool:
        """Return whether ``key`` exists."""
        return bool(self.client.exists(self.prefix + key))


class MemoryStore:
    """The in-process :class:`Store`: a bounded dict whose entries expire on the monotonic clock.

    Not shared: each process has its own. Entries live by :meth:`Clock.monotonic
    <flask_token_vault._clock.Clock.monotonic>`, so a step of the wall clock (an NTP correction)
    does not keep a token past its lifetime. Past ``threshold`` keys, expired entries are swept,
    then the oldest dropped.
    """

    shared = False
    name = "MemoryStore"

    def __init__(self, clock: Clock | None = None, threshold: int = 10_000) -> None:
        self.clock = clock or Clock()
        self.threshold = threshold
        self._data: dict[str, tuple[float, bytes]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return "MemoryStore()"

    def __len__(self) -> int:
        return len(self._data)

    def items(self) -> list[tuple[str, bytes]]:
        """Return the live keys and values (for inspection in tests and debugging)."""
        now = self.clock.monotonic()
        return [(k, v) for k, (until, v) in list(self._data.items()) if now < until]

    def _entry(self, key: str) -> Entry | None:
        found = self._data.get(key)
        if found is None:
            return None
        left = found[0] - self.clock.monotonic()
        if left <= 0:
            self._data.pop(key, None)
            return None
        return Entry(found[1], left)

    def get(self, key: str) -> bytes | None:
        """Return the value at ``key``, or ``None``."""
        entry = self._entry(key)
        return entry.value if entry is not None else None

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Return the values at ``keys`` (``None`` for each miss)."""
        return [self.get(key) for key in keys]

    def read(self, key: str) -> Entry | None:
        """Return the value at ``key`` and its seconds left, or ``None``."""
        return self._entry(key)

    def get_in_generation(self, generation_key: str, prefix: str) -> tuple[str, Entry | None]:
        """Read the generation, then the entry under it."""
        raw = self.get(generation_key)
        generation = raw.decode("ascii", "replace") if raw else NO_GENERATION
        return generation, self._entry(prefix + generation)

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
            if self._entry(key) is not None:
                return False
            self._put(key, value, max(ttl, 0.001))
            return True

    def release(self, key: str, value: bytes) -> None:
        """Delete ``key`` if it still holds ``value``, atomically."""
        with self._lock:
            if self.get(key) == value:
                self._data.pop(key, None)

    def exists(self, key: str) -> bool:
        """Return whether ``key`` holds a live value."""
        return self._entry(key) is not None


class CachelibStore:
    """A :class:`Store` on any cachelib ``BaseCache``, through its public API."""

    #: cachelib backends swallow most errors themselves; whatever still escapes counts.
    unreachable: tuple[type[BaseException], ...] = (Exception,)

    def __init__(self, cache: BaseCache) -> None:
        self.cache = cache
        self.shared = not isinstance(cache, SimpleCache)
        self.name = type(cache).__name__

    def __repr__(self) -> str:
        return f"CachelibStore({self.name})"

    def get(self, key: str) -> bytes | None:
        """Return the value at ``key``, or ``None`` (cachelib answers ``None`` on a miss)."""
        value = self.cache.get(key)
        return value if isinstance(value, bytes) else None

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Return the values at ``keys`` (one call of the backend's ``get_many``)."""
        values = self.cache.get_many(*keys) if keys else []
        return [value if isinstance(value, bytes) else None for value in values]

    def read(self, key: str) -> Entry | None:
        """Return the value at ``key`` (cachelib cannot tell the time left)."""
        value = self.get(key)
        return Entry(value) if value is not None else None

    def get_in_generation(self, generation_key: str, prefix: str) -> tuple[str, Entry | None]:
        """Read the generation, then the value under it."""
        raw = self.get(generation_key)
        generation = raw.decode("ascii", "replace") if raw else NO_GENERATION
        return generation, self.read(prefix + generation)

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

    def exists(self, key: str) -> bool:
        """Return whether ``key`` holds a value."""
        return bool(self.cache.has(key))


#: Told when a breaker opens (``True``, the error's class name, seconds until it tries again)
#: or closes again (``False``, ``""``, ``0.0``).
BreakerListener = Callable[[bool, str, float], None]


class Breaker:
    """Stop calling a backend that keeps failing, for a while (a small circuit breaker).

    Closed, every call goes through; ``threshold`` failures in a row open it. Open, calls are
    refused at once for ``cooldown`` seconds; then one call goes through as a probe: if it
    succeeds the breaker closes, if it fails it stays open for another ``cooldown``. Opening is
    logged once (a warning) and closing once (info); ``listener`` hears both.

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
    ) -> None:
        self.clock = clock or Clock()
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
        log.warning(
            "%s did not answer %d times in a row (%s); not asking it for %.1fs, "
            "serving from memory and exchanging directly meanwhile",
            self.what,
            failures,
            type(exc).__name__,
            self.cooldown,
        )
        self._tell(True, type(exc).__name__, self.cooldown)

    def _tell(self, opened: bool, error: str, retry_in: float) -> None:
        if self.listener is None:
            return
        try:
            self.listener(opened, error, retry_in)
        except Exception:  # a listener's bug must not break the cache call that tripped it
            log.exception("cache breaker listener failed")


class GuardedStore:
    """A :class:`Store` that calls another through a :class:`Breaker`.

    While the breaker is open every call raises :class:`StoreUnavailable` at once, without
    touching the backend. Only the backend's "cannot be reached" errors (its ``unreachable``
    attribute: timeouts, refused or reset connections) count as failures; an error *answer*
    (Redis out of memory, say) shows the backend is there.
    """

    def __init__(self, inner: Store, breaker: Breaker) -> None:
        self.inner = inner
        self.breaker = breaker
        self.shared: bool = inner.shared
        self.name: str = inner.name
        self._unreachable: tuple[type[BaseException], ...] = getattr(
            inner, "unreachable", (Exception,)
        )

    def __repr__(self) -> str:
        return f"GuardedStore({self.inner!r}, {self.breaker!r})"

    def _call(self, method: Callable[..., _T], *args: Any) -> _T:
        breaker = self.breaker
        if not breaker.allow():
            raise StoreUnavailable(f"{self.name} is not being asked for a while")
        try:
            result = method(*args)
        except self._unreachable as exc:
            breaker.failed(exc)
            raise
        except Exception:
            breaker.succeeded()
            raise
        breaker.succeeded()
        return result

    def get(self, key: str) -> bytes | None:
        """Return the value at ``key``, or ``None``."""
        return self._call(self.inner.get, key)

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Return the values at ``keys`` (``None`` for each miss)."""
        return self._call(self.inner.get_many, keys)

    def read(self, key: str) -> Entry | None:
        """Return the value at ``key`` with its time left, or ``None``."""
        return self._call(self.inner.read, key)

    def get_in_generation(self, generation_key: str, prefix: str) -> tuple[str, Entry | None]:
        """Return the generation and the entry under it."""
        return self._call(self.inner.get_in_generation, generation_key, prefix)

    def set(self, key: str, value: bytes, ttl: int) -> None:
        """Store ``value`` at ``key`` for ``ttl`` seconds."""
        self._call(self.inner.set, key, value, ttl)

    def delete(self, key: str) -> None:
        """Remove ``key``."""
        self._call(self.inner.delete, key)

    def add(self, key: str, value: bytes, ttl: float) -> bool:
        """Store only if absent; return whether it was stored."""
        return self._call(self.inner.add, key, value, ttl)

    def release(self, key: str, value: bytes) -> None:
        """Remove ``key`` only while it holds ``value``."""
        self._call(self.inner.release, key, value)

    def exists(self, key: str) -> bool:
        """Return whether ``key`` holds a value."""
        return self._call(self.inner.exists, key)


# Connection settings that may be carried from an app's own redis.Redis client to the pool the
# extension opens with its own timeouts (pool-bound helpers of newer redis-py are left behind).
_CLIENT_SETTINGS = frozenset(
    {
        "host",
        "port",
        "db",
        "path",
        "username",
        "password",
        "credential_provider",
        "client_name",
        "protocol",
        "socket_keepalive",
        "socket_keepalive_options",
        "socket_type",
    }
)


def _bounded(kwargs: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Return connection settings with every call bounded by ``timeout`` and never retried.

    Whatever the redis-py version: before 8 it sets no socket timeout at all (a hung Redis holds
    the call for as long as it hangs), and from 6 on it retries a failed call three times with
    backoff by default.
    """
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    bounded = dict(kwargs)
    for name in ("socket_timeout", "socket_connect_timeout"):
        given = bounded.get(name)
        if not isinstance(given, (int, float)) or not 0 < given <= timeout:
            bounded[name] = timeout
    bounded["retry"] = Retry(NoBackoff(), 0)
    bounded["retry_on_timeout"] = False
    bounded["decode_responses"] = False
    return bounded


def redis_client(value: Any, timeout: float) -> Any:
    """Return a ``redis.Redis`` for a URL or another client, each call bounded by ``timeout``.

    The client has a blocking pool of 100 connections whose wait for a free connection is also
    ``timeout``. Given a client, its address and credentials are used with a pool of the
    extension's own, so the app's client (and its other uses) keep their settings.
    """
    import redis

    if isinstance(value, str):
        pool = redis.BlockingConnectionPool.from_url(value, max_connections=100, timeout=timeout)
        pool.connection_kwargs.update(_bounded(pool.connection_kwargs, timeout))
        return _closing(redis.Redis(connection_pool=pool))
    source = getattr(value, "connection_pool", None)
    if source is None or type(source) not in (redis.ConnectionPool, redis.BlockingConnectionPool):
        # Sentinel, cluster or custom pools cannot be rebuilt safely: use the client as it is.
        log.warning(
            "TOKEN_VAULT_CACHE: this Redis client's pool cannot be given timeouts; make sure "
            "it has socket_timeout and socket_connect_timeout well under the deadline"
        )
        return value
    kwargs = {
        k: v
        for k, v in source.connection_kwargs.items()
        if k in _CLIENT_SETTINGS or k.startswith("ssl")
    }
    blocking_pool: Any = redis.BlockingConnectionPool  # untyped in some redis-py versions
    pool = blocking_pool(
        connection_class=source.connection_class,
        max_connections=100,
        timeout=timeout,
        **_bounded(kwargs, timeout),
    )
    return _closing(redis.Redis(connection_pool=pool))


def _closing(client: Any) -> Any:
    """Close the client's connections when it is collected, before their sockets are.

    An app is full of reference cycles, so its Redis client, pool, connections and sockets are
    collected together, their finalizers in no set order: a socket finalized before its
    connection closes it says "unclosed socket" (a ResourceWarning, an error in a test run,
    at whichever test the collection happens to run). A ``weakref.finalize`` callback runs
    before any finalizer of the collected objects, as urllib3 does for its pools.
    """
    weakref.finalize(client, _disconnect, client.connection_pool)
    return client


def _disconnect(pool: Any) -> None:
    try:
        pool.disconnect()
    except Exception:  # best effort while the interpreter collects or exits
        log.debug("closing the cache's Redis connections failed", exc_info=True)


def build_store(
    settings: Settings, *, clock: Clock | None = None, listener: BreakerListener | None = None
) -> Store:
    """Turn ``TOKEN_VAULT_CACHE`` into a :class:`Store`.

    Accepts nothing (an in-process :class:`MemoryStore`), a cachelib ``BaseCache``, a
    ``redis.Redis`` client, a ``redis://``, ``rediss://`` or ``unix://`` URL, a
    ``memcached://host:port`` URL, or a ``file://`` URL or absolute path of a directory.
    Redis calls are bounded by ``TOKEN_VAULT_CACHE_TIMEOUT``. A shared store is guarded by a
    :class:`Breaker` that stops calling it for ``TOKEN_VAULT_CACHE_COOLDOWN`` after 3 failures
    in a row and tells ``listener``.
    """
    key = "TOKEN_VAULT_CACHE"
    value, timeout, cooldown = settings.cache, settings.cache_timeout, settings.cache_cooldown
    clock = clock or Clock()
    store: Any
    if value is None or value == "simple":
        return MemoryStore(clock)
    if isinstance(value, BaseCache):
        store = CachelibStore(value)
    elif hasattr(value, "register_script") and hasattr(value, "set"):
        store = RedisStore(redis_client(value, timeout))
    elif not isinstance(value, str):
        raise ConfigurationError(
            key, "must be a cachelib BaseCache, a redis.Redis client, a URL or a directory path."
        )
    else:
        store = _store_from_string(key, value, timeout)
    if not store.shared:
        return store  # type: ignore[no-any-return]
    breaker = Breaker(clock, cooldown=cooldown, what=f"the cache ({store.name})", listener=listener)
    return GuardedStore(store, breaker)


def _store_from_string(key: str, value: str, timeout: float) -> Any:
    parts = urlsplit(value)
    if parts.scheme in ("redis", "rediss", "unix"):
        try:
            import redis  # noqa: F401
        except ImportError:
            raise ConfigurationError(
                key,
                "a redis:// URL needs the redis package: pip install 'flask-token-vault[redis]'.",
            ) from None
        return RedisStore(redis_client(value, timeout))
    if parts.scheme == "memcached":
        servers = [s for s in parts.netloc.split(",") if s]
        if not servers:
            raise ConfigurationError(key, "a memcached:// URL needs at least one host:port.")
        return CachelibStore(MemcachedCache(servers=servers))
    if parts.scheme == "file":
        return CachelibStore(FileSystemCache(parts.path, threshold=10_000))
    if parts.scheme == "" and value.startswith("/"):
        return CachelibStore(FileSystemCache(value, threshold=10_000))
    raise ConfigurationError(
        key,
        # The scheme only: a URL may carry a password.
        f"unsupported value (a {parts.scheme + ':// URL' if parts.scheme else 'relative path'}): "
        "use redis://, memcached://, file:// or an absolute path.",
    )
