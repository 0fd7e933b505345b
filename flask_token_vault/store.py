"""Where cached provider tokens live: a small store interface and its two implementations.

(Layer: core, beside the transport; knows nothing of Flask or of tokens.)

:class:`RedisStore` talks to Redis natively (``SET NX PX`` locks, a compare-and-delete release in
one script). :class:`CachelibStore` uses any cachelib ``BaseCache`` through cachelib's public API
(in-process ``SimpleCache``, a directory, memcached, or a ``RedisCache`` the app already has).
The token cache above never asks which one it holds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol
from urllib.parse import urlsplit

from cachelib import BaseCache, FileSystemCache, MemcachedCache, SimpleCache

from .errors import ConfigurationError

__all__ = ["NO_GENERATION", "CachelibStore", "RedisStore", "Store", "build_store"]

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
# Read a generation and the value stored under it in one round trip.
_GET_IN_GENERATION = """
local generation = redis.call('get', KEYS[1]) or ARGV[2]
return {generation, redis.call('get', ARGV[1] .. generation)}
"""
#: The generation of a user who has none stored yet.
NO_GENERATION = "0"


class Store(Protocol):
    """The few operations the token cache needs from a backend. Values are bytes."""

    #: Whether other processes see what this one writes.
    shared: bool
    #: A short name for reports (``doctor``), e.g. ``redis`` or ``SimpleCache``.
    name: str

    def get(self, key: str) -> bytes | None:
        """Return the value at ``key``, or ``None``."""

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Return the values at ``keys`` (``None`` for each miss), in one round trip."""

    def get_in_generation(self, generation_key: str, prefix: str) -> tuple[str, bytes | None]:
        """Return the generation at ``generation_key`` and the value at ``prefix + generation``.

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


class RedisStore:
    """A :class:`Store` on a ``redis.Redis`` client."""

    shared = True
    name = "redis"

    def __init__(self, client: Any, prefix: str = "") -> None:
        self.client = client
        self.prefix = prefix
        self._release = client.register_script(_RELEASE)
        self._get_in_generation = client.register_script(_GET_IN_GENERATION)

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

    def get_in_generation(self, generation_key: str, prefix: str) -> tuple[str, bytes | None]:
        """Read the generation and the value under it in one round trip (a script)."""
        generation, value = self._get_in_generation(
            keys=[self.prefix + generation_key], args=[self.prefix + prefix, NO_GENERATION]
        )
        text = generation.decode("ascii", "replace") if isinstance(generation, bytes) else ""
        return text or NO_GENERATION, value if isinstance(value, bytes) else None

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


class CachelibStore:
    """A :class:`Store` on any cachelib ``BaseCache``, through its public API."""

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

    def get_in_generation(self, generation_key: str, prefix: str) -> tuple[str, bytes | None]:
        """Read the generation, then the value under it."""
        raw = self.get(generation_key)
        generation = raw.decode("ascii", "replace") if raw else NO_GENERATION
        return generation, self.get(prefix + generation)

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


def build_store(value: Any) -> Store:
    """Turn ``TOKEN_VAULT_CACHE`` into a :class:`Store`.

    Accepts nothing (an in-process cache), a cachelib ``BaseCache``, a ``redis.Redis`` client,
    a ``redis://``, ``rediss://`` or ``unix://`` URL, a ``memcached://host:port`` URL, or a
    ``file://`` URL or absolute path of a directory.
    """
    key = "TOKEN_VAULT_CACHE"
    if value is None or value == "simple":
        return CachelibStore(SimpleCache(threshold=10_000))
    if isinstance(value, BaseCache):
        return CachelibStore(value)
    if hasattr(value, "register_script") and hasattr(value, "set"):
        return RedisStore(value)
    if not isinstance(value, str):
        raise ConfigurationError(
            key, "must be a cachelib BaseCache, a redis.Redis client, a URL or a directory path."
        )
    parts = urlsplit(value)
    if parts.scheme in ("redis", "rediss", "unix"):
        try:
            import redis
        except ImportError:
            raise ConfigurationError(
                key,
                "a redis:// URL needs the redis package: pip install 'flask-token-vault[redis]'.",
            ) from None
        # A blocking pool waits for a free connection under load instead of failing the read
        # (redis-py's default pool raises once its connections are all in use).
        pool = redis.BlockingConnectionPool.from_url(value, max_connections=100, timeout=10)
        return RedisStore(redis.Redis(connection_pool=pool))
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
        f"unsupported value {value!r}: use redis://, memcached://, file:// or an absolute path.",
    )
