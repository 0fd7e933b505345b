"""Redis clients for the cache: bounded, never retried, closed when collected.

(Layer: core, under :mod:`flask_token_vault._store`; imports redis-py only when called.)
"""

from __future__ import annotations

import logging
import weakref
from typing import Any

log = logging.getLogger("flask_token_vault")


# Connection settings that may be carried from an app's own redis.Redis client to the pool the
# extension opens with its own timeouts (pool-bound helpers of newer redis-py are left behind).
_CLIENT_SETTINGS = frozenset(
    {"host", "port", "db", "path", "username", "password", "credential_provider", "client_name"}
    | {"protocol", "socket_keepalive", "socket_keepalive_options", "socket_type"}
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
