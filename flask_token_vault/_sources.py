"""Token sources: where a provider SDK's adapter gets its tokens (layer: request-time API).

Every adapter in :mod:`flask_token_vault.providers` holds one :class:`TokenSource` and nothing
else of the extension: the current request's user (:class:`RequestTokenSource`), a background
job's user (:class:`JobTokenSource`), or any object of the same shape. Both implementations go
through the one token path (memo, near cache, shared cache, one exchange per slot), so an SDK
call costs what :func:`~flask_token_vault.get_provider_token_set` costs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from flask import Flask, has_request_context

from ._cache import Slot
from ._exchange import ProviderToken
from ._state import get_state
from ._tokens import (
    get_provider_token_set,
    reject_provider_token,
    request_state,
    sorted_scopes,
)
from ._worker import job_app, worker_token

log = logging.getLogger("flask_token_vault")


@runtime_checkable
class TokenSource(Protocol):
    """Where an adapter gets a provider token for one connection, and reports a refused one.

    Adapters call :meth:`token` before each call of the provider's API (or when their own copy
    expires) and :meth:`reject` when the provider answers 401, then :meth:`token` once more.
    Any object of this shape serves: :class:`RequestTokenSource`, :class:`JobTokenSource`, or
    an app's own.
    """

    #: The Auth0 connection the tokens are for (``"google-oauth2"``, ``"windowslive"``...).
    connection: str

    def token(self, scopes: Sequence[str] = (), *, force_refresh: bool = False) -> ProviderToken:
        """Return a usable token holding ``scopes``; ``force_refresh`` skips every cache.

        Raises :class:`~flask_token_vault.InsufficientScope` when a scope is not granted.
        """
        ...

    def reject(self, access_token: str) -> None:
        """Drop ``access_token``, which the provider refused, wherever it is cached."""
        ...


class RequestTokenSource:
    """The provider tokens of this request's user: the signed-in user, or the API caller.

    Made inside a request (a view), for that request: it is bound to the user it was made
    for and refuses to serve another (an SDK client kept across requests would otherwise carry
    one user's token to the next). Raises :class:`~flask_token_vault.LoginRequired` when
    nobody is signed in.
    """

    __slots__ = ("_sub", "connection", "login_hint")

    def __init__(self, connection: str, login_hint: str | None = None) -> None:
        if not has_request_context():
            raise RuntimeError(
                "RequestTokenSource works inside a request; a background job uses JobTokenSource."
            )
        self.connection = connection
        self.login_hint = login_hint
        self._sub = request_state().subject.sub

    def __repr__(self) -> str:
        return f"RequestTokenSource({self.connection!r})"

    def token(self, scopes: Sequence[str] = (), *, force_refresh: bool = False) -> ProviderToken:
        """Return the user's token, as :func:`~flask_token_vault.get_provider_token_set` does."""
        if not has_request_context() or request_state().subject.sub != self._sub:
            raise RuntimeError(
                "This token source was made for another request's user: make SDK clients "
                "inside the view that uses them."
            )
        return get_provider_token_set(
            self.connection, scopes, self.login_hint, force_refresh=force_refresh
        )

    def reject(self, access_token: str) -> None:
        """Drop a refused token everywhere: :func:`~flask_token_vault.reject_provider_token`."""
        reject_provider_token(self.connection, access_token)


class JobTokenSource:
    """The provider tokens of one user in a background job, with no session.

    Each token comes from :func:`~flask_token_vault.TokenVault.worker_token` (Auth0's
    Privileged Worker exchange, through the app's cache, shared with web requests).
    ``audit_context`` is the business reason Auth0 records (default:
    ``TOKEN_VAULT_WORKER_AUDIT_CONTEXT``); ``app`` defaults to the current app.
    """

    __slots__ = ("_app", "_scopes", "audit_context", "connection", "login_hint", "user_id")

    def __init__(
        self,
        user_id: str,
        connection: str,
        *,
        audit_context: str | None = None,
        login_hint: str | None = None,
        app: Flask | None = None,
    ) -> None:
        self._app = job_app(app, "JobTokenSource")
        self.user_id = user_id
        self.connection = connection
        self.audit_context = audit_context
        self.login_hint = login_hint
        self._scopes: Sequence[str] = ()

    def __repr__(self) -> str:
        return f"JobTokenSource({self.connection!r})"

    def token(self, scopes: Sequence[str] = (), *, force_refresh: bool = False) -> ProviderToken:
        """Return the user's token (see :meth:`~flask_token_vault.TokenVault.worker_token`)."""
        found = worker_token(
            self.user_id,
            self.connection,
            scopes,
            audit_context=self.audit_context,
            login_hint=self.login_hint,
            app=self._app,
            force_refresh=force_refresh,
        )
        self._scopes = scopes  # where a refused token sits: the slot of the last ask
        return found

    def reject(self, access_token: str) -> None:
        """Drop a refused token from the app's caches, for every process sharing them."""
        log.info("provider refused a token; dropping it: connection=%s", self.connection)
        slot = Slot(self.user_id, self.connection, self.login_hint, sorted_scopes(self._scopes))
        # The near cache adds any other slot of this user holding the same token.
        get_state(self._app).cache.reject(self.user_id, self.connection, access_token, [slot])


#: At most this many seconds early, an SDK's copy of a token is renewed (the vault's cache has a
#: leeway of its own, ``TOKEN_VAULT_CACHE_LEEWAY``, 60 s by default, at most a quarter of a life).
RENEW_MARGIN = 30.0


def renew_at(token: ProviderToken, now: float) -> float:
    """Return when an SDK should ask for ``token`` again: a little before it expires.

    Never later than the vault's cache lets go of it, so the SDK's next ask gets a new token
    rather than the same one again.
    """
    return token.expires_at - min(RENEW_MARGIN, max(0.0, (token.expires_at - now) / 8))


def as_source(source: TokenSource | str, login_hint: str | None = None) -> TokenSource:
    """Return ``source``, or for a connection name the current request's source for it."""
    if isinstance(source, str):
        return RequestTokenSource(source, login_hint)
    return source
