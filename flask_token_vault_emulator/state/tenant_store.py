"""Keep the tenant's configuration: clients, keys, APIs, connections and tenant switches.

:class:`TenantStore` is the bottom of the state's layers (users, then tokens, then the whole
:class:`~.emulator.EmulatorState` build on it); every public method takes the one lock.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

from joserfc.jwk import RSAKey

from ..signing import SigningKey
from .common import DEFAULT_PROVIDER_TOKEN_TTL, Clock, random_id, split_scopes
from .tenant import (
    Client,
    Connection,
    Credential,
    Organization,
    ResourceServer,
    bare_clients,
    default_clients,
    default_connections,
    default_resource_servers,
)

#: What :meth:`TenantStore.reset` sets afresh: attribute name -> what makes its fresh value.
FreshValues = Mapping[str, Callable[[], object]]

#: The tenant features :meth:`TenantStore.set_tenant_features` switches, each a bool attribute.
TENANT_FEATURES = ("tokenset_endpoints", "connected_accounts_switch", "assurance_policy")


class TenantStore:
    """Keep the tenant's configuration in memory, guarded by one re-entrant lock."""

    clients: dict[str, Client]
    connections: dict[str, Connection]
    resource_servers: dict[str, ResourceServer]
    #: The tenant's MFA policies (``["all-applications"]`` is the "Always" policy).
    mfa_policies: list[str]
    #: Whether the Management API still has the tokenset endpoints (Auth0 dropped them
    #: from its spec in 2026-07; ``False`` answers them 404 like an unknown route).
    tokenset_endpoints: bool
    #: Whether connections know the top-level ``connected_accounts`` switch (``False``: a
    #: tenant from before Connected Accounts, whose Management API refuses the property).
    connected_accounts_switch: bool
    provider_token_ttl: dict[str, int]
    #: connection -> what the exchange reports as ``expires_in`` instead of the truth
    #: (``MISSING`` leaves it out).
    reported_expires_in: dict[str, Any]
    #: How the Management API writes tokenset times: ``"epoch"`` seconds or ``"iso"``.
    tokenset_timestamps: str
    #: Every ``jti`` accepted (assertions, DPoP proofs, subject tokens) -> until when.
    used_jtis: dict[tuple[str, str, str], float]
    #: The nonce DPoP proofs must carry, or ``None`` when no nonce is asked for.
    dpop_nonce: str | None
    #: The tenant's Organizations, by id.
    organizations: dict[str, Organization]
    #: My Account API Authentication Assurance: a ``/me/`` token needs a recent second factor.
    assurance_policy: bool
    #: What :meth:`reset` forgets: each attribute and what makes its fresh value. Here, provider
    #: token lifetimes, misreports, used ``jti``s and the DPoP nonce; the users and tokens
    #: layers add their records to their parent's (the whole state, whose values are not all
    #: fresh ones, extends :meth:`reset` itself).
    FRESH: ClassVar[FreshValues] = {
        "provider_token_ttl": dict,
        "reported_expires_in": dict,
        "tokenset_timestamps": lambda: "epoch",
        "used_jtis": dict,
        "dpop_nonce": lambda: None,
    }

    def __init__(self, clock: Clock = time.time, base_url: str = "") -> None:
        """Create a tenant with the default clients, APIs and connections, and nothing else."""
        self.lock = threading.RLock()
        self.clock = clock
        self.base_url = base_url
        #: The TLS listener's base URL while one runs (:mod:`..tls`): the mTLS endpoint aliases.
        self.mtls_base_url: str | None = None
        self.signing_key = SigningKey()
        self.restore_tenant()
        self.reset()

    @property
    def issuer(self) -> str:
        """Return the issuer (base URL with the trailing slash, as Auth0 writes it)."""
        return self.base_url + "/"

    def now(self) -> float:
        """Return the emulator's current time in epoch seconds."""
        return float(self.clock())

    def reset(self) -> None:
        """Set every attribute named in :attr:`FRESH` afresh: a fresh state is a reset one."""
        with self.lock:
            for name, fresh in self.FRESH.items():
                setattr(self, name, fresh())

    def restore_tenant(self) -> None:
        """Put the default clients, APIs, connections and MFA policy back (undo tenant changes)."""
        with self.lock:
            self._set_tenant(default_clients(), default_connections())
            self.signing_key.forget_previous()

    def make_bare(self) -> None:
        """Make the tenant a new one: the app, the connections and the API exist; nothing is set up.

        What ``flask token-vault setup`` must do is left undone: no Token Vault grant, rotation
        on, no My Account API policy, no callback or logout URL (loopback gets no free pass),
        and neither Token Vault switch on any connection. The app may call the Management API.
        """
        self._set_tenant(bare_clients(), default_connections(vault=False))

    def _set_tenant(self, clients: dict[str, Client], connections: dict[str, Connection]) -> None:
        with self.lock:
            self.clients = clients
            self.connections = connections
            self.resource_servers = default_resource_servers()
            self.mfa_policies = []
            self.tokenset_endpoints = True
            self.connected_accounts_switch = True
            self.organizations = {}
            self.assurance_policy = False

    def add_organization(self, name: str, members: Iterable[str] | None = None) -> Organization:
        """Create an organization; with ``members`` (user ids) only they may sign in to it."""
        organization = Organization("org_" + random_id(16), name.lower())
        if members is not None:
            organization.members = set(members)
            organization.auto_membership = False
        with self.lock:
            self.organizations[organization.id] = organization
        return organization

    def find_organization(self, given: str) -> Organization | None:
        """Return the organization ``given`` names, by id or (as Auth0 allows) by name."""
        with self.lock:
            found = self.organizations.get(given)
            by_name = (o for o in self.organizations.values() if o.name == given.lower())
            return found or next(by_name, None)

    def set_tenant_features(self, **features: bool | None) -> None:
        """Switch the :data:`TENANT_FEATURES` named (``None`` leaves one as it is)."""
        unknown = sorted(set(features) - set(TENANT_FEATURES))
        if unknown:
            raise TypeError(f"unknown tenant features: {', '.join(unknown)}")
        with self.lock:
            for name, value in features.items():
                if value is not None:
                    setattr(self, name, value)

    def use_jti(self, kind: str, issuer: str, jti: str, until: float) -> bool:
        """Record a ``jti``; return False when it was already used (a replay)."""
        key = (kind, issuer, jti)
        with self.lock:
            now = self.now()
            if len(self.used_jtis) > 10_000:
                for old in [k for k, t in self.used_jtis.items() if t < now]:
                    del self.used_jtis[old]
            if key in self.used_jtis:
                return False
            self.used_jtis[key] = max(until, now + 1)
            return True

    def current_dpop_nonce(self) -> str | None:
        """Return the nonce DPoP proofs must carry, if the tenant asks for one."""
        with self.lock:
            return self.dpop_nonce

    def require_dpop_nonce(self, required: bool = True) -> str | None:
        """Ask for a nonce in DPoP proofs (a new one each call) or stop asking; return it."""
        with self.lock:
            self.dpop_nonce = secrets.token_urlsafe(16) if required else None
            return self.dpop_nonce

    def add_credential(
        self, client_id: str, pem: str, alg: str = "RS256", name: str = ""
    ) -> Credential:
        """Register a public key on a client (not yet enabled for any use)."""
        try:
            key = RSAKey.import_key(pem)
        except Exception:  # joserfc and cryptography raise several types for a bad PEM
            raise ValueError("not a PEM RSA public key") from None
        if key.is_private:
            raise ValueError("a credential is a public key")
        credential = Credential(
            id="cred_" + random_id(22),
            name=name,
            alg=alg,
            pem=key.as_pem(private=False).decode("ascii"),
            kid=str(key.thumbprint()),
            created_at=self.now(),
        )
        with self.lock:
            client = self.clients.get(client_id)
            if client is None:
                raise ValueError(f"unknown client {client_id!r}")
            client.credentials.append(credential)
        return credential

    def add_connection(
        self,
        name: str,
        strategy: str,
        options: dict[str, Any] | None,
        default_scopes: Iterable[str],
        enabled_clients: Iterable[str] | None = None,
    ) -> Connection:
        """Register (or replace) a connection, by default enabled for every client."""
        connection = Connection(
            name=name,
            strategy=strategy,
            options=dict(options or {}),
            default_scopes=list(default_scopes),
        )
        with self.lock:
            connection.enabled_clients = (
                list(self.clients) if enabled_clients is None else list(enabled_clients)
            )
            self.connections[name] = connection
        return connection

    def add_client(
        self,
        client_id: str,
        client_secret: str,
        name: str,
        *,
        grant_types: Iterable[str] | None,
        management_scopes: Iterable[str] | None,
        enable_connections: bool = True,
    ) -> Client:
        """Register (or replace) a client; by default enable it on every connection.

        ``management_scopes`` limits the scopes of its Management API tokens (default: all).
        """
        client = Client(client_id, client_secret, name)
        if grant_types is not None:
            client.grant_types = list(grant_types)
        if management_scopes is not None:
            client.management_scopes = list(management_scopes)
        with self.lock:
            self.clients[client_id] = client
            if enable_connections:
                for connection in self.connections.values():
                    if client_id not in connection.enabled_clients:
                        connection.enabled_clients.append(client_id)
        return client

    def add_resource_server(
        self,
        identifier: str,
        name: str | None = None,
        scopes: Iterable[str] = (),
        *,
        signing_alg: str = "RS256",
        rbac: bool = False,
    ) -> ResourceServer:
        """Register (or replace) an API with the scopes it defines."""
        if not identifier:
            raise ValueError("an API needs an identifier")
        if signing_alg not in ("RS256", "HS256"):
            raise ValueError("signing_alg must be RS256 or HS256")
        server = ResourceServer(
            identifier,
            name or identifier,
            split_scopes(scopes),
            signing_alg=signing_alg,
            rbac=rbac,
        )
        with self.lock:
            self.resource_servers[identifier] = server
        return server

    def get_resource_server(self, id_or_identifier: str | None) -> ResourceServer | None:
        """Return the API with this identifier (its audience) or id, or None."""
        with self.lock:
            found = self.resource_servers.get(id_or_identifier or "")
            if found is None:
                found = next(
                    (r for r in self.resource_servers.values() if r.id == id_or_identifier), None
                )
            return found

    def is_known_audience(self, audience: str) -> bool:
        """Tell whether ``audience`` is one of the tenant's APIs (My Account, Management too)."""
        builtin = (self.base_url + "/me/", self.base_url + "/api/v2/")
        return audience in builtin or self.get_resource_server(audience) is not None

    def api_client_for(self, identifier: str) -> Client | None:
        """Return the Custom API Client linked to the API ``identifier``, if there is one."""
        with self.lock:
            return next(
                (
                    c
                    for c in self.clients.values()
                    if c.is_custom_api_client and c.resource_server_identifier == identifier
                ),
                None,
            )

    def get_client(self, client_id: str | None) -> Client | None:
        """Return the client with this id, or None."""
        with self.lock:
            return self.clients.get(client_id or "")

    def get_connection(self, name: str | None) -> Connection | None:
        """Return the connection with this name, or None."""
        with self.lock:
            return self.connections.get(name or "")

    def connection_by_id(self, connection_id: str) -> Connection | None:
        """Return the connection with this ``con_...`` id, or None."""
        with self.lock:
            return next((c for c in self.connections.values() if c.id == connection_id), None)

    def provider_ttl(self, connection: str) -> int:
        """Return the lifetime in seconds of provider tokens issued for ``connection``."""
        with self.lock:
            return self.provider_token_ttl.get(connection, DEFAULT_PROVIDER_TOKEN_TTL)

    def misreport_expires_in(self, connection: str, value: Any) -> None:
        """Make the exchange for ``connection`` report ``expires_in`` = ``value`` (or none).

        ``MISSING`` leaves the field out.

        The tokens keep their real lifetime (:meth:`provider_ttl`): this is an upstream that
        misstates it.
        """
        with self.lock:
            self._require_connection(connection)
            self.reported_expires_in[connection] = value

    def set_provider_ttl(self, connection: str, seconds: int) -> None:
        """Set the lifetime in seconds of provider tokens issued for ``connection``."""
        if seconds < 1:
            raise ValueError("seconds must be at least 1")
        with self.lock:
            self._require_connection(connection)
            self.provider_token_ttl[connection] = int(seconds)

    def set_tokenset_timestamps(self, style: str) -> None:
        """Make the Management API write tokenset times as ``"epoch"`` seconds or ``"iso"``."""
        if style not in ("epoch", "iso"):
            raise ValueError("the tokenset timestamp style must be 'epoch' or 'iso'")
        with self.lock:
            self.tokenset_timestamps = style

    def set_mfa_policy(self, always: bool) -> None:
        """Set the tenant's MFA policy to "Always" (``all-applications``) or "Never"."""
        with self.lock:
            self.mfa_policies = ["all-applications"] if always else []

    def _require_connection(self, name: str) -> Connection:
        connection = self.connections.get(name)
        if connection is None:
            raise ValueError(f"unknown connection {name!r}")
        return connection
