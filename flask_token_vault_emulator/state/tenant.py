"""Describe the tenant's configuration: clients and their keys, APIs, connections, defaults."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from joserfc.jwk import RSAKey

from ..constants import TOKEN_VAULT_GRANT
from .common import (
    DATABASE_CONNECTION,
    DEFAULT_API_CLIENT_ID,
    DEFAULT_API_CLIENT_SECRET,
    DEFAULT_API_IDENTIFIER,
    DEFAULT_API_NAME,
    DEFAULT_API_SCOPES,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_NAME,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_GRANT_TYPES,
    DEFAULT_SPA_CLIENT_ID,
    DISPLAY_NAME_BY_STRATEGY,
    GOOGLE_CONNECTION,
    MICROSOFT_CONNECTION,
    MY_ACCOUNT_SCOPES,
    NEW_APP_GRANT_TYPES,
    PROVIDER_BY_CONNECTION,
    PROVIDER_BY_STRATEGY,
    is_loopback_url,
    random_id,
)


@dataclass
class Credential:
    """A public key registered on a client (``POST /api/v2/clients/{id}/credentials``)."""

    id: str
    name: str
    alg: str
    pem: str
    kid: str
    created_at: float
    credential_type: str = "public_key"

    def public_key(self) -> Any:
        """Return the key as joserfc reads it."""
        return RSAKey.import_key(self.pem)

    def document(self) -> dict[str, Any]:
        """Return the credential as the Management API lists it (never its PEM)."""
        when = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(self.created_at))
        return {
            "id": self.id,
            "name": self.name,
            "kid": self.kid,
            "alg": self.alg,
            "credential_type": self.credential_type,
            "created_at": when,
            "updated_at": when,
        }


@dataclass
class Client:
    """Describe an Auth0 application (client) of the emulated tenant."""

    client_id: str
    client_secret: str
    name: str
    app_type: str = "regular_web"
    grant_types: list[str] = field(default_factory=lambda: list(DEFAULT_GRANT_TYPES))
    is_first_party: bool = True
    oidc_conformant: bool = True
    #: ``None`` once the client authenticates with ``private_key_jwt`` (Auth0 sets it so).
    token_endpoint_auth_method: str | None = "client_secret_post"  # noqa: S105 - a method name
    refresh_token: dict[str, Any] = field(
        default_factory=lambda: {"rotation_type": "non-rotating", "expiration_type": "non-expiring"}
    )
    callbacks: list[str] = field(default_factory=list)
    allowed_logout_urls: list[str] = field(default_factory=list)
    #: Management API scopes its client_credentials tokens get (None: every scope).
    management_scopes: list[str] | None = None
    #: My Account API scopes its refresh token may be used for (Multi-Resource Refresh Token).
    my_account_scopes: list[str] = field(default_factory=lambda: list(MY_ACCOUNT_SCOPES))
    #: The client's refresh-token policies for other audiences (kept as given, never used).
    other_refresh_policies: list[dict[str, Any]] = field(default_factory=list)
    #: Whether loopback URLs pass as callback and logout URLs without being listed. The default
    #: tenant allows them so local tests need no set-up; a bare tenant checks the lists as Auth0
    #: does.
    allow_loopback: bool = True
    #: Public keys registered on the client.
    credentials: list[Credential] = field(default_factory=list)
    #: ``client_authentication_methods`` (``{"private_key_jwt": {"credentials": [{"id"}]}}``).
    client_authentication_methods: dict[str, Any] | None = None
    #: Whether every token request must carry a DPoP proof ("Require Sender Constraining").
    require_proof_of_possession: bool = False
    #: ``{credentials: [{id}], ip_allowlist: [..], grants: [{connection, scopes}]}``.
    token_vault_privileged_access: dict[str, Any] | None = None
    #: Whether users sign in to Organizations: ``deny`` (the default), ``allow`` or ``require``.
    organization_usage: str = "deny"

    def _credentials_named(self, setting: Any) -> list[Credential]:
        wanted: set[str] = set()
        for item in (setting or {}).get("credentials") or []:
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                wanted.add(item["id"])
        return [c for c in self.credentials if c.id in wanted]

    def tls_client_auth_credentials(self) -> list[Credential]:
        """Return the certificates enabled for ``self_signed_tls_client_auth``."""
        methods = self.client_authentication_methods or {}
        return self._credentials_named(methods.get("self_signed_tls_client_auth"))

    def private_key_jwt_credentials(self) -> list[Credential]:
        """Return the credentials enabled for ``private_key_jwt``."""
        methods = self.client_authentication_methods or {}
        return self._credentials_named(methods.get("private_key_jwt"))

    def privileged_credentials(self) -> list[Credential]:
        """Return the credentials allowed to sign Privileged Worker subject tokens."""
        return self._credentials_named(self.token_vault_privileged_access)

    #: For a Custom API Client (``app_type`` ``resource_server``): the API it is linked to.
    resource_server_identifier: str | None = None

    @property
    def is_public(self) -> bool:
        """Tell whether the client has no secret (a SPA or native app: PKCE only)."""
        return self.token_endpoint_auth_method == "none"  # noqa: S105  # nosec B105 - a method name

    @property
    def is_custom_api_client(self) -> bool:
        """Tell whether the client is an API's Custom API Client."""
        return self.app_type == "resource_server" and bool(self.resource_server_identifier)

    #: OIDC logout settings; ``backchannel_logout_urls`` get a logout token when a session ends.
    oidc_logout: dict[str, Any] = field(default_factory=dict)

    @property
    def backchannel_logout_urls(self) -> list[str]:
        """Return the URLs that get a logout token when a session of this client ends."""
        urls = self.oidc_logout.get("backchannel_logout_urls")
        return [url for url in urls if isinstance(url, str)] if isinstance(urls, list) else []

    def allows_callback(self, url: str) -> bool:
        """Tell whether ``url`` may be used as redirect_uri (listed in callbacks, or loopback)."""
        return url in self.callbacks or (self.allow_loopback and is_loopback_url(url))

    def allows_logout_url(self, url: str) -> bool:
        """Tell whether ``url`` may be used as returnTo (an allowed logout URL, or loopback)."""
        return url in self.allowed_logout_urls or (self.allow_loopback and is_loopback_url(url))


@dataclass
class ResourceServer:
    """Describe an API (resource server) of the emulated tenant."""

    identifier: str
    name: str
    scopes: list[str] = field(default_factory=list)
    signing_alg: str = "RS256"
    #: "Add permissions in the access token" (``token_dialect`` ``access_token_authz``).
    rbac: bool = False
    token_lifetime: int = 86400
    id: str = field(default_factory=lambda: random_id(24).lower())

    def to_dict(self) -> dict[str, Any]:
        """Return the API as the Management API describes it."""
        return {
            "id": self.id,
            "name": self.name,
            "identifier": self.identifier,
            "scopes": [{"value": scope, "description": scope} for scope in self.scopes],
            "signing_alg": self.signing_alg,
            "token_dialect": "access_token_authz" if self.rbac else "access_token",
            "token_lifetime": self.token_lifetime,
            "allow_offline_access": False,
            "skip_consent_for_verifiable_first_party_clients": True,
        }


@dataclass
class Organization:
    """Describe an Auth0 Organization: users sign in to it with ``organization`` at /authorize."""

    id: str
    name: str
    #: Who may sign in to it; with ``auto_membership`` anyone who signs in becomes a member.
    members: set[str] = field(default_factory=set)
    auto_membership: bool = True

    def to_dict(self) -> dict[str, Any]:
        """Return the organization as the Management API describes it."""
        return {"id": self.id, "name": self.name, "display_name": self.name}


@dataclass
class Connection:
    """Describe a connection (identity provider) of the emulated tenant."""

    name: str
    strategy: str
    options: dict[str, Any] = field(default_factory=dict)
    default_scopes: list[str] = field(default_factory=list)
    scope_separator: str = " "
    enabled_clients: list[str] = field(default_factory=list)
    id: str = field(default_factory=lambda: "con_" + random_id(16))
    #: The top-level ``connected_accounts`` setting (``{"active": true}`` turns the flow on).
    connected_accounts: dict[str, Any] | None = None

    @property
    def vault_active(self) -> bool:
        """Tell whether Token Vault (federated connection access tokens) is on."""
        setting = self.options.get("federated_connections_access_tokens")
        return isinstance(setting, dict) and setting.get("active") is True

    @property
    def connected_accounts_active(self) -> bool:
        """Tell whether Connected Accounts (the My Account API connect flow) is on."""
        setting = self.connected_accounts
        return isinstance(setting, dict) and setting.get("active") is True

    @property
    def stores_tokens(self) -> bool:
        """Tell whether Token Vault keeps this connection's tokens (either switch is on)."""
        return self.vault_active or self.connected_accounts_active

    @property
    def provider(self) -> str | None:
        """Return which fake provider API serves this connection's tokens, if any."""
        return PROVIDER_BY_STRATEGY.get(self.strategy) or PROVIDER_BY_CONNECTION.get(self.name)

    @property
    def display_name(self) -> str:
        """Return the name a person reads on a page: ``Google``, ``Microsoft``, or its name."""
        known = DISPLAY_NAME_BY_STRATEGY.get(PROVIDER_BY_CONNECTION.get(self.name, self.strategy))
        return known or self.name


def default_clients() -> dict[str, Client]:
    """Return the tenant's clients as a fresh emulator has them.

    The web application, the Custom API Client of the default API, and a public SPA client.
    """
    clients = [
        Client(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_CLIENT_NAME),
        Client(
            DEFAULT_API_CLIENT_ID,
            DEFAULT_API_CLIENT_SECRET,
            f"{DEFAULT_API_NAME} (Custom API Client)",
            app_type="resource_server",
            grant_types=[TOKEN_VAULT_GRANT],
            my_account_scopes=[],
            resource_server_identifier=DEFAULT_API_IDENTIFIER,
        ),
        Client(
            DEFAULT_SPA_CLIENT_ID,
            "",
            "Token Vault Emulator SPA",
            app_type="spa",
            grant_types=["authorization_code", "refresh_token"],
            token_endpoint_auth_method="none",  # noqa: S106  # nosec B106 - a method name
        ),
    ]
    return {client.client_id: client for client in clients}


def default_resource_servers() -> dict[str, ResourceServer]:
    """Return the tenant's APIs as a fresh emulator has them: one, with two scopes."""
    api = ResourceServer(DEFAULT_API_IDENTIFIER, DEFAULT_API_NAME, list(DEFAULT_API_SCOPES))
    return {api.identifier: api}


def bare_clients() -> dict[str, Client]:
    """Return the clients of a new tenant: the app as the Dashboard creates it, nothing more.

    No Token Vault grant, refresh-token rotation on, no refresh-token policy for the My Account
    API, no callback or logout URL, and loopback URLs get no free pass.
    """
    client = Client(
        DEFAULT_CLIENT_ID,
        DEFAULT_CLIENT_SECRET,
        DEFAULT_CLIENT_NAME,
        grant_types=list(NEW_APP_GRANT_TYPES),
        refresh_token={"rotation_type": "rotating", "expiration_type": "expiring", "leeway": 0},
        my_account_scopes=[],
        allow_loopback=False,
    )
    return {client.client_id: client}


def default_connections(vault: bool = True) -> dict[str, Connection]:
    """Return the tenant's connections as a fresh emulator has them (``vault=False``: bare).

    Each is enabled for the web app, and for the SPA client unless the tenant is bare (no SPA).
    """

    def vault_on() -> dict[str, Any]:
        return {"federated_connections_access_tokens": {"active": True}} if vault else {}

    enabled = [DEFAULT_CLIENT_ID, DEFAULT_SPA_CLIENT_ID] if vault else [DEFAULT_CLIENT_ID]

    connections = [
        Connection(
            name=GOOGLE_CONNECTION,
            strategy="google-oauth2",
            options=vault_on(),
            default_scopes=["openid", "email", "profile"],
            enabled_clients=list(enabled),
        ),
        Connection(
            name=MICROSOFT_CONNECTION,
            strategy="windowslive",
            options=vault_on(),
            default_scopes=["openid", "profile", "email", "offline_access", "User.Read"],
            enabled_clients=list(enabled),
        ),
        Connection(
            name=DATABASE_CONNECTION,
            strategy="auth0",
            options={},
            default_scopes=[],
            enabled_clients=list(enabled),
        ),
    ]
    return {connection.name: connection for connection in connections}
