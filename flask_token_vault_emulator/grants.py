"""Issue Auth0's tokens for the authorization code, refresh token and client credentials grants.

``/authorize`` with an ``audience`` needs an API of the tenant (else ``access_denied``,
"Service not found"); the access token is then an RS256 JWT for that API whose ``scope`` keeps
the OpenID scopes and the API's own scopes that were asked for (and ``permissions`` when the
API's ``token_dialect`` is ``access_token_authz``), living the API's ``token_lifetime``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Any

from .management import MANAGEMENT_API_SCOPES
from .state import Client, EmulatorState, RefreshToken, User
from .state.common import (
    ACCESS_TOKEN_LIFETIME,
    ASSURANCE_WINDOW,
    ID_TOKEN_LIFETIME,
    MFA_POLICY,
    OIDC_SCOPES,
    split_scopes,
)
from .token_request import asked_scopes, bound, proof_key, require_bound_key, required
from .web import OAuthError


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
    org_id: str | None = None,
    acr: str | None = None,
) -> dict[str, Any]:
    """Return a token answer with an access token, and an id_token when ``openid`` is in scope.

    With ``jkt`` the access token is bound to that DPoP key (``cnf.jkt``, ``token_type: DPoP``).
    With ``org_id`` (a login to an organization) both tokens carry it, as Auth0's do; ``acr``
    is the policy the login met, which the ID token names beside ``amr: ["mfa"]``.
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
    if org_id is not None:
        access_claims["org_id"] = org_id
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
        # When the user last authenticated: the start of the Auth0 session (OIDC auth_time),
        # which a new sign-in (prompt=login, or max_age passed) starts again.
        browser = state.browser_sessions.get(sid)
        if browser is not None:
            id_claims["auth_time"] = int(browser.created_at)
            if browser.mfa_at is not None:
                id_claims["amr"] = ["mfa"]
        if acr is not None:
            id_claims["acr"] = acr
        if org_id is not None:
            organization = state.organizations.get(org_id)
            id_claims["org_id"] = org_id
            if organization is not None:
                id_claims["org_name"] = organization.name
        if nonce:
            id_claims["nonce"] = nonce
        id_claims.update(profile_claims(user, scopes))
        answer["id_token"] = state.signing_key.sign(id_claims)
    return bound(answer, jkt)


def profile_claims(user: User, scopes: list[str]) -> dict[str, Any]:
    """Return the profile and email claims of a user that ``scopes`` allow."""
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
    code = required(params, "code")
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
        jkt=proof_key(),
        org_id=record.org_id,
        acr=record.acr,
    )
    if "offline_access" in split_scopes(record.scope):
        answer["refresh_token"] = state.new_refresh_token(record, proof_key()).token
    return answer


def grant_refresh_token(
    state: EmulatorState, client: Client, params: dict[str, str]
) -> dict[str, Any]:
    """Use a (non-rotating) refresh token: new access and id tokens, no new refresh token."""
    token = required(params, "refresh_token")
    record = state.get_refresh_token(token)
    user = state.user_by_id(record.user_id) if record is not None else None
    if record is None or user is None or record.client_id != client.client_id:
        raise OAuthError(403, "invalid_grant", "Unknown or invalid refresh token.")
    require_bound_key(record.jkt)
    audience = params.get("audience") or None
    if audience is not None and audience != record.audience:
        return _multi_resource_tokens(state, client, user, record, audience, params)
    granted = split_scopes(record.scope)
    requested = asked_scopes(
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
        jkt=proof_key(),
        org_id=record.org_id,
    )


def _multi_resource_tokens(
    state: EmulatorState,
    client: Client,
    user: User,
    record: RefreshToken,
    audience: str,
    params: dict[str, str],
) -> dict[str, Any]:
    """Use a refresh token for another API (Multi-Resource Refresh Token): only My Account.

    With the tenant's Authentication Assurance policy on, the Auth0 session the refresh token
    belongs to must have passed a second factor within 15 minutes, or the answer is
    ``unmet_authentication_requirements`` (the app steps the user up with ``acr_values``).
    """
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
    if state.assurance_policy:
        session = state.browser_sessions.get(record.sid)
        mfa_at = session.mfa_at if session is not None else None
        if mfa_at is None or state.now() - mfa_at > ASSURANCE_WINDOW:
            raise OAuthError(
                403,
                "unmet_authentication_requirements",
                "The My Account API requires a second factor within the last "
                f"{ASSURANCE_WINDOW // 60} minutes: sign in again with acr_values={MFA_POLICY}.",
            )
    return _signed_tokens(
        state,
        client,
        user,
        scope=" ".join(requested),
        audience=audience,
        nonce=None,
        sid=record.sid,
        jkt=proof_key(),
        org_id=record.org_id,
    )


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
