"""Serve the part of Auth0's Management API (``/api/v2``) that Token Vault set-up needs.

Requests need a Bearer token from the client credentials grant with the audience
``{url}/api/v2/``; each endpoint asks for Auth0's scope (401 without a valid token, 403 without
the scope). Errors are Auth0's JSON: ``{"statusCode", "error", "message", "errorCode"}``.

- ``GET /api/v2/users/{id}/federated-connections-tokensets`` -> a list of ``{id, connection,
  scope, issued_at, expires_at, last_used_at}`` (epoch seconds, or ISO date-times after
  :meth:`Emulator.set_tokenset_timestamps`); ``DELETE .../{tokenset_id}`` -> 204. Both answer
  404 ``Not Found`` once :meth:`Emulator.set_tenant_features` removes them (Auth0 dropped them
  from its spec in 2026-07).
- ``GET /api/v2/users/{id}/connected-accounts?from=&take=`` -> ``{connected_accounts, next}``.
- ``GET /api/v2/users-by-email?email=`` -> a list of users (``read:users``); Auth0 matches the
  address case-insensitively.
- ``GET /api/v2/connections?name=&strategy=&fields=&page=&per_page=&include_totals=``,
  ``GET``/``PATCH /api/v2/connections/{id}`` (``?fields=options``); a PATCH of ``options``
  replaces the whole object, as Auth0 does.
- ``GET``/``PATCH /api/v2/clients/{id}``; a PATCH of ``refresh_token`` replaces the whole
  object (``rotation_type`` and ``expiration_type`` required, ``policies`` for Multi-Resource
  Refresh Token), and so does one of ``oidc_logout`` (back-channel logout URLs); also
  ``client_authentication_methods``, ``require_proof_of_possession`` and, with its own scope,
  ``token_vault_privileged_access``.
- ``GET``/``POST /api/v2/clients/{id}/credentials``: public keys (``{credential_type:
  "public_key", name, pem, alg}`` -> 201 ``{id, name, kid, alg, credential_type, created_at,
  updated_at}``; the PEM is never listed). The emulator's ``kid`` is the key's RFC 7638
  thumbprint.
- ``GET /api/v2/clients?app_type=&fields=&page=&per_page=&include_totals=``; ``POST
  /api/v2/clients`` -> 201 with the new client's secret (a Custom API Client: ``app_type:
  "resource_server"`` with ``resource_server_identifier``, one per API, 409 for a second).
- ``GET /api/v2/resource-servers``, ``GET /api/v2/resource-servers/{id or identifier}`` (the
  identifier URL-encoded), ``POST /api/v2/resource-servers``: the tenant's APIs.
- ``GET``/``PUT /api/v2/guardian/policies`` (the tenant's MFA policy).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from flask import Blueprint, request
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wrappers import Response

from .constants import TOKEN_VAULT_GRANT
from .state import (
    DATABASE_CONNECTION,
    Client,
    Connection,
    EmulatorState,
    ResourceServer,
    Tokenset,
    User,
    is_loopback_url,
    random_id,
)
from .web import ErrorAnswer, bearer_token, current_state, json_response

bp = Blueprint("management", __name__, url_prefix="/api/v2")

#: Every Management API scope the emulator knows (the default client's tokens get them all).
MANAGEMENT_API_SCOPES = (
    "read:users",
    "read:clients",
    "create:clients",
    "update:clients",
    "read:resource_servers",
    "create:resource_servers",
    "read:connections",
    "update:connections",
    "read:federated_connections_tokensets",
    "update:federated_connections_tokensets",
    "read:federated_connections_tokens",
    "delete:federated_connections_tokens",
    "read:mfa_policies",
    "update:mfa_policies",
    "read:client_credentials",
    "create:client_credentials",
    "update:client_token_vault_privileged_access",
)
KNOWN_GRANT_TYPES = frozenset(
    {
        "authorization_code",
        "refresh_token",
        "client_credentials",
        "implicit",
        "password",
        TOKEN_VAULT_GRANT,
        "urn:ietf:params:oauth:grant-type:device_code",
    }
)
_CONNECTION_PATCHABLE = frozenset(
    {
        "options",
        "enabled_clients",
        "display_name",
        "metadata",
        "connected_accounts",
        "is_domain_connection",
        "show_as_button",
        "realms",
    }
)
_CLIENT_PATCHABLE = frozenset(
    {
        "name",
        "app_type",
        "grant_types",
        "is_first_party",
        "oidc_conformant",
        "token_endpoint_auth_method",
        "refresh_token",
        "callbacks",
        "allowed_logout_urls",
        "client_authentication_methods",
        "require_proof_of_possession",
        "token_vault_privileged_access",
        "oidc_logout",
    }
)
_AUTH_METHODS = frozenset({"none", "client_secret_post", "client_secret_basic"})


class ManagementApiError(ErrorAnswer):
    """Stop handling a Management API request and answer Auth0's error document."""

    def __init__(self, status: int, message: str, error_code: str | None = None) -> None:
        """Describe the answer: HTTP status, human ``message`` and machine ``errorCode``."""
        super().__init__(status, message)
        self.message = message
        self.error_code = error_code

    def response(self) -> Response:
        """Return the JSON error answer."""
        body: dict[str, Any] = {
            "statusCode": self.status,
            "error": HTTP_STATUS_CODES.get(self.status, "Error"),
            "message": self.message,
        }
        if self.error_code:
            body["errorCode"] = self.error_code
        return json_response(body, self.status)


@bp.errorhandler(ManagementApiError)
def _management_error(error: ManagementApiError) -> Response:
    return error.response()


def _bad_body(message: str) -> ManagementApiError:
    return ManagementApiError(400, f"Payload validation error: {message}", "invalid_body")


def _bad_query(message: str) -> ManagementApiError:
    return ManagementApiError(400, f"Query validation error: {message}", "invalid_query_string")


def authorized(*any_of: str) -> EmulatorState:
    """Return the tenant's state once the request's token is allowed one of ``any_of``."""
    state = current_state()
    require_scope(state, *any_of)
    return state


def require_scope(state: EmulatorState, *any_of: str) -> dict[str, Any]:
    """Return the claims of the request's Management API token if it has one of ``any_of``."""
    raw = bearer_token()
    if raw is None:
        raise ManagementApiError(401, "Missing authentication")
    claims = state.signing_key.verify(raw)
    audience = state.base_url + "/api/v2/"
    if claims is None or claims.get("iss") != state.issuer:
        raise ManagementApiError(401, "Invalid token", "invalid_token")
    aud = claims.get("aud")
    if audience not in (aud if isinstance(aud, list) else [aud]):
        raise ManagementApiError(401, f"Bad audience: {aud}", "invalid_token")
    exp = claims.get("exp")
    if not isinstance(exp, (int, float)) or exp <= state.now():
        raise ManagementApiError(401, "Expired token", "token_expired")
    granted = str(claims.get("scope", "")).split()
    if not any(scope in granted for scope in any_of):
        raise ManagementApiError(
            403,
            f"Insufficient scope, expected any of: {','.join(any_of)}",
            "insufficient_scope",
        )
    return claims


# -- query parameters -------------------------------------------------------------------------


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _bad_query(f"Expected type integer but found string on property {name}") from None
    if not low <= value <= high:
        raise _bad_query(f"Value {value} is out of range ({low}-{high}) on property {name}")
    return value


def _bool_arg(name: str, default: bool) -> bool:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if raw not in ("true", "false"):
        raise _bad_query(f"Expected type boolean but found type string on property {name}")
    return raw == "true"


def _pick_fields(document: dict[str, Any]) -> dict[str, Any]:
    """Apply Auth0's ``fields`` / ``include_fields`` query parameters to one document."""
    raw = request.args.get("fields")
    if not raw:
        return document
    fields = {field.strip() for field in raw.split(",") if field.strip()}
    if _bool_arg("include_fields", True):
        return {k: v for k, v in document.items() if k in fields}
    return {k: v for k, v in document.items() if k not in fields}


def _page(items: list[dict[str, Any]], key: str) -> Response:
    """Answer a list with Auth0's ``page`` / ``per_page`` / ``include_totals`` parameters."""
    page = _int_arg("page", 0, 0, 10_000)
    per_page = _int_arg("per_page", 50, 1, 100)
    chosen = items[page * per_page : (page + 1) * per_page]
    if _bool_arg("include_totals", False):
        return json_response(
            {key: chosen, "start": page * per_page, "limit": per_page, "total": len(items)}
        )
    return json_response(chosen)


# -- documents --------------------------------------------------------------------------------


def _iso(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _time(state: EmulatorState, epoch: float | None) -> int | str | None:
    if epoch is None:
        return None
    return _iso(epoch) if state.tokenset_timestamps == "iso" else int(epoch)


def tokenset_document(state: EmulatorState, tokenset: Tokenset) -> dict[str, Any]:
    """Return a tokenset as the Management API lists it."""
    return {
        "id": tokenset.id,
        "connection": tokenset.connection,
        "scope": " ".join(tokenset.scopes),
        "issued_at": _time(state, tokenset.issued_at),
        "expires_at": _time(state, tokenset.expires_at),
        "last_used_at": _time(state, tokenset.last_used_at),
    }


def connected_account_document(
    state: EmulatorState, tokenset: Tokenset, *, management: bool
) -> dict[str, Any]:
    """Return a connected account as the Management API (or the My Account API) lists it."""
    document: dict[str, Any] = {
        "id": tokenset.account_id,
        "connection": tokenset.connection,
    }
    if management:
        connection = state.get_connection(tokenset.connection)
        document["connection_id"] = connection.id if connection else ""
        document["strategy"] = connection.strategy if connection else ""
    document.update(
        access_type="offline",
        scopes=list(tokenset.scopes),
        created_at=_iso(tokenset.created_at),
        expires_at=_iso(tokenset.expires_at),
    )
    return document


def connection_document(connection: Connection, with_switch: bool = True) -> dict[str, Any]:
    """Return a connection as the Management API describes it.

    ``with_switch=False`` leaves out the top-level ``connected_accounts`` (a tenant from before
    Connected Accounts).
    """
    document: dict[str, Any] = {
        "id": connection.id,
        "name": connection.name,
        "display_name": connection.name,
        "strategy": connection.strategy,
        "options": connection.options,
        "enabled_clients": list(connection.enabled_clients),
        "is_domain_connection": False,
        "realms": [connection.name],
    }
    if with_switch and connection.connected_accounts is not None:
        document["connected_accounts"] = connection.connected_accounts
    return document


def client_document(state: EmulatorState, client: Client) -> dict[str, Any]:
    """Return a client as the Management API describes it (without its secret)."""
    refresh_token = dict(client.refresh_token)
    policies = [dict(policy) for policy in client.other_refresh_policies]
    if client.my_account_scopes:
        policies.append(
            {"audience": state.base_url + "/me/", "scope": list(client.my_account_scopes)}
        )
    if policies:
        refresh_token["policies"] = policies
    return {
        "client_id": client.client_id,
        "name": client.name,
        "app_type": client.app_type,
        "is_first_party": client.is_first_party,
        "oidc_conformant": client.oidc_conformant,
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "grant_types": list(client.grant_types),
        "refresh_token": refresh_token,
        "callbacks": list(client.callbacks),
        "allowed_logout_urls": list(client.allowed_logout_urls),
        "client_authentication_methods": client.client_authentication_methods,
        "require_proof_of_possession": client.require_proof_of_possession,
        "token_vault_privileged_access": client.token_vault_privileged_access,
        **(
            {"resource_server_identifier": client.resource_server_identifier}
            if client.resource_server_identifier
            else {}
        ),
        "oidc_logout": dict(client.oidc_logout),
    }


def _require_user(state: EmulatorState, user_id: str) -> None:
    if state.user_by_id(user_id) is None:
        raise ManagementApiError(404, "The user does not exist.", "inexistent_user")


def _require_connection(state: EmulatorState, connection_id: str) -> Connection:
    connection = state.connection_by_id(connection_id)
    if connection is None:
        raise ManagementApiError(404, "The connection does not exist", "inexistent_connection")
    return connection


def _require_client(state: EmulatorState, client_id: str) -> Client:
    client = state.get_client(client_id)
    if client is None:
        raise ManagementApiError(404, "The client does not exist", "inexistent_client")
    return client


def _object_body() -> dict[str, Any]:
    if not request.is_json:
        raise _bad_body("Expected a JSON body (Content-Type: application/json)")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise _bad_body("Expected type object but found another type")
    return body


def _only(body: Mapping[str, Any], allowed: Iterable[str]) -> None:
    extra = sorted(set(body) - set(allowed))
    if extra:
        raise _bad_body(f"Additional properties not allowed: {','.join(extra)}")


def _string_list(value: Any, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _bad_body(f"Expected type array of strings on property {name}")
    return list(value)


# -- users: tokensets and connected accounts --------------------------------------------------


def _tokenset_endpoints(state: EmulatorState) -> None:
    """Answer 404 as for an unknown route when the tenant no longer has the tokenset endpoints."""
    if not state.tokenset_endpoints:
        raise ManagementApiError(404, "Not Found")


def user_document(user: User) -> dict[str, Any]:
    """Return a user as the Management API describes one."""
    created = _iso(user.created_at)
    return {
        "user_id": user.user_id,
        "email": user.email,
        "email_verified": True,
        "name": user.name,
        "nickname": user.email.split("@", 1)[0],
        "created_at": created,
        "updated_at": created,
        "identities": [
            {
                "connection": DATABASE_CONNECTION,
                "provider": "auth0",
                "user_id": user.user_id.split("|", 1)[-1],
                "isSocial": False,
            }
        ],
    }


@bp.get("/users-by-email")
def users_by_email() -> Response:
    """Find users by email address (a list: Auth0 may hold several users with one address)."""
    state = authorized("read:users")
    email = request.args.get("email", "").strip()
    if not email:
        raise _bad_query("Missing required property: email")
    return json_response([_pick_fields(user_document(u)) for u in state.users_by_email(email)])


@bp.get("/users/<user_id>/federated-connections-tokensets")
def list_tokensets(user_id: str) -> Response:
    """List a user's tokensets (Auth0 answers a plain list, whatever ``include_totals`` says)."""
    state = current_state()
    _tokenset_endpoints(state)
    require_scope(
        state, "read:federated_connections_tokensets", "read:federated_connections_tokens"
    )
    _require_user(state, user_id)
    # Auth0 documents no pagination for this endpoint and answers an array; SDKs still send
    # page/per_page/include_totals, which are checked and applied without changing the shape.
    _bool_arg("include_totals", False)
    page = _int_arg("page", 0, 0, 10_000)
    per_page = _int_arg("per_page", 50, 1, 100)
    tokensets = state.tokensets_for(user_id)[page * per_page : (page + 1) * per_page]
    return json_response([tokenset_document(state, t) for t in tokensets])


@bp.delete("/users/<user_id>/federated-connections-tokensets/<tokenset_id>")
def delete_tokenset(user_id: str, tokenset_id: str) -> Response:
    """Delete one of a user's tokensets: the exchange no longer finds that account."""
    state = current_state()
    _tokenset_endpoints(state)
    require_scope(
        state, "update:federated_connections_tokensets", "delete:federated_connections_tokens"
    )
    _require_user(state, user_id)
    if not state.delete_tokenset(user_id, tokenset_id):
        raise ManagementApiError(404, "The tokenset does not exist.", "inexistent_tokenset")
    return Response(status=204)


@bp.get("/users/<user_id>/connected-accounts")
def list_connected_accounts(user_id: str) -> Response:
    """List a user's connected accounts, ``take`` at a time from the id in ``from``."""
    state = authorized("read:users")
    _require_user(state, user_id)
    take = _int_arg("take", 10, 1, 100)
    accounts = state.tokensets_for(user_id)
    start = 0
    after = request.args.get("from")
    if after:
        ids = [t.account_id for t in accounts]
        if after not in ids:
            raise _bad_query("'from' is not a connected account id of this user")
        start = ids.index(after)
    chosen = accounts[start : start + take]
    body: dict[str, Any] = {
        "connected_accounts": [
            connected_account_document(state, t, management=True) for t in chosen
        ]
    }
    if start + take < len(accounts):
        body["next"] = accounts[start + take].account_id
    return json_response(body)


# -- connections ------------------------------------------------------------------------------


@bp.get("/connections")
def list_connections() -> Response:
    """List connections, filtered by ``name`` and ``strategy``, paginated."""
    state = authorized("read:connections")
    name = request.args.get("name")
    strategies = set(request.args.getlist("strategy"))
    with state.lock:
        found = [
            _pick_fields(connection_document(c, state.connected_accounts_switch))
            for c in state.connections.values()
            if (name is None or c.name == name) and (not strategies or c.strategy in strategies)
        ]
    return _page(found, "connections")


@bp.get("/connections/<connection_id>")
def get_connection(connection_id: str) -> Response:
    """Describe one connection (``?fields=options`` for only its options)."""
    state = authorized("read:connections")
    with state.lock:
        connection = _require_connection(state, connection_id)
        document = connection_document(connection, state.connected_accounts_switch)
    return json_response(_pick_fields(document))


@bp.patch("/connections/<connection_id>")
def update_connection(connection_id: str) -> Response:
    """Update a connection; each given field (``options`` too) replaces the old value whole."""
    state = authorized("update:connections")
    body = _object_body()
    allowed = _CONNECTION_PATCHABLE
    if not state.connected_accounts_switch:
        allowed = allowed - {"connected_accounts"}
    _only(body, allowed)
    with state.lock:
        connection = _require_connection(state, connection_id)
        if "options" in body:
            if not isinstance(body["options"], dict):
                raise _bad_body("Expected type object but found another type on property options")
            connection.options = body["options"]
        if "connected_accounts" in body:
            setting = body["connected_accounts"]
            if not isinstance(setting, dict) or not isinstance(setting.get("active"), bool):
                raise _bad_body("connected_accounts must be an object with a boolean 'active'")
            connection.connected_accounts = setting
        if "enabled_clients" in body:
            connection.enabled_clients = _string_list(body["enabled_clients"], "enabled_clients")
        document = connection_document(connection, state.connected_accounts_switch)
    return json_response(document)


# -- clients ----------------------------------------------------------------------------------


_CLIENT_CREATABLE = frozenset(
    {
        "name",
        "description",
        "app_type",
        "resource_server_identifier",
        "grant_types",
        "is_first_party",
        "oidc_conformant",
        "token_endpoint_auth_method",
        "callbacks",
        "allowed_logout_urls",
    }
)
_APP_TYPES = frozenset({"regular_web", "spa", "native", "non_interactive", "resource_server"})


@bp.get("/clients")
def list_clients() -> Response:
    """List clients (``app_type`` filters, comma-separated), paginated, never with secrets."""
    state = authorized("read:clients")
    wanted = {t for t in request.args.get("app_type", "").split(",") if t}
    with state.lock:
        found = [
            _pick_fields(client_document(state, c))
            for c in state.clients.values()
            if not wanted or c.app_type in wanted
        ]
    return _page(found, "clients")


@bp.post("/clients")
def create_client() -> Response:
    """Create a client; a Custom API Client is linked to an existing API, one per API."""
    state = authorized("create:clients")
    body = _object_body()
    _only(body, _CLIENT_CREATABLE)
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _bad_body("Missing required property: name")
    app_type = body.get("app_type", "regular_web")
    if app_type not in _APP_TYPES:
        raise _bad_body(f"app_type must be one of {', '.join(sorted(_APP_TYPES))}")
    identifier = body.get("resource_server_identifier")
    if identifier is not None and app_type != "resource_server":
        raise _bad_body("resource_server_identifier is only allowed with app_type resource_server")
    if app_type == "resource_server":
        if not isinstance(identifier, str) or not identifier:
            raise _bad_body("app_type resource_server requires resource_server_identifier")
        if state.get_resource_server(identifier) is None:
            raise ManagementApiError(
                404,
                f"No resource server with identifier {identifier}",
                "inexistent_resource_server",
            )
        if state.api_client_for(identifier) is not None:
            raise ManagementApiError(
                409, "A client is already linked to this resource server.", "conflict"
            )
    grants = _string_list(body.get("grant_types", ["authorization_code"]), "grant_types")
    unknown = sorted(set(grants) - KNOWN_GRANT_TYPES)
    if unknown:
        raise _bad_body(f"Unknown grant types: {', '.join(unknown)}")
    method = body.get("token_endpoint_auth_method", "client_secret_post")
    if method not in _AUTH_METHODS:
        raise _bad_body("token_endpoint_auth_method must be none or client_secret_*")
    client = Client(
        client_id=random_id(32),
        client_secret=secrets.token_urlsafe(48),
        name=name.strip(),
        app_type=app_type,
        grant_types=list(dict.fromkeys(grants)),
        token_endpoint_auth_method=method,
        my_account_scopes=[],
        resource_server_identifier=identifier,
    )
    for flag in ("is_first_party", "oidc_conformant"):
        if flag in body:
            if not isinstance(body[flag], bool):
                raise _bad_body(f"Expected type boolean on property {flag}")
            setattr(client, flag, body[flag])
    for field_name in ("callbacks", "allowed_logout_urls"):
        if field_name in body:
            setattr(client, field_name, _string_list(body[field_name], field_name))
    with state.lock:
        state.clients[client.client_id] = client
        document = client_document(state, client)
    document["client_secret"] = client.client_secret
    return json_response(document, 201)


@bp.get("/clients/<client_id>")
def get_client(client_id: str) -> Response:
    """Describe one client (never its secret: that needs ``read:client_keys``)."""
    state = authorized("read:clients")
    with state.lock:
        document = client_document(state, _require_client(state, client_id))
    return json_response(_pick_fields(document))


@bp.patch("/clients/<client_id>")
def update_client(client_id: str) -> Response:
    """Update a client; ``grant_types`` replaces the whole list."""
    state = authorized("update:clients")
    body = _object_body()
    _only(body, _CLIENT_PATCHABLE)
    with state.lock:
        client = _require_client(state, client_id)
        if "grant_types" in body:
            grants = _string_list(body["grant_types"], "grant_types")
            unknown = sorted(set(grants) - KNOWN_GRANT_TYPES)
            if unknown:
                raise _bad_body(f"Unknown grant types: {', '.join(unknown)}")
            client.grant_types = list(dict.fromkeys(grants))
        for flag in ("is_first_party", "oidc_conformant"):
            if flag in body:
                if not isinstance(body[flag], bool):
                    raise _bad_body(f"Expected type boolean on property {flag}")
                setattr(client, flag, body[flag])
        if "token_endpoint_auth_method" in body:
            method = body["token_endpoint_auth_method"]
            if method is not None and method not in _AUTH_METHODS:
                raise _bad_body("token_endpoint_auth_method must be none, client_secret_* or null")
            client.token_endpoint_auth_method = method
        if "client_authentication_methods" in body:
            client.client_authentication_methods = _auth_methods(
                client, body["client_authentication_methods"]
            )
        if "require_proof_of_possession" in body:
            if not isinstance(body["require_proof_of_possession"], bool):
                raise _bad_body("Expected type boolean on property require_proof_of_possession")
            client.require_proof_of_possession = body["require_proof_of_possession"]
        if "token_vault_privileged_access" in body:
            require_scope(state, "update:client_token_vault_privileged_access")
            client.token_vault_privileged_access = _privileged_access(
                client, body["token_vault_privileged_access"]
            )
        if "refresh_token" in body:
            _patch_refresh_token(state, client, body["refresh_token"])
        for name in ("name", "app_type"):
            if name in body:
                if not isinstance(body[name], str) or not body[name]:
                    raise _bad_body(f"Expected a non-empty string on property {name}")
                setattr(client, name, body[name])
        for name in ("callbacks", "allowed_logout_urls"):
            if name in body:
                setattr(client, name, _string_list(body[name], name))
        if "oidc_logout" in body:
            client.oidc_logout = _oidc_logout(body["oidc_logout"])
        document = client_document(state, client)
    return json_response(document)


def _credential_refs(client: Client, value: Any, name: str) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise _bad_body(f"{name}.credentials must be a non-empty array of {{id}}")
    known = {c.id for c in client.credentials}
    refs: list[dict[str, str]] = []
    for item in value:
        if not isinstance(item, dict) or item.get("id") not in known:
            raise _bad_body(f"{name}.credentials names a credential the client does not have")
        refs.append({"id": str(item["id"])})
    return refs


def _auth_methods(client: Client, value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"private_key_jwt"}:
        raise _bad_body("client_authentication_methods may only hold private_key_jwt")
    jwt_method = value.get("private_key_jwt")
    if not isinstance(jwt_method, dict):
        raise _bad_body("client_authentication_methods.private_key_jwt must be an object")
    refs = _credential_refs(client, jwt_method.get("credentials"), "private_key_jwt")
    return {"private_key_jwt": {"credentials": refs}}


def _privileged_access(client: Client, value: Any) -> dict[str, Any] | None:
    name = "token_vault_privileged_access"
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"credentials", "ip_allowlist", "grants"}:
        raise _bad_body(f"{name} may only hold credentials, ip_allowlist and grants")
    result: dict[str, Any] = {
        "credentials": _credential_refs(client, value.get("credentials"), name)
    }
    allowlist = value.get("ip_allowlist", [])
    result["ip_allowlist"] = _string_list(allowlist, "ip_allowlist")
    grants = value.get("grants", [])
    if not isinstance(grants, list):
        raise _bad_body(f"{name}.grants must be an array")
    seen: set[str] = set()
    total = 0
    checked: list[dict[str, Any]] = []
    for grant in grants:
        if not isinstance(grant, dict) or not isinstance(grant.get("connection"), str):
            raise _bad_body(f"each {name}.grants item needs a connection")
        scopes = _string_list(grant.get("scopes", []), "scopes")
        if grant["connection"] in seen:
            raise _bad_body(f"{name}.grants names {grant['connection']} twice")
        seen.add(grant["connection"])
        total += len(scopes)
        checked.append({"connection": grant["connection"], "scopes": scopes})
    if total > 20:
        raise _bad_body(f"{name}.grants may hold at most 20 scopes in all")
    result["grants"] = checked
    return result


# -- client credentials -----------------------------------------------------------------------


@bp.get("/clients/<client_id>/credentials")
def list_credentials(client_id: str) -> Response:
    """List a client's public keys (never their PEM)."""
    state = authorized("read:client_credentials")
    with state.lock:
        client = _require_client(state, client_id)
        return json_response([c.document() for c in client.credentials])


@bp.post("/clients/<client_id>/credentials")
def create_credential(client_id: str) -> Response:
    """Register a public key on a client (201); it is used once the client names it."""
    state = authorized("create:client_credentials")
    body = _object_body()
    _only(body, {"credential_type", "name", "pem", "alg", "expires_at", "parse_expiry_from_cert"})
    if body.get("credential_type") != "public_key":
        raise _bad_body("credential_type must be public_key")
    pem = body.get("pem")
    alg = body.get("alg", "RS256")
    if alg not in ("RS256", "RS384", "PS256"):
        raise _bad_body("alg must be RS256, RS384 or PS256")
    name = body.get("name", "")
    if not isinstance(pem, str) or not isinstance(name, str):
        raise _bad_body("pem and name must be strings")
    _require_client(state, client_id)
    if len(_require_client(state, client_id).credentials) >= 2:
        raise ManagementApiError(409, "The client already has the maximum of 2 credentials.")
    try:
        credential = state.add_credential(client_id, pem, alg, name)
    except ValueError:
        raise _bad_body("pem must be a PEM public key (SPKI or PKCS#1)") from None
    return json_response(credential.document(), 201)


def _oidc_logout(value: Any) -> dict[str, Any]:
    """Check an ``oidc_logout`` object: back-channel URLs must be https (or loopback http)."""
    if not isinstance(value, dict):
        raise _bad_body("Expected type object on property oidc_logout")
    unknown = sorted(set(value) - {"backchannel_logout_urls", "backchannel_logout_initiators"})
    if unknown:
        raise _bad_body(f"Additional properties not allowed: {', '.join(unknown)}")
    urls = _string_list(value.get("backchannel_logout_urls", []), "backchannel_logout_urls")
    for url in urls:
        if not (url.startswith("https://") or is_loopback_url(url)):
            raise _bad_body(f"backchannel_logout_urls must be https URLs: {url}")
    initiators = value.get("backchannel_logout_initiators")
    if initiators is not None and not isinstance(initiators, dict):
        raise _bad_body("Expected type object on property backchannel_logout_initiators")
    return dict(value, backchannel_logout_urls=urls)


def _patch_refresh_token(state: EmulatorState, client: Client, value: Any) -> None:
    """Replace the client's refresh-token settings whole, as Auth0 does for this object."""
    if not isinstance(value, dict):
        raise _bad_body("Expected type object on property refresh_token")
    missing = [key for key in ("rotation_type", "expiration_type") if key not in value]
    if missing:
        raise _bad_body(f"Missing required property: refresh_token.{missing[0]}")
    if value["rotation_type"] not in ("rotating", "non-rotating"):
        raise _bad_body("refresh_token.rotation_type must be rotating or non-rotating")
    if value["expiration_type"] not in ("expiring", "non-expiring"):
        raise _bad_body("refresh_token.expiration_type must be expiring or non-expiring")
    policies = value.get("policies", [])
    if not isinstance(policies, list):
        raise _bad_body("refresh_token.policies must be an array")
    my_account: list[str] = []
    others: list[dict[str, Any]] = []
    for policy in policies:
        if not isinstance(policy, dict) or not isinstance(policy.get("audience"), str):
            raise _bad_body("each refresh_token policy must be an object with an audience")
        scopes = _string_list(policy.get("scope", []), "scope")
        if policy["audience"] == state.base_url + "/me/":
            my_account.extend(scopes)
        else:
            others.append({"audience": policy["audience"], "scope": scopes})
    client.refresh_token = {k: v for k, v in value.items() if k != "policies"}
    client.my_account_scopes = list(dict.fromkeys(my_account))
    client.other_refresh_policies = others


# -- APIs (resource servers) ------------------------------------------------------------------


@bp.get("/resource-servers")
def list_resource_servers() -> Response:
    """List the tenant's APIs, paginated."""
    state = authorized("read:resource_servers")
    with state.lock:
        found = [_pick_fields(r.to_dict()) for r in state.resource_servers.values()]
    return _page(found, "resource_servers")


@bp.get("/resource-servers/<path:id_or_identifier>")
def get_resource_server(id_or_identifier: str) -> Response:
    """Describe one API, found by its id or by its identifier (URL-encoded)."""
    state = authorized("read:resource_servers")
    server = state.get_resource_server(id_or_identifier)
    if server is None:
        raise ManagementApiError(
            404, "The resource server does not exist", "inexistent_resource_server"
        )
    return json_response(_pick_fields(server.to_dict()))


@bp.post("/resource-servers")
def create_resource_server() -> Response:
    """Create an API: ``{identifier, name, scopes: [{value, description}], signing_alg, ...}``."""
    state = authorized("create:resource_servers")
    body = _object_body()
    _only(body, {"identifier", "name", "scopes", "signing_alg", "token_dialect", "token_lifetime"})
    identifier = body.get("identifier")
    if not isinstance(identifier, str) or not identifier:
        raise _bad_body("Missing required property: identifier")
    if state.get_resource_server(identifier) is not None:
        raise ManagementApiError(
            409, "A resource server with the same identifier already exists", "conflict"
        )
    scopes = body.get("scopes", [])
    if not isinstance(scopes, list) or not all(
        isinstance(item, dict) and isinstance(item.get("value"), str) for item in scopes
    ):
        raise _bad_body("scopes must be an array of {value, description}")
    name = body.get("name", identifier)
    try:
        server: ResourceServer = state.add_resource_server(
            identifier,
            name if isinstance(name, str) else identifier,
            [item["value"] for item in scopes],
            signing_alg=body.get("signing_alg", "RS256"),
            rbac=body.get("token_dialect") == "access_token_authz",
        )
    except ValueError as exc:
        raise _bad_body(str(exc)) from None
    lifetime = body.get("token_lifetime")
    if isinstance(lifetime, int) and not isinstance(lifetime, bool) and lifetime > 0:
        server.token_lifetime = lifetime
    return json_response(server.to_dict(), 201)


# -- MFA policy -------------------------------------------------------------------------------


@bp.get("/guardian/policies")
def get_mfa_policies() -> Response:
    """Answer the tenant's MFA policies (``["all-applications"]`` is "Always")."""
    state = authorized("read:mfa_policies")
    with state.lock:
        return json_response(list(state.mfa_policies))


@bp.put("/guardian/policies")
def set_mfa_policies() -> Response:
    """Replace the tenant's MFA policies."""
    state = authorized("update:mfa_policies")
    body = request.get_json(silent=True)
    policies = _string_list(body, "policies")
    if not set(policies) <= {"all-applications", "confidence-score"}:
        raise _bad_body("policies may only be all-applications or confidence-score")
    with state.lock:
        state.mfa_policies = policies
    return json_response(policies)
