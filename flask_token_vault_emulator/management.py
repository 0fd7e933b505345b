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
  replaces the whole object, as Auth0 does. ``GET /api/v2/connections/{id}/clients?take=&from=``
  -> ``{clients: [{client_id}], next}``; ``PATCH`` of ``[{client_id, status}]`` -> 204 (enable
  or disable the connection for those clients).
- ``/api/v2/clients`` and their credentials: see :mod:`.management_clients`.
- ``GET /api/v2/resource-servers``, ``GET /api/v2/resource-servers/{id or identifier}`` (the
  identifier URL-encoded), ``POST /api/v2/resource-servers``: the tenant's APIs.
- ``GET``/``PUT /api/v2/guardian/policies`` (the tenant's MFA policy).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from flask import Blueprint, request
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wrappers import Response

from .documents import (
    connected_account_document,
    connection_document,
    tokenset_document,
    user_document,
)
from .signing import audiences, is_expired
from .state import Client, Connection, EmulatorState, ResourceServer
from .web import ErrorAnswer, bearer_token, current_state, json_response

MANAGEMENT_API_SCOPES = (
    "read:users",
    "read:clients",
    "read:client_keys",
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


def _management_error(error: ManagementApiError) -> Response:
    return error.response()


def api_blueprint(name: str) -> Blueprint:
    """Make a blueprint of Management API endpoints, whose errors answer Auth0's documents."""
    blueprint = Blueprint(name, __name__, url_prefix="/api/v2")
    blueprint.register_error_handler(ManagementApiError, _management_error)
    return blueprint


bp = api_blueprint("management")


def bad_body(message: str) -> ManagementApiError:
    """Return Auth0's 400 answer to a body that breaks the endpoint's schema."""
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
    if audience not in audiences(claims):
        raise ManagementApiError(401, f"Bad audience: {claims.get('aud')}", "invalid_token")
    if is_expired(claims, state.now()):
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


def pick_fields(document: dict[str, Any]) -> dict[str, Any]:
    """Apply Auth0's ``fields`` / ``include_fields`` query parameters to one document."""
    raw = request.args.get("fields")
    if not raw:
        return document
    fields = {field.strip() for field in raw.split(",") if field.strip()}
    if _bool_arg("include_fields", True):
        return {k: v for k, v in document.items() if k in fields}
    return {k: v for k, v in document.items() if k not in fields}


def page(items: list[dict[str, Any]], key: str) -> Response:
    """Answer a list with Auth0's ``page`` / ``per_page`` / ``include_totals`` parameters."""
    page = _int_arg("page", 0, 0, 10_000)
    per_page = _int_arg("per_page", 50, 1, 100)
    chosen = items[page * per_page : (page + 1) * per_page]
    if _bool_arg("include_totals", False):
        return json_response(
            {key: chosen, "start": page * per_page, "limit": per_page, "total": len(items)}
        )
    return json_response(chosen)


def _require_user(state: EmulatorState, user_id: str) -> None:
    if state.user_by_id(user_id) is None:
        raise ManagementApiError(404, "The user does not exist.", "inexistent_user")


def _require_connection(state: EmulatorState, connection_id: str) -> Connection:
    connection = state.connection_by_id(connection_id)
    if connection is None:
        raise ManagementApiError(404, "The connection does not exist", "inexistent_connection")
    return connection


def require_client(state: EmulatorState, client_id: str) -> Client:
    """Return the client with this id, or answer 404 as Auth0 does."""
    client = state.get_client(client_id)
    if client is None:
        raise ManagementApiError(404, "The client does not exist", "inexistent_client")
    return client


def object_body() -> dict[str, Any]:
    """Return the request's JSON object body, or answer 400."""
    if not request.is_json:
        raise bad_body("Expected a JSON body (Content-Type: application/json)")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise bad_body("Expected type object but found another type")
    return body


def only(body: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """Answer 400 when the body has a property the endpoint does not take."""
    extra = sorted(set(body) - set(allowed))
    if extra:
        raise bad_body(f"Additional properties not allowed: {','.join(extra)}")


def string_list(value: Any, name: str) -> list[str]:
    """Return ``value`` when it is a list of strings, or answer 400 naming the property."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise bad_body(f"Expected type array of strings on property {name}")
    return list(value)


# -- users: tokensets and connected accounts --------------------------------------------------


def _tokenset_endpoints(state: EmulatorState) -> None:
    """Answer 404 as for an unknown route when the tenant no longer has the tokenset endpoints."""
    if not state.tokenset_endpoints:
        raise ManagementApiError(404, "Not Found")


@bp.get("/users-by-email")
def users_by_email() -> Response:
    """Find users by email address (a list: Auth0 may hold several users with one address)."""
    state = authorized("read:users")
    email = request.args.get("email", "").strip()
    if not email:
        raise _bad_query("Missing required property: email")
    return json_response([pick_fields(user_document(u)) for u in state.users_by_email(email)])


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
            pick_fields(connection_document(c, state.connected_accounts_switch))
            for c in state.connections.values()
            if (name is None or c.name == name) and (not strategies or c.strategy in strategies)
        ]
    return page(found, "connections")


@bp.get("/connections/<connection_id>")
def get_connection(connection_id: str) -> Response:
    """Describe one connection (``?fields=options`` for only its options)."""
    state = authorized("read:connections")
    with state.lock:
        connection = _require_connection(state, connection_id)
        document = connection_document(connection, state.connected_accounts_switch)
    return json_response(pick_fields(document))


@bp.patch("/connections/<connection_id>")
def update_connection(connection_id: str) -> Response:
    """Update a connection; each given field (``options`` too) replaces the old value whole."""
    state = authorized("update:connections")
    body = object_body()
    allowed = _CONNECTION_PATCHABLE
    if not state.connected_accounts_switch:
        allowed = allowed - {"connected_accounts"}
    only(body, allowed)
    with state.lock:
        connection = _require_connection(state, connection_id)
        if "options" in body:
            if not isinstance(body["options"], dict):
                raise bad_body("Expected type object but found another type on property options")
            connection.options = body["options"]
        if "connected_accounts" in body:
            setting = body["connected_accounts"]
            if not isinstance(setting, dict) or not isinstance(setting.get("active"), bool):
                raise bad_body("connected_accounts must be an object with a boolean 'active'")
            connection.connected_accounts = setting
        if "enabled_clients" in body:
            connection.enabled_clients = string_list(body["enabled_clients"], "enabled_clients")
        document = connection_document(connection, state.connected_accounts_switch)
    return json_response(document)


@bp.get("/connections/<connection_id>/clients")
def list_connection_clients(connection_id: str) -> Response:
    """List the clients a connection is enabled for: ``{clients: [{client_id}], next}``."""
    state = authorized("read:connections")
    try:
        take = int(request.args.get("take", "50"))
    except ValueError:
        raise _bad_query("take must be an integer") from None
    if not 1 <= take <= 100:
        raise _bad_query("take must be from 1 to 100")
    with state.lock:
        enabled = list(_require_connection(state, connection_id).enabled_clients)
    start = 0
    after = request.args.get("from")
    if after:
        if after not in enabled:
            raise _bad_query("'from' is not a client of this connection")
        start = enabled.index(after)
    body: dict[str, Any] = {"clients": [{"client_id": c} for c in enabled[start : start + take]]}
    if start + take < len(enabled):
        body["next"] = enabled[start + take]
    return json_response(body)


@bp.patch("/connections/<connection_id>/clients")
def update_connection_clients(connection_id: str) -> Response:
    """Enable or disable a connection for clients: ``[{client_id, status}]`` (1 to 50) -> 204."""
    state = authorized("update:connections")
    body = request.get_json(silent=True) if request.is_json else None
    if not isinstance(body, list) or not 1 <= len(body) <= 50:
        raise bad_body("Expected an array of 1 to 50 {client_id, status} objects")
    for item in body:
        if (
            not isinstance(item, dict)
            or set(item) != {"client_id", "status"}
            or not isinstance(item["client_id"], str)
            or not isinstance(item["status"], bool)
        ):
            raise bad_body("Each item must be exactly {client_id: string, status: boolean}")
    with state.lock:
        connection = _require_connection(state, connection_id)
        for item in body:
            require_client(state, item["client_id"])
        for item in body:
            enabled = item["client_id"] in connection.enabled_clients
            if item["status"] and not enabled:
                connection.enabled_clients.append(item["client_id"])
            elif not item["status"] and enabled:
                connection.enabled_clients.remove(item["client_id"])
    return Response(status=204)


# -- APIs (resource servers) ------------------------------------------------------------------


@bp.get("/resource-servers")
def list_resource_servers() -> Response:
    """List the tenant's APIs, paginated."""
    state = authorized("read:resource_servers")
    with state.lock:
        found = [pick_fields(r.to_dict()) for r in state.resource_servers.values()]
    return page(found, "resource_servers")


@bp.get("/resource-servers/<path:id_or_identifier>")
def get_resource_server(id_or_identifier: str) -> Response:
    """Describe one API, found by its id or by its identifier (URL-encoded)."""
    state = authorized("read:resource_servers")
    server = state.get_resource_server(id_or_identifier)
    if server is None:
        raise ManagementApiError(
            404, "The resource server does not exist", "inexistent_resource_server"
        )
    return json_response(pick_fields(server.to_dict()))


@bp.post("/resource-servers")
def create_resource_server() -> Response:
    """Create an API: ``{identifier, name, scopes: [{value, description}], signing_alg, ...}``."""
    state = authorized("create:resource_servers")
    body = object_body()
    only(body, {"identifier", "name", "scopes", "signing_alg", "token_dialect", "token_lifetime"})
    identifier = body.get("identifier")
    if not isinstance(identifier, str) or not identifier:
        raise bad_body("Missing required property: identifier")
    if state.get_resource_server(identifier) is not None:
        raise ManagementApiError(
            409, "A resource server with the same identifier already exists", "conflict"
        )
    scopes = body.get("scopes", [])
    if not isinstance(scopes, list) or not all(
        isinstance(item, dict) and isinstance(item.get("value"), str) for item in scopes
    ):
        raise bad_body("scopes must be an array of {value, description}")
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
        raise bad_body(str(exc)) from None
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
    policies = string_list(body, "policies")
    if not set(policies) <= {"all-applications", "confidence-score"}:
        raise bad_body("policies may only be all-applications or confidence-score")
    with state.lock:
        state.mfa_policies = policies
    return json_response(policies)
