"""The typed per-app state (layer: state, above the core clients; below the request-time API).

:class:`AppState` is built once by :meth:`TokenVault.init_app
<flask_token_vault.TokenVault.init_app>` and kept in ``app.extensions["token_vault"]``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for_futures
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from authlib.integrations.flask_client import FlaskIntegration, FlaskOAuth2App
from cachelib import BaseCache, FileSystemCache, MemcachedCache
from flask import Flask, current_app, has_app_context

from . import signals
from ._bearer import BearerValidator
from ._cache import TokenCache
from ._clock import Clock, ClockSource
from ._config import Settings
from ._connect_links import ConnectLinks
from ._crypto import Crypto
from ._dpop import DPoP
from ._exchange import Exchanger
from ._http import Transport
from ._my_account import MyAccountClient
from ._oidc import TenantKeys, read_discovery
from ._redis import SCHEMES, WARM_TLS_CONNECTIONS, RedisStore, is_client, library, redis_client
from ._revocation import SessionRevocations
from ._store import Breaker, BreakerListener, CachelibStore, GuardedStore, MemoryStore, Store
from .admin.management import ManagementClient
from .errors import ApiClientMisconfigured, ConfigurationError, InvalidAccessToken, TokenVaultError

log = logging.getLogger("flask_token_vault")

EXTENSION_KEY = "token_vault"
# Revocation records outlive any session they could end; without an absolute lifetime, a year.
_NO_LIFETIME_RECORD_TTL = 366 * 86_400
# Logouts whose revocation is still queued; beyond this, revocations are dropped (logged).
_MAX_PENDING_REVOCATIONS = 256
_T = TypeVar("_T")


class Hooks:
    """Callbacks registered on a :class:`~flask_token_vault.TokenVault` object.

    One object is shared by every app the extension object serves, so a callback registered
    after ``init_app`` (``vault = TokenVault(app)`` then ``@vault.unauthorized_handler``) applies.
    """

    def __init__(self) -> None:
        #: Called with a :class:`~flask_token_vault.Challenge` when a view needs a sign-in or a
        #: connection; what it returns is the response (``None``: the default response).
        self.unauthorized: Callable[[Any], Any] | None = None


class AppState:
    """Everything the extension built for one app (``app.extensions["token_vault"]``).

    The Management and My Account clients and the API mode's parts are built on first use.
    """

    def __init__(self, settings: Settings, hooks: Hooks) -> None:
        self.settings = settings
        self.hooks = hooks
        #: How many of the app's views were checked against the configured connections (on
        #: the first request, once every route is registered; again when a view is added).
        self.views_checked = 0
        #: The one clock every part reads.
        self.clock = Clock()
        self.crypto = Crypto(settings.encryption_keys)
        self.links = ConnectLinks(settings, self.crypto, self.clock)
        #: The one HTTP transport (pooled, deadline-bounded, retrying).
        self.transport = Transport(
            http_timeout=settings.http_timeout,
            deadline=settings.deadline,
            max_retries=settings.max_retries,
            clock=self.clock,
            rate_limit_wait=settings.rate_limit_wait,
        )
        #: DPoP proofs and the nonces Auth0 hands out, when ``TOKEN_VAULT_DPOP_KEY`` is set.
        self.dpop = DPoP(settings.dpop_key, self.clock) if settings.dpop_key else None
        #: Auth0's token endpoint: the Token Vault exchange and other grants.
        self.exchanger = Exchanger(settings, self.transport, self.dpop)
        store = build_store(settings, clock=self.clock, listener=_cache_breaker_changed)
        # Keys are bound to the tenant and client: another app with the same SECRET_KEY (another
        # tenant, another client) never reads or ends this one's entries.
        namespace = json.dumps([settings.issuer, settings.client_id])
        self.cache = TokenCache(store, self.crypto, self.clock, settings, namespace=namespace)
        self.revocations = SessionRevocations(
            store,
            self.crypto,
            self.clock,
            namespace=namespace,
            record_ttl=settings.session_lifetime or _NO_LIFETIME_RECORD_TTL,
            local_ttl=settings.local_cache_ttl,
            replica_wait=settings.cache_timeout,
        )
        #: The tenant's public signing keys: one cache for ID, logout and access tokens.
        self.tenant_keys = TenantKeys(settings, self.transport)
        #: authlib's OAuth client for the sign-in (authorize URL, ID token). The code exchange
        #: goes through :attr:`exchanger`, like every other call to ``/oauth/token``.
        self.oauth = _TenantOAuth(settings, self.transport, self.tenant_keys)
        self._lock = threading.Lock()
        # Starts no thread until the first revocation.
        self._revoker = ThreadPoolExecutor(max_workers=2, thread_name_prefix="token-vault-revoke")
        self._revoking: set[Future[None]] = set()
        #: Session records already checked, by their sealed refresh token (see
        #: :func:`flask_token_vault._session.read_user`); at most
        #: ``TOKEN_VAULT_LOCAL_CACHE_MAX_USERS`` of them.
        self.sessions_seen: dict[str, tuple[tuple[object, ...], Any]] = {}
        #: Held while a record is added to :attr:`sessions_seen` (reading it needs no lock).
        self.sessions_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<token_vault AppState {self.settings.base_url}>"

    def _built(self, name: str, build: Callable[[], _T]) -> _T:
        """Return the member kept under ``name``, built by ``build`` on first use, once."""
        found = self.__dict__.get(name)
        if found is None:
            with self._lock:
                found = self.__dict__.get(name)
                if found is None:
                    found = self.__dict__[name] = build()
        return cast(_T, found)

    @property
    def management(self) -> ManagementClient:
        """Return the app's Management API client."""
        return self._built(
            "_management", lambda: ManagementClient(self.settings, exchanger=self.exchanger)
        )

    @property
    def my_account(self) -> MyAccountClient:
        """Return the app's My Account API client."""
        return self._built(
            "_my_account", lambda: MyAccountClient(self.settings, self.transport, dpop=self.dpop)
        )

    @property
    def bearer(self) -> BearerValidator:
        """Return the validator of callers' access tokens (its key set is fetched on first use).

        Raises :class:`~flask_token_vault.InvalidAccessToken` when ``AUTH0_AUDIENCE`` is not
        set: with no API identifier, no access token can be for this app.
        """
        audience = self.settings.audience
        if not audience:
            raise InvalidAccessToken(
                "This app accepts no access tokens: it serves no API (AUTH0_AUDIENCE is not set)."
            )
        return self._built("_bearer", lambda: BearerValidator(self.tenant_keys, audience))

    @property
    def api_exchanger(self) -> Exchanger:
        """Return the exchanger of callers' access tokens: the API's Custom API Client's.

        Raises :class:`~flask_token_vault.ApiClientMisconfigured` when
        ``TOKEN_VAULT_API_CLIENT_ID`` is not set.
        """
        settings = self.settings
        client_id, secret = settings.api_client_id, settings.api_client_secret
        if not client_id or not secret:
            raise ApiClientMisconfigured(
                "This API cannot exchange access tokens at Token Vault: no Custom API Client "
                "is configured (TOKEN_VAULT_API_CLIENT_ID, TOKEN_VAULT_API_CLIENT_SECRET).",
                error="api_client_not_configured",
            )
        return self._built(
            "_api_exchanger",
            lambda: Exchanger(settings, self.transport, client_id=client_id, client_secret=secret),
        )

    def revoke_later(self, refresh_token: str) -> None:
        """Revoke a refresh token at Auth0 from a background thread: the caller does not wait.

        A logout answers at once even when Auth0 is slow or down; the revocation runs inside
        the transport's deadline and a failure is logged (without the token).
        """
        with self._lock:
            if len(self._revoking) >= _MAX_PENDING_REVOCATIONS:
                log.warning("refresh token revocation dropped: too many are waiting")
                return
            future = self._revoker.submit(self._revoke, refresh_token)
            self._revoking.add(future)
        future.add_done_callback(self._revoked)

    def _revoke(self, refresh_token: str) -> None:
        try:
            self.exchanger.revoke(refresh_token)
        except TokenVaultError as exc:
            log.warning("refresh token revocation failed: error=%s", exc.error)
        else:
            log.info("refresh token revoked")

    def _revoked(self, future: Future[None]) -> None:
        with self._lock:
            self._revoking.discard(future)

    def wait_for_revocations(self, timeout: float = 30.0) -> bool:
        """Wait for the revocations queued so far (tests, shutdown); return whether all are done."""
        with self._lock:
            pending = set(self._revoking)
        _, not_done = wait_for_futures(pending, timeout=timeout)
        return not not_done

    def declared_scopes(self, connection: str) -> frozenset[str]:
        """Return the scopes this app declares for ``connection`` (see :class:`ConnectLinks`)."""
        return self.links.declared(connection, current_app.view_functions)

    def set_clock(self, clock: ClockSource | Callable[[], float]) -> None:
        """Read time from ``clock`` (a ``FakeClock`` or a function of epoch seconds) everywhere."""
        self.clock.use(clock)


def _cache_breaker_changed(opened: bool, error: str, retry_in: float) -> None:
    """Send :data:`~flask_token_vault.signals.cache_unavailable` or ``cache_recovered``."""
    # The breaker changes inside a cache call, so inside the app's request or CLI command.
    if not has_app_context():
        return
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if opened:
        signals.cache_unavailable.send(app, error=error, retry_in=retry_in)
    else:
        signals.cache_recovered.send(app)


class _TenantOAuth(FlaskOAuth2App):  # type: ignore[misc]  # authlib is untyped
    """authlib's Flask client, reading discovery and keys through the app's checked copies."""

    def __init__(self, settings: Settings, transport: Transport, keys: TenantKeys) -> None:
        super().__init__(
            FlaskIntegration("token_vault"),
            "token_vault",
            client_id=settings.client_id,
            authorize_params={"audience": settings.audience} if settings.audience else None,
            client_kwargs={
                "scope": " ".join(settings.scopes),
                "default_timeout": settings.http_timeout,
            },
        )
        self._tenant = (settings, transport)
        self._tenant_keys = keys

    def load_server_metadata(self) -> dict[str, Any]:
        """Return the discovery document, checked against ``AUTH0_DOMAIN`` (pinned to RS256)."""
        if "_loaded_at" not in self.server_metadata:
            self.server_metadata.update(read_discovery(*self._tenant))
            self.server_metadata["_loaded_at"] = time.time()
        return cast("dict[str, Any]", self.server_metadata)

    def fetch_jwk_set(self, force: bool = False) -> dict[str, Any]:
        """Return the tenant's JWKS (``force``: a token named a key it lacks)."""
        return self._tenant_keys.jwks(refresh=force)


def get_state(app: Flask | None = None) -> AppState:
    """Return the per-app state, with a clear message when the extension is not set up."""
    # The proxy's object, not the proxy: each attribute read through a proxy costs its lookup.
    target = app if app is not None else current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        return target.extensions[EXTENSION_KEY]  # type: ignore[no-any-return]
    except KeyError:
        raise RuntimeError(
            "Flask-Token-Vault is not initialised on this app: call TokenVault(app) or "
            "vault.init_app(app) first."
        ) from None


def build_store(
    settings: Settings, *, clock: Clock | None = None, listener: BreakerListener | None = None
) -> Store:
    """Turn ``TOKEN_VAULT_CACHE`` into a :class:`Store`.

    Accepts nothing (an in-process :class:`MemoryStore`), a cachelib ``BaseCache``, a
    Redis-protocol client object or URL (one node, a cluster, Sentinel; Redis or Valkey: see
    :mod:`._redis`), a ``memcached://host:port`` URL, or a ``file://`` URL or absolute path of
    a directory. Redis calls are bounded by ``TOKEN_VAULT_CACHE_TIMEOUT``. A shared store is
    guarded by a :class:`Breaker` that tells ``listener`` when it opens and closes.
    """
    value, timeout, cooldown = settings.cache, settings.cache_timeout, settings.cache_cooldown
    clock = clock or Clock()
    if value is None or value == "simple":
        return MemoryStore(clock)
    store = _backend(value, timeout)
    if not store.shared:
        return store
    breaker = Breaker(
        clock,
        cooldown=cooldown,
        what=f"the cache ({store.name})",
        listener=listener,
        probe=store.ping if isinstance(store, RedisStore) else None,
    )
    return GuardedStore(store, breaker)


def _backend(value: Any, timeout: float) -> RedisStore | CachelibStore:
    key = "TOKEN_VAULT_CACHE"
    if isinstance(value, BaseCache):
        return CachelibStore(value)
    if not isinstance(value, str):
        if is_client(value):
            return RedisStore(redis_client(value, timeout))
        raise ConfigurationError(
            key,
            "must be a cachelib BaseCache, a Redis or Valkey client, a URL or a directory path.",
        )
    parts = urlsplit(value)
    if parts.scheme in SCHEMES:
        try:
            library("valkey" if parts.scheme.startswith("valkey") else "redis")
            store = RedisStore(redis_client(value, timeout))
            if parts.scheme.startswith(("rediss", "valkeys")):
                store.warm(WARM_TLS_CONNECTIONS)
            return store
        except (ImportError, ValueError) as exc:  # no client library, or a URL that does not parse
            raise ConfigurationError(key, f"{exc}.") from None
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
        "use redis://, rediss://, redis+cluster://, redis+sentinel://, valkey://, "
        "memcached://, file:// or an absolute path.",
    )
