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
    TokensetsGone,
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


def _remove_legacy_tokensets(user_id: str, connection: str) -> list[str] | None:
    """Delete the user's tokensets at ``connection`` through the old Management API endpoints.

    Returns the ids deleted; ``None`` (go on with the My Account API) when the tenant no longer
    answers them.
    """
    management = get_state().management
    try:
        found = [t for t in management.list_legacy_tokensets(user_id) if t.connection == connection]
    except TokensetsGone:
        log.info("disconnect: no tokenset endpoints on this tenant; using the My Account API")
        return None
    for tokenset in found:
        management.delete_tokenset(user_id, tokenset.id)
    return [t.id for t in found]


def disconnect(connection: str) -> int:
    """Remove the signed-in user's accounts at ``connection`` from the vault; return how many.

    They are deleted at the My Account API as the user (Auth0's documented way). With
    ``TOKEN_VAULT_CONNECT_FLOW = "authorize"`` the old tokenset endpoints of the Management API
    are used first, as long as the tenant still answers them (Auth0 dropped them in 2026-07).
    The user's cached provider tokens are dropped either way; the provider's own grant is not
    revoked.
    """
    if not is_valid_connection_name(connection):
        raise InvalidRequest("This is not a connection name.")
    state = get_state()
    user = require_user()
    removed: list[str] = []
    try:
        legacy = None
        if state.settings.connect_flow != "connected_accounts":
            legacy = _remove_legacy_tokensets(user.sub, connection)
        if legacy is not None:
            removed = legacy
        else:
            token = my_account_token([READ_SCOPE, DELETE_SCOPE])
            client = state.my_account
            for account in client.list_accounts(token, connection):
                if account.connection == connection:
                    client.delete_account(token, account.id)
                    removed.append(account.id)
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
