"""Serve the Management API's clients and their credentials (``/api/v2/clients``).

- ``GET``/``PATCH /api/v2/clients/{id}``; a PATCH of ``refresh_token`` replaces the whole
  object (``rotation_type`` and ``expiration_type`` required, ``policies`` for Multi-Resource
  Refresh Token), and so does one of ``oidc_logout`` (back-channel logout URLs); also
  ``client_authentication_methods``, ``require_proof_of_possession`` and, with its own scope,
  ``token_vault_privileged_access`` (at most 10 ``ip_allowlist`` entries, each an address or
  CIDR range; ``grants`` of at most 5 connections and 20 scopes in all).
- ``GET``/``POST /api/v2/clients/{id}/credentials``: public keys (``{credential_type:
  "public_key", name, pem, alg}`` -> 201 ``{id, name, kid, alg, credential_type, created_at,
  updated_at}``; the PEM is never listed). The emulator's ``kid`` is the key's RFC 7638
  thumbprint.
- ``GET /api/v2/clients?app_type=&fields=&page=&per_page=&include_totals=``; ``POST
  /api/v2/clients`` -> 201 with the new client's secret (reads answer ``client_secret`` only to
  a token with ``read:client_keys``, as Auth0 does) (a Custom API Client: ``app_type:
  "resource_server"`` with ``resource_server_identifier``, one per API, 409 for a second).
"""

from __future__ import annotations

import ipaddress
import secrets
from typing import Any

from flask import request
from werkzeug.wrappers import Response

from .constants import TOKEN_VAULT_GRANT
from .documents import client_document
from .management import (
    ManagementApiError,
    api_blueprint,
    authorized,
    bad_body,
    object_body,
    only,
    page,
    pick_fields,
    require_client,
    require_scope,
    string_list,
)
from .state import Client, EmulatorState
from .state.common import is_loopback_url, random_id
from .web import current_state, json_response

bp = api_blueprint("management_clients")

#: Auth0's limits on ``token_vault_privileged_access``.
MAX_IP_ALLOWLIST = 10
MAX_GRANTED_CONNECTIONS = 5
MAX_GRANTED_SCOPES = 20

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
#: The boolean properties a client is created or updated with.
_FLAGS = ("is_first_party", "oidc_conformant")
_AUTH_METHODS = frozenset({"none", "client_secret_post", "client_secret_basic"})
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


#: The scope that lets a token read clients' secrets (either it or ``read:clients`` reads them).
READ_KEYS = "read:client_keys"


def _reader() -> tuple[EmulatorState, bool]:
    """Return the tenant's state for a client read, and whether the token may see secrets."""
    state = current_state()
    claims = require_scope(state, "read:clients", READ_KEYS)
    return state, READ_KEYS in str(claims.get("scope", "")).split()


def _readable(state: EmulatorState, client: Client, with_secret: bool) -> dict[str, Any]:
    """Return a client as a read answers it, with its secret only when ``with_secret``."""
    document = client_document(state, client)
    if with_secret and not client.is_public:
        document["client_secret"] = client.client_secret
    return pick_fields(document)


@bp.get("/clients")
def list_clients() -> Response:
    """List clients (``app_type`` filters, comma-separated), paginated; secrets as for a GET."""
    state, with_secret = _reader()
    wanted = {t for t in request.args.get("app_type", "").split(",") if t}
    with state.lock:
        found = [
            _readable(state, c, with_secret)
            for c in state.clients.values()
            if not wanted or c.app_type in wanted
        ]
    return page(found, "clients")


@bp.post("/clients")
def create_client() -> Response:
    """Create a client; a Custom API Client is linked to an existing API, one per API."""
    state = authorized("create:clients")
    body = object_body()
    only(body, _CLIENT_CREATABLE)
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise bad_body("Missing required property: name")
    app_type = body.get("app_type", "regular_web")
    if app_type not in _APP_TYPES:
        raise bad_body(f"app_type must be one of {', '.join(sorted(_APP_TYPES))}")
    identifier = body.get("resource_server_identifier")
    if identifier is not None and app_type != "resource_server":
        raise bad_body("resource_server_identifier is only allowed with app_type resource_server")
    if app_type == "resource_server":
        if not isinstance(identifier, str) or not identifier:
            raise bad_body("app_type resource_server requires resource_server_identifier")
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
    grants = _grant_types(body.get("grant_types", ["authorization_code"]))
    method = body.get("token_endpoint_auth_method", "client_secret_post")
    if method not in _AUTH_METHODS:
        raise bad_body("token_endpoint_auth_method must be none or client_secret_*")
    client = Client(
        client_id=random_id(32),
        client_secret=secrets.token_urlsafe(48),
        name=name.strip(),
        app_type=app_type,
        grant_types=grants,
        token_endpoint_auth_method=method,
        my_account_scopes=[],
        resource_server_identifier=identifier,
    )
    _set_flags(client, body, _FLAGS)
    _set_url_lists(client, body)
    with state.lock:
        state.clients[client.client_id] = client
        document = client_document(state, client)
    document["client_secret"] = client.client_secret
    return json_response(document, 201)


@bp.get("/clients/<client_id>")
def get_client(client_id: str) -> Response:
    """Describe one client; its secret only for a token with ``read:client_keys``."""
    state, with_secret = _reader()
    with state.lock:
        document = _readable(state, require_client(state, client_id), with_secret)
    return json_response(document)


@bp.patch("/clients/<client_id>")
def update_client(client_id: str) -> Response:
    """Update a client; ``grant_types`` replaces the whole list."""
    state = authorized("update:clients")
    body = object_body()
    only(body, _CLIENT_PATCHABLE)
    with state.lock:
        client = require_client(state, client_id)
        if "grant_types" in body:
            client.grant_types = _grant_types(body["grant_types"])
        _set_flags(client, body, _FLAGS)
        if "token_endpoint_auth_method" in body:
            method = body["token_endpoint_auth_method"]
            if method is not None and method not in _AUTH_METHODS:
                raise bad_body("token_endpoint_auth_method must be none, client_secret_* or null")
            client.token_endpoint_auth_method = method
        if "client_authentication_methods" in body:
            client.client_authentication_methods = _auth_methods(
                client, body["client_authentication_methods"]
            )
        _set_flags(client, body, ("require_proof_of_possession",))
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
                    raise bad_body(f"Expected a non-empty string on property {name}")
                setattr(client, name, body[name])
        _set_url_lists(client, body)
        if "oidc_logout" in body:
            client.oidc_logout = _oidc_logout(body["oidc_logout"])
        document = client_document(state, client)
    return json_response(document)


def _grant_types(value: Any) -> list[str]:
    """Return the grant types a body names, each once, refusing any the tenant does not know."""
    grants = string_list(value, "grant_types")
    unknown = sorted(set(grants) - KNOWN_GRANT_TYPES)
    if unknown:
        raise bad_body(f"Unknown grant types: {', '.join(unknown)}")
    return list(dict.fromkeys(grants))


def _set_flags(client: Client, body: dict[str, Any], names: tuple[str, ...]) -> None:
    """Copy the boolean properties ``names`` the body has onto the client."""
    for name in names:
        if name in body:
            if not isinstance(body[name], bool):
                raise bad_body(f"Expected type boolean on property {name}")
            setattr(client, name, body[name])


def _set_url_lists(client: Client, body: dict[str, Any]) -> None:
    """Copy the callback and logout URL lists the body has onto the client."""
    for name in ("callbacks", "allowed_logout_urls"):
        if name in body:
            setattr(client, name, string_list(body[name], name))


def _credential_refs(client: Client, value: Any, name: str) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise bad_body(f"{name}.credentials must be a non-empty array of {{id}}")
    known = {c.id for c in client.credentials}
    refs: list[dict[str, str]] = []
    for item in value:
        if not isinstance(item, dict) or item.get("id") not in known:
            raise bad_body(f"{name}.credentials names a credential the client does not have")
        refs.append({"id": str(item["id"])})
    return refs


def _auth_methods(client: Client, value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"private_key_jwt"}:
        raise bad_body("client_authentication_methods may only hold private_key_jwt")
    jwt_method = value.get("private_key_jwt")
    if not isinstance(jwt_method, dict):
        raise bad_body("client_authentication_methods.private_key_jwt must be an object")
    refs = _credential_refs(client, jwt_method.get("credentials"), "private_key_jwt")
    return {"private_key_jwt": {"credentials": refs}}


def _privileged_access(client: Client, value: Any) -> dict[str, Any] | None:
    name = "token_vault_privileged_access"
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"credentials", "ip_allowlist", "grants"}:
        raise bad_body(f"{name} may only hold credentials, ip_allowlist and grants")
    result: dict[str, Any] = {
        "credentials": _credential_refs(client, value.get("credentials"), name)
    }
    allowlist = string_list(value.get("ip_allowlist", []), "ip_allowlist")
    if len(allowlist) > MAX_IP_ALLOWLIST:
        raise bad_body(f"{name}.ip_allowlist may hold at most {MAX_IP_ALLOWLIST} entries")
    for entry in allowlist:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise bad_body(
                f"{name}.ip_allowlist: {entry!r} is not an IP address or CIDR range"
            ) from None
    result["ip_allowlist"] = allowlist
    grants = value.get("grants", [])
    if not isinstance(grants, list):
        raise bad_body(f"{name}.grants must be an array")
    seen: set[str] = set()
    total = 0
    checked: list[dict[str, Any]] = []
    for grant in grants:
        if not isinstance(grant, dict) or not isinstance(grant.get("connection"), str):
            raise bad_body(f"each {name}.grants item needs a connection")
        scopes = string_list(grant.get("scopes", []), "scopes")
        if grant["connection"] in seen:
            raise bad_body(f"{name}.grants names {grant['connection']} twice")
        seen.add(grant["connection"])
        total += len(scopes)
        checked.append({"connection": grant["connection"], "scopes": scopes})
    if len(checked) > MAX_GRANTED_CONNECTIONS:
        raise bad_body(f"{name}.grants may name at most {MAX_GRANTED_CONNECTIONS} connections")
    if total > MAX_GRANTED_SCOPES:
        raise bad_body(f"{name}.grants may hold at most {MAX_GRANTED_SCOPES} scopes in all")
    result["grants"] = checked
    return result


# -- client credentials -----------------------------------------------------------------------


@bp.get("/clients/<client_id>/credentials")
def list_credentials(client_id: str) -> Response:
    """List a client's public keys (never their PEM)."""
    state = authorized("read:client_credentials")
    with state.lock:
        client = require_client(state, client_id)
        return json_response([c.document() for c in client.credentials])


@bp.post("/clients/<client_id>/credentials")
def create_credential(client_id: str) -> Response:
    """Register a public key on a client (201); it is used once the client names it."""
    state = authorized("create:client_credentials")
    body = object_body()
    only(body, {"credential_type", "name", "pem", "alg", "expires_at", "parse_expiry_from_cert"})
    if body.get("credential_type") != "public_key":
        raise bad_body("credential_type must be public_key")
    pem = body.get("pem")
    alg = body.get("alg", "RS256")
    if alg not in ("RS256", "RS384", "PS256"):
        raise bad_body("alg must be RS256, RS384 or PS256")
    name = body.get("name", "")
    if not isinstance(pem, str) or not isinstance(name, str):
        raise bad_body("pem and name must be strings")
    if len(require_client(state, client_id).credentials) >= 2:
        raise ManagementApiError(409, "The client already has the maximum of 2 credentials.")
    try:
        credential = state.add_credential(client_id, pem, alg, name)
    except ValueError:
        raise bad_body("pem must be a PEM public key (SPKI or PKCS#1)") from None
    return json_response(credential.document(), 201)


def _oidc_logout(value: Any) -> dict[str, Any]:
    """Check an ``oidc_logout`` object: back-channel URLs must be https (or loopback http)."""
    if not isinstance(value, dict):
        raise bad_body("Expected type object on property oidc_logout")
    unknown = sorted(set(value) - {"backchannel_logout_urls", "backchannel_logout_initiators"})
    if unknown:
        raise bad_body(f"Additional properties not allowed: {', '.join(unknown)}")
    urls = string_list(value.get("backchannel_logout_urls", []), "backchannel_logout_urls")
    for url in urls:
        if not (url.startswith("https://") or is_loopback_url(url)):
            raise bad_body(f"backchannel_logout_urls must be https URLs: {url}")
    initiators = value.get("backchannel_logout_initiators")
    if initiators is not None and not isinstance(initiators, dict):
        raise bad_body("Expected type object on property backchannel_logout_initiators")
    return dict(value, backchannel_logout_urls=urls)


def _patch_refresh_token(state: EmulatorState, client: Client, value: Any) -> None:
    """Replace the client's refresh-token settings whole, as Auth0 does for this object."""
    if not isinstance(value, dict):
        raise bad_body("Expected type object on property refresh_token")
    missing = [key for key in ("rotation_type", "expiration_type") if key not in value]
    if missing:
        raise bad_body(f"Missing required property: refresh_token.{missing[0]}")
    if value["rotation_type"] not in ("rotating", "non-rotating"):
        raise bad_body("refresh_token.rotation_type must be rotating or non-rotating")
    if value["expiration_type"] not in ("expiring", "non-expiring"):
        raise bad_body("refresh_token.expiration_type must be expiring or non-expiring")
    policies = value.get("policies", [])
    if not isinstance(policies, list):
        raise bad_body("refresh_token.policies must be an array")
    my_account: list[str] = []
    others: list[dict[str, Any]] = []
    for policy in policies:
        if not isinstance(policy, dict) or not isinstance(policy.get("audience"), str):
            raise bad_body("each refresh_token policy must be an object with an audience")
        scopes = string_list(policy.get("scope", []), "scope")
        if policy["audience"] == state.base_url + "/me/":
            my_account.extend(scopes)
        else:
            others.append({"audience": policy["audience"], "scope": scopes})
    client.refresh_token = {k: v for k, v in value.items() if k != "policies"}
    client.my_account_scopes = list(dict.fromkeys(my_account))
    client.other_refresh_policies = others
