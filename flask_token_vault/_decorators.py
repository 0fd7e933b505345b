"""The view decorators: ``login_required``, ``fresh_login_required``, ``provider_token_required``.

(Layer: views, above the token API.) All answer through :func:`~._responses.challenge`, so an
app's ``unauthorized_handler`` sees every case.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import ParamSpec, TypeVar, cast

from flask import Flask, current_app, request

from ._connect_links import REQUIRES_ATTR
from ._responses import challenge
from ._session import take_connected
from ._state import get_state
from ._tokens import (
    optional_access_token,
    optional_user,
    request_state,
    sorted_scopes,
    token_set,
)
from .errors import (
    AccountNotConnected,
    ConfigurationError,
    InsufficientApiScope,
    InvalidAccessToken,
    LoginRequired,
    Misconfigured,
    ReconsentRequired,
)

P = ParamSpec("P")
R = TypeVar("R")


def login_required(view: Callable[P, R]) -> Callable[P, R]:
    """Require a signed-in user before running the view.

    Not signed in: redirect to sign in and come back; clients that prefer JSON get a 401 JSON
    body with ``error`` and ``login_url``. The app's
    :meth:`~flask_token_vault.TokenVault.unauthorized_handler` may answer instead. An API call
    (``Authorization: Bearer``) is signed in by its valid access token; a bad one gets 401
    ``invalid_token`` whatever session came along. Works on sync and async views; ``OPTIONS``
    requests pass through.
    """

    @functools.wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if (
            request.method != "OPTIONS"
            and optional_access_token() is None
            and optional_user() is None
        ):
            return cast(R, challenge(LoginRequired("Sign in to continue."), None))
        return run(*args, **kwargs)

    run = _runner(view)
    return wrapper


def fresh_login_required(max_age: int) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Require a user who authenticated at Auth0 within ``max_age`` seconds (a fresh sign-in).

    For sensitive views (changing an e-mail address, connecting a payment account): an Auth0
    session can sign a user in for days without a password. Not signed in, or signed in longer
    ago (:attr:`User.auth_time <flask_token_vault.User.auth_time>`): browsers are sent to sign
    in with ``max_age`` and ``prompt=login``, then back; JSON clients get 401
    ``fresh_login_required`` with the ``login_url`` to follow. The app's
    :meth:`~flask_token_vault.TokenVault.unauthorized_handler` may answer instead. An API call
    (``Authorization: Bearer``) has no sign-in here and is refused the same way.
    """
    if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 0:
        raise ConfigurationError("fresh_login_required", "max_age must be whole seconds, >= 0.")

    def decorator(view: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            if request.method != "OPTIONS":
                user = optional_user()
                if user is None:
                    error = LoginRequired("Sign in to continue.")
                    return cast(R, challenge(error, None, max_age=max_age))
                since = user.auth_time
                if since is None or get_state().clock.time() - since > max_age:
                    error = LoginRequired(
                        "This page needs a recent sign-in: sign in again to continue.",
                        error="fresh_login_required",
                    )
                    return cast(R, challenge(error, None, max_age=max_age))
            return run(*args, **kwargs)

        run = _runner(view)
        return wrapper

    return decorator


def _runner(view: Callable[P, R]) -> Callable[P, R]:
    """Return how to call ``view``: directly when it is a plain function, else Flask's way."""
    if inspect.iscoroutinefunction(view):
        return cast(
            "Callable[P, R]",
            lambda *args, **kwargs: current_app.ensure_sync(view)(*args, **kwargs),
        )
    return view


def provider_token_required(
    connection: str,
    scopes: Iterable[str] = (),
    *,
    login_hint: str | Callable[[], str | None] | None = None,
    api_scopes: Iterable[str] = (),
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Require a provider token for ``connection`` carrying ``scopes`` before running the view.

    Not signed in: redirect to sign in through ``connection`` (which connects it) and back.
    Not connected, stored grant refused or scopes missing: redirect to connect (asking for the
    granted scopes plus the required ones) and back. Clients that prefer JSON get a 401 body with
    ``error``, ``connection``, ``required_scopes`` and ``connect_url`` instead; the app's
    :meth:`~flask_token_vault.TokenVault.unauthorized_handler` may answer instead of either.

    An API call (``Authorization: Bearer``) never falls back to the session: a bad access token
    gets 401 ``invalid_token``, one lacking any of ``api_scopes`` 403 ``insufficient_scope``;
    not connected or scopes missing answer 401 JSON whose ``connect`` is the My Account API call
    that connects the account. With ``api_scopes``, a request without an access token gets 401
    ``access_token_required`` (a session alone does not carry API permissions).

    If the vault still holds no account right after the user came back from connecting, the
    tenant did not store it: :class:`~flask_token_vault.Misconfigured` (``connect_not_stored``)
    names the fix instead of sending the browser round again. ``connection`` must be one of
    ``TOKEN_VAULT_CONNECTIONS`` (a :class:`~flask_token_vault.ConfigurationError` on the app's
    first request otherwise). Works like :func:`login_required` on async views and ``OPTIONS``;
    inside the view, :func:`get_provider_token` returns the token without another exchange.
    A :class:`~flask_token_vault.InsufficientScope` for ``connection`` raised by the view (a
    provider SDK's adapter asking for more scopes) gets the same consent step.
    """
    required, required_api = sorted_scopes(scopes), sorted_scopes(api_scopes)

    def decorator(view: Callable[P, R]) -> Callable[P, R]:
        run = _runner(view)

        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            current = request._get_current_object()  # type: ignore[attr-defined]
            if current.method == "OPTIONS":
                return run(*args, **kwargs)
            rq = request_state(current)
            caller = rq.caller  # a bad bearer is refused before anything else
            if required_api:
                if caller is None:
                    raise InvalidAccessToken(
                        "This route needs an access token for the API (Authorization: Bearer).",
                        error="access_token_required",
                    )
                if not caller.has_scopes(required_api):
                    raise InsufficientApiScope(granted=caller.scopes, required=required_api)
            hint = login_hint() if callable(login_hint) else login_hint
            try:
                token_set(rq, connection, required, hint)
            except (AccountNotConnected, LoginRequired, ReconsentRequired) as exc:
                # An API call never reads the session, where the mark of a connect trip lives.
                if (
                    isinstance(exc, AccountNotConnected)
                    and caller is None
                    and take_connected(connection)
                ):
                    raise _connect_not_stored(connection, exc) from None
                return cast(R, challenge(exc, connection, required, hint))
            if caller is None:
                take_connected(connection, rq.session)
            try:
                return run(*args, **kwargs)
            except ReconsentRequired as exc:
                # A provider SDK in the view asked for more than the decorator did: the same
                # consent step, asking for both.
                if exc.connection != connection:
                    raise
                more = getattr(exc, "required", ())
                return cast(R, challenge(exc, connection, (*required, *more), hint))

        # functools.wraps copied the inner decorators' pairs; add this one's.
        pairs = (*getattr(view, REQUIRES_ATTR, ()), (connection, required))
        setattr(wrapper, REQUIRES_ATTR, pairs)
        return wrapper

    return decorator


# Why the vault is still empty after a connect round trip, and the fix, by connect flow.
_NOT_STORED = {
    "authorize": (
        "You connected {connection}, but Token Vault holds no account for it: this tenant "
        "does not fill the vault by signing in through the connection "
        "(TOKEN_VAULT_CONNECT_FLOW = 'authorize').",
        "Set TOKEN_VAULT_CONNECT_FLOW = 'connected_accounts' and run `flask token-vault "
        "setup` (Auth0's tenants now fill the vault through Connected Accounts); `flask "
        "token-vault doctor` says which way this tenant fills it.",
    ),
    "connected_accounts": (
        "Auth0 completed connecting {connection}, but Token Vault holds no account for it "
        "(TOKEN_VAULT_CONNECT_FLOW = 'connected_accounts').",
        "Run `flask token-vault doctor`: it says which way this tenant fills the vault; "
        "`flask token-vault setup` turns Token Vault on for the connection.",
    ),
}


def _connect_not_stored(connection: str, cause: AccountNotConnected) -> Misconfigured:
    description, remedy = _NOT_STORED[get_state().settings.connect_flow]
    return Misconfigured(
        description.format(connection=connection),
        error="connect_not_stored",
        remedy=remedy,
        connection=connection,
        upstream_status=cause.upstream_status,
    )


def unconfigured_views(app: Flask, connections: Iterable[str]) -> list[tuple[str, str]]:
    """Return ``(endpoint, connection)`` for each decorated view naming an unknown connection."""
    configured = set(connections)
    found: list[tuple[str, str]] = []
    for endpoint, view in sorted(app.view_functions.items()):
        for name, _ in getattr(view, REQUIRES_ATTR, ()):
            if name not in configured:
                found.append((endpoint, name))
    return found


def check_views(app: Flask) -> None:
    """Raise :class:`~flask_token_vault.ConfigurationError` if a view names an unknown connection.

    Runs before each request and looks at the views on the first one, once every route is
    registered, then again only when a view was added: a misspelt name stops the app with a
    message for the developer instead of showing visitors "This connection is not offered".
    """
    state = get_state(app)
    if state.views_checked == len(app.view_functions):
        return
    bad = unconfigured_views(app, state.settings.connections)
    if bad:
        listed = ", ".join(f"{endpoint} needs {name!r}" for endpoint, name in bad)
        raise ConfigurationError(
            "TOKEN_VAULT_CONNECTIONS",
            f"views name connections that are not configured: {listed} (configured: "
            f"{sorted(state.settings.connections)!r}). Add them to TOKEN_VAULT_CONNECTIONS or "
            "fix the names in the decorators.",
        )
    state.views_checked = len(app.view_functions)
