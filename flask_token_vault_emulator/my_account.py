"""Serve the Connected Accounts part of Auth0's My Account API (``/me/v1``) and its consent page.

Requests need a Bearer token for the audience ``{url}/me/`` (a refresh grant with that audience:
Multi-Resource Refresh Token) carrying the endpoint's scope. Every error, unknown paths and
methods under ``/me/`` included, is the API's problem document ``{"type", "status", "title",
"detail"}`` (with ``validation_errors`` for a body that breaks the schema; 415 for a body that is
not JSON).

- ``POST /me/v1/connected-accounts/connect`` (``create:me:connected_accounts``) ->
  201 ``{connect_uri, auth_session, connect_params: {ticket}, expires_in}``; only on a
  connection with Connected Accounts on (``connected_accounts.active``), ``redirect_uri`` an
  allowed callback URL, ``scopes`` (when sent) 1 to 100 items.
- ``GET /connected-accounts/connect?ticket=...``: the consent page (the login page's template,
  posting to ``/u/login``); with auto-login it answers the redirect at once. Allow redirects to
  ``redirect_uri?connect_code=...&state=...``, deny to ``redirect_uri?error=access_denied&...``.
- ``POST /me/v1/connected-accounts/complete`` (``create:me:connected_accounts``) -> 201 account;
  409 when the request was completed already.
- ``GET /me/v1/connected-accounts/connections?from=&take=`` (``read:me:connected_accounts``) ->
  ``{connections: [{name, strategy, scopes}], next}``: the connections with Connected Accounts
  on (``connected_accounts.active``) that are enabled for the app.
- ``GET /me/v1/connected-accounts/accounts?connection=&from=&take=``
  (``read:me:connected_accounts``) -> ``{accounts, next}``.
- ``DELETE /me/v1/connected-accounts/accounts/{id}`` (``delete:me:connected_accounts``) -> 204.

Connected accounts are the same vault entries as tokensets: an account connected here is used
by the Token Vault exchange, and deleting it (or its tokenset) removes it from the vault.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, g, redirect, render_template, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wrappers import Response

from .documents import connected_account_document
from .proofs import DPoPRefused, dpop_thumbprint
from .signing import audiences, is_expired
from .state import ConnectSession, EmulatorState, Tokenset, User
from .state.common import split_scopes
from .web import ErrorAnswer, access_denied, current_state, html_page, json_response, with_query

bp = Blueprint("my_account", __name__)
T = TypeVar("T")

CONNECT_SCOPE = "create:me:connected_accounts"
READ_SCOPE = "read:me:connected_accounts"
DELETE_SCOPE = "delete:me:connected_accounts"
ALLOWED_AUTHORIZATION_PARAMS = frozenset(
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
DENIED_DESCRIPTION = "The user did not allow the connection"
#: How many scopes one connect request may ask for (the API's schema: 1 to 100).
MAX_CONNECT_SCOPES = 100
PROBLEM_TYPE = "https://auth0.com/api-errors/"


class MyAccountError(ErrorAnswer):
    """Stop handling a My Account API request and answer a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        kind: str = "invalid_request",
        validation_errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Describe the answer: HTTP status, ``detail``, a short ``kind`` for ``type``."""
        super().__init__(status, detail, headers)
        self.detail = detail
        self.kind = kind
        self.validation_errors = validation_errors

    def response(self) -> Response:
        """Return the JSON problem answer."""
        body: dict[str, Any] = {
            "type": PROBLEM_TYPE + self.kind,
            "status": self.status,
            "title": HTTP_STATUS_CODES.get(self.status, "Error"),
            "detail": self.detail,
        }
        if self.validation_errors:
            body["validation_errors"] = self.validation_errors
        return json_response(body, self.status, {"Cache-Control": "no-store", **self.headers})


@bp.errorhandler(MyAccountError)
def _problem(error: MyAccountError) -> Response:
    return error.response()


@bp.app_errorhandler(NotFound)
@bp.app_errorhandler(MethodNotAllowed)
def _routing_problem(error: HTTPException) -> Response | HTTPException:
    """Answer unknown paths and methods under ``/me/`` with the API's problem document."""
    if not request.path.startswith("/me/"):
        return error
    status = error.code or 404
    kind = "not_found" if status == 404 else "method_not_allowed"
    return MyAccountError(status, HTTP_STATUS_CODES.get(status, "Error") + ".", kind).response()


def _invalid(field: str, detail: str) -> MyAccountError:
    return MyAccountError(
        400,
        "Invalid input based on schema.",
        validation_errors=[
            {"detail": detail, "field": field, "pointer": f"/{field}", "source": "body"}
        ],
    )


def _access_token() -> tuple[str, str] | None:
    """Return the scheme (``bearer`` or ``dpop``) and token of the Authorization header."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() not in ("bearer", "dpop") or not token:
        return None
    return scheme.lower(), token


def _check_binding(state: EmulatorState, scheme: str, token: str, claims: dict[str, Any]) -> None:
    """Refuse a DPoP-bound token sent as Bearer, without a proof, or with another key's proof."""
    cnf = claims.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    if jkt is None:
        if scheme == "dpop":
            raise MyAccountError(401, "The access token is not DPoP-bound.", "unauthorized")
        return
    challenge = {"WWW-Authenticate": 'DPoP error="invalid_token", algs="ES256 RS256 PS256"'}
    if scheme != "dpop":
        raise MyAccountError(
            401,
            "A DPoP-bound token must be sent as Authorization: DPoP.",
            "unauthorized",
            None,
            challenge,
        )
    try:
        proved = dpop_thumbprint(state, access_token=token)
    except DPoPRefused as refused:
        headers = {"WWW-Authenticate": f'DPoP error="{refused.error}"'}
        if refused.nonce:
            headers["DPoP-Nonce"] = refused.nonce
        raise MyAccountError(401, refused.description, "unauthorized", None, headers) from None
    if proved != jkt:
        raise MyAccountError(
            401,
            "The DPoP proof is missing or signed by another key than the token's.",
            "unauthorized",
            None,
            challenge,
        )


def authenticate(state: EmulatorState, scope: str) -> tuple[User, str]:
    """Return the user and client of the request's My Account token if it carries ``scope``.

    A DPoP-bound token (``cnf.jkt``) must come as ``Authorization: DPoP`` with a proof of its
    key carrying the token's ``ath``.
    """
    sent = _access_token()
    if sent is None:
        raise MyAccountError(401, "Missing access token.", "unauthorized")
    scheme, raw = sent
    claims = state.signing_key.verify(raw)
    audience = state.base_url + "/me/"
    if (
        claims is None
        or claims.get("iss") != state.issuer
        or audience not in audiences(claims)
        or is_expired(claims, state.now())
    ):
        raise MyAccountError(401, "Invalid or expired access token.", "unauthorized")
    _check_binding(state, scheme, raw, claims)
    if scope not in str(claims.get("scope", "")).split():
        raise MyAccountError(403, f"The access token lacks the scope {scope}.", "forbidden")
    user = state.user_by_id(str(claims.get("sub")))
    if user is None:
        raise MyAccountError(401, "The user of the access token does not exist.", "unauthorized")
    # The organization the user signed in to: an account connected now records it.
    g.my_account_org_id = claims.get("org_id")
    return user, str(claims.get("azp", ""))


def _body() -> dict[str, Any]:
    if not request.is_json:
        raise MyAccountError(415, "The body must be application/json.", "unsupported_media_type")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise MyAccountError(400, "Expected a JSON object body.")
    return body


def _text(body: dict[str, Any], name: str, low: int = 1, high: int = 2048) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise _invalid(name, f"{name} is required and must be a non-empty string")
    if not low <= len(value) <= high:
        raise _invalid(name, f"{name} must be {low} to {high} characters long")
    return value


def _scopes(body: dict[str, Any]) -> list[str] | None:
    """Return the ``scopes`` of a connect request: absent, or 1 to 100 non-empty strings."""
    if "scopes" not in body:
        return None
    scopes = body["scopes"]
    if not isinstance(scopes, list) or not all(isinstance(s, str) and s for s in scopes):
        raise _invalid("scopes", "scopes must be an array of strings")
    if not 1 <= len(scopes) <= MAX_CONNECT_SCOPES:
        raise _invalid("scopes", f"scopes must have 1 to {MAX_CONNECT_SCOPES} items")
    return scopes


def _pkce_s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


# -- connect ----------------------------------------------------------------------------------


@bp.post("/me/v1/connected-accounts/connect")
def connect() -> Response:
    """Start connecting an account: check the request, answer the consent page's ticket."""
    state = current_state()
    user, client_id = authenticate(state, CONNECT_SCOPE)
    body = _body()
    name = _text(body, "connection")
    redirect_uri = _text(body, "redirect_uri")
    app_state = _text(body, "state")
    challenge = _text(body, "code_challenge")
    if body.get("code_challenge_method") != "S256":
        raise _invalid("code_challenge_method", "code_challenge_method must be S256")
    scopes = _scopes(body)
    params = body.get("authorization_params", {})
    if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
        raise _invalid("authorization_params", "authorization_params must map names to strings")
    unknown = sorted(set(params) - ALLOWED_AUTHORIZATION_PARAMS)
    if unknown:
        raise _invalid(
            "authorization_params", f"authorization_params may not contain {', '.join(unknown)}"
        )
    client = state.get_client(client_id)
    if client is None or not client.allows_callback(redirect_uri):
        raise _invalid("redirect_uri", "redirect_uri is not an allowed callback URL")
    connection = state.get_connection(name)
    if connection is None or client_id not in connection.enabled_clients:
        raise MyAccountError(
            400, f"The connection '{name}' does not exist or is not enabled for this client."
        )
    if not connection.connected_accounts_active:
        raise MyAccountError(
            400,
            f"Connected Accounts is not enabled on the connection '{name}'.",
            "connected_accounts_disabled",
        )
    session = state.start_connect_session(
        user_id=user.user_id,
        client_id=client_id,
        connection=name,
        redirect_uri=redirect_uri,
        state=app_state,
        code_challenge=challenge,
        scopes=split_scopes(scopes or []),
        scopes_sent=scopes is not None,
        login_hint=params.get("login_hint"),
    )
    return json_response(
        {
            "connect_uri": state.base_url + "/connected-accounts/connect",
            "auth_session": session.auth_session,
            "connect_params": {"ticket": session.ticket},
            "expires_in": int(session.expires_at - state.now()),
        },
        201,
        {"Cache-Control": "no-store"},
    )


@bp.get("/connected-accounts/connect")
def consent_page() -> Response:
    """Show the consent page for a connect ticket, or answer at once in auto-login mode."""
    state = current_state()
    session = state.connect_session_by_ticket(request.args.get("ticket", ""))
    if session is None:
        return html_page(
            "Connection expired",
            "This connect link is unknown, was already used, or has expired. Start again "
            "from the app.",
            400,
        )
    auto = state.auto_login
    if auto is not None:
        return _finish(state, session, allow=auto.consent, account=auto.account)
    user = state.user_by_id(session.user_id)
    client = state.get_client(session.client_id)
    connection = state.get_connection(session.connection)
    html = render_template(
        "authorize.html",
        mode="connect",
        switch_url=None,
        txn=session.ticket,
        client_name=client.name if client else session.client_id,
        connection=connection,
        show_account=connection is not None and connection.provider is not None,
        scopes=[],
        connection_scopes=split_scopes(
            [*(connection.default_scopes if connection else []), *session.scopes]
        ),
        email=user.email if user else "",
        name=user.name if user else "",
        account=session.login_hint or "",
        error=None,
    )
    return Response(html, mimetype="text/html")


def finish_connect_form(state: EmulatorState, session: ConnectSession) -> Response:
    """Take the consent page's form (posted to ``/u/login``): allow or deny the connection."""
    form = request.form
    allow = form.get("action", "allow") != "deny"
    account = form.get("account", "").strip() or None
    return _finish(state, session, allow=allow, account=account)


def _finish(
    state: EmulatorState, session: ConnectSession, *, allow: bool, account: str | None
) -> Response:
    if not allow:
        with state.lock:
            state.connect_sessions.pop(session.auth_session, None)
        return access_denied(session.redirect_uri, session.state, DENIED_DESCRIPTION)
    with state.lock:
        session.connect_code = secrets.token_urlsafe(24)
        session.account = account
    return redirect(
        with_query(
            session.redirect_uri, {"connect_code": session.connect_code, "state": session.state}
        )
    )


@bp.post("/me/v1/connected-accounts/complete")
def complete() -> Response:
    """Finish connecting: check the session, code, redirect URI and PKCE; store the account."""
    state = current_state()
    user, client_id = authenticate(state, CONNECT_SCOPE)
    body = _body()
    auth_session = _text(body, "auth_session", high=64)
    connect_code = _text(body, "connect_code", high=46)
    redirect_uri = _text(body, "redirect_uri")
    verifier = _text(body, "code_verifier", low=43, high=128)
    with state.lock:
        session = state.get_connect_session(auth_session)
        if session is None or session.user_id != user.user_id or session.client_id != client_id:
            raise MyAccountError(400, "The auth_session is unknown or expired.")
        if session.completed:
            raise MyAccountError(
                409, "This connected account request was already completed.", "conflict"
            )
        if session.connect_code is None or not hmac.compare_digest(
            session.connect_code, connect_code
        ):
            raise MyAccountError(400, "The connect_code is invalid.")
        if redirect_uri != session.redirect_uri:
            raise MyAccountError(400, "The redirect_uri does not match the connect request.")
        if not hmac.compare_digest(_pkce_s256(verifier), session.code_challenge):
            raise MyAccountError(400, "The code_verifier does not match the code_challenge.")
        session.completed = True
        tokenset = state.connect(user, session.connection, session.scopes, session.account)
        org_id = g.get("my_account_org_id")
        tokenset.org_id = org_id if isinstance(org_id, str) else None
        document = connected_account_document(state, tokenset, management=False)
    return json_response(document, 201, {"Cache-Control": "no-store"})


# -- connections ------------------------------------------------------------------------------


def _take() -> int:
    raw = request.args.get("take", "10")
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 20:
        raise MyAccountError(400, "take must be an integer from 1 to 20.")
    return int(raw)


def _page(
    key: str,
    items: list[T],
    ids: list[str],
    render: Callable[[list[T]], list[Any]],
    unknown_from: str,
) -> Response:
    """Answer one page of a listing: ``take`` items from the one ``from`` names, and ``next``."""
    take = _take()
    start = 0
    after = request.args.get("from")
    if after:
        if after not in ids:
            raise MyAccountError(400, unknown_from)
        start = ids.index(after)
    body: dict[str, Any] = {key: render(items[start : start + take])}
    if start + take < len(items):
        body["next"] = ids[start + take]
    return json_response(body)


@bp.get("/me/v1/connected-accounts/connections")
def list_connections() -> Response:
    """List the connections the user can connect: Connected Accounts on, enabled for the app."""
    state = current_state()
    _, client_id = authenticate(state, READ_SCOPE)
    with state.lock:
        offered = sorted(
            (
                c
                for c in state.connections.values()
                if c.connected_accounts_active and client_id in c.enabled_clients
            ),
            key=lambda c: c.name,
        )
        documents = [
            {"name": c.name, "strategy": c.strategy, "scopes": list(c.default_scopes)}
            for c in offered
        ]
        ids = [c.id for c in offered]
    return _page("connections", documents, ids, list, "from is not a connection of this list.")


# -- accounts ---------------------------------------------------------------------------------


@bp.get("/me/v1/connected-accounts/accounts")
def list_accounts() -> Response:
    """List the user's connected accounts (optionally of one connection), ``take`` at a time."""
    state = current_state()
    user, _ = authenticate(state, READ_SCOPE)
    connections = set(request.args.getlist("connection"))
    accounts = [
        t
        for t in state.tokensets_for(user.user_id)
        if not connections or t.connection in connections
    ]

    def documents(chosen: list[Tokenset]) -> list[Any]:
        return [connected_account_document(state, t, management=False) for t in chosen]

    ids = [t.account_id for t in accounts]
    return _page("accounts", accounts, ids, documents, "from is not a connected account id.")


@bp.delete("/me/v1/connected-accounts/accounts/<account_id>")
def delete_account(account_id: str) -> Response:
    """Remove one of the user's connected accounts from the vault (tokens are not revoked)."""
    state = current_state()
    user, _ = authenticate(state, DELETE_SCOPE)
    if not account_id.startswith("cac_") or not state.delete_tokenset(user.user_id, account_id):
        raise MyAccountError(404, "The connected account does not exist.", "not_found")
    return Response(status=204)
