"""The :func:`provider_token_required` view decorator (layer: views, above the token API)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import ParamSpec, TypeVar, cast

from flask import current_app, request

from ._responses import challenge, wants_json
from ._state import get_state
from .errors import AccountNotConnected, LoginRequired, Misconfigured, ReconsentRequired
from .session import take_connected
from .tokens import get_provider_token_set

__all__ = ["provider_token_required", "wants_json"]

P = ParamSpec("P")
R = TypeVar("R")


def provider_token_required(
    connection: str,
    scopes: Iterable[str] = (),
    *,
    login_hint: str | Callable[[], str | None] | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Require a provider token for ``connection`` carrying ``scopes`` before running the view.

    Not signed in: redirect to sign in through ``connection`` (which connects it) and back.
    Account not connected, stored grant refused or scopes missing: redirect to connect, asking
    for the granted scopes plus the required ones, and back. Clients that prefer JSON get a 401
    JSON body with ``error``, ``connection``, ``required_scopes`` and ``connect_url`` instead.
    Works on sync and async views; ``OPTIONS`` requests pass through. Inside the view,
    :func:`get_provider_token` returns the token without another exchange.

    When the vault still holds no account right after the user came back from connecting
    ``connection``, the tenant refused the way ``TOKEN_VAULT_CONNECT_FLOW`` fills it: that
    raises :class:`~flask_token_vault.Misconfigured` (``connect_not_stored``) naming the fix,
    instead of sending the browser round to connect again.
    """
    required = tuple(sorted(set(scopes)))

    def decorator(view: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            if request.method == "OPTIONS":
                return cast(R, current_app.ensure_sync(view)(*args, **kwargs))
            hint = login_hint() if callable(login_hint) else login_hint
            try:
                get_provider_token_set(connection, required, hint)
            except AccountNotConnected as exc:
                if take_connected(connection):
                    raise _connect_not_stored(connection, exc) from None
                return cast(R, challenge(exc, connection, required, hint))
            except (LoginRequired, ReconsentRequired) as exc:
                return cast(R, challenge(exc, connection, required, hint))
            take_connected(connection)
            return cast(R, current_app.ensure_sync(view)(*args, **kwargs))

        return wrapper

    return decorator


def _connect_not_stored(connection: str, cause: AccountNotConnected) -> Misconfigured:
    if get_state().settings.connect_flow == "authorize":
        description = (
            f"You connected {connection}, but Token Vault holds no account for it: this tenant "
            "does not fill the vault by signing in through the connection "
            "(TOKEN_VAULT_CONNECT_FLOW = 'authorize')."
        )
        remedy = (
            "Set TOKEN_VAULT_CONNECT_FLOW = 'connected_accounts' and run `flask token-vault "
            "setup` (Auth0's tenants now fill the vault through Connected Accounts); `flask "
            "token-vault doctor` says which way this tenant fills it."
        )
    else:
        description = (
            f"Auth0 completed connecting {connection}, but Token Vault holds no account for it "
            "(TOKEN_VAULT_CONNECT_FLOW = 'connected_accounts')."
        )
        remedy = (
            "Run `flask token-vault doctor`: it says which way this tenant fills the vault; "
            "`flask token-vault setup` turns Token Vault on for the connection."
        )
    return Misconfigured(
        description,
        error="connect_not_stored",
        remedy=remedy,
        connection=connection,
        upstream_status=cause.upstream_status,
    )
