"""Routes: login, callback, logout, connect and disconnect, in one blueprint under a prefix.

(Layer: views, the top of the package.) With ``TOKEN_VAULT_CONNECT_FLOW = "connected_accounts"``
the connect route does not send the user to ``/authorize``: it gets a My Account API token with
the user's refresh token, asks ``POST /me/v1/connected-accounts/connect`` for a consent ticket
with PKCE and a ``state``, and sends the browser to Auth0's consent page; the connect callback
completes the connection. The pending connection is kept in the session *encrypted*.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from flask import (
    Blueprint,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from joserfc.errors import JoseError
from werkzeug.wrappers import Response

from . import signals
from ._responses import wants_json
from ._state import AppState, get_state
from ._urls import connect_url, current_path, login_url, safe_next
from .accounts import disconnect as disconnect_connection
from .accounts import my_account_token
from .config import is_loopback_host, is_valid_connection_name, is_valid_scope
from .crypto import InvalidToken
from .errors import Auth0Unavailable, CallbackError, InvalidRequest, Misconfigured
from .my_account import CONNECT_AUTHORIZATION_PARAMS, CONNECT_SCOPE, connect_scopes
from .session import SESSION_KEY, note_connected, read_user, write_user
from .tokens import forget_provider_tokens, forget_user, optional_user, require_user

__all__ = ["blueprint", "csrf_token"]

log = logging.getLogger("flask_token_vault")

blueprint = Blueprint("token_vault", __name__, template_folder="templates")

_CSRF_KEY = "_token_vault_csrf"
_MAX_SCOPES = 50


def csrf_token() -> str:
    """Return this session's token for the logout form (made on first use)."""
    token = session.get(_CSRF_KEY)
    if not isinstance(token, str) or len(token) != 43:
        token = secrets.token_urlsafe(32)
        session[_CSRF_KEY] = token
    return token


def _check_csrf(form: str, button: str) -> None:
    """Refuse a state-changing POST that does not carry this session's form token."""
    sent = request.form.get("csrf_token", "")
    expected = session.get(_CSRF_KEY)
    # Bytes: compare_digest refuses str with non-ASCII characters, which visitors can send.
    if not isinstance(expected, str) or not hmac.compare_digest(
        sent.encode("utf-8", "replace"), expected.encode()
    ):
        raise InvalidRequest(
            f"The {form} form was not sent from this site.",
            error="csrf_failed",
            remedy=f"Use the site's own '{button}' button.",
        )


@blueprint.app_context_processor
def _template_context() -> dict[str, Any]:
    return {
        "token_vault_user": optional_user(),
        "token_vault_connect_url": connect_url,
        "token_vault_login_url": login_url,
        "token_vault_csrf_token": csrf_token,
    }


def _next_from_request(state: AppState) -> str:
    for name in ("next", "returnTo"):
        raw = request.args.get(name)
        if raw is not None:
            checked = safe_next(raw)
            if checked is None:
                raise InvalidRequest(
                    f"The '{name}' parameter must be a path on this site.",
                    remedy="Use a link on this site; redirects to other sites are refused.",
                )
            return checked
    return state.settings.default_next


def _requested_scopes(state: AppState, connection: str, param: str) -> tuple[str, ...]:
    raw = request.args.get(param)
    if raw is None:
        return ()
    scopes = tuple(dict.fromkeys(s for s in raw.replace(",", " ").split(" ") if s))
    if len(scopes) > _MAX_SCOPES or not all(is_valid_scope(s) for s in scopes):
        raise InvalidRequest("The requested scopes are malformed.")
    allowed = set(state.settings.connections[connection].scopes)
    if set(scopes) <= allowed:
        return scopes
    sig = request.args.get("sig", "")
    if not sig or not state.check_scope_signature(connection, scopes, sig):
        raise InvalidRequest(
            "These scopes were not requested by this site.",
            remedy="Use the site's own 'connect' link; scope lists in links cannot be edited.",
        )
    return scopes


def _connection_from(state: AppState, name: str | None) -> str | None:
    if name is None or name == "":
        return None
    if not is_valid_connection_name(name) or name not in state.settings.connections:
        raise InvalidRequest(
            "This connection is not offered by this site.",
            remedy="Pick one of the site's own 'connect' links.",
        )
    return name


def _login_hint() -> str | None:
    hint = request.args.get("login_hint")
    if hint is None or hint == "":
        return None
    if len(hint) > 320 or any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in hint):
        raise InvalidRequest("The login hint is malformed.")
    return hint


_STATE_PREFIX = "_state_token_vault_"
_MAX_PENDING_LOGINS = 3


def _prune_pending_logins() -> None:
    """Keep the session small: drop expired sign-ins and all but the newest few.

    Every visit to the login route records a pending sign-in in the session; without a bound, a
    visitor who starts many sign-ins (or a site that sends them here repeatedly) would grow the
    cookie past the 4 KB browsers keep, and lose their session.
    """
    now = time.time()
    pending = sorted(
        (
            (float(value.get("exp", 0)) if isinstance(value, dict) else 0.0, key)
            for key, value in session.items()
            if key.startswith(_STATE_PREFIX)
        ),
        reverse=True,
    )
    for position, (expires, key) in enumerate(pending):
        if expires <= now or position >= _MAX_PENDING_LOGINS - 1:
            session.pop(key, None)


def _pending_login_expired(state_param: str) -> bool:
    record = session.get(_STATE_PREFIX + state_param)
    expires = record.get("exp") if isinstance(record, dict) else None
    return not isinstance(expires, (int, float)) or expires <= time.time()


def _authorize(
    state: AppState,
    *,
    next_url: str,
    connection: str | None,
    scopes: tuple[str, ...],
    login_hint: str | None,
) -> Response:
    settings = state.settings
    params: dict[str, str] = {}
    if connection is not None:
        conn = settings.connections[connection]
        wanted = tuple(dict.fromkeys((*conn.scopes, *scopes)))
        params["connection"] = connection
        if wanted:
            params["connection_scope"] = conn.scope_separator.join(wanted)
        params.update(conn.authorization_params)
    if login_hint:
        params["login_hint"] = login_hint
    # PKCE is done here rather than by authlib, which logs the verifier at DEBUG level.
    code_verifier = generate_token(48)
    params["code_challenge"] = create_s256_code_challenge(code_verifier)
    params["code_challenge_method"] = "S256"
    redirect_uri = url_for("token_vault.callback", _external=True)
    client = state.oauth
    try:
        rv = client.create_authorization_url(redirect_uri, **params)
    except (requests.RequestException, ValueError) as exc:
        raise Auth0Unavailable(
            f"Auth0's discovery document could not be read ({type(exc).__name__}).",
            remedy=_discovery_remedy(settings.base_url, exc),
        ) from None
    current = optional_user() if connection is not None else None
    data = {
        "redirect_uri": redirect_uri,
        "code_verifier": code_verifier,
        "nonce": rv.get("nonce"),
        "next": next_url,
        "connection": connection,
        # A connect keeps the signed-in user: the callback refuses an answer for anyone else.
        "sub": current.sub if current is not None else None,
    }
    _prune_pending_logins()
    client.framework.set_state_data(session, rv["state"], data)
    return redirect(rv["url"])


def _discovery_remedy(base_url: str, exc: Exception) -> str | None:
    """Name the usual cause when https to this machine fails: a local emulator speaks http."""
    parts = urlsplit(base_url)
    if (
        isinstance(exc, requests.exceptions.SSLError)
        and parts.scheme == "https"
        and is_loopback_host(parts.hostname or "")
    ):
        return (
            f"AUTH0_DOMAIN names this machine over https ({base_url}); the bundled emulator "
            f"speaks plain http: set AUTH0_DOMAIN=http://{parts.netloc}."
        )
    return None


@blueprint.get("/login")
def login() -> Response:
    """Send the visitor to Auth0 to sign in, optionally through one connection."""
    state = get_state()
    next_url = _next_from_request(state)
    connection = _connection_from(state, request.args.get("connection"))
    scopes: tuple[str, ...] = ()
    if request.args.get("connection_scope") is not None:
        if connection is None:
            raise InvalidRequest("'connection_scope' needs a 'connection'.")
        scopes = _requested_scopes(state, connection, "connection_scope")
    return _authorize(
        state, next_url=next_url, connection=connection, scopes=scopes, login_hint=_login_hint()
    )


@blueprint.get("/connect/<connection>")
def connect(connection: str) -> Response:
    """Send the user to Auth0 to connect (or re-consent) an account at a provider."""
    state = get_state()
    checked = _connection_from(state, connection) or ""
    next_url = _next_from_request(state)
    scopes = _requested_scopes(state, checked, "scope")
    if state.settings.connect_flow == "connected_accounts":
        return _start_connected_account(state, checked, scopes, next_url, _login_hint())
    return _authorize(
        state, next_url=next_url, connection=checked, scopes=scopes, login_hint=_login_hint()
    )


@blueprint.get("/connect/callback")
def connect_callback() -> Response:
    """Finish connecting an account through Connected Accounts, then go back to the page."""
    return _finish_connected_account(get_state())


@blueprint.post("/disconnect/<connection>")
def disconnect(connection: str) -> Response:
    """Remove the user's account at a provider from the vault (a form with the CSRF token)."""
    state = get_state()
    checked = _connection_from(state, connection) or ""
    _check_csrf("disconnect", "Disconnect")
    removed = disconnect_connection(checked)
    if wants_json():
        return jsonify(connection=checked, removed=removed)
    next_url = safe_next(request.form.get("next")) or state.settings.default_next
    return redirect(next_url)


@blueprint.get("/callback")
def callback() -> Response:
    """Finish the login: check state, exchange the code, validate the ID token, fill the session."""
    state = get_state()
    client = state.oauth
    state_param = request.args.get("state")
    if not state_param or len(state_param) > 256:
        raise CallbackError("The sign-in answer carries no state.", error="missing_state")
    data = client.framework.get_state_data(session, state_param)
    if isinstance(data, dict) and _pending_login_expired(state_param):
        client.framework.clear_state_data(session, state_param)
        raise CallbackError(
            "The sign-in took too long and has expired.",
            error="login_expired",
            remedy="Start the sign-in again.",
        )
    if not isinstance(data, dict):
        raise CallbackError(
            "The sign-in answer does not match a sign-in started here (state mismatch).",
            error="state_mismatch",
        )
    if request.args.get("error"):
        client.framework.clear_state_data(session, state_param)
        error = request.args["error"][:100]
        if error == "access_denied":
            raise CallbackError(
                "Access was not granted at the sign-in page.",
                error="access_denied",
                remedy="Start again and allow access if you want to use this feature.",
            )
        raise CallbackError(f"Auth0 returned an error: {error}.", error=error)
    if not request.args.get("code"):
        client.framework.clear_state_data(session, state_param)
        raise CallbackError("The sign-in answer carries no code.", error="missing_code")
    client.framework.clear_state_data(session, state_param)
    # The code goes to /oauth/token through the app's exchanger, like every other grant: one
    # place for the client assertion, the DPoP proof and its nonce retry, timeouts and errors.
    # authlib keeps what it does best here: the ID token's signature and claims.
    token = state.exchanger.exchange_code(
        request.args["code"], str(data.get("redirect_uri", "")), str(data.get("code_verifier", ""))
    )
    try:
        userinfo = client.parse_id_token(token, nonce=data.get("nonce"), leeway=120)
    except (JoseError, AuthlibBaseError) as exc:
        raise CallbackError(
            f"The ID token is invalid ({type(exc).__name__}).", error="invalid_id_token"
        ) from None
    except requests.RequestException as exc:
        raise Auth0Unavailable(f"Auth0 could not be reached ({type(exc).__name__}).") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise Auth0Unavailable(
            f"Auth0's answer could not be read ({type(exc).__name__}).", error="malformed_answer"
        ) from None
    sub = userinfo.get("sub") if userinfo else None
    if not userinfo or not isinstance(sub, str) or not 0 < len(sub) <= 512:
        raise Auth0Unavailable("Auth0 answered without an ID token.", error="malformed_answer")
    connecting_as = data.get("sub")
    if isinstance(connecting_as, str) and connecting_as != sub:
        raise CallbackError(
            "The account you connected belongs to another user of this site, so nothing was "
            "changed: you are still signed in as before.",
            error="account_mismatch",
            connection=data.get("connection") if isinstance(data.get("connection"), str) else None,
            remedy="Connect an account of your own, or sign out first to use the other one.",
        )
    refresh_token = token.get("refresh_token")
    if not isinstance(refresh_token, str) or not refresh_token:
        raise Misconfigured(
            "Auth0 issued no refresh token, so Token Vault cannot be used.",
            error="missing_refresh_token",
            remedy="Request the 'offline_access' scope and enable the Refresh Token grant and "
            "'Allow Offline Access' for this application in Auth0.",
        )
    user = write_user(state.crypto, userinfo, refresh_token)
    forget_user()
    connection = data.get("connection")
    if isinstance(connection, str) and connection:
        note_connected(connection)
    # A new connect may have changed the granted scopes: never serve a token from before it.
    state.cache.invalidate_user(user.sub)
    signals.logged_in.send(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        user_id=user.sub,
        connection=connection,
    )
    log.info("signed in: connection=%s", connection)
    next_url = safe_next(data.get("next")) or state.settings.default_next
    return redirect(next_url)


def _cancel_url(state: AppState) -> str:
    """Return where "Cancel" on the sign-out page goes: ``next``, the page before, or home."""
    wanted = safe_next(request.args.get("next"))
    if wanted is not None:
        return wanted
    referrer = urlsplit(request.referrer or "")
    if referrer.netloc == request.host and referrer.path != request.path:
        back = safe_next(referrer.path + ("?" + referrer.query if referrer.query else ""))
        if back is not None:
            return back
    return state.settings.default_next


@blueprint.route("/logout", methods=["GET", "POST"])
def logout() -> Response | str:
    """Sign out: GET shows a confirmation form, POST (with its token) clears the session.

    Logging out by a plain GET would let any other site log users out (logout CSRF).
    """
    state = get_state()
    user = read_user(state.crypto)
    if request.method == "GET":
        if user is None and SESSION_KEY not in session:
            return redirect(state.settings.default_next)
        return render_template(
            "token_vault/logout.html",
            csrf_token=csrf_token(),
            user=user,
            cancel_url=_cancel_url(state),
        )
    _check_csrf("sign-out", "Sign out")
    if user is not None:
        state.cache.invalidate_user(user.sub)
    session.clear()
    forget_user()
    if user is not None:
        signals.logged_out.send(
            current_app._get_current_object(),  # type: ignore[attr-defined]
            user_id=user.sub,
        )
    return_to = state.settings.logout_return_to or (
        request.host_url.rstrip("/") + state.settings.default_next
    )
    query = urlencode({"client_id": state.settings.client_id, "returnTo": return_to})
    return redirect(f"{state.settings.base_url}/v2/logout?{query}")


# -- Connected Accounts ------------------------------------------------------------------------

_PENDING_KEY = "_token_vault_connect"
_MAX_PENDING = 3
_PENDING_LIFETIME = 900


def _start_connected_account(
    state: AppState,
    connection: str,
    scopes: Iterable[str],
    next_url: str,
    login_hint: str | None,
) -> Response:
    """Start a Connected Accounts connection and send the browser to Auth0's consent page."""
    user = optional_user()
    if user is None:
        # Connecting needs a signed-in user (and their refresh token): sign in, then come back.
        return redirect(login_url(next=current_path()))
    conn = state.settings.connections[connection]
    # Checked before any call to Auth0: the API takes at most 100 scopes, and none is "leave
    # the field out", never an empty list.
    wanted = connect_scopes((*conn.scopes, *scopes), connection)
    params = {
        k: v for k, v in conn.authorization_params.items() if k in CONNECT_AUTHORIZATION_PARAMS
    }
    if login_hint:
        params["login_hint"] = login_hint
    verifier = generate_token(48)
    state_param = secrets.token_urlsafe(24)
    redirect_uri = url_for("token_vault.connect_callback", _external=True)
    token = my_account_token([CONNECT_SCOPE])
    answer = state.my_account.connect(
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


def _finish_connected_account(state: AppState) -> Response:
    """Complete a Connected Accounts connection when Auth0 sends the browser back."""
    state_param = request.args.get("state")
    if not state_param or len(state_param) > 256:
        raise CallbackError("The connection answer carries no state.", error="missing_state")
    record = _take_pending(state, state_param)
    user = require_user()
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
    account = state.my_account.complete(
        my_account_token([CONNECT_SCOPE]),
        auth_session=str(record.get("auth_session", "")),
        connect_code=connect_code,
        redirect_uri=str(record.get("redirect_uri", "")),
        code_verifier=str(record.get("verifier", "")),
    )
    # The new grant may carry other scopes: never serve a token from before it.
    forget_provider_tokens(account.connection or connection)
    note_connected(account.connection or connection)
    log.info("connected: connection=%s flow=connected_accounts", account.connection or connection)
    next_url = safe_next(record.get("next")) or state.settings.default_next
    return redirect(next_url)
