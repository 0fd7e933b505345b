"""What the Management API answers: its records, the tenant rules read from them, its errors.

(Layer: core, Flask-free. :mod:`.management` calls the API and builds these; the set-up steps
and ``doctor`` read the rules here, so each rule about the tenant is written once.)
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any, ClassVar
from urllib.parse import urlsplit

from .._connection_options import split_provider_scopes
from .._exchange import GRANT_TYPE
from .._http import Failure, clean_text
from ..errors import (
    Auth0Unavailable,
    ManagementError,
    ManagementForbidden,
    ManagementNotFound,
    ManagementRateLimited,
    RateLimited,
    TokenVaultError,
)
from .places import MANAGEMENT_API_ACCESS

#: The grant types a client needs for Token Vault.
REQUIRED_GRANT_TYPES = ("authorization_code", "refresh_token", GRANT_TYPE)
VAULT_OPTION = "federated_connections_access_tokens"
#: The My Account API scopes the client's refresh-token policy must allow for Connected Accounts.
MY_ACCOUNT_POLICY_SCOPES = (
    "create:me:connected_accounts",
    "read:me:connected_accounts",
    "delete:me:connected_accounts",
)


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


def vault_switches(connection: Mapping[str, Any]) -> VaultSwitches:
    """Read a connection's Token Vault switches (Management API JSON)."""
    options = connection.get("options")
    option = options.get(VAULT_OPTION) if isinstance(options, Mapping) else None
    setting = connection.get("connected_accounts")
    return VaultSwitches(
        connected_accounts=active(setting) if isinstance(setting, Mapping) else None,
        sign_in=active(option),
    )


def active(setting: Any) -> bool:
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


def missing_grant_types(client: Mapping[str, Any]) -> list[str]:
    """Return the grant types of :data:`REQUIRED_GRANT_TYPES` the client (JSON) lacks."""
    return [g for g in REQUIRED_GRANT_TYPES if g not in grant_types(client)]


def grant_types(client: Mapping[str, Any]) -> list[str]:
    """Return a client's grant types (Management API JSON)."""
    return [g for g in client.get("grant_types") or [] if isinstance(g, str)]


def rotation_type(client: Mapping[str, Any]) -> str | None:
    """Return a client's ``refresh_token.rotation_type``; Token Vault needs it not ``rotating``."""
    settings = client.get("refresh_token")
    found = settings.get("rotation_type") if isinstance(settings, Mapping) else None
    return found if isinstance(found, str) else None


def string_list(record: Mapping[str, Any], name: str) -> list[str]:
    """Return the strings of a record's list field ``name`` (empty when it is no list)."""
    found = record.get(name)
    return [s for s in found if isinstance(s, str)] if isinstance(found, list) else []


def missing_client_urls(
    client: Mapping[str, Any], wanted: Mapping[str, Sequence[str]]
) -> dict[str, list[str]]:
    """Return, for each URL list of a client (``callbacks``...), the ``wanted`` URLs it lacks."""
    missing: dict[str, list[str]] = {}
    for name, urls in wanted.items():
        present = string_list(client, name)
        lacking = [u for u in dict.fromkeys(urls) if u not in present]
        if lacking:
            missing[name] = lacking
    return missing


def backchannel_urls(client: Mapping[str, Any]) -> list[str]:
    """Return a client's back-channel logout URLs (``oidc_logout.backchannel_logout_urls``)."""
    settings = client.get("oidc_logout")
    return string_list(settings, "backchannel_logout_urls") if isinstance(settings, Mapping) else []


def backchannel_url_problem(url: str) -> str | None:
    """Return why Auth0 would not post logout tokens to ``url``, or ``None`` when it would.

    Auth0 posts to https URLs only; plain http is allowed for a loopback host (local testing).
    """
    parts = urlsplit(url)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.hostname and (parts.scheme == "https" or (parts.scheme == "http" and loopback)):
        return None
    return f"Auth0 posts logout tokens to https URLs only, not to {url}"


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
    """A record that gives its fields back as JSON (see :meth:`to_dict`).

    The Management API's records are, and so is each item of a set-up plan.
    """

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


def malformed(description: str) -> ManagementError:
    """Return the error for an answer that is not what the Management API documents."""
    return ManagementError(description, error_code="malformed_answer", code=503)


def as_record(data: Any, what: str) -> dict[str, Any]:
    """Return an answer that must be one JSON object (``what``, e.g. ``a client``) as a dict."""
    if not isinstance(data, Mapping):
        raise malformed(f"The Management API answered with something that is not {what}.")
    return dict(data)


def _scopes(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return split_provider_scopes(value)
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
    #: Which account at the provider it is, when Auth0 says (a user may hold several accounts
    #: at one connection; an exchange asks for one by this ``login_hint``).
    login_hint: str | None = None
    #: The Auth0 Organization the account was connected in, if any.
    org_id: str | None = None

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
            login_hint=text("login_hint"),
            org_id=text("org_id"),
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
    """Turn a failed Management API call into a :class:`ManagementError` naming the call."""
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


def token_request_error(exc: TokenVaultError) -> ManagementError:
    """Turn a failed Management API token request into the error a Management call raises."""
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
        f"the Auth0 Management API ({MANAGEMENT_API_ACCESS}) with the scopes it needs.",
    )
