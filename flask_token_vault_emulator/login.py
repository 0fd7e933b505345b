"""Serve the login and logout pages: ``/authorize``, the login form and Auth0's two logouts.

A login starts an Auth0 session (its ``sid`` is in the ID token) kept in the browser's ``auth0``
cookie; a later login in the same browser joins it. Logging out (``/v2/logout``,
``/oidc/logout``) ends it and sends a back-channel logout token to every client of the session
that registered a URL (:mod:`.backchannel`). ``POST /oauth/revoke`` revokes a refresh token.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from flask import Blueprint, redirect, render_template, request
from werkzeug.wrappers import Response

from . import backchannel
from .my_account import finish_connect_form
from .state import AutoLogin, BrowserSession, Client, EmulatorState, LoginTransaction, User
from .state.common import ASSURANCE_WINDOW, MFA_POLICY, is_loopback_url, split_scopes
from .web import access_denied, current_state, html_page, with_query

bp = Blueprint("login", __name__)

#: The emulator's sign-in session cookie (Auth0 keeps one of the same name on its domain).
SESSION_COOKIE = "auth0"
DEFAULT_LOGIN_EMAIL = "alice@example.com"
CODE_CHALLENGE_METHODS = ("S256", "plain")
DENIED_DESCRIPTION = "User did not authorize the request"


def _session_user(state: EmulatorState) -> User | None:
    """Return who is signed in at the emulator in this browser (its session cookie), if anyone."""
    return state.browser_session_user(request.cookies.get(SESSION_COOKIE))


def _recent_mfa(state: EmulatorState, session: BrowserSession | None) -> bool:
    """Tell whether the browser's Auth0 session passed a second factor within the window."""
    if session is None or session.mfa_at is None:
        return False
    return state.now() - session.mfa_at <= ASSURANCE_WINDOW


def _switch_user_url() -> str:
    """Return this /authorize request with ``prompt=login`` (replacing Google's ``consent``)."""
    params = {name: value for name, value in request.args.items() if name != "prompt"}
    return with_query(request.base_url, {**params, "prompt": "login"})


def _render_login(
    state: EmulatorState,
    transaction: LoginTransaction,
    *,
    email: str,
    name: str = "",
    account: str = "",
    error: str | None = None,
    status: int = 200,
) -> Response:
    client = state.get_client(transaction.client_id)
    connection = state.get_connection(transaction.connection)
    connection_scopes: list[str] = []
    if connection is not None and connection.vault_active:
        connection_scopes = split_scopes(
            [*connection.default_scopes, *transaction.connection_scopes]
        )
    bound = state.user_by_id(transaction.user_id) if transaction.user_id else None
    html = render_template(
        "authorize.html",
        mode="connect" if bound is not None else "sign-in",
        txn=transaction.txn,
        client_name=client.name if client else transaction.client_id,
        connection=connection,
        show_account=connection is not None and connection.provider is not None,
        scopes=split_scopes(transaction.scope),
        connection_scopes=connection_scopes,
        email=bound.email if bound is not None else email,
        name=bound.name if bound is not None else name,
        account=account,
        error=error,
        switch_url=_switch_user_url() if bound is not None else None,
    )
    return Response(html, status=status, mimetype="text/html")


def _finish_login(
    state: EmulatorState, transaction: LoginTransaction, answer: AutoLogin
) -> Response:
    """Answer the redirect back to the app: with a code on allow, with access_denied on deny.

    ``answer`` is what the login page was answered (or what auto-login answers for it).
    """
    if not answer.consent:
        return access_denied(transaction.redirect_uri, transaction.state, DENIED_DESCRIPTION)
    with state.lock:
        bound = state.user_by_id(transaction.user_id) if transaction.user_id else None
        # A connect keeps the user signed in here, whatever the form says.
        user = bound or state.ensure_user(answer.email, answer.name or None)
        organization = state.organizations.get(transaction.organization or "")
        if organization is not None:
            if not organization.auto_membership and user.user_id not in organization.members:
                description = (
                    f"user {user.user_id} is not part of the {organization.id} organization"
                )
                return access_denied(transaction.redirect_uri, transaction.state, description)
            organization.members.add(user.user_id)
        connection = state.get_connection(transaction.connection)
        if connection is not None and connection.vault_active:
            tokenset = state.connect(
                user, connection.name, transaction.connection_scopes, answer.account
            )
            tokenset.org_id = transaction.organization
        if bound is None:
            session = state.start_browser_session(user)
            fresh = True
        else:
            # A connect for the signed-in user goes on in their Auth0 session.
            found = state.browser_session(request.cookies.get(SESSION_COOKIE))
            fresh = found is None
            session = found or state.start_browser_session(user)
        state.join_browser_session(session, transaction.client_id)
        if MFA_POLICY in (transaction.acr_values or "").split():
            # The emulator's login page stands for the second factor too: it was passed now.
            session.mfa_at = state.now()
        code = state.issue_code(transaction, user, session.sid)
    response = redirect(
        with_query(transaction.redirect_uri, {"code": code.code, "state": transaction.state})
    )
    if fresh:
        _set_session_cookie(response, session.sid, session.expires_at - state.now())
    return response


def _set_session_cookie(response: Response, sid: str, max_age: float) -> None:
    response.set_cookie(
        SESSION_COOKIE, sid, max_age=int(max_age), httponly=True, samesite="Lax", path="/"
    )


#: The command that registers an app's callback URLs (the admin tool's ``setup``).
SETUP_COMMAND = "flask token-vault setup --base-url"


def app_base_url(redirect_uri: str) -> str | None:
    """Return the app address a Flask-Token-Vault callback URL was built from, or None.

    Its callbacks are ``BASE/PREFIX/callback`` and ``BASE/PREFIX/connect/callback``, where
    PREFIX is the extension's URL prefix (one path segment, ``/auth`` by default).
    """
    parts = urlsplit(redirect_uri)
    path = parts.path
    if parts.scheme not in ("http", "https") or not parts.netloc or not path.endswith("/callback"):
        return None
    path = path.removesuffix("/callback").removesuffix("/connect")
    base_path = path.rpartition("/")[0] if path else ""
    return urlunsplit((parts.scheme, parts.netloc, base_path, "", ""))


def callback_mismatch(client: Client, redirect_uri: str) -> tuple[str, str | None]:
    """Say why ``redirect_uri`` is refused and return the command that allows it, if known."""
    allowed = ", ".join(client.callbacks) or "none"
    if client.allow_loopback:
        rule = "This tenant lets any http://127.0.0.1 or http://localhost URL through"
        rule += " unlisted; other URLs must be listed."
    else:
        # A tenant started with --bare checks the list as Auth0 does: loopback URLs too.
        rule = "This tenant checks the list as Auth0 does, loopback URLs included."
    message = (
        f"The provided redirect_uri is not in the list of allowed callback URLs: "
        f"{redirect_uri or '(none)'}. Allowed for {client.name}: {allowed}. {rule}"
    )
    base = app_base_url(redirect_uri) if redirect_uri else None
    if base is None:
        return message + " Add it to the application's Allowed Callback URLs.", None
    message += " To allow this app's URLs, run this next to the app:"
    return message, f"{SETUP_COMMAND} {base}"


@bp.get("/authorize")
def authorize() -> Response:
    """Start a login: show the login-and-consent page, or sign the auto-login user in at once."""
    state = current_state()
    args = request.args
    client = state.get_client(args.get("client_id"))
    if client is None:
        return html_page(
            "Unknown client",
            f"Unknown client: {args.get('client_id') or '(none)'}. Check the client_id parameter.",
            400,
        )
    redirect_uri = args.get("redirect_uri", "")
    if not redirect_uri or not client.allows_callback(redirect_uri):
        message, fix = callback_mismatch(client, redirect_uri)
        return html_page("Callback URL mismatch", message, 400, fix=fix)
    app_state = args.get("state")

    def fail(error: str, description: str) -> Response:
        params = {"error": error, "error_description": description, "state": app_state}
        return redirect(with_query(redirect_uri, params))

    response_type = args.get("response_type", "")
    if response_type != "code":
        return fail("unsupported_response_type", f"Unsupported response type: {response_type}")
    if args.get("response_mode", "query") != "query":
        return fail("invalid_request", "The emulator supports only response_mode=query")
    code_challenge = args.get("code_challenge") or None
    method = args.get("code_challenge_method") or None
    if code_challenge is None and method is not None:
        return fail("invalid_request", "code_challenge_method given without code_challenge")
    if code_challenge is not None:
        method = method or "plain"
        if method not in CODE_CHALLENGE_METHODS:
            return fail("invalid_request", f"Unsupported code_challenge_method: {method}")
    audience = args.get("audience") or None
    if audience is not None and not state.is_known_audience(audience):
        return fail("access_denied", f"Service not found: {audience}")
    connection_name = args.get("connection") or None
    if connection_name is not None:
        connection = state.get_connection(connection_name)
        if connection is None:
            return fail("invalid_request", f"the connection was not found: {connection_name}")
        if client.client_id not in connection.enabled_clients:
            return fail("invalid_request", f"the connection is not enabled: {connection_name}")

    organization = None
    if args.get("organization"):
        organization = state.find_organization(args["organization"])
        if organization is None:
            return fail(
                "invalid_request", "parameter organization is invalid: no such organization"
            )
    prompt = args.get("prompt") or None
    max_age = args.get("max_age") or None
    if max_age is not None and (not max_age.isdigit() or len(max_age) > 10):
        return fail("invalid_request", "max_age must be a number of seconds")
    acr_values = args.get("acr_values") or None
    signed_in = _session_user(state) if prompt != "login" else None
    current = state.browser_session(request.cookies.get(SESSION_COOKIE))
    if acr_values and MFA_POLICY in acr_values.split() and not _recent_mfa(state, current):
        signed_in = None  # a second factor is asked for: the user authenticates (again)
    # OIDC max_age: a session older than that is no sign-in; the user authenticates again.
    if max_age and current is not None and state.now() - current.created_at > int(max_age):
        signed_in = None
    vault_connection = state.get_connection(connection_name)
    connecting = vault_connection is not None and vault_connection.vault_active
    transaction = state.start_transaction(
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        state=app_state,
        scope=args.get("scope") or "openid",
        nonce=args.get("nonce") or None,
        code_challenge=code_challenge,
        code_challenge_method=method if code_challenge else None,
        connection=connection_name,
        connection_scopes=split_scopes(args.get("connection_scope")),
        audience=audience,
        login_hint=args.get("login_hint") or None,
        prompt=prompt,
        access_type=args.get("access_type") or None,
        screen_hint=args.get("screen_hint") or None,
        organization=organization.id if organization is not None else None,
        acr_values=acr_values,
        store=False,
        user_id=signed_in.user_id if signed_in is not None and connecting else None,
    )
    auto = state.auto_login
    if auto is not None:
        return _finish_login(state, transaction, auto)
    if transaction.prompt == "none":
        if signed_in is None:
            return fail("login_required", "Login required")
        # A silent sign-in goes on in the user's Auth0 session: no new authentication, so the
        # ID token keeps the session's auth_time.
        transaction.user_id = signed_in.user_id
        return _finish_login(state, transaction, AutoLogin(signed_in.email))
    state.save_transaction(transaction)
    email = transaction.login_hint or (signed_in.email if signed_in else DEFAULT_LOGIN_EMAIL)
    return _render_login(state, transaction, email=email)


@bp.post("/u/login")
def login() -> Response:
    """Take the login page's form: allow (the default action) or deny."""
    state = current_state()
    form = request.form
    connect = state.connect_session_by_ticket(form.get("txn", ""))
    if connect is not None:
        # The Connected Accounts page reuses this form, with the ticket as its txn.
        return finish_connect_form(state, connect)
    transaction = state.take_transaction(form.get("txn", ""))
    if transaction is None:
        return html_page(
            "Login expired",
            "This login is unknown, was already used, or has expired. Start again from the app.",
            400,
        )
    allow = form.get("action", "allow") != "deny"
    email = form.get("email", "").strip()
    name = form.get("name", "").strip()
    account = form.get("account", "").strip()
    bad_email = "@" not in email or email.startswith("@") or email.endswith("@")
    if allow and transaction.user_id is None and bad_email:
        state.save_transaction(transaction)
        return _render_login(
            state,
            transaction,
            email=email,
            name=name,
            account=account,
            error="Enter an email address.",
            status=400,
        )
    return _finish_login(state, transaction, AutoLogin(email, name, account or None, allow))


def _logged_out(
    return_to: str | None, client: Client | None, extra: dict[str, str | None] | None = None
) -> Response:
    allowed = client.allows_logout_url if client is not None else is_loopback_url
    if return_to and allowed(return_to):
        return redirect(with_query(return_to, extra or {}))
    if return_to is None and client is not None and client.allowed_logout_urls:
        # Auth0 sends the browser to the first Allowed Logout URL when returnTo is left out.
        return redirect(client.allowed_logout_urls[0])
    return html_page("Logged out", "You are signed out of the Auth0 emulator.")


def _end_session(state: EmulatorState, response: Response) -> Response:
    """End the browser's Auth0 session and tell its clients through the back channel."""
    session = state.end_browser_session(request.cookies.get(SESSION_COOKIE))
    if session is not None:
        backchannel.deliver(state, sub=session.user_id, sid=session.sid, client_ids=session.clients)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="Lax")
    return response


@bp.get("/v2/logout")
def logout() -> Response:
    """Sign out (Auth0's classic logout) and go to ``returnTo`` when it is allowed."""
    state = current_state()
    client = state.get_client(request.args.get("client_id"))
    return _end_session(state, _logged_out(request.args.get("returnTo"), client))


@bp.get("/oidc/logout")
def oidc_logout() -> Response:
    """Sign out (OIDC RP-initiated logout) and go to ``post_logout_redirect_uri`` when allowed."""
    state = current_state()
    client_id = request.args.get("client_id")
    hint = request.args.get("id_token_hint")
    if not client_id and hint:
        claims = state.signing_key.verify(hint) or {}
        client_id = str(claims.get("aud", ""))
    target = request.args.get("post_logout_redirect_uri")
    extra = {"state": request.args.get("state") or None}
    return _end_session(state, _logged_out(target, state.get_client(client_id), extra))
