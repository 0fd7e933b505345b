"""A small Auth0 Management API client for setting up and managing Token Vault.

(Layer: core, Flask-free, above the transport and the token endpoint.)

:class:`ManagementClient` gets a Management API token with the client credentials grant
(audience ``https://{domain}/api/v2/``), keeps it until shortly before it expires (one per
client, shared by threads), and calls the API through the app's transport: a timeout on every
try, one deadline for all of them, retries of transient failures and a wait for ``Retry-After``,
and a 401 renews the token once. Whatever still fails raises a
:class:`~flask_token_vault.ManagementError` carrying Auth0's ``statusCode`` (as
``upstream_status``), ``errorCode`` and ``message``. No token or secret ever appears in a log
line, an error or a URL. The records it returns live in :mod:`.records` (re-exported here).

In an app, :func:`~flask_token_vault.management_client` returns the app's client, built once.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from .._clock import Clock, ClockSource
from .._config import Settings, default_settings
from .._exchange import GRANT_TYPE, Exchanger, checked_expires_in
from .._http import Transport, cursor_pages
from .._parsers import parse_domain
from ..errors import (
    InvalidRequest,
    ManagementNotFound,
    TokensetsGone,
    TokenVaultError,
)
from .places import APIS
from .records import (
    Auth0User,
    ConnectedAccount,
    CustomApiClient,
    Tokenset,
    as_record,
    malformed,
    management_failure,
    token_request_error,
)
from .tenant_writes import TenantWrites

log = logging.getLogger("flask_token_vault")

#: What an app's settings default to, for clients built from credentials alone.
_APP_DEFAULTS = default_settings()
_CONNECTION_ID = re.compile(r"^con_[A-Za-z0-9]{1,64}$")
# Auth0's codes for a 404 about the thing asked for; any other 404 is a route the tenant lacks.
_KNOWN_MISSING = frozenset({"inexistent_user", "inexistent_tokenset"})


class ManagementClient(TenantWrites):
    """Call Auth0's Management API (``/api/v2``) with a cached client-credentials token.

    Build it from an app's settings (:func:`~flask_token_vault.management_client` gives the
    app's own, built once) or with :meth:`from_credentials`. Thread-safe: threads share the token
    and the app's transport.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        exchanger: Exchanger | None = None,
        transport: Transport | None = None,
    ) -> None:
        self.settings = settings
        if transport is None:
            transport = exchanger.transport if exchanger is not None else _transport(settings)
        self.transport = transport
        self.exchanger = exchanger or Exchanger(settings, transport)
        self.audience = settings.base_url + "/api/v2/"
        self._token_lock = threading.Lock()
        self._access_token: str | None = None
        self._expires_at = 0.0
        self._lifetime = 0.0

    def __repr__(self) -> str:
        return (
            f"ManagementClient({self.settings.base_url!r}, client_id={self.settings.client_id!r})"
        )

    @property
    def clock(self) -> Clock:
        """Return the clock the client reads (its transport's)."""
        return self.transport.clock

    @classmethod
    def from_credentials(
        cls,
        domain: str,
        client_id: str,
        client_secret: str,
        *,
        http_timeout: float = _APP_DEFAULTS.http_timeout,
        deadline: float = _APP_DEFAULTS.deadline,
        max_retries: int = _APP_DEFAULTS.max_retries,
        clock: ClockSource | Callable[[], float] | None = None,
    ) -> ManagementClient:
        """Build a client for a tenant outside any app (``domain`` as ``AUTH0_DOMAIN`` takes it).

        ``http_timeout``, ``deadline`` and ``max_retries`` default to what an app's settings
        default to. ``clock`` replaces the machine's clocks (in tests, a
        :class:`~flask_token_vault_pytest.testing.FakeClock`).
        """
        settings = default_settings(
            base_url=parse_domain(domain),
            client_id=client_id,
            client_secret=client_secret,
            http_timeout=http_timeout,
            deadline=max(deadline, http_timeout),
            max_retries=max_retries,
        )
        transport = _transport(settings)
        if clock is not None:
            transport.clock.use(clock)
        return cls(settings, transport=transport)

    # token ----------------------------------------------------------------------------------
    def _token(self) -> str:
        with self._token_lock:
            now = self.clock.time()
            leeway = min(60.0, self._lifetime / 4)
            if self._access_token is not None and now < self._expires_at - leeway:
                return self._access_token
            data = {"grant_type": "client_credentials", "audience": self.audience}
            try:
                answer = self.exchanger.post_token(data)
                # Auth0's Management API tokens live a day unless the API's settings say so.
                lifetime = checked_expires_in(answer.get("expires_in"), default=86_400.0)
            except TokenVaultError as exc:
                raise token_request_error(exc) from None
            token = answer.get("access_token")
            if not isinstance(token, str) or not token:
                raise malformed("Auth0 answered the Management API token request without a token.")
            self._lifetime = max(lifetime, 1.0)
            self._access_token = token
            self._expires_at = now + self._lifetime
            return token

    def _drop_token(self, credential: str) -> None:
        with self._token_lock:
            if credential == f"Bearer {self._access_token}":
                self._access_token = None

    def clear_token(self) -> None:
        """Forget the cached Management API token (the next call gets a new one)."""
        with self._token_lock:
            self._access_token = None

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        operation: str | None = None,
    ) -> Any:
        """Call ``/api/v2{path}`` and return its JSON (``None`` for an empty answer)."""
        what = operation or f"{method} {path.split('?')[0]}"
        return self.transport.call_json(
            method,
            self.settings.base_url + "/api/v2" + path,
            error=lambda failure: management_failure(failure, what),
            what=f"Management API call ({what})",
            auth=lambda: f"Bearer {self._token()}",
            renew=self._drop_token,
            params=params,
            json=body,
        ).body

    # tokensets ------------------------------------------------------------------------------
    def _tokensets_call(self, method: str, path: str, operation: str) -> Any:
        try:
            return self.request(method, path, operation=operation)
        except ManagementNotFound as exc:
            if exc.error_code in _KNOWN_MISSING:
                raise
            raise TokensetsGone(
                f"The tokenset endpoints are gone on this tenant: the Management API answered "
                f"404 ({exc.message or exc.error_code}) to {operation}. Auth0 dropped them in "
                "2026-07; what the vault holds is managed as Connected Accounts.",
                upstream_status=404,
                error_code="tokensets_gone",
                message=exc.message,
            ) from None

    def list_tokensets(self, user_id: str) -> list[Tokenset]:
        """Return what Token Vault holds for a user, read as Connected Accounts.

        ``GET /api/v2/users/{id}/connected-accounts`` (scope ``read:users``), the documented
        replacement of the tokenset endpoints Auth0 dropped in 2026-07: each :class:`Tokenset`'s
        ``id`` is the account's ``cac_...`` id, ``issued_at`` when it was connected, and
        ``last_used_at`` is ``None`` (the listing does not say).
        """
        return [
            Tokenset(
                id=account.id,
                connection=account.connection,
                scopes=account.scopes,
                issued_at=account.created_at,
                expires_at=account.expires_at,
                last_used_at=None,
            )
            for account in self._iter_connected_accounts(user_id)
        ]

    def list_legacy_tokensets(self, user_id: str) -> list[Tokenset]:
        """Return the user's tokensets from the old endpoint, while the tenant still answers it.

        ``GET /api/v2/users/{id}/federated-connections-tokensets`` lost its reference page on
        2026-07-14. Raises :class:`~flask_token_vault.TokensetsGone` on a tenant that no longer
        answers it.
        """
        data = self._tokensets_call(
            "GET",
            f"/users/{_q(user_id)}/federated-connections-tokensets",
            "listing tokensets",
        )
        if isinstance(data, Mapping):  # a paginated answer, should Auth0 give one
            data = data.get("tokensets", [])
        if not isinstance(data, list):
            raise malformed("The Management API answered the tokenset list with something else.")
        return [Tokenset.from_api(item) for item in data if isinstance(item, Mapping)]

    def delete_tokenset(self, user_id: str, tokenset_id: str) -> str:
        """Remove one of a user's accounts from the vault; return the id actually deleted.

        The Management API cannot delete a connected account (its listing is read-only): Auth0
        deletes one only at the My Account API, with the user's own token (the app's
        :func:`~flask_token_vault.disconnect`). So, for a ``cac_...`` id, the old tokenset
        endpoint is used *while the tenant still answers it* (the tokenset of that account's
        connection, when there is exactly one), and a warning says so; otherwise
        :class:`~flask_token_vault.TokensetsGone` says the user must disconnect it. Any other id
        is an old tokenset id, deleted at the old endpoint. The provider's tokens are not
        revoked.
        """
        if tokenset_id.startswith("cac_"):
            tokenset_id = self._legacy_id_of(user_id, tokenset_id)
        self._tokensets_call(
            "DELETE",
            f"/users/{_q(user_id)}/federated-connections-tokensets/{_q(tokenset_id)}",
            "deleting a tokenset",
        )
        return tokenset_id

    def _legacy_id_of(self, user_id: str, account_id: str) -> str:
        """Return the old tokenset id of connected account ``account_id``, if one can be told."""
        account = next(
            (a for a in self._iter_connected_accounts(user_id) if a.id == account_id), None
        )
        if account is None:
            raise ManagementNotFound(
                f"The user has no connected account {account_id}.",
                upstream_status=404,
                error_code="inexistent_tokenset",
            )
        must = (
            f"The Management API cannot delete connected account {account_id} "
            f"({account.connection}): only the user can, with their own My Account API token "
            "(the app's Disconnect button, disconnect(account_id), or DELETE "
            "/me/v1/connected-accounts/accounts/{id})."
        )
        try:
            legacy = [
                t for t in self.list_legacy_tokensets(user_id) if t.connection == account.connection
            ]
        except TokensetsGone as exc:
            raise TokensetsGone(
                must + " This tenant no longer answers the old tokenset endpoints either.",
                upstream_status=404,
                message=exc.message,
            ) from None
        if len(legacy) != 1:
            raise TokensetsGone(
                must + f" The old tokenset endpoint lists {len(legacy)} tokensets at "
                f"{account.connection}, so which one is this account cannot be told.",
                upstream_status=404,
            )
        log.warning(
            "tokensets: deleting %s through the old tokenset endpoint, which this tenant still "
            "answers; Auth0 dropped it from its documentation on 2026-07-14",
            account_id,
        )
        return legacy[0].id

    # users ----------------------------------------------------------------------------------
    def users_by_email(self, email: str) -> list[Auth0User]:
        """Return the users with this email address (scope ``read:users``; there may be several).

        ``GET /api/v2/users-by-email``: Auth0 matches the address case-insensitively.
        """
        data = self.request(
            "GET", "/users-by-email", params={"email": email}, operation="finding users by email"
        )
        if not isinstance(data, list):
            raise malformed("The Management API answered the user search with something else.")
        return [Auth0User.from_api(item) for item in data if isinstance(item, Mapping)]

    # connected accounts ---------------------------------------------------------------------
    def list_connected_accounts(self, user_id: str) -> list[ConnectedAccount]:
        """Return every account the user connected (all pages)."""
        return list(self._iter_connected_accounts(user_id))

    def _iter_connected_accounts(self, user_id: str) -> Iterator[ConnectedAccount]:
        def page(query: dict[str, str]) -> Any:
            path = f"/users/{_q(user_id)}/connected-accounts"
            return self.request("GET", path, params=query, operation="listing connected accounts")

        for item in cursor_pages(page, "connected_accounts"):
            yield ConnectedAccount.from_api(item)

    # connections ----------------------------------------------------------------------------
    def find_connection(self, name_or_id: str) -> dict[str, Any]:
        """Return a connection by its id (``con_...``) or its name."""
        if _CONNECTION_ID.match(name_or_id):
            try:
                return self.read_connection(name_or_id)
            except ManagementNotFound:
                pass  # a connection may be *named* like an id
        data = self.request(
            "GET", "/connections", params={"name": name_or_id}, operation="finding a connection"
        )
        if isinstance(data, Mapping):
            data = data.get("connections", [])
        found = [c for c in data or [] if isinstance(c, Mapping) and c.get("name") == name_or_id]
        if not found:
            raise ManagementNotFound(
                f"There is no connection named or with the id {name_or_id!r}.",
                upstream_status=404,
                error_code="inexistent_connection",
                message="The connection does not exist",
                connection=name_or_id,
            )
        return dict(found[0])

    def read_connection(
        self, connection_id: str, fields: Sequence[str] | None = None
    ) -> dict[str, Any]:
        """Return a connection by its id, only ``fields`` of it when given."""
        params = {"fields": ",".join(fields), "include_fields": "true"} if fields else None
        data = self.request(
            "GET",
            f"/connections/{_q(connection_id)}",
            params=params,
            operation="reading a connection",
        )
        return as_record(data, "a connection")

    def connection_clients(self, connection: Mapping[str, Any]) -> list[str]:
        """Return the ids of the clients a connection (its record) is enabled for.

        The record's ``enabled_clients`` when it has them, else ``GET
        /connections/{id}/clients`` (all pages), where Auth0 moved that list.
        """
        listed = connection.get("enabled_clients")
        if isinstance(listed, list):
            return [str(item) for item in listed]
        path = f"/connections/{_q(str(connection.get('id', '')))}/clients"

        def page(query: dict[str, str]) -> Any:
            return self.request(
                "GET", path, params=query, operation="listing a connection's clients"
            )

        return [str(item.get("client_id")) for item in cursor_pages(page, "clients")]

    # clients --------------------------------------------------------------------------------
    def get_client(self, client_id: str | None = None) -> dict[str, Any]:
        """Return a client's settings (default: this app's client)."""
        data = self.request(
            "GET",
            f"/clients/{_q(client_id or self.settings.client_id)}",
            operation="reading a client",
        )
        return as_record(data, "a client")

    # client credentials (keys instead of secrets) -------------------------------------------
    def list_credentials(self, client_id: str | None = None) -> list[dict[str, Any]]:
        """Return a client's credentials (public keys; Auth0 never returns the key itself)."""
        data = self.request(
            "GET",
            f"/clients/{_q(client_id or self.settings.client_id)}/credentials",
            operation="listing client credentials",
        )
        return [dict(c) for c in data or [] if isinstance(c, Mapping)]

    def add_credential(
        self, public_pem: str, alg: str, name: str, client_id: str | None = None
    ) -> dict[str, Any]:
        """Register a public key on a client; it is used once the client names it."""
        data = self.request(
            "POST",
            f"/clients/{_q(client_id or self.settings.client_id)}/credentials",
            body={"credential_type": "public_key", "name": name, "pem": public_pem, "alg": alg},
            operation="registering a client credential",
        )
        if not isinstance(data, Mapping) or not isinstance(data.get("id"), str):
            raise malformed("The Management API answered the new credential without its id.")
        return dict(data)

    def enable_private_key_jwt(self, credential_id: str, client_id: str | None = None) -> bool:
        """Make a client authenticate with ``private_key_jwt`` using a credential (and no secret).

        Keeps the credentials already enabled; returns whether anything changed.
        """
        target = client_id or self.settings.client_id
        client = self.get_client(target)
        methods = client.get("client_authentication_methods")
        current = (methods or {}).get("private_key_jwt") if isinstance(methods, Mapping) else None
        ids = [
            str(c["id"])
            for c in (current or {}).get("credentials") or []
            if isinstance(c, Mapping) and isinstance(c.get("id"), str)
        ]
        if credential_id in ids and client.get("token_endpoint_auth_method") is None:
            return False
        wanted = [*ids, *([] if credential_id in ids else [credential_id])]
        self.request(
            "PATCH",
            f"/clients/{_q(target)}",
            body={
                "token_endpoint_auth_method": None,  # nosec B105 - clears the secret method
                "client_authentication_methods": {
                    "private_key_jwt": {"credentials": [{"id": i} for i in wanted]}
                },
            },
            operation="enabling private_key_jwt",
        )
        log.info("private_key_jwt enabled on client %s", target)
        return True

    def set_privileged_access(self, block: Mapping[str, Any], client_id: str | None = None) -> None:
        """Set a client's ``token_vault_privileged_access`` (the Privileged Worker's rights)."""
        self.request(
            "PATCH",
            f"/clients/{_q(client_id or self.settings.client_id)}",
            body={"token_vault_privileged_access": dict(block)},
            operation="setting Token Vault privileged access",
        )

    # APIs and their Custom API Clients ------------------------------------------------------
    def get_resource_server(self, identifier: str) -> dict[str, Any]:
        """Return an API (resource server) by its identifier (its audience) or its id."""
        try:
            data = self.request(
                "GET", f"/resource-servers/{_q(identifier)}", operation="reading an API"
            )
        except ManagementNotFound as exc:
            raise exc.restated(
                f"The tenant has no API with the identifier {identifier!r}.",
                remedy=f"Create the API ({APIS}), signing with RS256, or fix AUTH0_AUDIENCE to "
                "the identifier of an existing one.",
            ) from None
        return as_record(data, "an API")

    def find_api_client(self, identifier: str) -> CustomApiClient | None:
        """Return the Custom API Client linked to the API ``identifier``, or ``None``."""
        fields = "client_id,name,app_type,resource_server_identifier,grant_types"
        per_page = 100
        for page in range(100):  # a bound, should the API keep answering full pages
            data = self.request(
                "GET",
                "/clients",
                params={
                    "app_type": "resource_server",
                    "fields": fields,
                    "include_fields": "true",
                    "page": str(page),
                    "per_page": str(per_page),
                },
                operation="listing Custom API Clients",
            )
            if isinstance(data, Mapping):
                data = data.get("clients", [])
            items = [c for c in data or [] if isinstance(c, Mapping)]
            for item in items:
                if (
                    item.get("app_type") == "resource_server"
                    and item.get("resource_server_identifier") == identifier
                ):
                    return CustomApiClient.from_api(item)
            if len(items) < per_page:
                return None
        return None

    def get_client_secret(self, client_id: str) -> str | None:
        """Return a client's secret, or ``None`` when the Management API leaves it out.

        Auth0 answers ``client_secret`` only to a token with the ``read:client_keys`` scope
        (and a client that signs in with a key, or a public one, has none to give).
        """
        data = self.request(
            "GET",
            f"/clients/{_q(client_id)}",
            params={"fields": "client_id,client_secret", "include_fields": "true"},
            operation="reading a client's secret",
        )
        secret = data.get("client_secret") if isinstance(data, Mapping) else None
        return secret if isinstance(secret, str) and secret else None

    def enable_api_client(
        self, identifier: str | None = None, *, name: str | None = None
    ) -> CustomApiClient:
        """Create or find the Custom API Client of an API, with the Token Vault grant.

        ``identifier`` defaults to ``AUTH0_AUDIENCE``. Idempotent: an existing client linked to
        the API is returned (given the Token Vault grant if it lacked it, keeping its other
        grants); otherwise ``POST /api/v2/clients`` creates one (``app_type:
        "resource_server"``) and the answer carries its secret, which Auth0 shows only then.
        Raises :class:`~flask_token_vault.ManagementNotFound` when the tenant has no such API.
        """
        target = identifier or self.settings.audience
        if not target:
            raise InvalidRequest(
                "No API identifier: pass one, or set AUTH0_AUDIENCE.",
                remedy="Set AUTH0_AUDIENCE to the identifier of your API.",
            )
        server = self.get_resource_server(target)
        found = self.find_api_client(target)
        if found is not None:
            if GRANT_TYPE in found.grant_types:
                return found
            grants = [*found.grant_types, GRANT_TYPE]
            answer = self.request(
                "PATCH",
                f"/clients/{_q(found.client_id)}",
                body={"grant_types": grants},
                operation="enabling the Token Vault grant on the Custom API Client",
            )
            log.info("Token Vault grant enabled on Custom API Client %s", found.client_id)
            return CustomApiClient.from_api(answer if isinstance(answer, Mapping) else {})
        label = str(server.get("name") or target)
        answer = self.request(
            "POST",
            "/clients",
            body={
                "name": name or f"{label} (Custom API Client)"[:120],
                "app_type": "resource_server",
                "resource_server_identifier": target,
                "grant_types": [GRANT_TYPE],
            },
            operation="creating the Custom API Client",
        )
        if not isinstance(answer, Mapping) or not answer.get("client_id"):
            raise malformed("The Management API answered the new client with something else.")
        log.info("Custom API Client %s created for an API", answer.get("client_id"))
        return CustomApiClient.from_api(answer, created=True)

    # tenant ---------------------------------------------------------------------------------
    def get_mfa_policies(self) -> list[str]:
        """Return the tenant's MFA policies (``["all-applications"]`` is "Always")."""
        data = self.request("GET", "/guardian/policies", operation="reading the MFA policy")
        return [p for p in data or [] if isinstance(p, str)] if isinstance(data, list) else []


def _q(value: str) -> str:
    return quote(value, safe="")


def _transport(settings: Settings) -> Transport:
    return Transport(
        http_timeout=settings.http_timeout,
        deadline=settings.deadline,
        max_retries=settings.max_retries,
        pool_maxsize=16,
        rate_limit_wait=None,  # a command waits out the Management API's limit, within the deadline
    )
