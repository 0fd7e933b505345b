"""Serve Auth0's OAuth endpoints: discovery, JWKS, the token endpoint, revocation, userinfo.

Token endpoint answers follow Auth0: JSON ``{"error", "error_description"}`` with
``Cache-Control: no-store``; bad client credentials 401 ``invalid_client``; a grant the client may
not use 403 ``unauthorized_client``; a bad code, code verifier or refresh token 403
``invalid_grant``. A public client (``token_endpoint_auth_method: none``, the SPA client)
authenticates with its ``client_id`` alone and must use PKCE.


DPoP (RFC 9449): a valid ``DPoP`` proof binds what the grant issues to the proof's key (access
tokens get ``cnf.jkt`` and ``token_type: DPoP``; refresh tokens remember the key). A bound
refresh token is refused without a proof of the same key (400 ``invalid_dpop_proof``), and a
client with ``require_proof_of_possession`` gets no token without a proof. A bad proof answers
400 ``invalid_dpop_proof``; when the tenant asks for a nonce (:meth:`EmulatorState.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, g
from werkzeug.wrappers import Response

from .ciba import grant_ciba
from .constants import CIBA_GRANT, TOKEN_VAULT_GRANT
from .grants import (
    grant_authorization_code,
    grant_client_credentials,
    grant_refresh_token,
    profile_claims,
)
from .login import CODE_CHALLENGE_METHODS
from .proofs import DPoPRefused, dpop_thumbprint
from .signing import audiences, is_expired
from .state import Client, EmulatorState
from .state.common import split_scopes
from .token_request import authenticate_client, missing, required
from .vault import grant_token_vault
from .web import (
    NO_STORE_HEADERS,
    OAuthError,
    bearer_token,
    current_state,
    json_response,
    request_params,
)

bp = Blueprint("auth0", __name__)


# -- discovery --------------------------------------------------------------------------------


@bp.get("/.well-known/openid-configuration")
def discovery() -> Response:
    """Answer the OpenID Connect discovery document."""
    state = current_state()
    base = state.base_url
    document = discovery_document(state, base)
    if state.mtls_base_url:
        # RFC 8705 section 5: where clients that authenticate by certificate send their calls.
        tls = state.mtls_base_url
        document["mtls_endpoint_aliases"] = {
            "token_endpoint": tls + "/oauth/token",
            "revocation_endpoint": tls + "/oauth/revoke",
            "backchannel_authentication_endpoint": tls + "/bc-authorize",
        }
        document["token_endpoint_auth_methods_supported"].append("self_signed_tls_client_auth")
        document["tls_client_certificate_bound_access_tokens"] = False
    return json_response(document)


def discovery_document(state: EmulatorState, base: str) -> dict[str, Any]:
    """Return the discovery document of the plain listener (its own endpoints)."""
    return {
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
            CIBA_GRANT,
        ],
        "backchannel_authentication_endpoint": base + "/bc-authorize",
        "backchannel_token_delivery_modes_supported": ["poll"],
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


@bp.get("/.well-known/jwks.json")
def jwks() -> Response:
    """Answer the JSON Web Key Set holding the signing key (counted: ``jwks_requests``)."""
    state = current_state()
    state.record_jwks_request()
    return json_response(state.signing_key.jwks())


GrantHandler = Callable[[EmulatorState, Client, dict[str, str]], dict[str, Any]]

GRANT_HANDLERS: dict[str, GrantHandler] = {
    "authorization_code": grant_authorization_code,
    "refresh_token": grant_refresh_token,
    TOKEN_VAULT_GRANT: grant_token_vault,
    "client_credentials": grant_client_credentials,
    CIBA_GRANT: grant_ciba,
}


@bp.post("/oauth/token")
def token() -> Response:
    """Answer the token endpoint (form-encoded or JSON body) for every supported grant."""
    state = current_state()
    params = request_params()
    grant_type = params.get("grant_type", "")
    try:
        if not grant_type:
            raise missing("grant_type")
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
        token = required(params, "token")
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
    if (
        claims is not None
        and claims.get("iss") == state.issuer
        and state.base_url + "/userinfo" in audiences(claims)
        and not is_expired(claims, state.now())
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
    body.update(profile_claims(user, split_scopes(str(claims.get("scope", "")))))
    return json_response(body)
