"""Connected accounts of the signed-in user (layer: request-time, beside ``_tokens``)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from flask import Flask, current_app

from . import signals
from ._connection_options import is_valid_connection_name
from ._my_account import DELETE_SCOPE, READ_SCOPE, ConnectableConnection, mrrt_remedy
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


def my_account_token(scopes: Iterable[str]) -> str:
    """Return a My Account API access token for the signed-in user, memoised for the request.

    It comes from the session's refresh token (Multi-Resource Refresh Token).
    """
    state = get_state()
    user = require_user()
    wanted = " ".join(sorted(set(scopes)))
    # On this request, for this user: never a token another request or user was given.
    memo = request_state().my_account
    key = (user.sub, wanted)
    if key in memo:
        return memo[key]
    base_url = state.settings.base_url
    data = {
        "grant_type": "refresh_token",
        "refresh_token": user.refresh_token,
        "audience": base_url + "/me/",
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
            remedy=mrrt_remedy(base_url),
        ) from None
    token = answer.get("access_token")
    if not isinstance(token, str) or not token:
        raise MyAccountError(
            "Auth0 answered without a My Account API token.", error="malformed_answer", code=503
        )
    memo[key] = token
    return token


def my_connected_accounts(connection: str | None = None) -> list[ConnectedAccount]:
    """Return the signed-in user's connected accounts (of one connection, or all)."""
    return get_state().my_account.list_accounts(my_account_token([READ_SCOPE]), connection)


def my_connectable_connections() -> list[ConnectableConnection]:
    """Return the connections the signed-in user can connect an account at (My Account API).

    They are the tenant's connections with Connected Accounts on that are enabled for this app.
    """
    return get_state().my_account.list_connections(my_account_token([READ_SCOPE]))


def disconnect(connection: str) -> int:
    """Remove the signed-in user's accounts at ``connection`` from the vault; return how many.

    With ``TOKEN_VAULT_CONNECT_FLOW = "connected_accounts"`` these are connected accounts
    (My Account API), otherwise tokensets (Management API; without its tokenset endpoints,
    :class:`~flask_token_vault.TokensetsGone`). The user's cached provider tokens are dropped
    either way; the provider's own grant is not revoked.
    """
    if not is_valid_connection_name(connection):
        raise InvalidRequest("This is not a connection name.")
    state = get_state()
    user = require_user()
    removed: list[str] = []
    try:
        if state.settings.connect_flow == "connected_accounts":
            token = my_account_token([READ_SCOPE, DELETE_SCOPE])
            client = state.my_account
            for account in client.list_accounts(token, connection):
                if account.connection == connection:
                    client.delete_account(token, account.id)
                    removed.append(account.id)
        else:
            management = state.management
            for tokenset in management.list_tokensets(user.sub):
                if tokenset.connection == connection:
                    management.delete_tokenset(user.sub, tokenset.id)
                    removed.append(tokenset.id)
    finally:
        forget_provider_tokens(connection)
        take_connected(connection)  # forget the mark of a connect round trip
        # Sent even when a delete failed half way: the ones removed are gone all the same.
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        signals.disconnected.send(
            app, user_id=user.sub, connection=connection, account_ids=tuple(removed)
        )
    log.info("disconnected: connection=%s removed=%d", connection, len(removed))
    return len(removed)
