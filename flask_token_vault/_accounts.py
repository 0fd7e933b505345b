"""Connected accounts of the signed-in user, and the app's Auth0 API clients.

(Layer: request-time, beside :mod:`flask_token_vault._tokens`.)

:func:`my_connected_accounts`, :func:`my_connectable_connections` and :func:`disconnect` act for
the signed-in user;
:func:`management_client` and :func:`my_account_client` return the app's clients, built once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from urllib.parse import urlsplit

from flask import Flask

from ._connection_options import is_valid_connection_name
from ._my_account import (
    DELETE_SCOPE,
    MRRT_REMEDY,
    READ_SCOPE,
    ConnectableConnection,
    MyAccountClient,
)
from ._session import take_connected
from ._state import get_state
from ._tokens import forget_provider_tokens, request_state, require_user
from .admin.management import ManagementClient
from .admin.records import ConnectedAccount
from .errors import (
    Auth0Unavailable,
    InvalidRequest,
    LoginRequired,
    Misconfigured,
    MyAccountError,
    RateLimited,
    TokenVaultError,
)

log = logging.getLogger("flask_token_vault")


def management_client(app: Flask | None = None) -> ManagementClient:
    """Return the app's :class:`~flask_token_vault.ManagementClient` (default: the current app)."""
    return get_state(app).management


def my_account_client(app: Flask | None = None) -> MyAccountClient:
    """Return the app's :class:`~flask_token_vault._my_account.MyAccountClient`, built once."""
    return get_state(app).my_account


def my_account_token(scopes: Iterable[str]) -> str:
    """Return a My Account API access token for the signed-in user carrying ``scopes``.

    Uses the session's refresh token with the audience ``https://{domain}/me/`` (Multi-Resource
    Refresh Token); memoised for the request. Raises :class:`~flask_token_vault.LoginRequired`
    when the refresh token is no longer valid and :class:`~flask_token_vault.Misconfigured` when
    Auth0 will not issue the token.
    """
    state = get_state()
    user = require_user()
    wanted = " ".join(sorted(set(scopes)))
    # On this request, for this user: never a token another request or user was given.
    memo = request_state().my_account
    key = (user.sub, wanted)
    if key in memo:
        return memo[key]
    settings = state.settings
    data = {
        "grant_type": "refresh_token",
        "refresh_token": user.refresh_token,
        "audience": settings.base_url + "/me/",
        "scope": wanted,
    }
    try:
        answer = state.exchanger.post_token(data)
    except (LoginRequired, RateLimited, Auth0Unavailable):
        raise  # the error already says what to do
    except TokenVaultError as exc:
        raise Misconfigured(
            f"Auth0 did not issue a My Account API token for Connected Accounts ({exc.error}).",
            error=exc.error,
            upstream_status=exc.upstream_status,
            remedy=MRRT_REMEDY.replace("{domain}", urlsplit(settings.base_url).netloc),
        ) from None
    token = answer.get("access_token")
    if not isinstance(token, str) or not token:
        raise MyAccountError(
            "Auth0 answered without a My Account API token.", error="malformed_answer", code=503
        )
    memo[key] = token
    return token


def my_connected_accounts(connection: str | None = None) -> list[ConnectedAccount]:
    """Return the signed-in user's connected accounts (of one connection, or all).

    Uses the My Account API (scope ``read:me:connected_accounts``).
    """
    return my_account_client().list_accounts(my_account_token([READ_SCOPE]), connection)


def my_connectable_connections() -> list[ConnectableConnection]:
    """Return the connections the signed-in user can connect an account at, every page.

    Asks the My Account API (``GET /me/v1/connected-accounts/connections``, scope
    ``read:me:connected_accounts``), which lists the tenant's connections that have Connected
    Accounts on and are enabled for this app. Needs the Multi-Resource Refresh Token policy
    for the My Account API (``flask token-vault setup`` adds it).
    """
    return my_account_client().list_connections(my_account_token([READ_SCOPE]))


def disconnect(connection: str) -> int:
    """Remove the signed-in user's accounts at ``connection`` from the vault; return how many.

    With ``TOKEN_VAULT_CONNECT_FLOW = "connected_accounts"`` this lists and deletes the user's
    connected accounts through the My Account API; otherwise it lists and deletes their
    tokensets through the Management API (on a tenant without the tokenset endpoints that
    raises :class:`~flask_token_vault.TokensetsGone`). Either way the user's cached provider
    tokens are dropped, so the next :func:`~flask_token_vault.get_provider_token` asks Auth0
    again (and finds no account). The provider's own grant is not revoked.
    """
    if not is_valid_connection_name(connection):
        raise InvalidRequest("This is not a connection name.")
    state = get_state()
    user = require_user()
    removed = 0
    try:
        if state.settings.connect_flow == "connected_accounts":
            token = my_account_token([READ_SCOPE, DELETE_SCOPE])
            client = state.my_account
            for account in client.list_accounts(token, connection):
                if account.connection == connection:
                    client.delete_account(token, account.id)
                    removed += 1
        else:
            management = state.management
            for tokenset in management.list_tokensets(user.sub):
                if tokenset.connection == connection:
                    management.delete_tokenset(user.sub, tokenset.id)
                    removed += 1
    finally:
        forget_provider_tokens(connection)
        take_connected(connection)  # forget the mark of a connect round trip
    log.info("disconnected: connection=%s removed=%d", connection, removed)
    return removed
