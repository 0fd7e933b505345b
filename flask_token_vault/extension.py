"""The :class:`TokenVault` extension object and the per-app state it builds."""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import urlencode

from authlib.integrations.flask_client import FlaskIntegration, FlaskOAuth2App
from flask import Flask, current_app, g, has_request_context, url_for
from werkzeug.local import LocalProxy

from . import signals
from .cache import TokenCache, build_backend
from .config import Settings, load_settings
from .crypto import Crypto
from .errors import InsufficientScope, LoginRequired, TokenVaultError
from .exchange import Exchanger, ProviderToken
from .session import User, read_user

__all__ = [
    "TokenVault",
    "connect_url",
    "current_user",
    "get_provider_token",
    "get_provider_token_set",
    "login_url",
]

log = logging.getLogger("flask_token_vault")
EXTENSION_KEY = "token_vault"
_G_TOKENS = "_token_vault_tokens"
_G_USER = "_token_vault_user"


@dataclass
class AppState:
    """Everything the extension built for one app (``app.extensions["token_vault"]``)."""

    vault: TokenVault
    settings: Settings
    crypto: Crypto
    exchanger: Exchanger
    cache: TokenCache
    oauth: FlaskOAuth2App
    clock: Callable[[], float] = time.time
    extra: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"<token_vault AppState {self.settings.base_url}>"

    def set_clock(self, clock: Callable[[], float]) -> None:
        """Use ``clock`` (epoch seconds) for token expiry everywhere: for tests and simulations."""
        self.clock = clock
        self.cache.clock = clock
        self.exchanger.clock = clock

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


class TokenVault:
    """Flask extension that signs users in with Auth0 and fetches provider tokens from Token Vault.

    Use ``TokenVault(app)`` or, with an application factory, ``vault = TokenVault()`` then
    ``vault.init_app(app)``. Keyword options override the app's config keys of the same name,
    e.g. ``TokenVault(app, TOKEN_VAULT_URL_PREFIX="/login")``.
    """

    def __init__(self, app: Flask | None = None, **options: Any) -> None:
        self._options = options
        if app is not None:
            self.init_app(app)

    def __repr__(self) -> str:
        return "TokenVault()"

    def init_app(self, app: Flask) -> None:
        """Read and validate the app's configuration, then register routes and helpers."""
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError(
                "Flask-Token-Vault is already registered on this app; call init_app once per app."
            )
        settings = load_settings(app.config, self._options)
        crypto = Crypto(settings.encryption_keys)
        backend = build_backend(settings.cache)
        state = AppState(
            vault=self,
            settings=settings,
            crypto=crypto,
            exchanger=Exchanger(settings),
            cache=TokenCache(
                backend,
                crypto,
                leeway=settings.cache_leeway,
                lock_timeout=settings.lock_timeout,
                local_ttl=settings.local_cache_ttl,
            ),
            oauth=_make_oauth_client(settings),
        )
        app.extensions[EXTENSION_KEY] = state

        from .views import blueprint

        app.register_blueprint(blueprint, url_prefix=settings.url_prefix or None)
        app.context_processor(_template_context)

    @staticmethod
    def state(app: Flask | None = None) -> AppState:
        """Return the per-app state of ``app`` (default: the current app)."""
        return get_state(app)


def _make_oauth_client(settings: Settings) -> FlaskOAuth2App:
    params: dict[str, str] = {}
    if settings.audience:
        params["audience"] = settings.audience
    return FlaskOAuth2App(
        FlaskIntegration("token_vault"),
        "token_vault",
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        server_metadata_url=settings.base_url + "/.well-known/openid-configuration",
        authorize_params=params or None,
        client_kwargs={
            "scope": " ".join(settings.scopes),
            "token_endpoint_auth_method": "client_secret_post",  # nosec B105
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


def _current_user() -> User | None:
    if not has_request_context():
        return None
    store = g._get_current_object()
    try:
        return cast("User | None", getattr(store, _G_USER))
    except AttributeError:
        user = read_user(get_state().crypto)
        setattr(store, _G_USER, user)
        return user


#: The signed-in :class:`~flask_token_vault.session.User`, or ``None``.
current_user: User | None = cast("User | None", LocalProxy(_current_user))


def _require_user() -> User:
    user = _current_user()
    if user is None:
        raise LoginRequired("Sign in to continue.")
    return user


def get_provider_token_set(
    connection: str,
    scopes: Iterable[str] | None = None,
    login_hint: str | None = None,
    *,
    force_refresh: bool = False,
) -> ProviderToken:
    """Return the signed-in user's provider token for ``connection`` with its expiry and scopes.

    Looks in this request's memo, then the shared cache, and exchanges the user's refresh token
    at Auth0 only when neither has a usable token (one exchange however many callers ask at
    once). Raises :class:`InsufficientScope` when ``scopes`` are required but not granted.
    """
    state = get_state()
    user = _require_user()
    required = tuple(sorted(set(scopes or ())))
    memo: dict[tuple[str, str], list[ProviderToken]] = g.setdefault(_G_TOKENS, {})
    slot = memo.setdefault((connection, login_hint or ""), [])
    now = state.clock()
    # Exchanging in this request is only needed when no earlier call left a usable token.
    if not force_refresh:
        for token in slot:
            if token.has_scopes(required) and token.expires_at > now:
                return token
    cache = state.cache
    key = cache.key_for(user.sub, connection, login_hint, required)

    def produce() -> ProviderToken:
        return _exchange(state, user, connection, login_hint, required, key)

    if force_refresh:
        cache.delete(key)
        token = produce()
    else:
        token = cache.single_flight(key, produce)
        if not token.has_scopes(required) and cache.forget_local(key):
            # A re-consent handled by another process may have stored a broader token.
            token = cache.single_flight(key, produce)
    slot[:] = [t for t in slot if t is not token]
    slot.append(token)
    if not token.has_scopes(required):
        error = InsufficientScope(
            connection=connection, granted=token.scopes or (), required=required
        )
        signals.reconsent_required.send(
            current_app._get_current_object(),  # type: ignore[attr-defined]
            user_id=user.sub,
            connection=connection,
            required_scopes=error.union,
            reason=error.error,
        )
        raise error
    return token


def _exchange(
    state: AppState,
    user: User,
    connection: str,
    login_hint: str | None,
    required: tuple[str, ...],
    key: str,
) -> ProviderToken:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    issued_at = state.clock()
    try:
        token = state.exchanger.exchange(
            user.refresh_token, connection, login_hint=login_hint, scopes=required
        )
    except TokenVaultError as exc:
        if isinstance(exc, InsufficientScope) and not exc.required:
            # Auth0's invalid_scope names no scopes: ask for the ones this call needs, so
            # the re-consent link cannot come out empty and send the user round in a loop.
            exc = InsufficientScope(
                exc.description, connection=connection, required=required, error=exc.error
            )
        state.cache.delete(key)
        log.info("exchange failed: connection=%s error=%s", connection, exc.error)
        signals.exchange_failed.send(app, user_id=user.sub, connection=connection, error=exc)
        if exc.error in ("reconsent_required", "federated_connection_refresh_token_flow_failed"):
            signals.reconsent_required.send(
                app,
                user_id=user.sub,
                connection=connection,
                required_scopes=required,
                reason=exc.error,
            )
        raise exc from None
    state.cache.set(key, token, sub=user.sub, issued_at=issued_at)
    log.debug(
        "exchanged: connection=%s expires_in=%d scopes=%s",
        connection,
        token.expires_at - issued_at,
        " ".join(token.scopes or ("?",)),
    )
    signals.token_exchanged.send(
        app,
        user_id=user.sub,
        connection=connection,
        login_hint=login_hint,
        scopes=token.scopes,
        expires_in=token.expires_at - issued_at,
    )
    return token


def get_provider_token(
    connection: str,
    scopes: Iterable[str] | None = None,
    login_hint: str | None = None,
    *,
    force_refresh: bool = False,
) -> str:
    """Return the signed-in user's access token at the provider behind ``connection``.

    See :func:`get_provider_token_set` for the lookup order and errors.
    """
    return get_provider_token_set(
        connection, scopes, login_hint, force_refresh=force_refresh
    ).access_token


def forget_provider_tokens(connection: str | None = None) -> int:
    """Drop the signed-in user's cached provider tokens (all, or those of one connection)."""
    user = _current_user()
    if user is None:
        return 0
    memo: dict[tuple[str, str], list[ProviderToken]] = g.setdefault(_G_TOKENS, {})
    for key in list(memo):
        if connection is None or key[0] == connection:
            del memo[key]
    return get_state().cache.delete_user(user.sub, connection)


def connect_url(
    connection: str,
    scopes: Iterable[str] | None = None,
    next: str | None = None,
    *,
    login_hint: str | None = None,
    _external: bool = False,
) -> str:
    """Return the URL that sends the user to connect ``connection`` asking for ``scopes``.

    The scope list is signed, so the link cannot be altered to ask for other scopes.
    """
    state = get_state()
    params: dict[str, str] = {}
    wanted = sorted(set(scopes or ()))
    if wanted:
        params["scope"] = " ".join(wanted)
        params["sig"] = state.scope_signature(connection, wanted)
    if next:
        params["next"] = next
    if login_hint:
        params["login_hint"] = login_hint
    base = url_for("token_vault.connect", connection=connection, _external=_external)
    return base + ("?" + urlencode(params) if params else "")


def login_url(next: str | None = None, *, _external: bool = False) -> str:
    """Return the URL of the login route, coming back to ``next`` afterwards."""
    params = {"next": next} if next else {}
    base = url_for("token_vault.login", _external=_external)
    return base + ("?" + urlencode(params) if params else "")


def _template_context() -> dict[str, Any]:
    return {
        "token_vault_user": _current_user(),
        "token_vault_connect_url": connect_url,
        "token_vault_login_url": login_url,
    }
