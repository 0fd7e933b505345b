"""Routes: login, callback, logout, back-channel logout, connect and disconnect, in one blueprint.

(Layer: views, the top of the package.) Every page of the blueprint refuses to be framed.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from blinker import Signal
from flask import Blueprint, current_app, g, jsonify, redirect, render_template, request, session
from joserfc.errors import JoseError
from werkzeug.wrappers import Response

from . import _login_request as asked
from . import _round_trips as round_trips
from . import signals
from ._accounts import REVOCATIONS_KEY, STEP_UP_NEEDED, disconnect_account, my_account_token
from ._accounts import disconnect as disconnect_connection
from ._connect_links import LINK_INVALID
from ._connection_options import is_valid_connection_name
from ._my_account import CONNECT_SCOPE, connect_scopes
from ._oidc import check_local_server, verify_logout_token
from ._parsers import is_loopback_host
from ._responses import deny_framing, wants_json
from ._session import SESSION_KEY, note_connected, read_user, write_user
from ._state import AppState, get_state
from ._tokens import forget_provider_tokens, forget_user, optional_user, require_user
from ._urls import connect_url, current_path, external_url, login_url, safe_next
from .errors import (
    Auth0Unavailable,
    CacheUnavailable,
    CallbackError,
    InvalidRequest,
    LoginRequired,
    Misconfigured,
)

log = logging.getLogger("flask_token_vault")

blueprint = Blueprint("token_vault", __name__, template_folder="templates")

_CSRF_KEY = "_token_vault_csrf"

blueprint.after_request(deny_framing)


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


def _go_back(state: AppState, next_url: str | None) -> Response:
    return redirect(safe_next(next_url) or state.settings.default_next)


def _send(signal: Signal, **data: Any) -> None:
    signal.send(current_app._get_current_object(), **data)  # type: ignore[attr-defined]


def _requested_scopes(state: AppState, connection: str, param: str) -> tuple[str, ...]:
    """Return the scopes a link asks for: configured ones as they are, others only if signed."""
    user = optional_user()
    return state.links.check(
        connection,
        request.args.get(param),
        request.args,
        user.sub if user is not None else None,
        state.declared_scopes(connection),
    )


def _connection_from(state: AppState, name: str) -> str:
    if not is_valid_connection_name(name) or name not in state.settings.connections:
        raise InvalidRequest(
            "This connection is not offered by this site.",
            remedy="Pick one of the site's own 'connect' links.",
        )
    return name


def _authorize(
    state: AppState,
    connection: str | None,
    scopes: Iterable[str],
    next_url: str,
    login_hint: str | None,
    *,
    max_age: int | None = None,
    organization: str | None = None,
    acr_values: str | None = None,
) -> Response:
    """Send the browser to Auth0's ``/authorize``, to sign in or to connect ``connection``.

    ``max_age``, ``organization`` and ``acr_values`` are as for :func:`login_url`; the round
    trip keeps them for the callback to check the ID token against.
    """
    settings = state.settings
    params: dict[str, str] = {}
    if max_age is not None:
        params.update(max_age=str(max_age), prompt="login")
    if organization:
        params["organization"] = organization
    if acr_values:
        params.update(acr_values=acr_values, prompt="login")
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
    verifier = generate_token(48)
    params["code_challenge"] = create_s256_code_challenge(verifier)
    params["code_challenge_method"] = "S256"
    redirect_uri = external_url("token_vault.callback")
    check_local_server(settings.base_url)
    try:
        # Discovery is read (and checked) through the transport: its failures are typed there.
        rv = state.oauth.create_authorization_url(redirect_uri, **params)
    except (requests.RequestException, ValueError) as exc:
        raise Auth0Unavailable(
            f"Auth0's discovery document could not be read ({type(exc).__name__})."
        ) from None
    current = optional_user() if connection is not None else None
    record = {
        "redirect_uri": redirect_uri,
        "verifier": verifier,
        "nonce": rv.get("nonce"),
        "next": next_url,
        "connection": connection,
        # A connect keeps the signed-in user: the callback refuses an answer for anyone else.
        "sub": current.sub if current is not None else None,
    }
    # What a sign-in asked for beyond the usual, kept only when asked: every byte of a pending
    # round trip rides in the cookie.
    extras = {"max_age": max_age, "organization": organization, "acr_values": acr_values}
    record.update((key, value) for key, value in extras.items() if value is not None)
    round_trips.begin(state, "login", rv["state"], record)
    return redirect(rv["url"])


@blueprint.get("/login")
def login() -> Response:
    """Send the visitor to Auth0 to sign in, optionally through one connection."""
    state = get_state()
    next_url = _next_from_request(state)
    named = request.args.get("connection")
    connection = _connection_from(state, named) if named else None
    if connection is None and "connection_scope" in request.args:
        raise InvalidRequest("'connection_scope' needs a 'connection'.")
    scopes = _requested_scopes(state, connection, "connection_scope") if connection else ()
    return _authorize(
        state,
        connection,
        scopes,
        next_url,
        asked.login_hint(),
        max_age=asked.max_age(),
        organization=asked.organization(state),
        acr_values=asked.acr_values(),
    )


@blueprint.get("/connect/<connection>")
def connect(connection: str) -> Response:
    """Send the user to Auth0 to connect (or re-consent) an account at a provider."""
    state = get_state()
    checked = _connection_from(state, connection)
    next_url = _next_from_request(state)
    user = optional_user()
    try:
        scopes = _requested_scopes(state, checked, "scope")
    except InvalidRequest as exc:
        if exc.error != LINK_INVALID or user is not None:
            raise
        # Perhaps their session ended since the link was made: sign in, then try it again.
        return redirect(login_url(next=current_path()))
    if state.settings.connect_flow == "connected_accounts":
        return _start_connected_account(state, checked, scopes, next_url, asked.login_hint())
    # A connect signs in again through Auth0: in the organization the user is signed in to.
    organization = user.org_id if user is not None else state.settings.organization
    return _authorize(
        state, checked, scopes, next_url, asked.login_hint(), organization=organization
    )


def _disconnect_form() -> bool:
    """Check the disconnect form's token; return whether it asks to revoke at the provider too."""
    _check_csrf("disconnect", "Disconnect")
    return request.form.get("revoke_provider", "") in ("1", "true", "on")


def _disconnected(state: AppState, revoked: bool, **answer: Any) -> Response:
    """Answer a disconnect: JSON (with ``revocations`` when the form asked), else go back."""
    if not wants_json():
        return _go_back(state, request.form.get("next"))
    if revoked:
        answer["revocations"] = [r.to_dict() for r in g.get(REVOCATIONS_KEY, [])]
    return jsonify(answer)


@blueprint.post("/disconnect/<connection>")
def disconnect(connection: str) -> Response:
    """Remove the user's account at a provider from the vault (a form with the CSRF token)."""
    state = get_state()
    checked = _connection_from(state, connection)
    revoke = _disconnect_form()
    removed = disconnect_connection(checked, revoke_provider=revoke)
    return _disconnected(state, revoke, connection=checked, removed=removed)


@blueprint.post("/disconnect/account/<account_id>")
def disconnect_one_account(account_id: str) -> Response:
    """Remove ONE connected account (by its ``cac_...`` id) from the vault (a CSRF'd form)."""
    revoke = _disconnect_form()
    account = disconnect_account(account_id, revoke_provider=revoke)
    return _disconnected(get_state(), revoke, account=account.to_dict(), removed=1)


@blueprint.get("/callback")
def callback() -> Response:
    """Finish the login: check state, exchange the code, validate the ID token, fill the session."""
    state = get_state()
    data = round_trips.take(state, "login", request.args.get("state"))
    issuer = request.args.get("iss")
    if issuer is not None and issuer.lower() != state.settings.issuer.lower():
        # RFC 9207: an answer naming another issuer is a mix-up; its code is not ours to use.
        raise CallbackError(
            "The sign-in answer comes from another issuer than this site's Auth0 tenant.",
            error="issuer_mismatch",
        )
    code = _code_from_answer("sign-in", "code", data["connection"], data["next"])
    # The code goes to /oauth/token through the app's exchanger, like every other grant (client
    # assertion, DPoP, timeouts, errors); authlib checks the ID token's signature and claims.
    token = state.exchanger.exchange_code(code, data["redirect_uri"], data["verifier"])
    try:
        userinfo = state.oauth.parse_id_token(token, nonce=data["nonce"], leeway=120)
    except (JoseError, AuthlibBaseError) as exc:
        raise CallbackError(
            f"The ID token is invalid ({type(exc).__name__}).", error="invalid_id_token"
        ) from None
    except requests.RequestException as exc:
        raise Auth0Unavailable(f"Auth0 could not be reached ({type(exc).__name__}).") from None
    except (ValueError, KeyError, TypeError, OverflowError, RecursionError) as exc:
        # Claims authlib cannot compare (an exp of 1e400, a JSON nested thousands deep) are a
        # malformed answer, not a 500.
        raise Auth0Unavailable(
            f"Auth0's answer could not be read ({type(exc).__name__}).", error="malformed_answer"
        ) from None
    sub = (userinfo or {}).get("sub")
    if not userinfo or not isinstance(sub, str) or not 0 < len(sub) <= 512:
        raise Auth0Unavailable("Auth0 answered without an ID token.", error="malformed_answer")
    if data["sub"] is not None and data["sub"] != sub:
        raise CallbackError(
            "The account you connected belongs to another user of this site, so nothing was "
            "changed: you are still signed in as before.",
            error="account_mismatch",
            connection=data["connection"],
        )
    asked.check_id_token(state, userinfo, data)
    refresh_token = token.get("refresh_token")
    if not isinstance(refresh_token, str) or not refresh_token:
        raise Misconfigured(
            "Auth0 issued no refresh token, so Token Vault cannot be used.",
            error="missing_refresh_token",
        )
    user = write_user(state, userinfo, refresh_token)
    forget_user()
    connection = data["connection"]
    if connection:
        note_connected(connection)
    # A new connect may have changed the granted scopes: never serve a token from before it.
    state.cache.invalidate_user(user.sub)
    _send(signals.logged_in, user_id=user.sub, connection=connection)
    if connection:
        _send(signals.connected, user_id=user.sub, connection=connection, account_id=None)
    log.info("signed in: connection=%s", connection)
    return _go_back(state, data["next"])


def _code_from_answer(answer: str, param: str, connection: str | None, next_url: str) -> str:
    """Return the code Auth0 sent back in ``param``, or raise the error it sent instead."""
    error = request.args.get("error", "")[:100]
    if error == "access_denied":
        label = get_state().settings.connections[connection].label if connection else None
        raise CallbackError(
            f"Access to your {label} account was not granted."
            if label
            else f"Access was not granted at the {answer} page.",
            error="access_denied",
            connection=connection,
            code=403,
            # "Try again" asks again, and coming back still leads to the page the user wanted.
            retry_url=connect_url(connection, next=next_url) if connection else login_url(next_url),
        )
    if error:
        raise CallbackError(f"Auth0 returned an error: {error}.", error=error)
    code = request.args.get(param)
    if not code or len(code) > 2048:
        raise CallbackError(f"The {answer} answer carries no code.", error="missing_code")
    return code


def _cancel_url(state: AppState) -> str:
    """Return where "Cancel" on the sign-out page goes: ``next``, the page before, or home."""
    referrer = urlsplit(request.referrer or "")
    back = None
    if referrer.netloc == request.host and referrer.path != request.path:
        back = referrer.path + ("?" + referrer.query if referrer.query else "")
    return safe_next(request.args.get("next")) or safe_next(back) or state.settings.default_next


@blueprint.route("/logout", methods=["GET", "POST"])
def logout() -> Response | str:
    """Sign out: GET shows a confirmation form, POST (with its token) clears the session.

    Logging out by a plain GET would let any other site log users out (logout CSRF).
    """
    state = get_state()
    user = read_user(state)
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
        # A copy of the cookie (a stolen one is still signed) reads as signed out from now on:
        # ended by Auth0's session, or by the sign-in when Auth0 gave no sid. Never raises: an
        # end the cache cannot take yet is kept here and written again.
        state.revocations.end(sid=user.sid, sign_in=user.sign_in)
        if state.settings.revoke_on_logout:
            # A copy of the cookie made before stays signed; revoked, its refresh token is dead.
            state.revoke_later(user.refresh_token)
    session.clear()
    forget_user()
    if user is not None:
        _send(signals.logged_out, user_id=user.sub)
        _send(signals.session_ended, user_id=user.sub, reason="logout")
    params = {"client_id": state.settings.client_id, "returnTo": _logout_return_to(state)}
    query = urlencode({name: value for name, value in params.items() if value})
    return redirect(f"{state.settings.base_url}/v2/logout?{query}")


_warned_no_return_to: set[str] = set()


def _logout_return_to(state: AppState) -> str | None:
    """Return where Auth0 sends the browser after logout, from trusted settings only.

    The Host header is the visitor's to choose: it is used only when Flask checks it
    (``TRUSTED_HOSTS``) or on a loopback address (development).
    """
    settings = state.settings
    if settings.logout_return_to:
        return settings.logout_return_to
    if settings.external_url:
        return settings.external_url + settings.default_next
    config = current_app.config
    if config.get("SERVER_NAME"):
        scheme = config.get("PREFERRED_URL_SCHEME") or "http"
        return f"{scheme}://{config['SERVER_NAME']}{settings.default_next}"
    if config.get("TRUSTED_HOSTS") or is_loopback_host(urlsplit(request.host_url).hostname or ""):
        return request.host_url.rstrip("/") + settings.default_next
    if settings.client_id not in _warned_no_return_to:
        _warned_no_return_to.add(settings.client_id)
        log.warning(
            "logout: no TOKEN_VAULT_EXTERNAL_URL, TOKEN_VAULT_LOGOUT_RETURN_TO or SERVER_NAME; "
            "Auth0 will send users to the application's first Allowed Logout URL"
        )
    return None


@blueprint.post("/backchannel-logout")
def backchannel_logout() -> Response:
    """Take Auth0's back-channel logout token and end the sessions it names (on their next request).

    400 for a bad or replayed token, 503 when the shared cache cannot record it.
    """
    state = get_state()
    raw = request.form.get("logout_token", "")
    claims = verify_logout_token(raw, state.tenant_keys)
    try:
        first = state.revocations.first_use(
            claims.jti, claims.expires_at - state.clock.time() + 120
        )
    except Exception as exc:  # the store cannot tell a replay: end the sessions all the same
        log.warning("back-channel logout: replay check failed (cache error %s)", type(exc).__name__)
        first = True
    if not first:
        raise InvalidRequest(
            "The logout token was already used.",
            error="invalid_logout_token",
            remedy="Only Auth0 sends logout tokens here; nothing to do if this was not Auth0.",
        )
    # With a sid, only that Auth0 session ends; with a sub alone, every one of the user's.
    durable = state.revocations.end(sid=claims.sid, sub=claims.sub)
    if claims.sub:
        state.cache.invalidate_user(claims.sub)
    if not durable:
        # This process refuses the sessions already and keeps writing the end to the cache;
        # until the cache holds it, the logout is not done everywhere: say so.
        raise CacheUnavailable("The logout could not be recorded in the shared cache yet.")
    _send(signals.backchannel_logout, sub=claims.sub, sid=claims.sid)
    log.info("back-channel logout: session ended (by %s)", "sid" if claims.sid else "sub")
    return Response(status=200, headers={"Cache-Control": "no-store"})


# -- Connected Accounts ------------------------------------------------------------------------


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
    wanted = connect_scopes((*conn.scopes, *scopes), connection)  # before any call to Auth0
    params = dict(conn.authorization_params)
    if login_hint:
        params["login_hint"] = login_hint
    try:
        token = my_account_token([CONNECT_SCOPE])
    except LoginRequired as exc:
        if exc.error != STEP_UP_NEEDED or exc.retry_url is None:
            raise
        # Authentication Assurance: sign in again with a second factor, then back to this connect.
        log.info("connect: the My Account API asks for a step-up sign-in")
        return redirect(exc.retry_url)
    verifier = generate_token(48)
    state_param = secrets.token_urlsafe(24)
    redirect_uri = external_url("token_vault.connect_callback")
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
    }
    round_trips.begin(state, "connect", state_param, record)
    connect_uri = str(answer["connect_uri"])
    separator = "&" if urlsplit(connect_uri).query else "?"
    ticket = str(answer["connect_params"]["ticket"])
    log.info("connect started: connection=%s flow=connected_accounts", connection)
    return redirect(connect_uri + separator + urlencode({"ticket": ticket}))


@blueprint.get("/connect/callback")
def connect_callback() -> Response:
    """Finish connecting an account through Connected Accounts, then go back to the page."""
    state = get_state()
    record = round_trips.take(state, "connect", request.args.get("state"))
    user = require_user()
    connection = record["connection"]
    if record["sub"] != user.sub:
        raise CallbackError(
            "This connection was started by another user of this browser.", error="state_mismatch"
        )
    connect_code = _code_from_answer("connection", "connect_code", connection, record["next"])
    account = state.my_account.complete(
        my_account_token([CONNECT_SCOPE]),
        auth_session=record["auth_session"],
        connect_code=connect_code,
        redirect_uri=record["redirect_uri"],
        code_verifier=record["verifier"],
    )
    connected = account.connection or connection
    # The new grant may carry other scopes: never serve a token from before it.
    forget_provider_tokens(connected)
    note_connected(connected)
    _send(signals.connected, user_id=user.sub, connection=connected, account_id=account.id)
    log.info("connected: connection=%s flow=connected_accounts", connected)
    return _go_back(state, record["next"])
