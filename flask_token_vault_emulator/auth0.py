"""Serve the Auth0 endpoints: discovery, JWKS, login, token (with Token Vault), userinfo, logout.

A login starts an Auth0 session (its ``sid`` is in the ID token) kept in the browser's ``auth0``
cookie; a later login in the same browser joins it. Logging out (``/v2/logout``,
``/oidc/logout``) ends it and sends a back-channel logout token to every client of the session
that registered a URL (:mod:`.backchannel`). ``POST /oauth/revoke`` revokes a refresh token.

Token endpoint answers follow Auth0: JSON ``{"error", "error_description"}`` with
``Cache-Control: no-store``; bad client credentials 401 ``invalid_client``; a grant the client may
not use 403 ``unauthorized_client``; a bad code, code verifier or refresh token 403
``invalid_grant``. A public client (``token_endpoint_auth_method: none``, the SPA client)
authenticates with its ``client_id`` alone and must use PKCE.

``/authorize`` with an ``audience`` needs an API of the tenant (else ``access_denied``,
"Service not found"); the access token is then an RS256 JWT for that API whose ``scope`` keeps
the OpenID scopes and the API's own scopes that were asked for (and ``permissions`` when the
API's ``token_dialect`` is ``access_token_authz``), living the API's ``token_lifetime``.

The Token Vault grant answers, in the order it checks:

- 400 ``invalid_request``: ``subject_token_type`` missing, an access token from a client that is
  not a Custom API Client (or a refresh token from one that is), or another type;
  ``subject_token`` missing; ``requested_token_type`` not the federated connection access token
  type; ``audience`` or ``resource`` present; ``connection`` missing, unknown, or (for a refresh
  token) not enabled for the client.
- 403 ``access_denied``: Token Vault is not active on the connection (neither
  ``connected_accounts.active`` nor ``options.federated_connections_access_tokens.active``).
- 401 ``invalid_grant``: the subject token is not a refresh token of this client; or not an
  access token of this tenant (signature, issuer), expired, or for no user.
- 403 ``unauthorized_client``: the access token is not for the API the Custom API Client is
  linked to (the client is not linked to any audience of the token).
- 401 ``federated_connection_refresh_token_not_found``: no connected account (for ``login_hint``).
- 401 ``federated_connection_refresh_token_flow_failed``: the provider refuses the stored token.
- 400 ``invalid_scope``: ``scope`` asks for more than was granted.

Client authentication is a secret (body or HTTP Basic) or a ``private_key_jwt`` assertion checked
against the client's registered public keys (see :mod:`.proofs`): bad signature, wrong ``aud``,
expired, ``exp`` more than 5 minutes ahead or a ``jti`` seen before answer 401
``invalid_client``. A client that authenticates with keys (``token_endpoint_auth_method`` null)
no longer accepts its secret.

DPoP (RFC 9449): a valid ``DPoP`` proof binds what the grant issues to the proof's key (access
tokens get ``cnf.jkt`` and ``token_type: DPoP``; refresh tokens remember the key). A bound
refresh token is refused without a proof of the same key (400 ``invalid_dpop_proof``), and a
client with ``require_proof_of_possession`` gets no token without a proof. A bad proof answers
400 ``invalid_dpop_proof``; when the tenant asks for a nonce (:meth:`EmulatorState.
require_dpop_nonce`), a proof without it answers 400 ``use_dpop_nonce`` with ``DPoP-Nonce``.

The Privileged Worker exchange (same grant, ``subject_token_type`` JWT) answers, in order: 401
``invalid_client`` unless the client used ``private_key_jwt``; 403 ``unauthorized_client``
without ``token_vault_privileged_access``; 403 ``access_denied`` from an address outside its
``ip_allowlist``; 401 ``invalid_grant`` for a subject token that is not ``token-vault-req+jwt``,
not signed by an allowed credential, has the wrong ``iss`` or ``aud``, is older than 60 s, was
seen before or names no user; 403 ``access_denied`` for a connection or scopes the grants do not
allow; then as the refresh-token exchange (no account, provider refusal).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import unquote_plus

from flask import Blueprint, g, redirect, render_template, request
from werkzeug.wrappers import Response

from . import backchannel
from .constants import (
    ACCESS_TOKEN_TYPE,
    FEDERATED_TOKEN_TYPE,
    JWT_TOKEN_TYPE,
    REFRESH_TOKEN_TYPE,
    TOKEN_VAULT_GRANT,
    VAULT_ACCESS_TOKEN_TYPE,
)
from .management import MANAGEMENT_API_SCOPES
from .proofs import DPoPRefused, client_by_assertion, dpop_thumbprint, worker_subject
from .state import (
    ACCESS_TOKEN_LIFETIME,
    ID_TOKEN_LIFETIME,
    MISSING,
    OIDC_SCOPES,
    AutoLogin,
    Client,
    Connection,
    EmulatorState,
    LoginTransaction,
    User,
    is_loopback_url,
    split_scopes,
)
from .web import (
    NO_STORE_HEADERS,
    OAuthError,
    access_denied,
    bearer_token,
    current_state,
    html_page,
    json_response,
    request_params,
    with_query,
)

bp = Blueprint("auth0", __name__)

#: The emulator's sign-in session cookie (Auth0 keeps one of the same name on its domain).
SESSION_COOKIE = "auth0"
DEFAULT_LOGIN_EMAIL = "alice@example.com"
CODE_CHALLENGE_METHODS = ("S256", "plain")
DENIED_DESCRIPTION = "User did not authorize the request"


# -- discovery --------------------------------------------------------------------------------


@bp.get("/.well-known/openid-configuration")
def discovery() -> Response:
    """Answer the OpenID Connect discovery document."""
    state = current_state()
    base = state.base_url
    return json_response(
        {
            "issuer": state.issuer,
            "authorization_endpoint": base + "/authorize",
            "token_endpoint": base + "/oauth/token",
            "userinfo_endpoint": base + "/userinfo",
            "jwks_uri": base + "/.well-known/jwks.json",
            "end_session_endpoint": base + "/oidc/logout",
            "revocation_endpoint": base + "/oauth/revoke",
            "backchannel_logout_supported": True,
            "backchannel_logout_session_supported": True,
            "scopes_supported": [
                "openid",
                "profile",
                "offline_access",
                "name",
                "nickname",
                "email",
                "email_verified",
                "picture",
            ],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "code_challenge_methods_supported": list(CODE_CHALLENGE_METHODS),
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt",
            ],
            "token_endpoint_auth_signing_alg_values_supported": ["RS256", "RS384", "PS256"],
            "dpop_signing_alg_values_supported": ["ES256", "RS256", "PS256"],
            "grant_types_supported": [
                "authorization_code",
                "refresh_token",
                "client_credentials",
                TOKEN_VAULT_GRANT,
            ],
            "claims_supported": [
                "aud",
                "email",
                "email_verified",
                "exp",
                "iat",
                "iss",
                "name",
                "nickname",
                "nonce",
                "sid",
                "sub",
            ],
            "request_uri_parameter_supported": False,
            "request_parameter_supported": False,
        }
    )


@bp.get("/.well-known/jwks.json")
def jwks() -> Response:
    """Answer the JSON Web Key Set holding the signing key (counted: ``jwks_requests``)."""
    state = current_state()
    state.record_jwks_request()
    return json_response(state.signing_key.jwks())


# -- login ------------------------------------------------------------------------------------


def _session_user(state: EmulatorState) -> User | None:
    """Return who is signed in at the emulator in this browser (its session cookie), if anyone."""
    return state.browser_session_user(request.cookies.get(SESSION_COOKIE))


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
        connection = state.get_connection(transaction.connection)
        if connection is not None and connection.vault_active:
            state.connect(user, connection.name, transaction.connection_scopes, answer.account)
        if bound is None:
            session = state.start_browser_session(user)
            fresh = True
        else:
            # A connect for the signed-in user goes on in their Auth0 session.
            found = state.browser_session(request.cookies.get(SESSION_COOKIE))
            fresh = found is None
            session = found or state.start_browser_session(user)
        state.join_browser_session(session, transaction.client_id)
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
        return html_page(
            "Callback URL mismatch",
            f"The provided redirect_uri is not in the list of allowed callback URLs: "
            f"{redirect_uri or '(none)'}. Loopback URLs are always allowed.",
            400,
        )
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

    prompt = args.get("prompt") or None
    signed_in = _session_user(state) if prompt != "login" else None
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
        store=False,
        user_id=signed_in.user_id if signed_in is not None and connecting else None,
    )
    auto = state.auto_login
    if auto is not None:
        return _finish_login(state, transaction, auto)
    if transaction.prompt == "none":
        if signed_in is None:
            return fail("login_required", "Login required")
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
        from .my_account import finish_connect_form

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


# -- token endpoint ---------------------------------------------------------------------------


def _missing(name: str) -> OAuthError:
    return OAuthError(400, "invalid_request", f"Missing required parameter: {name}")


def _asked_scopes(
    params: dict[str, str], allowed: Sequence[str], refusal: Callable[[str], OAuthError]
) -> list[str]:
    """Return the ``scope`` the request asks for; raise ``refusal(names)`` for any not allowed."""
    requested = split_scopes(params.get("scope"))
    beyond = [scope for scope in requested if scope not in allowed]
    if beyond:
        raise refusal(" ".join(beyond))
    return requested


def _required(params: dict[str, str], name: str) -> str:
    """Return a parameter the request must carry, or refuse it as Auth0 does."""
    value = params.get(name)
    if not value:
        raise _missing(name)
    return value


def authenticate_client(state: EmulatorState, params: dict[str, str]) -> Client:
    """Return the client authenticated by a secret (Basic or body) or a private_key_jwt assertion.

    The method used is kept in ``g.emulator_client_auth``.
    """
    headers: dict[str, str] = {}
    header = request.headers.get("Authorization", "")
    scheme, _, credentials = header.partition(" ")
    if "client_assertion" in params or "client_assertion_type" in params:
        client = client_by_assertion(state, params)
        g.emulator_client_auth = "private_key_jwt"
        return client
    if scheme.lower() == "basic":
        headers = {"WWW-Authenticate": 'Basic realm="Auth0 emulator"'}
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            raise OAuthError(
                401, "invalid_client", "Malformed Basic credentials.", headers
            ) from None
        raw_id, _, raw_secret = decoded.partition(":")
        client_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
    else:
        client_id, secret = params.get("client_id", ""), params.get("client_secret", "")
    found = state.get_client(client_id)
    if found is not None and found.is_public and not secret:
        g.emulator_client_auth = "none"
        return found  # a SPA: PKCE stands in for the secret
    if found is None or not secret or not hmac.compare_digest(secret, found.client_secret):
        raise OAuthError(401, "invalid_client", "Client authentication failed.", headers)
    if found.token_endpoint_auth_method is None:
        raise OAuthError(
            401,
            "invalid_client",
            "This client authenticates with private_key_jwt: send a client assertion.",
            headers,
        )
    g.emulator_client_auth = "client_secret"
    return found


def _bound(answer: dict[str, Any], jkt: str | None) -> dict[str, Any]:
    """Mark a token answer as DPoP-bound (the access token already carries ``cnf.jkt``)."""
    if jkt is not None:
        answer["token_type"] = "DPoP"  # noqa: S105  # nosec B105
    return answer


def _proof_key() -> str | None:
    """Return the thumbprint of the DPoP key this token request proved, if any."""
    value = g.get("emulator_dpop_jkt")
    return value if isinstance(value, str) else None


def _require_bound_key(jkt: str | None) -> None:
    """Refuse a request for a bound token that does not prove its key."""
    if jkt is None:
        return
    proved = _proof_key()
    if proved is None:
        raise OAuthError(
            400,
            "invalid_dpop_proof",
            "The refresh token is bound to a DPoP key: send a DPoP proof signed with it.",
        )
    if proved != jkt:
        raise OAuthError(
            400,
            "invalid_dpop_proof",
            "The DPoP proof's key is not the key the refresh token is bound to.",
        )


def _signed_tokens(
    state: EmulatorState,
    client: Client,
    user: User,
    *,
    scope: str,
    audience: str | None,
    nonce: str | None,
    sid: str,
    jkt: str | None = None,
) -> dict[str, Any]:
    """Return a token answer with an access token, and an id_token when ``openid`` is in scope.

    With ``jkt`` the access token is bound to that DPoP key (``cnf.jkt``, ``token_type: DPoP``).
    """
    now = int(state.now())
    scopes = split_scopes(scope)
    userinfo_url = state.base_url + "/userinfo"
    api = state.get_resource_server(audience) if audience else None
    lifetime = ACCESS_TOKEN_LIFETIME
    granted = scopes
    if api is not None:
        # Like Auth0: an API's token keeps the OpenID scopes and the API's own, nothing else.
        granted = [s for s in scopes if s in OIDC_SCOPES or s in api.scopes]
        lifetime = api.token_lifetime
    access_claims: dict[str, Any] = {
        "iss": state.issuer,
        "sub": user.user_id,
        "aud": [audience, userinfo_url] if audience else userinfo_url,
        "iat": now,
        "exp": now + lifetime,
        "scope": " ".join(granted),
        "azp": client.client_id,
        "jti": secrets.token_urlsafe(12),
    }
    if jkt is not None:
        access_claims["cnf"] = {"jkt": jkt}
    if api is not None and api.rbac:
        access_claims["permissions"] = [s for s in granted if s in api.scopes]
    answer: dict[str, Any] = {
        "access_token": state.signing_key.sign(access_claims),
        "expires_in": lifetime,
        "scope": " ".join(granted),
        "token_type": "Bearer",  # nosec B105
    }
    if "openid" in scopes:
        id_claims: dict[str, Any] = {
            "iss": state.issuer,
            "sub": user.user_id,
            "aud": client.client_id,
            "iat": now,
            "exp": now + ID_TOKEN_LIFETIME,
            "sid": sid,
        }
        if nonce:
            id_claims["nonce"] = nonce
        id_claims.update(_profile_claims(user, scopes))
        answer["id_token"] = state.signing_key.sign(id_claims)
    return _bound(answer, jkt)


def _profile_claims(user: User, scopes: list[str]) -> dict[str, Any]:
    claims: dict[str, Any] = {}
    if "profile" in scopes:
        claims.update(
            name=user.name,
            nickname=user.email.split("@", 1)[0],
            updated_at=int(user.created_at),
        )
    if "email" in scopes:
        claims.update(email=user.email, email_verified=True)
    return claims


def _pkce_matches(verifier: str, challenge: str, method: str | None) -> bool:
    if method == "S256":
        digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
        expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    else:
        expected = verifier
    return hmac.compare_digest(expected.encode(), challenge.encode())


def grant_authorization_code(
    state: EmulatorState, client: Client, params: dict[str, str]
) -> dict[str, Any]:
    """Exchange an authorization code (checking redirect_uri and PKCE) for tokens."""
    code = _required(params, "code")
    record = state.redeem_code(code, client.client_id)
    if record is None:
        raise OAuthError(403, "invalid_grant", "Invalid authorization code")
    if params.get("redirect_uri") != record.redirect_uri:
        raise OAuthError(403, "invalid_grant", "Redirect URI mismatch.")
    if record.code_challenge is None and client.is_public:
        raise OAuthError(403, "invalid_grant", "A public client must use PKCE (code_challenge).")
    if record.code_challenge is not None:
        verifier = params.get("code_verifier", "")
        if not verifier or not _pkce_matches(
            verifier, record.code_challenge, record.code_challenge_method
        ):
            raise OAuthError(403, "invalid_grant", "Failed to verify code verifier")
    user = state.user_by_id(record.user_id)
    if user is None:
        raise OAuthError(403, "invalid_grant", "Invalid authorization code")
    answer = _signed_tokens(
        state,
        client,
        user,
        scope=record.scope,
        audience=record.audience,
        nonce=record.nonce,
        sid=record.sid,
        jkt=_proof_key(),
    )
    if "offline_access" in split_scopes(record.scope):
        refresh = state.new_refresh_token(
            user, client.client_id, record.scope, record.audience, record.sid, _proof_key()
        )
        answer["refresh_token"] = refresh.token
    return answer


def grant_refresh_token(
    state: EmulatorState, client: Client, params: dict[str, str]
) -> dict[str, Any]:
    """Use a (non-rotating) refresh token: new access and id tokens, no new refresh token."""
    token = _required(params, "refresh_token")
    record = state.get_refresh_token(token)
    user = state.user_by_id(record.user_id) if record is not None else None
    if record is None or user is None or record.client_id != client.client_id:
        raise OAuthError(403, "invalid_grant", "Unknown or invalid refresh token.")
    _require_bound_key(record.jkt)
    audience = params.get("audience") or None
    if audience is not None and audience != record.audience:
        return _multi_resource_tokens(state, client, user, record.sid, audience, params)
    granted = split_scopes(record.scope)
    requested = _asked_scopes(
        params,
        granted,
        lambda extra: OAuthError(
            400, "invalid_scope", f"Scopes not granted to the refresh token: {extra}"
        ),
    )
    return _signed_tokens(
        state,
        client,
        user,
        scope=" ".join(requested or granted),
        audience=record.audience,
        nonce=None,
        sid=record.sid,
        jkt=_proof_key(),
    )


def _multi_resource_tokens(
    state: EmulatorState,
    client: Client,
    user: User,
    sid: str,
    audience: str,
    params: dict[str, str],
) -> dict[str, Any]:
    """Use a refresh token for another API (Multi-Resource Refresh Token): only My Account."""
    if audience != state.base_url + "/me/" or not client.my_account_scopes:
        raise OAuthError(
            403,
            "access_denied",
            f"The refresh token cannot be used for the audience '{audience}': no Multi-Resource "
            "Refresh Token policy of the client allows it.",
        )
    requested = split_scopes(params.get("scope")) or list(client.my_account_scopes)
    outside = [scope for scope in requested if scope not in client.my_account_scopes]
    if outside:
        raise OAuthError(
            403,
            "access_denied",
            f"The client's refresh token policy for '{audience}' does not allow the scopes: "
            + " ".join(outside),
        )
    return _signed_tokens(
        state,
        client,
        user,
        scope=" ".join(requested),
        audience=audience,
        nonce=None,
        sid=sid,
        jkt=_proof_key(),
    )


def grant_token_vault(
    state: EmulatorState, client: Client, params: dict[str, str]
) -> dict[str, Any]:
    """Exchange the user's Auth0 refresh (or access) token for a provider access token.

    A refresh token comes from the user's login at this client; an access token comes from an
    API's caller and this client must be the API's Custom API Client.
    """
    subject_token_type = _required(params, "subject_token_type")
    if subject_token_type == JWT_TOKEN_TYPE:
        return grant_privileged_worker(state, client, params)
    if subject_token_type == ACCESS_TOKEN_TYPE and not client.is_custom_api_client:
        raise OAuthError(
            400,
            "invalid_request",
            "Exchanging an access token requires a Custom API Client; "
            f"this client can only exchange a refresh token ({REFRESH_TOKEN_TYPE}).",
        )
    if subject_token_type == REFRESH_TOKEN_TYPE and client.is_custom_api_client:
        raise OAuthError(
            400,
            "invalid_request",
            "A Custom API Client exchanges access tokens "
            f"({ACCESS_TOKEN_TYPE}), not refresh tokens.",
        )
    if subject_token_type not in (REFRESH_TOKEN_TYPE, ACCESS_TOKEN_TYPE):
        raise OAuthError(
            400, "invalid_request", f"Unsupported subject_token_type: {subject_token_type}"
        )
    subject_token = _required(params, "subject_token")
    if params.get("requested_token_type") != FEDERATED_TOKEN_TYPE:
        raise OAuthError(
            400, "invalid_request", f"requested_token_type must be {FEDERATED_TOKEN_TYPE}"
        )
    for forbidden in ("audience", "resource"):
        if params.get(forbidden):
            raise OAuthError(
                400,
                "invalid_request",
                f"The '{forbidden}' parameter is not allowed for this grant.",
            )
    connection = _vault_connection(state, client, params)
    if subject_token_type == ACCESS_TOKEN_TYPE:
        user_id = _access_token_subject(state, client, subject_token)
    else:
        record = state.get_refresh_token(subject_token)
        if record is None or record.client_id != client.client_id:
            raise OAuthError(401, "invalid_grant", "Unknown or invalid refresh token.")
        _require_bound_key(record.jkt)
        user_id = record.user_id
    return _provider_answer(
        state, user_id, connection, params, FEDERATED_TOKEN_TYPE, subject_type=subject_token_type
    )


def _vault_connection(state: EmulatorState, client: Client, params: dict[str, str]) -> Connection:
    connection_name = _required(params, "connection")
    connection = state.get_connection(connection_name)
    # A Custom API Client logs nobody in: the connection is enabled for the apps users sign in
    # with, not for it.
    enabled = connection is not None and (
        client.is_custom_api_client or client.client_id in connection.enabled_clients
    )
    if connection is None or not enabled:
        raise OAuthError(
            400,
            "invalid_request",
            f"Connection '{connection_name}' does not exist or is not enabled for this client.",
        )
    if not connection.stores_tokens:
        raise OAuthError(
            403,
            "access_denied",
            f"Token Vault is not active on connection '{connection_name}' (neither "
            "connected_accounts nor options.federated_connections_access_tokens).",
        )
    return connection


def grant_privileged_worker(
    state: EmulatorState, client: Client, params: dict[str, str]
) -> dict[str, Any]:
    """Give a background job a user's provider token: the Privileged Worker exchange."""
    if g.get("emulator_client_auth") != "private_key_jwt":
        raise OAuthError(
            401,
            "invalid_client",
            "The Privileged Worker exchange requires private_key_jwt client authentication.",
        )
    access = client.token_vault_privileged_access
    if not access:
        raise OAuthError(
            403,
            "unauthorized_client",
            "The client is not configured for Token Vault privileged access.",
        )
    allowlist = [str(item) for item in access.get("ip_allowlist") or []]
    if allowlist and not _address_allowed(request.remote_addr or "", allowlist):
        raise OAuthError(
            403, "access_denied", "The request's address is not in the client's ip_allowlist."
        )
    requested_type = params.get("requested_token_type")
    if requested_type not in (VAULT_ACCESS_TOKEN_TYPE, FEDERATED_TOKEN_TYPE):
        raise OAuthError(
            400, "invalid_request", f"requested_token_type must be {VAULT_ACCESS_TOKEN_TYPE}"
        )
    subject_token = _required(params, "subject_token")
    user_id = worker_subject(state, client, subject_token)
    connection = _vault_connection(state, client, params)
    grants = [
        item
        for item in access.get("grants") or []
        if isinstance(item, dict) and item.get("connection") == connection.name
    ]
    if not grants:
        raise OAuthError(
            403,
            "access_denied",
            f"Privileged access is not granted for connection '{connection.name}'.",
        )
    allowed = split_scopes(grants[0].get("scopes") or [])
    _asked_scopes(
        params,
        allowed,
        lambda beyond: OAuthError(
            403, "access_denied", f"Privileged access does not allow the scopes: {beyond}"
        ),
    )
    return _provider_answer(
        state, user_id, connection, params, str(requested_type), allowed=allowed
    )


def _address_allowed(address: str, allowlist: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for item in allowlist:
        try:
            if ip in ipaddress.ip_network(item, strict=False):
                return True
        except ValueError:
            continue
    return False


def _provider_answer(
    state: EmulatorState,
    user_id: str,
    connection: Connection,
    params: dict[str, str],
    issued_type: str,
    *,
    allowed: list[str] | None = None,
    subject_type: str | None = None,
) -> dict[str, Any]:
    """Issue the provider token of a user's connected account (the end of both exchanges)."""
    tokenset = state.find_tokenset(user_id, connection.name, params.get("login_hint"))
    if tokenset is None:
        raise OAuthError(
            401,
            "federated_connection_refresh_token_not_found",
            "Federated connection Refresh Token not found.",
        )
    if tokenset.broken:
        raise OAuthError(
            401,
            "federated_connection_refresh_token_flow_failed",
            "Failed to refresh the federated connection access token: the provider refused "
            "the stored refresh token.",
        )
    requested = split_scopes(params.get("scope"))
    extra = [scope for scope in requested if scope not in tokenset.scopes]
    if extra:
        raise OAuthError(
            400, "invalid_scope", f"Scopes not granted on the connection: {' '.join(extra)}"
        )
    scopes: list[str] | None = requested or None
    if scopes is None and allowed is not None:
        scopes = [scope for scope in tokenset.scopes if scope in allowed]
    token = state.issue_provider_token(tokenset, scopes)
    state.record_exchange(user_id, connection.name, ok=True, subject_token_type=subject_type)
    answer: dict[str, Any] = {
        "access_token": token.token,
        "expires_in": int(token.expires_at - token.issued_at),
        "scope": connection.scope_separator.join(token.scopes),
        "token_type": "Bearer",  # nosec B105
        "issued_token_type": issued_type,
    }
    with state.lock:
        if connection.name in state.reported_expires_in:
            reported = state.reported_expires_in[connection.name]
            if reported is MISSING:
                del answer["expires_in"]
            else:
                answer["expires_in"] = reported
    return answer


def _access_token_subject(state: EmulatorState, client: Client, subject_token: str) -> str:
    """Return the user of an access token a Custom API Client exchanges, as Auth0 checks it."""
    claims = state.signing_key.verify(subject_token)
    if claims is None or claims.get("iss") != state.issuer:
        raise OAuthError(401, "invalid_grant", "Invalid subject token.")
    exp = claims.get("exp")
    if not isinstance(exp, (int, float)) or exp <= state.now():
        raise OAuthError(401, "invalid_grant", "The subject token has expired.")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if client.resource_server_identifier not in audiences:
        raise OAuthError(
            403,
            "unauthorized_client",
            "The client is not linked to any audience of the subject token: a Custom API Client "
            "exchanges access tokens for the API it is linked to.",
        )
    user = state.user_by_id(str(claims.get("sub", "")))
    if user is None:
        raise OAuthError(401, "invalid_grant", "The subject token names no user of the tenant.")
    return user.user_id


def grant_client_credentials(
    state: EmulatorState, client: Client, params: dict[str, str]
) -> dict[str, Any]:
    """Issue a machine-to-machine access token for ``audience``."""
    audience = params.get("audience")
    if not audience:
        raise OAuthError(
            403,
            "access_denied",
            "No audience parameter was provided, and no default audience has been configured",
        )
    scope = ""
    if audience == state.base_url + "/api/v2/":
        allowed = (
            list(MANAGEMENT_API_SCOPES)
            if client.management_scopes is None
            else list(client.management_scopes)
        )
        requested = split_scopes(params.get("scope"))
        # Like Auth0: a requested scope list narrows the client grant; unknown ones are dropped.
        scope = " ".join(s for s in allowed if not requested or s in requested)
    now = int(state.now())
    claims = {
        "iss": state.issuer,
        "sub": client.client_id + "@clients",
        "aud": audience,
        "iat": now,
        "exp": now + ACCESS_TOKEN_LIFETIME,
        "scope": scope,
        "gty": "client-credentials",
        "azp": client.client_id,
        "jti": secrets.token_urlsafe(12),
    }
    return {
        "access_token": state.signing_key.sign(claims),
        "expires_in": ACCESS_TOKEN_LIFETIME,
        "scope": scope,
        "token_type": "Bearer",  # nosec B105
    }


GrantHandler = Callable[[EmulatorState, Client, dict[str, str]], dict[str, Any]]

GRANT_HANDLERS: dict[str, GrantHandler] = {
    "authorization_code": grant_authorization_code,
    "refresh_token": grant_refresh_token,
    TOKEN_VAULT_GRANT: grant_token_vault,
    "client_credentials": grant_client_credentials,
}


@bp.post("/oauth/token")
def token() -> Response:
    """Answer the token endpoint (form-encoded or JSON body) for every supported grant."""
    state = current_state()
    params = request_params()
    grant_type = params.get("grant_type", "")
    try:
        if not grant_type:
            raise _missing("grant_type")
        handler = GRANT_HANDLERS.get(grant_type)
        if handler is None:
            raise OAuthError(400, "unsupported_grant_type", f"Unsupported grant type: {grant_type}")
        client = authenticate_client(state, params)
        if grant_type not in client.grant_types:
            raise OAuthError(
                403, "unauthorized_client", f"Grant type '{grant_type}' not allowed for the client."
            )
        try:
            g.emulator_dpop_jkt = dpop_thumbprint(state)
        except DPoPRefused as refused:
            headers = {"DPoP-Nonce": refused.nonce} if refused.nonce else None
            raise OAuthError(400, refused.error, refused.description, headers) from None
        if client.require_proof_of_possession and g.emulator_dpop_jkt is None:
            raise OAuthError(
                400,
                "invalid_request",
                "This client requires sender-constrained tokens: send a DPoP proof.",
            )
        answer = handler(state, client, params)
    except OAuthError as error:
        if grant_type == TOKEN_VAULT_GRANT:
            state.record_exchange(None, None, ok=False)
        response = error.response()
        _add_nonce(state, response.headers)
        return response
    response = json_response(answer, 200, NO_STORE_HEADERS)
    _add_nonce(state, response.headers)
    return response


def _add_nonce(state: EmulatorState, headers: Any) -> None:
    """Hand out the current DPoP nonce on every token answer, as Auth0 does once it asks."""
    nonce = state.current_dpop_nonce()
    if nonce is not None:
        headers.setdefault("DPoP-Nonce", nonce)


# -- revocation -------------------------------------------------------------------------------


@bp.post("/oauth/revoke")
def revoke() -> Response:
    """Revoke a refresh token (form-encoded or JSON): 200 with an empty body, as Auth0 answers.

    Like RFC 7009, an unknown token (or one of another client) also answers 200.
    """
    state = current_state()
    params = request_params()
    try:
        client = authenticate_client(state, params)
        token = _required(params, "token")
        state.revoke_refresh_token(token, client.client_id)
    except OAuthError as error:
        return error.response()
    return Response(b"", status=200, headers=NO_STORE_HEADERS)


# -- userinfo and logout ----------------------------------------------------------------------


@bp.route("/userinfo", methods=["GET", "POST"])
def userinfo() -> Response:
    """Describe the user of a Bearer access token the emulator issued."""
    state = current_state()
    raw = bearer_token()
    claims = state.signing_key.verify(raw) if raw else None
    user = None
    if claims is not None:
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        exp = claims.get("exp")
        if (
            claims.get("iss") == state.issuer
            and state.base_url + "/userinfo" in audiences
            and isinstance(exp, (int, float))
            and exp > state.now()
        ):
            user = state.user_by_id(str(claims.get("sub")))
    if claims is None or user is None:
        return Response(
            "Unauthorized",
            status=401,
            mimetype="text/plain",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    body: dict[str, Any] = {"sub": user.user_id}
    body.update(_profile_claims(user, split_scopes(str(claims.get("scope", "")))))
    return json_response(body)


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
