"""The :func:`provider_token_required` view decorator (layer: views, above the token API)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import ParamSpec, TypeVar, cast

from flask import current_app, request

from ._responses import challenge, wants_json
from .errors import AccountNotConnected, LoginRequired, ReconsentRequired
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
            except (LoginRequired, AccountNotConnected, ReconsentRequired) as exc:
                return cast(R, challenge(exc, connection, required, hint))
            return cast(R, current_app.ensure_sync(view)(*args, **kwargs))

        return wrapper

    return decorator
