"""The typed per-app state (layer: state, above the core clients; below the request-time API).

:class:`AppState` is built once by :meth:`TokenVault.init_app
<flask_token_vault.TokenVault.init_app>` and kept in ``app.extensions["token_vault"]``. It holds
the settings, the keys, the clock, the one transport, the exchange and the cache; the Management
and My Account clients, and the API mode's parts (the access-token validator with its cached
key set, the Custom API Client's exchanger), are built the first time they are needed, once,
under a lock.
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Callable, Iterable
from typing import Any, cast

from authlib.integrations.flask_client import FlaskIntegration, FlaskOAuth2App
from flask import Flask, current_app

from ._clock import Clock, ClockSource
from ._http import Transport
from .bearer import BearerValidator
from .cache import TokenCache
from .config import Settings
from .crypto import Crypto
from .dpop import DPoP
from .errors import ApiClientMisconfigured, InvalidAccessToken
from .exchange import Exchanger
from .management import ManagementClient
from .my_account import MyAccountClient
from .store import build_store

__all__ = ["EXTENSION_KEY", "AppState", "Hooks", "get_state"]

EXTENSION_KEY = "token_vault"


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
    """Everything the extension built for one app (``app.extensions["token_vault"]``)."""

    def __init__(
        self, settings: Settings, clock: Clock | None = None, hooks: Hooks | None = None
    ) -> None:
        #: The resolved settings.
        self.settings = settings
        #: The callbacks registered on the extension object.
        self.hooks = hooks or Hooks()
        #: Whether the app's views were checked against the configured connections (done on
        #: the first request, once every route is registered).
        self.views_checked = False
        #: The one clock every part reads.
        self.clock = clock or Clock()
        #: Encryption and keyed hashes.
        self.crypto = Crypto(settings.encryption_keys)
        #: The one HTTP transport (pooled, deadline-bounded, retrying).
        self.transport = Transport(
            http_timeout=settings.http_timeout,
            deadline=settings.deadline,
            max_retries=settings.max_retries,
            clock=self.clock,
        )
        #: DPoP proofs and the nonces Auth0 hands out, when ``TOKEN_VAULT_DPOP_KEY`` is set.
        self.dpop = DPoP(settings.dpop_key, self.clock) if settings.dpop_key else None
        #: Auth0's token endpoint: the Token Vault exchange and other grants.
        self.exchanger = Exchanger(settings, self.transport, self.dpop)
        #: The provider-token cache.
        self.cache = TokenCache(
            build_store(settings.cache),
            self.crypto,
            self.clock,
            leeway=settings.cache_leeway,
            lock_timeout=settings.lock_timeout,
            local_ttl=settings.local_cache_ttl,
        )
        #: authlib's OAuth client for the sign-in (discovery, authorize URL, ID token). The code
        #: exchange goes through :attr:`exchanger`, like every other call to ``/oauth/token``.
        self.oauth = _oauth_client(settings)
        self._lock = threading.Lock()
        self._management: ManagementClient | None = None
        self._my_account: MyAccountClient | None = None
        self._bearer: BearerValidator | None = None
        self._api_exchanger: Exchanger | None = None

    def __repr__(self) -> str:
        return f"<token_vault AppState {self.settings.base_url}>"

    @property
    def management(self) -> ManagementClient:
        """Return the app's Management API client, built on first use."""
        if self._management is None:
            with self._lock:
                if self._management is None:
                    self._management = ManagementClient(self.settings, exchanger=self.exchanger)
        return self._management

    @property
    def my_account(self) -> MyAccountClient:
        """Return the app's My Account API client, built on first use."""
        if self._my_account is None:
            with self._lock:
                if self._my_account is None:
                    self._my_account = MyAccountClient(
                        self.settings, self.transport, dpop=self.dpop
                    )
        return self._my_account

    @property
    def bearer(self) -> BearerValidator:
        """Return the validator of callers' access tokens (its key set is fetched on first use).

        Raises :class:`~flask_token_vault.InvalidAccessToken` when ``AUTH0_AUDIENCE`` is not
        set: with no API identifier, no access token can be for this app.
        """
        if self._bearer is None:
            audience = self.settings.audience
            if not audience:
                raise InvalidAccessToken(
                    "This app accepts no access tokens: it serves no API (AUTH0_AUDIENCE is "
                    "not set)."
                )
            with self._lock:
                if self._bearer is None:
                    self._bearer = BearerValidator(
                        issuer=self.settings.issuer,
                        audience=audience,
                        jwks_uri=self.settings.base_url + "/.well-known/jwks.json",
                        transport=self.transport,
                    )
        return self._bearer

    @property
    def api_exchanger(self) -> Exchanger:
        """Return the exchanger of callers' access tokens: the API's Custom API Client's.

        Raises :class:`~flask_token_vault.ApiClientMisconfigured` when
        ``TOKEN_VAULT_API_CLIENT_ID`` is not set.
        """
        if self._api_exchanger is None:
            settings = self.settings
            if not settings.api_client_id or not settings.api_client_secret:
                raise ApiClientMisconfigured(
                    "This API cannot exchange access tokens at Token Vault: no Custom API Client "
                    "is configured (TOKEN_VAULT_API_CLIENT_ID, TOKEN_VAULT_API_CLIENT_SECRET).",
                    error="api_client_not_configured",
                )
            with self._lock:
                if self._api_exchanger is None:
                    self._api_exchanger = Exchanger(
                        settings,
                        self.transport,
                        client_id=settings.api_client_id,
                        client_secret=settings.api_client_secret,
                    )
        return self._api_exchanger

    def set_clock(self, clock: ClockSource | Callable[[], float]) -> None:
        """Read time from ``clock`` everywhere in this app: for tests and simulations.

        ``clock`` is a :class:`~flask_token_vault.testing.FakeClock` (wall and monotonic time,
        sleeping) or a bare function returning epoch seconds.
        """
        self.clock.use(clock)

    def scope_signature(self, connection: str, scopes: Iterable[str]) -> str:
        """Sign a connection's scope list so a link can carry it without being forged."""
        return self.crypto.keyed_hash("connect-scope", connection, " ".join(sorted(set(scopes))))[
            :32
        ]

    def check_scope_signature(self, connection: str, scopes: Iterable[str], sig: str) -> bool:
        """Return whether ``sig`` signs exactly these scopes for this connection."""
        # Bytes: compare_digest refuses str with non-ASCII characters, which visitors can send.
        expected = self.scope_signature(connection, scopes).encode()
        return hmac.compare_digest(expected, sig.encode("utf-8", "replace"))


def _oauth_client(settings: Settings) -> FlaskOAuth2App:
    params: dict[str, str] = {}
    if settings.audience:
        params["audience"] = settings.audience
    return FlaskOAuth2App(
        FlaskIntegration("token_vault"),
        "token_vault",
        client_id=settings.client_id,
        server_metadata_url=settings.base_url + "/.well-known/openid-configuration",
        authorize_params=params or None,
        client_kwargs={
            "scope": " ".join(settings.scopes),
            "default_timeout": settings.http_timeout,
        },
    )


def get_state(app: Flask | None = None) -> AppState:
    """Return the per-app state, with a clear message when the extension is not set up."""
    target = app if app is not None else current_app
    try:
        return cast(AppState, target.extensions[EXTENSION_KEY])
    except KeyError:
        raise RuntimeError(
            "Flask-Token-Vault is not initialised on this app: call TokenVault(app) or "
            "vault.init_app(app) first."
        ) from None
