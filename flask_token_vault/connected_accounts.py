"""Connected Accounts: fill the vault through Auth0's My Account API, and empty it again.

With ``TOKEN_VAULT_CONNECT_FLOW = "connected_accounts"`` the connect route does not send the user
to ``/authorize``: it gets a My Account API token with the user's refresh token (audience
``https://{domain}/me/``, which needs Multi-Resource Refresh Token), asks
``POST /me/v1/connected-accounts/connect`` for a consent ticket with PKCE and a ``state``, and
sends the browser to Auth0's consent page. Auth0 brings it back to the connect callback with a
``connect_code``; the callback completes the connection and returns to the page the user was on.

The pending connection (state, PKCE verifier, Auth0's ``auth_session``, where to go back) is
kept in Flask's session *encrypted*, like the refresh token.

:func:`disconnect` removes the signed-in user's account at a connection from the vault: through
the My Account API in this flow, through the Management API's tokenset endpoints otherwise.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, cast
from urllib.parse import urlencode, urlsplit

from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from flask import Flask, g, redirect, request, session, url_for
from werkzeug.wrappers import Response

from ._urls import safe_next
from .config import Settings, is_valid_connection_name
from .crypto import InvalidToken
from .errors import (
    Auth0Unavailable,
    CallbackError,
    InvalidRequest,
    LoginRequired,
    Misconfigured,
    MyAccountError,
    RateLimited,
    TokenVaultError,
)
from .exchange import _clean
from .extension import AppState, _current_user, _require_user, forget_provider_tokens, get_state
from .management import ConnectedAccount, _ApiBase, management_client

__all__ = [
    "CONNECT_SCOPE",
    "DELETE_SCOPE",
    "READ_SCOPE",
    "MyAccountClient",
    "disconnect",
    "my_account_client",
    "my_account_token",
    "my_connected_accounts",
]

log = logging.getLogger("flask_token_vault")

#: My Account API scope to connect an account.
CONNECT_SCOPE = "create:me:connected_accounts"
#: My Account API scope to list connected accounts.
READ_SCOPE = "read:me:connected_accounts"
#: My Account API scope to delete a connected account.
DELETE_SCOPE = "delete:me:connected_accounts"
#: The only ``authorization_params`` the connect endpoint accepts.
CONNECT_AUTHORIZATION_PARAMS = frozenset(
    {
        "acr_values",
        "audience",
        "resource",
        "display",
        "id_token_hint",
        "login_hint",
        "max_age",
        "prompt",
        "ui_locales",
    }
)
_PENDING_KEY = "_token_vault_connect"
_MAX_PENDING = 3
_PENDING_LIFETIME = 900
_G_TOKENS = "_token_vault_my_account"
_EXTRA_KEY = "my_account"
_MRRT_REMEDY = (
    "Let the application use the My Account API: enable Multi-Resource Refresh Token with a "
    "policy for the audience https://{domain}/me/ and the scopes create:me:connected_accounts, "
    "read:me:connected_accounts and delete:me:connected_accounts; `flask token-vault doctor` "
    "checks it."
)


class MyAccountClient(_ApiBase):
    """Call the Connected Accounts endpoints of Auth0's My Account API (``/me/v1``).

    Each call takes the user's My Account access token (see :func:`my_account_token`).
    """

    api_name = "My Account API"

    def __repr__(self) -> str:
        return f"MyAccountClient({self.settings.base_url!r})"

    def _error(self, status: int, body: Any, operation: str) -> TokenVaultError:
        data: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
        kind = data.get("type")
        kind = kind if isinstance(kind, str) else None
        title = _clean(data.get("title"), 100)
        detail = _clean(data.get("detail") or data.get("message") or data.get("error_description"))
        code = _clean(kind.rstrip("/").rsplit("/", 1)[-1], 100) if kind else ""
        code = code or _clean(data.get("error"), 100) or f"http_{status}"
        remedy = None
        http_status = 502
        if status in (400, 404):
            http_status = status
        elif status in (401, 403):
            remedy = _MRRT_REMEDY.replace("{domain}", urlsplit(self.settings.base_url).netloc)
        return MyAccountError(
            f"The My Account API refused {operation} ({status}): "
            + (detail or title or code).rstrip(".")
            + ".",
            status_code=status,
            error_type=kind,
            title=title,
            detail=detail,
            error=code,
            remedy=remedy,
            http_status=http_status,
        )

    def _unavailable(
        self, description: str, code: str, status: int | None, operation: str
    ) -> TokenVaultError:
        return MyAccountError(
            f"{description} ({operation})",
            status_code=status,
            error=code,
            remedy="Auth0 did not answer properly; try again in a moment.",
            http_status=503,
        )

    def _rate_limited(self, body: Any, wait: float | None, operation: str) -> TokenVaultError:
        error = self._error(429, body, operation)
        error.code = 429
        return error

    def _call(
        self,
        method: str,
        path: str,
        access_token: str,
        *,
        operation: str,
        params: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> Any:
        return self._send(
            method,
            self.settings.base_url + "/me/v1/connected-accounts" + path,
            operation=operation,
            token=lambda: access_token,
            params=params,
            body=body,
        )

    def connect(
        self,
        access_token: str,
        *,
        connection: str,
        redirect_uri: str,
        state: str,
        code_challenge: str,
        scopes: Iterable[str] = (),
        authorization_params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Start connecting an account; return ``{connect_uri, auth_session, connect_params}``."""
        params = dict(authorization_params or {})
        refused = sorted(set(params) - CONNECT_AUTHORIZATION_PARAMS)
        if refused:
            raise InvalidRequest(f"Connected Accounts does not accept the parameters {refused}.")
        body: dict[str, Any] = {
            "connection": connection,
            "redirect_uri": redirect_uri,
            "state": state,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
            "scopes": list(scopes),
        }
        if params:
            body["authorization_params"] = params
        answer = self._call("POST", "/connect", access_token, operation="connect", body=body)
        ticket = (answer or {}).get("connect_params", {}) if isinstance(answer, Mapping) else {}
        if (
            not isinstance(answer, Mapping)
            or not isinstance(answer.get("connect_uri"), str)
            or not isinstance(answer.get("auth_session"), str)
            or not isinstance(ticket, Mapping)
            or not isinstance(ticket.get("ticket"), str)
        ):
            raise MyAccountError(
                "The My Account API answered the connect request without a ticket.",
                error="malformed_answer",
                http_status=503,
                connection=connection,
            )
        return dict(answer)

    def complete(
        self,
        access_token: str,
        *,
        auth_session: str,
        connect_code: str,
        redirect_uri: str,
        code_verifier: str,
    ) -> ConnectedAccount:
        """Finish connecting an account; return it."""
        answer = self._call(
            "POST",
            "/complete",
            access_token,
            operation="completing a connection",
            body={
                "auth_session": auth_session,
                "connect_code": connect_code,
                "redirect_uri": redirect_uri,
                "code_verifier": code_verifier,
            },
        )
        if not isinstance(answer, Mapping) or not isinstance(answer.get("id"), str):
            raise MyAccountError(
                "The My Account API answered the completion without an account.",
                error="malformed_answer",
                http_status=503,
            )
        return ConnectedAccount.from_api(answer)

    def list_accounts(
        self, access_token: str, connection: str | None = None
    ) -> list[ConnectedAccount]:
        """Return the user's connected accounts (of one connection, or all), every page."""
        return list(self._iter_accounts(access_token, connection))

    def _iter_accounts(
        self, access_token: str, connection: str | None
    ) -> Iterator[ConnectedAccount]:
        params: dict[str, str] = {"take": "20"}
        if connection:
            params["connection"] = connection
        for _ in range(500):  # a bound, should the API keep answering "next"
            data = self._call(
                "GET", "/accounts", access_token, operation="listing accounts", params=params
            )
            if not isinstance(data, Mapping):
                return
            for item in data.get("accounts") or []:
                if isinstance(item, Mapping):
                    yield ConnectedAccount.from_api(item)
            after = data.get("next")
            if not isinstance(after, str) or not after or after == params.get("from"):
                return
            params["from"] = after

    def delete_account(self, access_token: str, account_id: str) -> None:
        """Remove one connected account from the vault (its tokens are not revoked)."""
        if not account_id.startswith("cac_") or not account_id.isascii():
            raise InvalidRequest("A connected account id starts with 'cac_'.")
        self._call(
            "DELETE",
            "/accounts/" + account_id,
            access_token,
            operation="deleting an account",
        )


def my_account_client(app: Flask | None = None) -> MyAccountClient:
    """Return the app's :class:`MyAccountClient` (default: the current app), built once."""
    state = get_state(app)
    existing = state.extra.get(_EXTRA_KEY)
    if not isinstance(existing, MyAccountClient):
        existing = state.extra.setdefault(_EXTRA_KEY, MyAccountClient(state.settings))
    return cast(MyAccountClient, existing)


def my_account_token(scopes: Iterable[str]) -> str:
    """Return a My Account API access token for the signed-in user carrying ``scopes``.

    Uses the session's refresh token with the audience ``https://{domain}/me/`` (Multi-Resource
    Refresh Token); memoised for the request. Raises :class:`LoginRequired` when the refresh
    token is no longer valid and :class:`Misconfigured` when Auth0 will not issue the token.
    """
    state = get_state()
    user = _require_user()
    wanted = " ".join(sorted(set(scopes)))
    memo: dict[str, str] = g.setdefault(_G_TOKENS, {})
    if wanted in memo:
        return memo[wanted]
    settings = state.settings
    data = {
        "grant_type": "refresh_token",
        "client_id": settings.client_id,
        "client_secret": settings.client_secret,
        "refresh_token": user.refresh_token,
        "audience": _audience(settings),
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
            status=exc.upstream_status,
            remedy=_MRRT_REMEDY.replace("{domain}", urlsplit(settings.base_url).netloc),
        ) from None
    token = answer.get("access_token")
    if not isinstance(token, str) or not token:
        raise MyAccountError(
            "Auth0 answered without a My Account API token.",
            error="malformed_answer",
            http_status=503,
        )
    memo[wanted] = token
    return token


def _audience(settings: Settings) -> str:
    return settings.base_url + "/me/"


def _here() -> str:
    path = request.full_path
    return path[:-1] if path.endswith("?") else path


def start_connect(
    state: AppState,
    connection: str,
    scopes: Iterable[str],
    next_url: str,
    login_hint: str | None,
) -> Response:
    """Start a Connected Accounts connection and send the browser to Auth0's consent page."""
    user = _current_user()
    if user is None:
        # Connecting needs a signed-in user (and their refresh token): sign in, then come back.
        from .extension import login_url

        return redirect(login_url(next=_here()))
    conn = state.settings.connections[connection]
    wanted = list(dict.fromkeys((*conn.scopes, *scopes)))
    params = {
        k: v for k, v in conn.authorization_params.items() if k in CONNECT_AUTHORIZATION_PARAMS
    }
    if login_hint:
        params["login_hint"] = login_hint
    verifier = generate_token(48)
    state_param = secrets.token_urlsafe(24)
    redirect_uri = url_for("token_vault.connect_callback", _external=True)
    token = my_account_token([CONNECT_SCOPE])
    answer = my_account_client().connect(
        token,
        connection=connection,
        redirect_uri=redirect_uri,
        state=state_param,
        code_challenge=create_s256_code_challenge(verifier),
        scopes=wanted,
        authorization_params=params,
    )
    record = {
        "sub": user.sub,
        "connection": connection,
        "auth_session": answer["auth_session"],
        "verifier": verifier,
        "redirect_uri": redirect_uri,
        "next": next_url,
        "at": time.time(),
    }
    pending = session.get(_PENDING_KEY)
    pending = dict(pending) if isinstance(pending, dict) else {}
    while len(pending) >= _MAX_PENDING:
        pending.pop(next(iter(pending)))
    pending[state_param] = state.crypto.seal_session(json.dumps(record))
    session[_PENDING_KEY] = pending
    connect_uri = str(answer["connect_uri"])
    separator = "&" if urlsplit(connect_uri).query else "?"
    ticket = str(answer["connect_params"]["ticket"])
    log.info("connect started: connection=%s flow=connected_accounts", connection)
    return redirect(connect_uri + separator + urlencode({"ticket": ticket}))


def _take_pending(state: AppState, state_param: str) -> dict[str, Any]:
    pending = session.get(_PENDING_KEY)
    sealed = None
    if isinstance(pending, dict):
        pending = dict(pending)
        sealed = pending.pop(state_param, None)
        session[_PENDING_KEY] = pending
    if not isinstance(sealed, str):
        raise CallbackError(
            "The connection answer does not match a connection started here (state mismatch).",
            error="state_mismatch",
        )
    try:
        record = json.loads(state.crypto.open_session(sealed))
    except (InvalidToken, ValueError):
        raise CallbackError(
            "The pending connection could not be read.", error="state_mismatch"
        ) from None
    if not isinstance(record, dict):
        raise CallbackError("The pending connection could not be read.", error="state_mismatch")
    return record


def finish_connect(state: AppState) -> Response:
    """Complete a Connected Accounts connection when Auth0 sends the browser back."""
    state_param = request.args.get("state")
    if not state_param or len(state_param) > 256:
        raise CallbackError("The connection answer carries no state.", error="missing_state")
    record = _take_pending(state, state_param)
    user = _require_user()
    connection = str(record.get("connection", ""))
    if record.get("sub") != user.sub:
        raise CallbackError(
            "This connection was started by another user of this browser.", error="state_mismatch"
        )
    started = record.get("at")
    if not isinstance(started, (int, float)) or time.time() - started > _PENDING_LIFETIME:
        raise CallbackError(
            "The connection took too long and expired.",
            error="expired",
            remedy="Start connecting the account again.",
        )
    if request.args.get("error"):
        error = request.args["error"][:100]
        if error == "access_denied":
            raise CallbackError(
                "Access was not granted at the connection page.",
                error="access_denied",
                connection=connection,
                remedy="Start again and allow access if you want to use this feature.",
            )
        raise CallbackError(f"Auth0 returned an error: {error}.", error=error)
    connect_code = request.args.get("connect_code")
    if not connect_code or len(connect_code) > 2048:
        raise CallbackError("The connection answer carries no code.", error="missing_code")
    account = my_account_client().complete(
        my_account_token([CONNECT_SCOPE]),
        auth_session=str(record.get("auth_session", "")),
        connect_code=connect_code,
        redirect_uri=str(record.get("redirect_uri", "")),
        code_verifier=str(record.get("verifier", "")),
    )
    # The new grant may carry other scopes: never serve a token from before it.
    forget_provider_tokens(account.connection or connection)
    log.info("connected: connection=%s flow=connected_accounts", account.connection or connection)
    next_url = safe_next(record.get("next")) or state.settings.default_next
    return redirect(next_url)


def my_connected_accounts(connection: str | None = None) -> list[ConnectedAccount]:
    """Return the signed-in user's connected accounts (of one connection, or all).

    Uses the My Account API (scope ``read:me:connected_accounts``).
    """
    return my_account_client().list_accounts(my_account_token([READ_SCOPE]), connection)


def disconnect(connection: str) -> int:
    """Remove the signed-in user's accounts at ``connection`` from the vault; return how many.

    With ``TOKEN_VAULT_CONNECT_FLOW = "connected_accounts"`` this lists and deletes the user's
    connected accounts through the My Account API; otherwise it lists and deletes their
    tokensets through the Management API. Either way the user's cached provider tokens for the
    connection are dropped, so the next :func:`get_provider_token` asks Auth0 again (and finds
    no account). The provider's own grant is not revoked.
    """
    if not is_valid_connection_name(connection):
        raise InvalidRequest("This is not a connection name.")
    state = get_state()
    user = _require_user()
    removed = 0
    try:
        if state.settings.connect_flow == "connected_accounts":
            token = my_account_token([READ_SCOPE, DELETE_SCOPE])
            client = my_account_client()
            for account in client.list_accounts(token, connection):
                if account.connection == connection:
                    client.delete_account(token, account.id)
                    removed += 1
        else:
            management = management_client()
            for tokenset in management.list_tokensets(user.sub):
                if tokenset.connection == connection:
                    management.delete_tokenset(user.sub, tokenset.id)
                    removed += 1
    finally:
        forget_provider_tokens(connection)
    log.info("disconnected: connection=%s removed=%d", connection, removed)
    return removed
