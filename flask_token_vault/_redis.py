"""Clients for Redis-protocol stores: one node, a cluster, Sentinel; Redis or Valkey.

(Layer: core, beside the store; knows nothing of Flask or of tokens.)

Every client this module builds bounds each call by the cache timeout (socket, connect and
pool waits) and never retries on its own: the token cache decides what a failure means, and a
request must never wait for a client library's backoff. The accepted forms:

- ``redis://``, ``rediss://`` (TLS), ``unix://`` and ``valkey://``, ``valkeys://``: one node.
- ``redis+cluster://[user:pass@]host:port[,host:port...]`` (``rediss+cluster``,
  ``valkey+cluster``, ``valkeys+cluster``): a cluster, from any of its nodes. A plain URL cannot
  say "cluster", and naming several nodes lets the app start while one of them is down.
- ``redis+sentinel://[user:pass@]host:port[,host:port...]/service[/db]`` (``rediss+sentinel``,
  ``valkey+sentinel``...): the master of ``service`` as the sentinels name it, the form Kombu
  and Flask-Caching users know. The credentials are the master's; the sentinels take none.
- A client object: ``redis.Redis``, ``redis.cluster.RedisCluster``, ``Sentinel.master_for()``,
  ``valkey.Valkey`` and their cluster forms.

:func:`classify` sorts what a store raised into what the caller must do about it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any
from urllib.parse import unquote, urlsplit

from ._store import NO_GENERATION, Entry, Kind, Store, as_bytes, generation_of

log = logging.getLogger("flask_token_vault")

#: How many connections one process opens to one node at most.
MAX_CONNECTIONS = 100
#: The URL schemes :func:`client_from_url` reads.
SCHEMES = frozenset(
    f"{base}{form}"
    for base in ("redis", "rediss", "valkey", "valkeys")
    for form in ("", "+cluster", "+sentinel")
) | {"unix"}


# Connection settings that may be carried from an app's own client to the pool the extension
# opens with its own timeouts (pool-bound helpers of newer client versions are left behind).
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


@dataclass(frozen=True)
class Address:
    """A store URL taken apart (never logged whole: it may carry a password)."""

    library: str  # "redis" or "valkey"
    form: str  # "", "cluster" or "sentinel"
    tls: bool
    nodes: tuple[tuple[str, int], ...]
    username: str | None
    password: str | None = field(repr=False)
    service: str | None
    db: int


def library(name: str) -> ModuleType:
    """Import the client library for ``name`` ("redis" or "valkey").

    Valkey speaks Redis's protocol: without valkey-py installed, redis-py serves it too.
    Raises ``ImportError`` naming the extra to install when neither is there.
    """
    if name == "valkey":
        with contextlib.suppress(ImportError):
            import valkey

            return valkey
    try:
        import redis
    except ImportError:
        raise ImportError(
            f"a {name} store needs a client library: pip install 'flask-token-vault[{name}]'"
        ) from None
    return redis


def parse_url(value: str) -> Address:
    """Take a cluster or Sentinel URL apart; raise ``ValueError`` saying what is wrong."""
    parts = urlsplit(value)
    base, _, form = parts.scheme.partition("+")
    if parts.scheme not in SCHEMES or form not in ("cluster", "sentinel"):
        raise ValueError(f"not a cluster or sentinel URL (scheme {parts.scheme!r})")
    nodes: list[tuple[str, int]] = []
    hosts = parts.netloc.rpartition("@")[2]
    for item in filter(None, hosts.split(",")):
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError("each node must be host:port")
        nodes.append((host.strip("[]"), int(port)))
    if not nodes:
        raise ValueError("name at least one host:port")
    path = [segment for segment in parts.path.split("/") if segment]
    service = None
    if form == "sentinel":
        if not path:
            raise ValueError("a sentinel URL needs the service name: .../service[/db]")
        service = path.pop(0)
    if len(path) > 1 or (path and not path[0].isdigit()):
        raise ValueError("the path may only be a database number")
    return Address(
        library="valkey" if base.startswith("valkey") else "redis",
        form=form,
        tls=base in ("rediss", "valkeys"),
        nodes=tuple(nodes),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        service=service,
        db=int(path[0]) if path else 0,
    )


def _bounded(module: ModuleType, kwargs: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Return connection settings with every call bounded by ``timeout`` and never retried.

    Whatever the client version: some set no socket timeout at all (a hung server holds the
    call for as long as it hangs), and newer ones retry a failed call three times by default.
    """
    bounded = dict(kwargs)
    for name in ("socket_timeout", "socket_connect_timeout"):
        given = bounded.get(name)
        if not isinstance(given, (int, float)) or not 0 < given <= timeout:
            bounded[name] = timeout
    bounded["retry"] = module.retry.Retry(module.backoff.NoBackoff(), 0)
    bounded["decode_responses"] = False
    return bounded


def _tls(address: Address) -> dict[str, Any]:
    return {"ssl": True} if address.tls else {}


def client_from_url(value: str, timeout: float) -> Any:
    """Return a bounded client for any URL in :data:`SCHEMES`."""
    scheme = urlsplit(value).scheme
    if "+" not in scheme:
        module = library("valkey" if scheme.startswith("valkey") else "redis")
        if module.__name__ == "redis" and scheme.startswith("valkey"):
            value = "redis" + value[len("valkey") :]
        pool = module.BlockingConnectionPool.from_url(
            value, max_connections=MAX_CONNECTIONS, timeout=timeout
        )
        pool.connection_kwargs.update(_bounded(module, pool.connection_kwargs, timeout))
        return _closing(_client_class(module)(connection_pool=pool))
    address = parse_url(value)
    module = library(address.library)
    settings = _bounded(
        module,
        {"username": address.username, "password": address.password, **_tls(address)},
        timeout,
    )
    if address.form == "cluster":
        nodes = [module.cluster.ClusterNode(host, port) for host, port in address.nodes]
        return _cluster(module, nodes, settings)
    sentinel = module.sentinel.Sentinel(
        list(address.nodes),
        sentinel_kwargs=_bounded(module, _tls(address), timeout),
        **settings,
    )
    return sentinel.master_for(address.service, db=address.db, **settings)


def _client_class(module: ModuleType) -> Any:
    return getattr(module, "Valkey", None) or module.Redis


def _cluster(module: ModuleType, nodes: list[Any], settings: dict[str, Any]) -> Any:
    """Return a cluster client that connects on first use (a cluster client connects when made)."""
    cluster_class = getattr(module.cluster, "ValkeyCluster", None) or module.cluster.RedisCluster
    # One try per call: a MOVED or a down node is the cache's to judge, not a reason to wait.
    # Newer redis-py reads that from ``retry``; older clients and valkey-py from this count.
    major = int(str(getattr(module, "__version__", "0")).split(".")[0] or 0)
    tries = {} if module.__name__ == "redis" and major >= 6 else {"cluster_error_retry_attempts": 0}
    return LazyClient(
        module,
        lambda: cluster_class(
            startup_nodes=nodes, max_connections=MAX_CONNECTIONS, **tries, **settings
        ),
    )


class LazyClient:
    """A client made on first use, so an app starts while its cache is away."""

    def __init__(self, module: ModuleType, build: Callable[[], Any]) -> None:
        self._module = module
        self._build = build
        self._client: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return "LazyClient(cluster)"

    def made(self) -> Any:
        """Return the client, making it now if it was not yet (raises what making it raises)."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._build()
        return self._client

    def register_script(self, script: str) -> Any:
        """Return a script bound to this (lazy) client, as the client's own method does."""
        # As bytes: a text script would ask the client for its encoder, making it now.
        return self._module.commands.core.Script(self, script.encode())

    def __getattr__(self, name: str) -> Any:
        return getattr(self.made(), name)


def redis_client(value: Any, timeout: float) -> Any:
    """Return a bounded client for a URL in :data:`SCHEMES` or for an app's client object."""
    return (
        client_from_url(value, timeout)
        if isinstance(value, str)
        else bounded_client(value, timeout)
    )


def bounded_client(value: Any, timeout: float) -> Any:
    """Return a bounded client for an app's own client object, keeping the app's untouched.

    A one-node client gets a pool of the extension's own with the same address and
    credentials; a cluster client a new cluster client from its nodes; a Sentinel client a
    new ``master_for`` from its sentinels. Any other client is used as it is, with a warning.
    """
    module = _module_of(value)
    if module is None:
        log.warning(
            "TOKEN_VAULT_CACHE: %s cannot be given the cache timeout; make sure its calls "
            "are bounded well under TOKEN_VAULT_DEADLINE and not retried",
            type(value).__name__,
        )
        return value
    if hasattr(value, "nodes_manager"):
        settings = _carried(module, value.nodes_manager.connection_kwargs, timeout, address=False)
        nodes = [module.cluster.ClusterNode(n.host, n.port) for n in value.get_nodes()]
        return _cluster(module, nodes, settings)
    source = value.connection_pool
    sentinel_manager = getattr(source, "sentinel_manager", None)
    if sentinel_manager is not None:
        settings = _carried(module, source.connection_kwargs, timeout, address=False)
        places = [client.connection_pool.connection_kwargs for client in sentinel_manager.sentinels]
        sentinels = [(place["host"], place["port"]) for place in places]
        sentinel = module.sentinel.Sentinel(
            sentinels, sentinel_kwargs=_bounded(module, {}, timeout), **settings
        )
        return sentinel.master_for(source.service_name, **settings)
    pool = module.BlockingConnectionPool(
        connection_class=source.connection_class,
        max_connections=MAX_CONNECTIONS,
        timeout=timeout,
        **_carried(module, source.connection_kwargs, timeout, address=True),
    )
    return _closing(_client_class(module)(connection_pool=pool))


def _carried(
    module: ModuleType, kwargs: dict[str, Any], timeout: float, *, address: bool
) -> dict[str, Any]:
    """Return the app's connection settings worth keeping (``address``: with host and port)."""
    names = _CLIENT_SETTINGS if address else _CLIENT_SETTINGS - {"host", "port"}
    carried = {k: v for k, v in kwargs.items() if k in names or k.startswith("ssl")}
    return _bounded(module, carried, timeout)


def _module_of(value: Any) -> ModuleType | None:
    root = type(value).__module__.split(".", 1)[0]
    if root not in ("redis", "valkey"):
        return None
    return library(root)


def is_client(value: Any) -> bool:
    """Return whether ``value`` looks like a Redis-protocol client object."""
    return hasattr(value, "register_script") and hasattr(value, "set")


def is_cluster(client: Any) -> bool:
    """Return whether ``client`` is a cluster client (keys of one call must share a slot)."""
    return isinstance(client, LazyClient) or hasattr(client, "nodes_manager")


def classify(exc: BaseException) -> Kind | None:
    """Return what a store error means, or None for an answer that says nothing of the store.

    ``unreachable``: timeouts, refused or reset connections, a full pool. ``moved``: the data
    is elsewhere for now (``MOVED``, ``ASK``, ``READONLY`` from a demoted master,
    ``CLUSTERDOWN``, ``TRYAGAIN``, no master known to the sentinels). ``misconfigured``: wrong
    credentials, ``NOPERM``, ``CROSSSLOT``, a cluster reached through a one-node URL.
    """
    for module_name in ("redis", "valkey"):
        module = _loaded(module_name)
        if module is None:
            continue
        errors = module.exceptions
        sentinel = getattr(module, "sentinel", None)
        misconfigured: tuple[Any, ...] = (
            errors.AuthenticationError,
            errors.NoPermissionError,
            errors.ClusterCrossSlotError,
            getattr(errors, "AuthorizationError", ()),
        )
        if isinstance(exc, misconfigured):
            return "misconfigured"
        moved: tuple[Any, ...] = (
            errors.MovedError,
            errors.AskError,
            errors.ReadOnlyError,
            errors.ClusterDownError,
            errors.TryAgainError,
            errors.MasterDownError,
            getattr(errors, "SlotNotCoveredError", ()),
        )
        if sentinel is not None:
            moved += (sentinel.MasterNotFoundError, sentinel.SlaveNotFoundError)
        if isinstance(exc, moved):
            return "moved"
        if isinstance(exc, (errors.ConnectionError, errors.TimeoutError)):
            return "unreachable"
        cluster_error = getattr(errors, "RedisClusterException", None) or getattr(
            errors, "ValkeyClusterException", None
        )
        if cluster_error is not None and isinstance(exc, cluster_error):
            # The client refuses a call whose keys span slots before sending it.
            return "misconfigured" if "slot" in str(exc) else "unreachable"
        if isinstance(exc, errors.ResponseError):
            text = str(exc)
            if text.startswith(("MOVED", "ASK", "CLUSTERDOWN", "TRYAGAIN", "READONLY")):
                return "moved"
            if text.startswith(("CROSSSLOT", "NOPERM", "WRONGPASS", "NOAUTH")):
                return "misconfigured"
            if "non local key" in text or "cluster support disabled" in text:
                return "misconfigured"
    if isinstance(exc, OSError):
        return "unreachable"
    return None


def misconfiguration_fix(exc: BaseException) -> str:
    """Return what to change when the store refuses the extension (a "misconfigured" error)."""
    name, text = type(exc).__name__, str(exc)
    if name == "AuthenticationError" or text.startswith(("WRONGPASS", "NOAUTH")):
        return (
            "TOKEN_VAULT_CACHE's user or password is refused: give the ones the cache expects "
            "(`flask token-vault doctor` tries them)"
        )
    if name in ("NoPermissionError", "AuthorizationError") or text.startswith("NOPERM"):
        return (
            "the cache's ACL user may not do what the extension needs: allow the keys ~tv:* "
            "and the commands of +@read +@write +@scripting +ping +info +wait"
        )
    return (
        "TOKEN_VAULT_CACHE names one node of a cluster (or keys of one call span slots): name "
        "the cluster as redis+cluster://host:port[,host:port...] or pass a cluster client"
    )


def _loaded(name: str) -> Any:
    """Return the client library ``name`` if the app imported it (with its sentinel module)."""
    module = sys.modules.get(name)
    if module is None or not hasattr(module, "exceptions"):
        return None
    if getattr(module, "sentinel", None) is None:
        with contextlib.suppress(ImportError):
            __import__(f"{name}.sentinel")
    return module


def _closing(client: Any) -> Any:
    """Close the client's connections when it is collected, before their sockets are.

    An app is full of reference cycles, so its client, pool, connections and sockets are
    collected together, their finalizers in no set order: a socket finalized before its
    connection closes it says "unclosed socket" (a ResourceWarning, an error in a test run).
    A ``weakref.finalize`` callback runs before any finalizer of the collected objects.
    """
    weakref.finalize(client, _disconnect, client.connection_pool)
    return client


def _disconnect(pool: Any) -> None:
    try:
        pool.disconnect()
    except Exception:  # best effort while the interpreter collects or exits
        log.debug("closing the cache's connections failed", exc_info=True)


_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
# Read a generation, the value stored under it and that value's TTL in one round trip. Both
# keys are declared (KEYS[2] is the value's key less the generation) and share a hash tag, so
# the script runs on the one cluster node that holds them.
_GET_IN_GENERATION = """
local generation = redis.call('get', KEYS[1]) or ARGV[1]
local key = KEYS[2] .. generation
return {generation, redis.call('get', key), redis.call('pttl', key)}
"""
_GET_WITH_TTL = """
return {redis.call('get', KEYS[1]), redis.call('pttl', KEYS[1])}
"""
#: TLS connections a process opens to its cache ahead of the first requests.
WARM_TLS_CONNECTIONS = 32


def _entry(value: Any, millis: Any) -> Entry | None:
    """Return a Redis value with its ``PTTL`` (negative: no expiry) as an :class:`Entry`."""
    if not isinstance(value, bytes):
        return None
    return Entry(value, millis / 1000 if isinstance(millis, int) and millis >= 0 else None)


class RedisStore(Store):
    """A :class:`Store` on a Redis-protocol client: one node, a cluster or Sentinel's master.

    ``SET NX PX`` locks, a compare-and-delete release in one script, every call bounded by a
    socket and connect timeout and never retried by the client (see :mod:`._redis`). Every
    multi-key call stays within one hash slot: the cache gives one user's keys one hash tag,
    and :meth:`get_many` pipelines single-key reads.
    """

    shared = True
    name = "redis"

    def __init__(self, client: Any) -> None:
        self.client = client
        self.cluster = is_cluster(client)
        self._release = client.register_script(_RELEASE)
        self._get_in_generation = client.register_script(_GET_IN_GENERATION)
        self._get_with_ttl = client.register_script(_GET_WITH_TTL)

    def __repr__(self) -> str:
        return f"RedisStore(cluster={self.cluster})"

    def warm(self, connections: int) -> None:
        """Open ``connections`` connections now, in the background, and keep them in the pool.

        A TLS handshake costs far more than a command: opened ahead, the first burst of
        requests finds them ready instead of each paying one within the cache timeout.
        """
        pool = getattr(self.client, "connection_pool", None)
        if pool is None or self.cluster:  # a cluster client keeps a pool per node, made lazily
            return

        def open_them() -> None:
            opened = []
            try:
                for _ in range(connections):
                    opened.append(pool.get_connection("PING"))
            except Exception as exc:  # the cache is away: the requests will find out
                log.debug("cache connections not opened ahead (%s)", type(exc).__name__)
            for connection in opened:
                pool.release(connection)

        threading.Thread(target=open_them, name="token-vault-cache-warm", daemon=True).start()

    def fix_for(self, exc: BaseException) -> str:
        """Return what to change when the store refuses the extension."""
        return misconfiguration_fix(exc)

    def classify(self, exc: BaseException) -> Kind | None:
        """Return what an error of this store means (see :func:`classify`)."""
        kind = classify(exc)
        if kind == "moved" and not self.cluster and _is_moved(exc):
            return "misconfigured"  # a one-node URL of a cluster: every other key is elsewhere
        return kind

    def ping(self) -> None:
        """Ask the store whether it answers (raises what the client raises)."""
        self.client.ping()

    def layout_problem(self) -> str | None:
        """Return the fix when a one-node client reaches a node of a cluster, else None."""
        if self.cluster or not int(self.client.info("cluster").get("cluster_enabled", 0)):
            return None
        return misconfiguration_fix(ValueError("one node of a cluster"))

    def get(self, key: str) -> bytes | None:
        """Return the value at ``key``, or ``None``."""
        return as_bytes(self.client.get(key))

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Read the keys in one pipeline of single-key reads (keys may lie in several slots)."""
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.get(key)
        return [as_bytes(value) for value in pipe.execute()]

    def read(self, key: str) -> Entry | None:
        """Return the value and its remaining TTL (``PTTL``) in one round trip (a script)."""
        return _entry(*self._get_with_ttl(keys=[key]))

    def get_in_generation(self, generation_key: str, prefix: str) -> tuple[str, Entry | None]:
        """Read the generation, the entry under it and its TTL in one round trip (a script)."""
        generation, value, millis = self._get_in_generation(
            keys=[generation_key, prefix], args=[NO_GENERATION]
        )
        return generation_of(generation), _entry(value, millis)

    def set(self, key: str, value: bytes, ttl: int) -> None:
        """Store ``value`` with an expiry."""
        self.client.set(key, value, ex=max(1, int(ttl)))

    def delete(self, key: str) -> None:
        """Remove ``key``."""
        self.client.delete(key)

    def add(self, key: str, value: bytes, ttl: float) -> bool:
        """``SET key value NX PX ttl``."""
        millis = max(1, math.ceil(ttl * 1000))
        return bool(self.client.set(key, value, nx=True, px=millis))

    def release(self, key: str, value: bytes) -> None:
        """Delete ``key`` if it still holds ``value``, atomically."""
        self._release(keys=[key], args=[value])

    def set_replicated(self, key: str, value: bytes, ttl: int, timeout: float) -> int:
        """Store ``value``, then wait up to ``timeout`` for one replica to hold it (``WAIT``).

        ``WAIT`` counts the writes of its own connection, so both go down one pipeline. Returns
        how many replicas acknowledged: 0 at once when the node has none (a cluster client sends
        each write to its own node, so nothing is awaited there).
        """
        if self.cluster or not int(self.client.info("replication").get("connected_slaves", 0)):
            self.set(key, value, ttl)
            return 0
        pipe = self.client.pipeline(transaction=False)
        pipe.set(key, value, ex=max(1, int(ttl)))
        pipe.execute_command("WAIT", 1, max(1, int(timeout * 1000)))
        return int(pipe.execute()[-1])


def _is_moved(exc: BaseException) -> bool:
    return type(exc).__name__ in ("MovedError", "AskError") or str(exc).startswith(("MOVED", "ASK"))
