"""Answer the Token Vault grant: the refresh token, access token and Privileged Worker exchanges.

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


The Privileged Worker exchange (same grant, ``subject_token_type`` JWT) answers, in order, each
cause with its own ``error_description``: 401 ``invalid_client`` unless the client used
``private_key_jwt``; 403 ``unauthorized_client`` without ``token_vault_privileged_access``; 403
``access_denied`` when its ``ip_allowlist`` is empty (Auth0: it must be populated), or from an
address outside it; 401 ``invalid_grant`` for a subject token that is not
``token-vault-req+jwt``, not signed by an allowed credential, has the wrong ``iss`` or ``aud``,
lacks ``audit_context`` (1 to 256 characters), is older than 60 s, was seen before or names no
user; 403 ``access_denied`` for a connection the grants do not list (none when they are empty);
400 ``invalid_request`` for a connection that does not exist or is not enabled for the client;
403 ``access_denied`` for scopes beyond the grant; then as the refresh-token exchange (no
account, provider refusal). Each accepted request's ``audit_context`` is kept, as Auth0 writes
it to the tenant's logs (:meth:`Emulator.privileged_access_log`).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from flask import g, request

from .constants import (
    ACCESS_TOKEN_TYPE,
    FEDERATED_TOKEN_TYPE,
    JWT_TOKEN_TYPE,
    REFRESH_TOKEN_TYPE,
    VAULT_ACCESS_TOKEN_TYPE,
)
from .proofs import worker_subject
from .signing import audiences, is_expired
from .state import Client, Connection, EmulatorState
from .state.common import MISSING, split_scopes
from .token_request import asked_scopes, require_bound_key, required
from .web import OAuthError


def grant_token_vault(
    state: EmulatorState, client: Client, params: dict[str, str]
) -> dict[str, Any]:
    """Exchange the user's Auth0 refresh (or access) token for a provider access token.

    A refresh token comes from the user's login at this client; an access token comes from an
    API's caller and this client must be the API's Custom API Client.
    """
    subject_token_type = required(params, "subject_token_type")
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
    subject_token = required(params, "subject_token")
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
        require_bound_key(record.jkt)
        user_id = record.user_id
    return _provider_answer(
        state, user_id, connection, params, FEDERATED_TOKEN_TYPE, subject_type=subject_token_type
    )


def _vault_connection(state: EmulatorState, client: Client, params: dict[str, str]) -> Connection:
    connection_name = required(params, "connection")
    connection = state.get_connection(connection_name)
    if connection is None:
        raise OAuthError(400, "invalid_request", f"Connection '{connection_name}' does not exist.")
    # A Custom API Client logs nobody in: the connection is enabled for the apps users sign in
    # with, not for it.
    if not client.is_custom_api_client and client.client_id not in connection.enabled_clients:
        raise OAuthError(
            400,
            "invalid_request",
            f"Connection '{connection_name}' is not enabled for this client.",
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
    if g.get("emulator_client_auth") not in ("private_key_jwt", "self_signed_tls_client_auth"):
        raise OAuthError(
            401,
            "invalid_client",
            "The Privileged Worker exchange requires private_key_jwt or mTLS client "
            "authentication.",
        )
    access = client.token_vault_privileged_access
    if not access:
        raise OAuthError(
            403,
            "unauthorized_client",
            "The client is not configured for Token Vault privileged access.",
        )
    allowlist = [str(item) for item in access.get("ip_allowlist") or []]
    if not allowlist:
        raise OAuthError(
            403,
            "access_denied",
            "The client's ip_allowlist is empty: privileged access is refused from every address.",
        )
    if not _address_allowed(request.remote_addr or "", allowlist):
        raise OAuthError(
            403, "access_denied", "The request's address is not in the client's ip_allowlist."
        )
    requested_type = params.get("requested_token_type")
    if requested_type not in (VAULT_ACCESS_TOKEN_TYPE, FEDERATED_TOKEN_TYPE):
        raise OAuthError(
            400, "invalid_request", f"requested_token_type must be {VAULT_ACCESS_TOKEN_TYPE}"
        )
    subject_token = required(params, "subject_token")
    user_id, reason, org_id = worker_subject(state, client, subject_token)
    name = required(params, "connection")
    grants = [
        item
        for item in access.get("grants") or []
        if isinstance(item, dict) and item.get("connection") == name
    ]
    if not grants:
        raise OAuthError(
            403, "access_denied", f"Privileged access is not granted for connection '{name}'."
        )
    connection = _vault_connection(state, client, params)
    allowed = split_scopes(grants[0].get("scopes") or [])
    asked_scopes(
        params,
        allowed,
        lambda beyond: OAuthError(
            403, "access_denied", f"Privileged access does not allow the scopes: {beyond}"
        ),
    )
    answer = _provider_answer(
        state, user_id, connection, params, str(requested_type), allowed=allowed
    )
    state.record_privileged_access(client.client_id, user_id, connection.name, reason, org_id)
    return answer


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
    if is_expired(claims, state.now()):
        raise OAuthError(401, "invalid_grant", "The subject token has expired.")
    if client.resource_server_identifier not in audiences(claims):
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
