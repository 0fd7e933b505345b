"""The :func:`provider_token_required` view decorator."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import ParamSpec, TypeVar, cast

from flask import current_app, jsonify, redirect, request
from werkzeug.wrappers import Response

from .errors import (
    AccountNotConnected,
    InsufficientScope,
    LoginRequired,
    ReconsentRequired,
    TokenVaultError,
)
from .extension import connect_url, get_provider_token_set, login_url

__all__ = ["provider_token_required", "wants_json"]

P = ParamSpec("P")
R = TypeVar("R")


def wants_json() -> bool:
    """Return whether the current client prefers JSON to HTML (API clients, fetch calls)."""
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def _here() -> str:
    path = request.full_path
    return path[:-1] if path.endswith("?") else path


def challenge(
    error: TokenVaultError,
    connection: str,
    required: Iterable[str],
    login_hint: str | None = None,
) -> Response:
    """Turn a login/connect error into a redirect (browsers) or a 401 JSON body (API clients)."""
    scopes = sorted(set(required))
    if isinstance(error, InsufficientScope):
        scopes = list(error.union)
    here = _here()
    connect = connect_url(connection, scopes, next=here, login_hint=login_hint, _external=True)
    if wants_json():
        body = error.to_dict()
        body.update(
            connection=connection,
            required_scopes=scopes,
            connect_url=connect,
            login_url=login_url(next=here, _external=True),
        )
        response = jsonify(body)
        response.status_code = 401
        response.headers["WWW-Authenticate"] = f'Bearer error="{error.error}"'
        return response
    # Signing in through the connection also connects it: one trip to Auth0, not two.
    return redirect(connect_url(connection, scopes, next=here, login_hint=login_hint))


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
