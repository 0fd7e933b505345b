"""Provider-token cache: keyed hashes, encrypted values, and one exchange at a time per key.

* Keys are HMACs (with a key derived from the app's secret) of the user, connection, account
  hint and requested scopes: no user id or token ever appears in a key.
* Values are the token set encrypted with the cache key before they reach the backend.
* TTL is the token's lifetime minus a leeway that is clamped to a quarter of that lifetime, so a
  short-lived token is never expired on arrival, and never 0 (which cachelib reads as "forever").
* Single flight: in one process, threads asking for the same key wait for one leader; across
  processes sharing Redis, a lock taken with ``SET key value NX PX ttl`` does the same, and a
  waiter gives up waiting at a deadline and exchanges itself rather than fail.

With a ``cachelib.RedisCache`` the extension talks to Redis directly for these operations (one
``GET`` on a warm hit, raw bytes instead of pickle); any other ``BaseCache`` is used through the
cachelib API.
"""

from __future__ import annotations

import json
import logging
import math
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from cachelib import BaseCache, FileSystemCache, MemcachedCache, RedisCache, SimpleCache

from .crypto import Crypto, InvalidToken
from .errors import ConfigurationError
from .exchange import ProviderToken

__all__ = ["TokenCache", "build_backend", "effective_leeway"]

log = logging.getLogger("flask_token_vault")

# A user's index of cache keys outlives any token it lists (it is extended on every write).
_INDEX_TTL = 86_400

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def build_backend(value: Any) -> BaseCache:
    """Turn ``TOKEN_VAULT_CACHE`` into a cachelib backend."""
    key = "TOKEN_VAULT_CACHE"
    if value is None or value == "simple":
        return SimpleCache(threshold=10_000)
    if isinstance(value, BaseCache):
        return value
    if not isinstance(value, str):
        raise ConfigurationError(key, "must be a cachelib BaseCache, a URL or a directory path.")
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
        return RedisCache(host=redis.Redis(connection_pool=pool), key_prefix="")
    if parts.scheme == "memcached":
        servers = [s for s in parts.netloc.split(",") if s]
        if not servers:
            raise ConfigurationError(key, "a memcached:// URL needs at least one host:port.")
        return MemcachedCache(servers=servers)
    if parts.scheme == "file":
        return FileSystemCache(parts.path, threshold=10_000)
    if parts.scheme == "" and value.startswith("/"):
        return FileSystemCache(value, threshold=10_000)
    raise ConfigurationError(
        key,
        f"unsupported value {value!r}: use redis://, memcached://, file:// or an absolute path.",
    )


def effective_leeway(lifetime: float, leeway: float) -> float:
    """Return the leeway to apply to a token living ``lifetime`` seconds (at most a quarter)."""
    return max(0.0, min(leeway, lifetime / 4))


class _Flight:
    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: ProviderToken | None = None
        self.error: BaseException | None = None


class TokenCache:
    """Cache provider tokens for one app, safely shared by threads, processes and machines."""

    def __init__(
        self,
        backend: BaseCache,
        crypto: Crypto,
        *,
        leeway: float = 60.0,
        lock_timeout: float = 10.0,
        local_ttl: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.backend = backend
        self.crypto = crypto
        self.leeway = leeway
        self.lock_timeout = lock_timeout
        self.clock = clock
        self.local_ttl = local_ttl
        # Near cache of this process: key -> (use until, token, user index key, connection).
        self._local: dict[str, tuple[float, ProviderToken, str, str]] = {}
        # Cache keys are HMACs: computed once per (user, connection, hint, scopes) here.
        self._keys: dict[tuple[str, str, str | None, tuple[str, ...]], str] = {}
        self._flights: dict[str, _Flight] = {}
        self._flights_lock = threading.Lock()
        self._redis: Any = None
        self._prefix = ""
        if isinstance(backend, RedisCache):
            self._redis = backend._write_client
            self._prefix = str(backend.key_prefix or "")
            self._release = self._redis.register_script(_RELEASE)

    def __repr__(self) -> str:
        return f"TokenCache({type(self.backend).__name__})"

    @property
    def shared(self) -> bool:
        """Return whether the backend is shared between processes."""
        return not isinstance(self.backend, SimpleCache)

    # keys -----------------------------------------------------------------------------------
    def key_for(
        self, sub: str, connection: str, login_hint: str | None, scopes: tuple[str, ...]
    ) -> str:
        """Return the cache key of one token set (an HMAC; reveals nothing)."""
        memo_key = (sub, connection, login_hint, scopes)
        found = self._keys.get(memo_key)
        if found is not None:
            return found
        key = self._key_for(sub, connection, login_hint, scopes)
        if len(self._keys) >= 4096:
            self._keys.clear()
        self._keys[memo_key] = key
        return key

    def _key_for(
        self, sub: str, connection: str, login_hint: str | None, scopes: tuple[str, ...]
    ) -> str:
        scope_part = " ".join(sorted(set(scopes)))
        return "tv:t:" + self.crypto.keyed_hash(
            "token", sub, connection, login_hint or "", scope_part
        )

    def _index_key(self, sub: str) -> str:
        return "tv:i:" + self.crypto.keyed_hash("index", sub)

    # values ---------------------------------------------------------------------------------
    def _encode(self, key: str, token: ProviderToken, issued_at: float, index: str) -> bytes:
        data = token.to_dict()
        data["issued_at"] = issued_at
        data["index"] = index
        return self.crypto.seal_cache(json.dumps(data, separators=(",", ":")).encode(), key)

    def _decode(self, key: str, raw: Any) -> tuple[ProviderToken, float, str] | None:
        """Return the token, the time it stops being usable, and its user's index key."""
        if not isinstance(raw, bytes):
            return None
        try:
            data = json.loads(self.crypto.open_cache(raw, key))
            token = ProviderToken.from_dict(data)
            issued_at = float(data.get("issued_at", token.expires_at - 3600))
            index = str(data.get("index", ""))
        except (InvalidToken, ValueError, KeyError, TypeError):
            log.info("ignored an unreadable cache entry")
            return None
        usable_until = token.expires_at - effective_leeway(
            token.expires_at - issued_at, self.leeway
        )
        if self.clock() >= usable_until:
            return None
        return token, usable_until, index

    def ttl_for(self, token: ProviderToken, issued_at: float) -> int:
        """Return the backend TTL in whole seconds: never 0, never past expiry minus leeway."""
        lifetime = token.expires_at - issued_at
        usable = token.expires_at - effective_leeway(lifetime, self.leeway) - self.clock()
        return max(1, math.floor(usable))

    # operations -----------------------------------------------------------------------------
    def get(self, key: str) -> ProviderToken | None:
        """Return the cached token for ``key`` if it is still usable.

        The process's near cache answers first; then the backend (one round trip), whose
        answer the near cache keeps for ``local_ttl`` seconds at most (see :meth:`_remember`).
        """
        now = self.clock()
        near = self._local.get(key)
        if near is not None:
            if now < near[0]:
                return near[1]
            self._local.pop(key, None)
        try:
            raw = (
                self._redis.get(self._prefix + key)
                if self._redis is not None
                else self.backend.get(key)
            )
        except Exception as exc:  # a cache outage must not take the app down
            log.warning("cache read failed (%s); exchanging instead", type(exc).__name__)
            return None
        found = self._decode(key, raw)
        if found is None:
            return None
        token, usable_until, index = found
        self._remember(key, token, usable_until, index)
        return token

    def forget_local(self, key: str) -> bool:
        """Drop ``key`` from this process's near cache; return whether a shared read may differ.

        Used when a near-cached token lacks scopes: another process may have stored a newer
        token (after a re-consent) that this process has not read yet.
        """
        return self.shared and self._local.pop(key, None) is not None

    def _remember(self, key: str, token: ProviderToken, usable_until: float, index: str) -> None:
        """Keep a token in this process's near cache.

        With an in-process backend the near cache is exact, so it keeps the token for its whole
        usable life. With a shared backend it keeps it ``local_ttl`` seconds at most: a delete
        made by another process (logout, disconnect) reaches this one within that time.
        """
        if self.local_ttl <= 0 and self.shared:
            return
        until = (
            usable_until if not self.shared else min(usable_until, self.clock() + self.local_ttl)
        )
        if len(self._local) >= 10_000:
            self._local.clear()  # a crude bound; entries are cheap to fetch again
        self._local[key] = (until, token, index, token.connection)

    def set(self, key: str, token: ProviderToken, *, sub: str, issued_at: float) -> None:
        """Store ``token`` under ``key`` and remember the key in the user's index."""
        index = self._index_key(sub)
        value = self._encode(key, token, issued_at, index)
        ttl = self.ttl_for(token, issued_at)
        usable = token.expires_at - effective_leeway(token.expires_at - issued_at, self.leeway)
        self._remember(key, token, usable, index)
        try:
            if self._redis is not None:
                pipe = self._redis.pipeline(transaction=False)
                pipe.set(self._prefix + key, value, ex=ttl)
                pipe.hset(self._prefix + index, key, token.connection)
                pipe.expire(self._prefix + index, max(_INDEX_TTL, ttl))
                pipe.execute()
                return
            self.backend.set(key, value, timeout=ttl)
            entries = self._read_index(index)
            entries[key] = token.connection
            self.backend.set(index, json.dumps(entries), timeout=max(_INDEX_TTL, ttl))
        except Exception as exc:
            log.warning("cache write failed (%s)", type(exc).__name__)

    def _read_index(self, index: str) -> dict[str, str]:
        raw = self.backend.get(index)
        try:
            data = json.loads(raw) if isinstance(raw, str) else {}
        except ValueError:
            data = {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def delete(self, key: str) -> None:
        """Forget one cached token."""
        self._local.pop(key, None)
        try:
            if self._redis is not None:
                self._redis.delete(self._prefix + key)
            else:
                self.backend.delete(key)
        except Exception as exc:
            log.warning("cache delete failed (%s)", type(exc).__name__)

    def delete_user(self, sub: str, connection: str | None = None) -> int:
        """Forget every cached token of a user (or of one of their connections); return how many."""
        index = self._index_key(sub)
        for key, (_, _, owner, conn) in list(self._local.items()):
            if owner == index and (connection is None or conn == connection):
                self._local.pop(key, None)
        try:
            if self._redis is not None:
                raw = self._redis.hgetall(self._prefix + index)
                entries = {k.decode(): v.decode() for k, v in raw.items()}
            else:
                entries = self._read_index(index)
            doomed = [k for k, c in entries.items() if connection is None or c == connection]
            for key in doomed:
                self.delete(key)
            if self._redis is not None:
                if doomed:
                    self._redis.hdel(self._prefix + index, *doomed)
            else:
                kept = {k: c for k, c in entries.items() if k not in doomed}
                if kept:
                    self.backend.set(index, json.dumps(kept), timeout=_INDEX_TTL)
                else:
                    self.backend.delete(index)
            return len(doomed)
        except Exception as exc:
            log.warning("cache delete failed (%s)", type(exc).__name__)
            return 0

    # single flight --------------------------------------------------------------------------
    def single_flight(self, key: str, produce: Callable[[], ProviderToken]) -> ProviderToken:
        """Return the cached token, or run ``produce`` once however many callers ask at once."""
        if key not in self._flights:  # when an exchange is under way here, join it instead
            cached = self.get(key)
            if cached is not None:
                return cached
        with self._flights_lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if not leader:
            flight.done.wait(self.lock_timeout + 60)
            if flight.error is not None:
                raise flight.error
            if flight.result is not None:
                return flight.result
            return produce()
        try:
            flight.result = self._across_processes(key, produce)
            return flight.result
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._flights_lock:
                self._flights.pop(key, None)
            flight.done.set()

    def _across_processes(self, key: str, produce: Callable[[], ProviderToken]) -> ProviderToken:
        # A leader that arrives just after another flight finished finds its result here.
        cached = self.get(key)
        if cached is not None:
            return cached
        if not self.shared:
            return produce()
        with self._lock(key) as acquired:
            if acquired:
                # Another process may have filled the cache between our read and our lock.
                cached = self.get(key)
                return cached if cached is not None else produce()
            # Someone else is exchanging: wait for their result, up to the deadline.
            deadline = time.monotonic() + self.lock_timeout
            delay = 0.01
            while time.monotonic() < deadline:
                time.sleep(delay)
                delay = min(delay * 1.5, 0.1)
                cached = self.get(key)
                if cached is not None:
                    return cached
                if not self._lock_held(key):
                    # The holder may have stored its token between our read and its release.
                    cached = self.get(key)
                    if cached is not None:
                        return cached
                    break
            log.info("lock wait ended without a cached token; exchanging")
            return produce()

    def _lock_key(self, key: str) -> str:
        return "tv:l:" + key.rsplit(":", 1)[-1]

    def _lock_held(self, key: str) -> bool:
        try:
            if self._redis is not None:
                return bool(self._redis.exists(self._prefix + self._lock_key(key)))
            return self.backend.has(self._lock_key(key))
        except Exception:
            return False

    @contextmanager
    def _lock(self, key: str) -> Iterator[bool]:
        lock_key = self._lock_key(key)
        token = secrets.token_hex(16)
        ttl = max(1, math.ceil(self.lock_timeout))
        try:
            if self._redis is not None:
                acquired = bool(
                    self._redis.set(self._prefix + lock_key, token, nx=True, px=ttl * 1000)
                )
            else:
                acquired = bool(self.backend.add(lock_key, token, timeout=ttl))
        except Exception as exc:
            log.warning("cache lock failed (%s); exchanging without it", type(exc).__name__)
            yield True
            return
        try:
            yield acquired
        finally:
            if acquired:
                try:
                    if self._redis is not None:
                        self._release(keys=[self._prefix + lock_key], args=[token])
                    elif self.backend.get(lock_key) == token:
                        self.backend.delete(lock_key)
                except Exception as exc:
                    log.warning("cache unlock failed (%s)", type(exc).__name__)
