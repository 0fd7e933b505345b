"""Connected accounts of the signed-in user (layer: request-time, beside ``_tokens``)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from flask import Flask, current_app, g, request

from . import signals
from ._connection_options import is_valid_connection_name
from ._my_account import DELETE_SCOPE, READ_SCOPE, ConnectableConnection, mrrt_remedy
from ._provider_grants import ProviderRevocation, revoke_provider_grant
from ._session import take_connected
from ._state import get_state
from ._tokens import forget_provider_tokens, request_state, require_user
from ._urls import current_path, login_url
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

#: Auth0's answer when the My Account API's Authentication Assurance policy is not met.
STEP_UP_NEEDED = "unmet_authentication_requirements"
#: Where this request's provider revocations are kept (``flask.g``) for the routes' answers.
REVOCATIONS_KEY = "_token_vault_revocations"


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
        if exc.error == STEP_UP_NEEDED:
            raise step_up_required() from None
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


def step_up_required() -> LoginRequired:
    """Return the error for a My Account API that wants a stronger sign-in than this session's.

    Auth0's Authentication Assurance (early access, 2026-05) refuses a ``/me/`` token unless
    the user passed a second factor recently. Its ``retry_url`` signs in again asking for
    ``TOKEN_VAULT_STEP_UP_ACR_VALUES`` and comes back to this page (the home page after a form).
    """
    settings = get_state().settings
    here = current_path() if request.method == "GET" else settings.default_next
    return LoginRequired(
        "Your account needs a stronger sign-in (a second factor) before it can manage its "
        "connected accounts.",
        error=STEP_UP_NEEDED,
        retry_url=login_url(next=here, acr_values=settings.step_up_acr_values),
    )


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


def _revoke(user_id: str, connection: str, account: ConnectedAccount | None) -> ProviderRevocation:
    """Ask the provider to revoke the grant of ``account`` (or the connection's); report it."""
    hint = account.login_hint if account is not None else None
    revocation = revoke_provider_grant(connection, hint, account.id if account else None)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    signals.provider_revoked.send(app, user_id=user_id, revocation=revocation)
    # The routes answer with what became of each grant.
    g.setdefault(REVOCATIONS_KEY, []).append(revocation)
    return revocation


def disconnect_account(account_id: str, *, revoke_provider: bool = False) -> ConnectedAccount:
    """Remove ONE of the signed-in user's connected accounts from the vault; return it.

    ``account_id`` is its ``cac_...`` id (:func:`my_connected_accounts`): a user may hold
    several accounts at one connection (told apart by ``login_hint``), and the others stay.
    Deleted at the My Account API as the user. The user's cached provider tokens are dropped,
    this account's under whatever scopes they were asked for; the others are asked for again
    on their next use. Other processes' near caches let go within
    ``TOKEN_VAULT_LOCAL_CACHE_TTL`` seconds.

    Auth0 does not revoke the provider's own grant. With ``revoke_provider=True`` it is
    revoked first where the provider allows it (Google; not Microsoft or GitHub, see
    :func:`revoke_provider_grant`), reported by :data:`~flask_token_vault.signals.provider_revoked`;
    the delete goes on whatever the outcome.
    """
    if not account_id.startswith("cac_") or not account_id.isascii() or len(account_id) > 64:
        raise InvalidRequest("A connected account id starts with 'cac_'.")
    state = get_state()
    user = require_user()
    token = my_account_token([READ_SCOPE, DELETE_SCOPE])
    client = state.my_account
    account = next((a for a in client.list_accounts(token) if a.id == account_id), None)
    if account is None:
        raise InvalidRequest(
            "You have no connected account with this id.", error="account_not_found", code=404
        )
    if revoke_provider:
        _revoke(user.sub, account.connection, account)
    try:
        client.delete_account(token, account.id)
    finally:
        # Every cached token of the user goes (as for a whole connection): the cache cannot
        # list the scope sets a token was kept under (tools, SDKs and ad-hoc calls ask their
        # own), so dropping only the known ones would leave this account's others usable.
        forget_provider_tokens(account.connection)
        take_connected(account.connection)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    signals.disconnected.send(app, user_id=user.sub, connection=None, account_ids=(account.id,))
    log.info("disconnected one account: connection=%s", account.connection)
    return account


def disconnect(connection: str, *, revoke_provider: bool = False) -> int:
    """Remove the signed-in user's accounts at ``connection`` from the vault; return how many.

    They are deleted at the My Account API as the user (Auth0's documented way). With
    ``TOKEN_VAULT_CONNECT_FLOW = "authorize"`` the old tokenset endpoints of the Management API
    are used first, as long as the tenant still answers them (Auth0 dropped them in 2026-07).
    The user's cached provider tokens are dropped either way. The provider's own grant is
    revoked first only with ``revoke_provider=True`` (see :func:`disconnect_account`).
    """
    if not is_valid_connection_name(connection):
        raise InvalidRequest("This is not a connection name.")
    state = get_state()
    user = require_user()
    removed: list[str] = []
    if revoke_provider:
        _revoke(user.sub, connection, None)
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
