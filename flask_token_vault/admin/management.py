"""A small Auth0 Management API client for setting up and managing Token Vault.

(Layer: core, Flask-free, above the transport and the token endpoint.)

:class:`ManagementClient` gets a Management API token with the client credentials grant
(audience ``https://{domain}/api/v2/``), keeps it until shortly before it expires (one per
client, shared by threads), and calls the API through the app's transport: a timeout on every
try, one deadline for all of them, retries of transient failures and a wait for ``Retry-After``,
and a 401 renews the token once. Whatever still fails raises a
:class:`~flask_token_vault.ManagementError` carrying Auth0's ``statusCode`` (as
``upstream_status``), ``errorCode`` and ``message``. No token or secret ever appears in a log
line, an error or a URL.

In an app, :func:`~flask_token_vault.management_client` returns the app's client, built once.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

from .._clock import Clock, ClockSource
from .._http import Failure, Transport, clean_text, cursor_pages
from ..config import (
    DEFAULT_DEADLINE,
    DEFAULT_HTTP_TIMEOUT,
    DEFAULT_MAX_RETRIES,
    Settings,
    parse_domain,
    split_scopes,
)
from ..errors import (
    Auth0Unavailable,
    ClientNotEligible,
    InvalidRequest,
    ManagementError,
    ManagementForbidden,
    ManagementNotFound,
    ManagementRateLimited,
    RateLimited,
    TokensetsGone,
    TokenVaultError,
)
from ..exchange import GRANT_TYPE, Exchanger, checked_expires_in

__all__ = [
    "MY_ACCOUNT_POLICY_SCOPES",
    "REQUIRED_GRANT_TYPES",
    "Auth0User",
    "ConnectedAccount",
    "CustomApiClient",
    "ManagementClient",
    "Tokenset",
    "VaultSwitches",
    "client_problems",
    "missing_my_account_scopes",
    "parse_timestamp",
    "vault_switches",
]

log = logging.getLogger("flask_token_vault")

#: The grant types a client needs for Token Vault, added by :meth:`enable_token_vault_grant`.
REQUIRED_GRANT_TYPES = ("authorization_code", "refresh_token", GRANT_TYPE)
VAULT_OPTION = "federated_connections_access_tokens"
#: The My Account API scopes the client's refresh-token policy must allow for Connected Accounts.
MY_ACCOUNT_POLICY_SCOPES = (
    "create:me:connected_accounts",
    "read:me:connected_accounts",
    "delete:me:connected_accounts",
)
_CONNECTION_ID = re.compile(r"^con_[A-Za-z0-9]{1,64}$")
# Auth0's codes for a 404 about the thing asked for; any other 404 is a route the tenant lacks.
_KNOWN_MISSING = frozenset({"inexistent_user", "inexistent_tokenset"})


@dataclass(frozen=True)
class VaultSwitches:
    """Which of the two Token Vault switches a connection (Management API JSON) has on."""

    #: ``connected_accounts.active``: Connected Accounts through the My Account API (2026).
    #: ``None`` when the record has no such field (a tenant from before Connected Accounts, or
    #: one where it was never set).
    connected_accounts: bool | None
    #: ``options.federated_connections_access_tokens.active``: the 2025 switch, with which
    #: signing in through the connection (``connection_scope``) fills the vault.
    sign_in: bool

    @property
    def flows(self) -> tuple[str, ...]:
        """Return the ``TOKEN_VAULT_CONNECT_FLOW`` values the switches allow."""
        found = []
        if self.connected_accounts:
            found.append("connected_accounts")
        if self.sign_in:
            found.append("authorize")
        return tuple(found)

    def describe(self) -> str:
        """Return which way the connection fills the vault, in words."""
        if self.connected_accounts and self.sign_in:
            return (
                "Connected Accounts (connected_accounts.active) and sign-in "
                f"(options.{VAULT_OPTION}.active)"
            )
        if self.connected_accounts:
            return "Connected Accounts (connected_accounts.active)"
        if self.sign_in:
            return f"sign-in with connection_scope (options.{VAULT_OPTION}.active, the 2025 switch)"
        return "neither: connected_accounts.active and options." + VAULT_OPTION + ".active are off"


def vault_switches(connection: Mapping[str, Any]) -> VaultSwitches:
    """Read a connection's Token Vault switches (Management API JSON)."""
    options = connection.get("options")
    option = options.get(VAULT_OPTION) if isinstance(options, Mapping) else None
    setting = connection.get("connected_accounts")
    return VaultSwitches(
        connected_accounts=_active(setting) if isinstance(setting, Mapping) else None,
        sign_in=_active(option),
    )


def _active(setting: Any) -> bool:
    """Tell whether a switch object of a connection (``{"active": ...}``) is on."""
    return isinstance(setting, Mapping) and setting.get("active") is True


def missing_my_account_scopes(client: Mapping[str, Any], base_url: str) -> list[str]:
    """Return the My Account scopes the client's refresh-token policies do not allow.

    Empty when the client may get My Account API tokens for Connected Accounts (a policy for
    ``{base_url}/me/`` with every scope of :data:`MY_ACCOUNT_POLICY_SCOPES`).
    """
    granted: set[str] = set()
    refresh = client.get("refresh_token")
    policies = refresh.get("policies") if isinstance(refresh, Mapping) else None
    for policy in policies if isinstance(policies, list) else []:
        if isinstance(policy, Mapping) and policy.get("audience") == base_url + "/me/":
            scope = policy.get("scope")
            if isinstance(scope, list):
                granted.update(s for s in scope if isinstance(s, str))
    return [s for s in MY_ACCOUNT_POLICY_SCOPES if s not in granted]


def parse_timestamp(value: Any) -> datetime | None:
    """Read a Management API time: epoch seconds (or milliseconds) or an ISO 8601 date-time.

    Returns an aware UTC datetime, or ``None`` for a missing or unreadable value.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if re.fullmatch(r"\d+(\.\d+)?", text):
            value = float(text)
        else:
            try:
                moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
            except ValueError:
                return None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=timezone.utc)
            return moment.astimezone(timezone.utc)
    if isinstance(value, (int, float)):
        seconds = float(value)
        if seconds > 1e11:  # milliseconds
            seconds /= 1000
        try:
            return datetime.fromtimestamp(seconds, timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    return None


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.isoformat().replace("+00:00", "Z")


class _JsonRecord:
    """A record of the Management API that gives its fields back as JSON (see :meth:`to_dict`)."""

    #: Fields :meth:`to_dict` leaves out (secrets).
    _leave_out: ClassVar[tuple[str, ...]] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict of the fields: ISO 8601 times, lists for tuples, no secret."""
        body: dict[str, Any] = {}
        for item in fields(self):  # type: ignore[arg-type]  # every subclass is a dataclass
            if item.name not in self._leave_out:
                value = getattr(self, item.name)
                if isinstance(value, datetime):
                    value = _iso(value)
                body[item.name] = list(value) if isinstance(value, tuple) else value
        return body


def _malformed(description: str) -> ManagementError:
    """Return the error for an answer that is not what the Management API documents."""
    return ManagementError(description, error_code="malformed_answer", code=503)


def _record(data: Any, what: str) -> dict[str, Any]:
    """Return an answer that must be one JSON object (``what``, e.g. ``a client``) as a dict."""
    if not isinstance(data, Mapping):
        raise _malformed(f"The Management API answered with something that is not {what}.")
    return dict(data)


def _scopes(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return split_scopes(value)
    if isinstance(value, list):
        return tuple(dict.fromkeys(s for s in value if isinstance(s, str) and s))
    return ()


@dataclass(frozen=True)
class Tokenset(_JsonRecord):
    """A set of provider tokens Token Vault holds for a user at one connection."""

    #: Auth0's tokenset id.
    id: str
    #: The connection name, e.g. ``google-oauth2``.
    connection: str
    #: The scopes granted at the provider.
    scopes: tuple[str, ...]
    #: When the tokens were issued.
    issued_at: datetime | None
    #: When the provider access token expires (Auth0 refreshes it itself).
    expires_at: datetime | None
    #: When the tokenset was last used (Auth0 updates it at most once a day).
    last_used_at: datetime | None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Tokenset:
        """Build a tokenset from the Management API's JSON (epoch or date-time times)."""
        return cls(
            id=str(data.get("id", "")),
            connection=str(data.get("connection", "")),
            scopes=_scopes(data.get("scope", data.get("scopes"))),
            issued_at=parse_timestamp(data.get("issued_at")),
            expires_at=parse_timestamp(data.get("expires_at")),
            last_used_at=parse_timestamp(data.get("last_used_at")),
        )


@dataclass(frozen=True)
class Auth0User(_JsonRecord):
    """A user of the tenant, as the Management API describes one (the fields a CLI needs)."""

    #: The Auth0 user id, e.g. ``google-oauth2|1234`` or ``auth0|abc``.
    user_id: str
    #: The email address.
    email: str | None
    #: The display name.
    name: str | None
    #: The connections the user signs in with (from their identities).
    connections: tuple[str, ...]
    #: When the user was created.
    created_at: datetime | None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Auth0User:
        """Build a user from the Management API's JSON."""
        identities = data.get("identities")
        connections = tuple(
            str(item["connection"])
            for item in (identities if isinstance(identities, list) else [])
            if isinstance(item, Mapping) and isinstance(item.get("connection"), str)
        )
        email, name = data.get("email"), data.get("name")
        return cls(
            user_id=str(data.get("user_id", "")),
            email=email if isinstance(email, str) else None,
            name=name if isinstance(name, str) else None,
            connections=connections,
            created_at=parse_timestamp(data.get("created_at")),
        )


@dataclass(frozen=True)
class ConnectedAccount(_JsonRecord):
    """An account a user connected through Connected Accounts (My Account or Management API)."""

    #: The account id (``cac_...``).
    id: str
    #: The connection name.
    connection: str
    #: The scopes granted at the provider.
    scopes: tuple[str, ...]
    #: ``offline`` for an account with a refresh token.
    access_type: str | None = None
    #: When the account was connected.
    created_at: datetime | None = None
    #: When the provider access token expires.
    expires_at: datetime | None = None
    #: The connection id (Management API only).
    connection_id: str | None = None
    #: The connection's strategy (Management API only).
    strategy: str | None = None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> ConnectedAccount:
        """Build an account from the Management or My Account API's JSON."""

        def text(name: str) -> str | None:
            value = data.get(name)
            return value if isinstance(value, str) and value else None

        return cls(
            id=str(data.get("id", "")),
            connection=str(data.get("connection", "")),
            scopes=_scopes(data.get("scopes", data.get("scope"))),
            access_type=text("access_type"),
            created_at=parse_timestamp(data.get("created_at")),
            expires_at=parse_timestamp(data.get("expires_at")),
            connection_id=text("connection_id"),
            strategy=text("strategy"),
        )


@dataclass(frozen=True)
class CustomApiClient(_JsonRecord):
    """An API's Custom API Client: the client that exchanges callers' access tokens."""

    #: The client id (``TOKEN_VAULT_API_CLIENT_ID``).
    client_id: str
    #: Its name in the Dashboard.
    name: str
    #: The identifier of the API it is linked to (``AUTH0_AUDIENCE``).
    resource_server_identifier: str
    #: Its grant types (the Token Vault grant among them).
    grant_types: tuple[str, ...]
    #: Whether :meth:`ManagementClient.enable_api_client` created it just now.
    created: bool = False
    #: Its secret: only known right after creating it (``TOKEN_VAULT_API_CLIENT_SECRET``).
    client_secret: str | None = field(default=None, repr=False)

    _leave_out = ("client_secret",)

    @classmethod
    def from_api(cls, data: Mapping[str, Any], *, created: bool = False) -> CustomApiClient:
        """Build one from the Management API's client JSON."""
        secret = data.get("client_secret")
        return cls(
            client_id=str(data.get("client_id", "")),
            name=str(data.get("name", "")),
            resource_server_identifier=str(data.get("resource_server_identifier", "")),
            grant_types=tuple(g for g in data.get("grant_types") or [] if isinstance(g, str)),
            created=created,
            client_secret=secret if isinstance(secret, str) and secret else None,
        )


def client_problems(client: Mapping[str, Any]) -> list[str]:
    """Return why a client (Management API JSON) cannot use Token Vault; empty when it can."""
    problems: list[str] = []
    if client.get("is_first_party") is False:
        problems.append("it is not a first-party application (is_first_party is false)")
    if client.get("token_endpoint_auth_method") == "none":
        problems.append(
            "it is not confidential (token_endpoint_auth_method is 'none'; use a Regular Web "
            "Application with a client secret)"
        )
    if client.get("oidc_conformant") is not True:
        problems.append(
            "it is not OIDC conformant (turn on 'OIDC Conformant' in Advanced Settings > OAuth)"
        )
    return problems


#: What a refused Management API call raises, in the group that must act on it.
_Refusal = ManagementError | ManagementNotFound | ManagementForbidden


def _management_error(status: int, body: Any, operation: str) -> _Refusal:
    data: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
    raw_code = data.get("errorCode") or data.get("error") or f"http_{status}"
    code = clean_text(raw_code, 100) or f"http_{status}"
    message = clean_text(data.get("message") or data.get("error_description"))
    said = (message or code).rstrip(".")
    description = f"The Management API refused {operation} ({status}): {said}."
    kwargs: dict[str, Any] = {
        "upstream_status": status,
        "error_code": code,
        "message": message,
    }
    if status == 404:
        return ManagementNotFound(description, **kwargs)
    if status == 403:
        return ManagementForbidden(description, **kwargs)
    if status == 401:
        return ManagementError(
            description,
            remedy="Check AUTH0_CLIENT_ID / AUTH0_CLIENT_SECRET and that the application is "
            "authorized for the Auth0 Management API.",
            **kwargs,
        )
    return ManagementError(description, **kwargs)


def management_failure(failure: Failure, operation: str) -> _Refusal:
    """Turn a failed Management API call into the typed error naming the call."""
    status = failure.status
    if failure.kind in ("timeout", "connection_error"):
        said = (
            "did not answer in time"
            if failure.kind == "timeout"
            else (f"could not be reached ({failure.reason})")
        )
        return _unavailable(f"The Management API {said}.", failure.kind, None, operation)
    if status is not None and status == 429:
        error = _management_error(429, failure.body, operation)
        return ManagementRateLimited(
            error.description,
            retry_after=failure.retry_after,
            upstream_status=429,
            error_code=error.error_code,
            message=error.message,
        )
    if status is not None and (status >= 500 or 200 <= status < 300):
        detail = "with a body that is not JSON" if failure.kind == "malformed_answer" else ""
        return _unavailable(
            f"The Management API answered {status}{' ' + detail if detail else ''}.",
            "malformed_answer" if failure.kind == "malformed_answer" else f"http_{status}",
            status,
            operation,
        )
    return _management_error(status or 0, failure.body, operation)


def _unavailable(
    description: str, code: str, status: int | None, operation: str
) -> ManagementError:
    return ManagementError(
        f"{description} ({operation})",
        upstream_status=status,
        error_code=code,
        remedy="Auth0 did not answer properly; try again in a moment.",
        code=503,
    )


class ManagementClient:
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
        http_timeout: float = DEFAULT_HTTP_TIMEOUT,
        deadline: float = DEFAULT_DEADLINE,
        max_retries: int = DEFAULT_MAX_RETRIES,
        clock: ClockSource | Callable[[], float] | None = None,
    ) -> ManagementClient:
        """Build a client for a tenant outside any app (``domain`` as ``AUTH0_DOMAIN`` takes it).

        ``http_timeout``, ``deadline`` and ``max_retries`` default to what an app's settings
        default to (10 s, 15 s, 3). ``clock`` replaces the machine's clocks (in tests, a
        :class:`~flask_token_vault_pytest.testing.FakeClock`).
        """
        settings = Settings(
            base_url=parse_domain(domain),
            client_id=client_id,
            client_secret=client_secret,
            audience=None,
            scopes=(),
            connections={},
            url_prefix="",
            default_next="/",
            logout_return_to=None,
            http_timeout=http_timeout,
            deadline=max(deadline, http_timeout),
            encryption_keys=(),
            cache_leeway=0.0,
            cache=None,
            lock_timeout=1.0,
            connect_flow="authorize",
            send_exchange_scope=False,
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
                raise _token_error(exc) from None
            token = answer.get("access_token")
            if not isinstance(token, str) or not token:
                raise _malformed("Auth0 answered the Management API token request without a token.")
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
        """Return the tokensets Token Vault holds for a user.

        Raises :class:`~flask_token_vault.TokensetsGone` on a tenant without the tokenset
        endpoints (use :meth:`list_connected_accounts` there).
        """
        data = self._tokensets_call(
            "GET",
            f"/users/{_q(user_id)}/federated-connections-tokensets",
            "listing tokensets",
        )
        if isinstance(data, Mapping):  # a paginated answer, should Auth0 give one
            data = data.get("tokensets", [])
        if not isinstance(data, list):
            raise _malformed("The Management API answered the tokenset list with something else.")
        return [Tokenset.from_api(item) for item in data if isinstance(item, Mapping)]

    def delete_tokenset(self, user_id: str, tokenset_id: str) -> None:
        """Delete one of a user's tokensets (the provider's tokens are not revoked).

        Raises :class:`~flask_token_vault.TokensetsGone` on a tenant without the tokenset
        endpoints (delete through the My Account API there).
        """
        self._tokensets_call(
            "DELETE",
            f"/users/{_q(user_id)}/federated-connections-tokensets/{_q(tokenset_id)}",
            "deleting a tokenset",
        )

    # users ----------------------------------------------------------------------------------
    def users_by_email(self, email: str) -> list[Auth0User]:
        """Return the users with this email address (scope ``read:users``; there may be several).

        ``GET /api/v2/users-by-email``: Auth0 matches the address case-insensitively.
        """
        data = self.request(
            "GET", "/users-by-email", params={"email": email}, operation="finding users by email"
        )
        if not isinstance(data, list):
            raise _malformed("The Management API answered the user search with something else.")
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
                return self._connection_by_id(name_or_id)
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

    def _connection_by_id(
        self, connection_id: str, fields: Sequence[str] | None = None
    ) -> dict[str, Any]:
        params = {"fields": ",".join(fields), "include_fields": "true"} if fields else None
        data = self.request(
            "GET",
            f"/connections/{_q(connection_id)}",
            params=params,
            operation="reading a connection",
        )
        return _record(data, "a connection")

    def enable_token_vault(self, connection: str) -> bool:
        """Turn Token Vault on for a connection (by id or name); return whether anything changed.

        Reads the connection's ``options`` and PATCHes the whole object back with
        ``federated_connections_access_tokens.active`` set, every other option unchanged (a
        PATCH of ``options`` replaces the object). A no-op when it is already on.
        """
        found, options = self._connection_field(connection, "options")
        options = dict(options) if isinstance(options, Mapping) else {}
        if _active(options.get(VAULT_OPTION)):
            return False
        options[VAULT_OPTION] = {"active": True}
        return self._turn_on(found, {"options": options}, "Token Vault")

    def enable_connected_accounts(self, connection: str) -> bool:
        """Turn Connected Accounts on for a connection; return whether anything changed."""
        found, setting = self._connection_field(connection, "connected_accounts")
        if _active(setting):
            return False
        new = {**(setting if isinstance(setting, Mapping) else {}), "active": True}
        return self._turn_on(found, {"connected_accounts": new}, "Connected Accounts")

    def _connection_field(self, connection: str, name: str) -> tuple[dict[str, Any], Any]:
        """Return a connection (by id or name) and the current value of its field ``name``."""
        found = self.find_connection(connection)
        return found, self._connection_by_id(str(found.get("id", "")), [name]).get(name)

    def _turn_on(self, found: Mapping[str, Any], body: dict[str, Any], switch: str) -> bool:
        """PATCH ``body`` onto the connection ``found``, which turns ``switch`` on; return True."""
        connection_id = str(found.get("id", ""))
        self.request(
            "PATCH",
            f"/connections/{_q(connection_id)}",
            body=body,
            operation=f"enabling {switch} on a connection",
        )
        log.info("%s enabled on connection %s", switch, found.get("name", connection_id))
        return True

    # clients --------------------------------------------------------------------------------
    def get_client(self, client_id: str | None = None) -> dict[str, Any]:
        """Return a client's settings (default: this app's client)."""
        data = self.request(
            "GET",
            f"/clients/{_q(client_id or self.settings.client_id)}",
            operation="reading a client",
        )
        return _record(data, "a client")

    def enable_token_vault_grant(self, client_id: str | None = None) -> bool:
        """Add the Token Vault grant (and authorization_code, refresh_token) to a client.

        Keeps the client's other grant types; returns whether anything changed. Raises
        :class:`~flask_token_vault.ClientNotEligible` naming each problem when the client is
        not first-party, not confidential or not OIDC conformant.
        """
        target = client_id or self.settings.client_id
        client = self.get_client(target)
        problems = client_problems(client)
        if problems:
            raise ClientNotEligible(target, problems)
        grants = [g for g in client.get("grant_types") or [] if isinstance(g, str)]
        missing = [g for g in REQUIRED_GRANT_TYPES if g not in grants]
        if not missing:
            return False
        self.request(
            "PATCH",
            f"/clients/{_q(target)}",
            body={"grant_types": grants + missing},
            operation="enabling the Token Vault grant",
        )
        log.info("Token Vault grant enabled on client %s", target)
        return True

    def _refresh_token_settings(self, client: Mapping[str, Any]) -> dict[str, Any]:
        settings = client.get("refresh_token")
        return dict(settings) if isinstance(settings, Mapping) else {}

    def _patch_refresh_token(self, target: str, settings: Mapping[str, Any], what: str) -> None:
        # Auth0 takes refresh_token as one object: send every field back, not only the change.
        body = dict(settings)
        body.setdefault("rotation_type", "non-rotating")
        body.setdefault("expiration_type", "non-expiring")
        self.request(
            "PATCH", f"/clients/{_q(target)}", body={"refresh_token": body}, operation=what
        )

    def allow_my_account(self, client_id: str | None = None) -> bool:
        """Let a client's refresh token get My Account API tokens; return whether it changed.

        Adds (or widens) the Multi-Resource Refresh Token policy for ``https://{domain}/me/``
        with :data:`MY_ACCOUNT_POLICY_SCOPES`, keeping the client's other policies and every
        other refresh-token setting. A no-op when the policy already allows them.
        """
        target = client_id or self.settings.client_id
        client = self.get_client(target)
        audience = self.settings.base_url + "/me/"
        if not missing_my_account_scopes(client, self.settings.base_url):
            return False
        settings = self._refresh_token_settings(client)
        raw = settings.get("policies")
        policies = [dict(p) for p in raw if isinstance(p, Mapping)] if isinstance(raw, list) else []
        mine = [p for p in policies if p.get("audience") == audience]
        if mine:
            scope = mine[0].get("scope")
            kept = [s for s in scope if isinstance(s, str)] if isinstance(scope, list) else []
            mine[0]["scope"] = list(dict.fromkeys([*kept, *MY_ACCOUNT_POLICY_SCOPES]))
        else:
            policies.append({"audience": audience, "scope": list(MY_ACCOUNT_POLICY_SCOPES)})
        settings["policies"] = policies
        self._patch_refresh_token(target, settings, "allowing the My Account API")
        log.info("My Account API policy added to client %s", target)
        return True

    def disable_refresh_token_rotation(self, client_id: str | None = None) -> bool:
        """Turn refresh-token rotation off (Token Vault does not support it); return if changed.

        Keeps every other refresh-token setting, the policies included.
        """
        target = client_id or self.settings.client_id
        settings = self._refresh_token_settings(self.get_client(target))
        if settings.get("rotation_type") != "rotating":
            return False
        settings["rotation_type"] = "non-rotating"
        self._patch_refresh_token(target, settings, "turning refresh-token rotation off")
        log.info("Refresh-token rotation turned off on client %s", target)
        return True

    def add_client_urls(
        self,
        *,
        callbacks: Sequence[str] = (),
        logout_urls: Sequence[str] = (),
        client_id: str | None = None,
    ) -> list[str]:
        """Add Allowed Callback and Allowed Logout URLs to a client; return the ones added.

        Keeps the URLs already there (the Management API replaces each list whole).
        """
        target = client_id or self.settings.client_id
        client = self.get_client(target)
        body: dict[str, list[str]] = {}
        added: list[str] = []
        for field_name, wanted in (("callbacks", callbacks), ("allowed_logout_urls", logout_urls)):
            raw = client.get(field_name)
            current = [u for u in raw if isinstance(u, str)] if isinstance(raw, list) else []
            missing = [u for u in dict.fromkeys(wanted) if u not in current]
            if missing:
                body[field_name] = current + missing
                added.extend(missing)
        if body:
            self.request(
                "PATCH", f"/clients/{_q(target)}", body=body, operation="adding the app's URLs"
            )
            log.info("URLs added to client %s: %d", target, len(added))
        return added

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
            raise _malformed("The Management API answered the new credential without its id.")
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
            raise ManagementNotFound(
                f"The tenant has no API with the identifier {identifier!r}.",
                upstream_status=exc.upstream_status,
                error_code=exc.error_code,
                message=exc.message,
                remedy="Create the API in the Auth0 Dashboard (Applications > APIs), signing "
                "with RS256, or fix AUTH0_AUDIENCE to the identifier of an existing one.",
            ) from None
        return _record(data, "an API")

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
            raise _malformed("The Management API answered the new client with something else.")
        log.info("Custom API Client %s created for an API", answer.get("client_id"))
        return CustomApiClient.from_api(answer, created=True)

    def add_backchannel_logout_url(self, url: str, client_id: str | None = None) -> bool:
        """Register ``url`` as a back-channel logout URL of a client (default: this app's).

        Reads the client's ``oidc_logout`` and PATCHes it back whole with ``url`` added to
        ``backchannel_logout_urls``, every other value unchanged (a PATCH of ``oidc_logout``
        replaces the object). Returns whether anything changed. ``url`` must be https (plain
        http only on a loopback address).
        """
        parts = urlsplit(url)
        loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
        if not parts.hostname or not (
            parts.scheme == "https" or (parts.scheme == "http" and loopback)
        ):
            raise ValueError(f"a back-channel logout URL must be an https URL, not {url!r}")
        target = client_id or self.settings.client_id
        current = self.get_client(target).get("oidc_logout")
        settings = dict(current) if isinstance(current, Mapping) else {}
        found = settings.get("backchannel_logout_urls")
        urls = [u for u in found if isinstance(u, str)] if isinstance(found, list) else []
        if url in urls:
            return False
        settings["backchannel_logout_urls"] = [*urls, url]
        self.request(
            "PATCH",
            f"/clients/{_q(target)}",
            body={"oidc_logout": settings},
            operation="registering a back-channel logout URL",
        )
        log.info("back-channel logout URL registered on client %s", target)
        return True

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
    )


def _token_error(exc: TokenVaultError) -> ManagementError:
    status = exc.upstream_status
    code = exc.error
    if isinstance(exc, RateLimited):
        return ManagementRateLimited(
            "Auth0 rate-limited the Management API token request.",
            retry_after=exc.retry_after,
            upstream_status=status,
            error_code=code,
        )
    if isinstance(exc, Auth0Unavailable):
        return ManagementError(
            f"Auth0 did not answer the Management API token request ({code}).",
            upstream_status=status,
            error_code=code,
            remedy="Auth0 did not answer properly; try again in a moment.",
            code=503,
        )
    return ManagementError(
        f"Auth0 refused a Management API token for this application ({code}).",
        upstream_status=status,
        error_code=code,
        remedy="Enable the Client Credentials grant for the application and authorize it for "
        "the Auth0 Management API (Dashboard > Applications > APIs > Auth0 Management API > "
        "Machine To Machine Applications) with the scopes it needs.",
    )
