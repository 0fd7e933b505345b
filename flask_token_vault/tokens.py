"""The request-time token API (layer: request-time, above the per-app state).

:data:`current_user`, :func:`get_provider_token`, :func:`get_provider_token_set` and
:func:`forget_provider_tokens` work inside a request of the app; they read the session through
:mod:`flask_token_vault.session` and fetch tokens through the app's cache and exchange.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import cast

from flask import current_app, g, has_request_context
from werkzeug.local import LocalProxy

from . import signals
from ._state import AppState, get_state
from .cache import Slot
from .errors import (
    AccountNotConnected,
    InsufficientScope,
    LoginRequired,
    RateLimited,
    TokenVaultError,
)
from .exchange import ProviderToken
from .session import User, end_session, read_user

__all__ = [
    "current_user",
    "forget_provider_tokens",
    "get_provider_token",
    "get_provider_token_set",
    "optional_user",
    "require_user",
]

log = logging.getLogger("flask_token_vault")
_G_TOKENS = "_token_vault_tokens"
_G_USER = "_token_vault_user"
_G_RATE_LIMITED = "_token_vault_rate_limited"


def optional_user() -> User | None:
    """Return the signed-in user of this request (read once per request), or ``None``.

    A session past its lifetime, or ended by a back-channel logout, reads as ``None`` and is
    removed from the cookie.
    """
    if not has_request_context():
        return None
    store = g._get_current_object()
    try:
        return cast("User | None", getattr(store, _G_USER))
    except AttributeError:
        state = get_state()
        user = read_user(state)
        if user is not None and state.revocations.ended(user.sub, user.sid, user.logged_in_at):
            end_session("ended by a back-channel logout")
            state.cache.invalidate_user(user.sub)
            user = None
        setattr(store, _G_USER, user)
        return user


#: The signed-in :class:`~flask_token_vault.session.User`, or ``None``.
current_user: User | None = cast("User | None", LocalProxy(optional_user))


def require_user() -> User:
    """Return the signed-in user, or raise :class:`~flask_token_vault.LoginRequired`."""
    user = optional_user()
    if user is None:
        raise LoginRequired("Sign in to continue.")
    return user


def forget_user() -> None:
    """Forget this request's memo of the user and their tokens (after sign-in or sign-out)."""
    store = g._get_current_object()
    for name in (_G_USER, _G_TOKENS):
        if hasattr(store, name):
            delattr(store, name)


def get_provider_token_set(
    connection: str,
    scopes: Iterable[str] | None = None,
    login_hint: str | None = None,
    *,
    force_refresh: bool = False,
) -> ProviderToken:
    """Return the signed-in user's provider token for ``connection`` with its expiry and scopes.

    Looks in this request's memo, then the cache, and exchanges the user's refresh token at
    Auth0 only when neither has a usable token (one exchange however many callers ask at once).
    Raises :class:`~flask_token_vault.InsufficientScope` when ``scopes`` are required but not
    granted.
    """
    state = get_state()
    user = require_user()
    required = tuple(sorted(set(scopes or ())))
    memo: dict[tuple[str, str], list[ProviderToken]] = g.setdefault(_G_TOKENS, {})
    slot_memo = memo.setdefault((connection, login_hint or ""), [])
    now = state.clock.time()
    # Exchanging in this request is only needed when no earlier call left a usable token.
    if not force_refresh:
        for token in slot_memo:
            if token.has_scopes(required) and token.expires_at > now:
                return token
    cache = state.cache
    slot = Slot(user.sub, connection, login_hint, required)

    def produce() -> tuple[ProviderToken, float]:
        limited = g.get(_G_RATE_LIMITED)
        if isinstance(limited, RateLimited):
            # Auth0 already refused this request once: answer now rather than ask again.
            raise limited
        if not force_refresh and cache.known_absent(user.sub, connection, login_hint):
            raise AccountNotConnected(
                f"No {connection} account is connected for this user.",
                error="federated_connection_refresh_token_not_found",
                connection=connection,
            )
        try:
            return _exchange(state, user, slot)
        except AccountNotConnected:
            cache.remember_absent(
                user.sub, connection, login_hint, state.settings.not_connected_ttl
            )
            raise
        except RateLimited as exc:
            setattr(g._get_current_object(), _G_RATE_LIMITED, exc)
            raise

    token = cache.fetch(slot, produce, refresh=force_refresh)
    if not token.has_scopes(required) and cache.forget_local(slot):
        # A re-consent handled by another process may have stored a broader token.
        token = cache.fetch(slot, produce)
    slot_memo[:] = [t for t in slot_memo if t is not token]
    slot_memo.append(token)
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


def _exchange(state: AppState, user: User, slot: Slot) -> tuple[ProviderToken, float]:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    connection, login_hint, required = slot.connection, slot.login_hint, slot.scopes
    issued_at = state.clock.time()
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
    return token, issued_at


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


def forget_provider_tokens(connection: str | None = None) -> None:
    """Drop the signed-in user's cached provider tokens, in this process and every other.

    The user's cache generation changes, so every token cached for them (whatever the
    connection) is out of reach at once; ``connection`` narrows only this request's memo.
    Other processes' near caches let go within ``TOKEN_VAULT_LOCAL_CACHE_TTL`` seconds.
    """
    user = optional_user()
    if user is None:
        return
    memo: dict[tuple[str, str], list[ProviderToken]] = g.setdefault(_G_TOKENS, {})
    for key in list(memo):
        if connection is None or key[0] == connection:
            del memo[key]
    get_state().cache.invalidate_user(user.sub)
