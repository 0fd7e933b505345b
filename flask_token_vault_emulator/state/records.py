"""Describe what the tenant records as it runs: users, accounts, logins, codes, tokens, counters."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .common import random_id


@dataclass
class User:
    """Describe a user of the emulated tenant."""

    user_id: str
    email: str
    name: str
    created_at: float


@dataclass
class Tokenset:
    """Describe a connected account: the provider tokens Token Vault holds for a user."""

    id: str
    user_id: str
    connection: str
    account: str
    scopes: list[str]
    issued_at: float
    expires_at: float
    last_used_at: float | None = None
    broken: bool = False
    connected_seq: int = 0
    #: The id the Connected Accounts APIs know this account by.
    account_id: str = field(default_factory=lambda: "cac_" + random_id(20))
    created_at: float = 0.0
    #: The organization the user was signed in to when they connected it, if any.
    org_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the tokenset the way the Management API lists it (epoch seconds)."""
        return {
            "id": self.id,
            "connection": self.connection,
            "account": self.account,
            "scope": " ".join(self.scopes),
            "issued_at": int(self.issued_at),
            "expires_at": int(self.expires_at),
            "last_used_at": None if self.last_used_at is None else int(self.last_used_at),
        }


@dataclass
class LoginTransaction:
    """Hold an /authorize request while the login page waits for the user."""

    txn: str
    client_id: str
    redirect_uri: str
    state: str | None
    scope: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    connection: str | None
    connection_scopes: list[str]
    audience: str | None
    login_hint: str | None
    prompt: str | None
    access_type: str | None
    screen_hint: str | None
    expires_at: float
    #: The user signed in at the emulator when this is a connect (the page cannot change it).
    user_id: str | None = None
    #: The id of the organization asked for (``organization``, by id or name), if any.
    organization: str | None = None
    #: The ``acr_values`` asked for, space-separated.
    acr_values: str | None = None


@dataclass
class BackchannelDelivery:
    """Record one logout token sent to a client's back-channel logout URL."""

    url: str
    client_id: str
    sid: str | None
    sub: str | None
    #: The HTTP status the application answered, or 0 when it did not answer.
    status: int
    #: Why there was no answer (the exception's class name), or "".
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return the delivery as a JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class PrivilegedAccess:
    """Record one Privileged Worker exchange Auth0 accepted, as its tenant logs keep it."""

    client_id: str
    user_id: str
    connection: str
    #: The reason the subject token gave.
    audit_context: str
    #: The organization the subject token named, if any.
    org_id: str | None = None


@dataclass(kw_only=True)
class Grant:
    """What a login granted a client: who, for what, in which Auth0 session and organization.

    An authorization code carries it, and the refresh token the code is exchanged for keeps it.
    """

    user_id: str
    client_id: str
    scope: str
    audience: str | None
    sid: str
    #: The organization the user signed in to, if any (its tokens carry ``org_id``).
    org_id: str | None = None

    def grant_fields(self) -> dict[str, Any]:
        """Return the grant's own fields by name (not those of a subclass)."""
        return {f.name: getattr(self, f.name) for f in fields(Grant)}


@dataclass
class AuthorizationCode(Grant):
    """Hold an issued authorization code and what it is bound to."""

    code: str
    redirect_uri: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: float
    used: bool = False
    #: The authentication policy the login met (``acr``), if one was asked for and met.
    acr: str | None = None


@dataclass
class RefreshToken(Grant):
    """Hold an issued Auth0 refresh token (opaque, non-rotating)."""

    token: str
    issued_at: float
    #: The thumbprint of the DPoP key the token is bound to (``None``: not bound).
    jkt: str | None = None


@dataclass
class ProviderToken:
    """Hold a provider access token that the Token Vault exchange handed out."""

    token: str
    user_id: str
    connection: str
    provider: str | None
    account: str
    scopes: list[str]
    issued_at: float
    expires_at: float
    revoked: bool = False


@dataclass
class ConnectSession:
    """Hold a My Account ``connect`` request until the browser comes back and it is completed."""

    auth_session: str
    ticket: str
    user_id: str
    client_id: str
    connection: str
    redirect_uri: str
    state: str
    code_challenge: str
    scopes: list[str]
    login_hint: str | None
    expires_at: float
    #: Whether the connect request carried a ``scopes`` field at all.
    scopes_sent: bool = True
    connect_code: str | None = None
    account: str | None = None
    completed: bool = False


@dataclass
class BrowserSession:
    """Remember who signed in on the emulator's page in one browser (its session cookie).

    This is Auth0's own session: its ``sid`` goes into the ID tokens issued in it, and a
    back-channel logout names it.
    """

    sid: str
    user_id: str
    expires_at: float
    #: The clients signed in through it (each gets a logout token when it ends).
    clients: list[str] = field(default_factory=list)
    #: When it started.
    created_at: float = 0.0
    #: When the user last passed a second factor in it (a login asking the MFA policy).
    mfa_at: float | None = None


@dataclass
class AutoLogin:
    """Describe the non-interactive login: who signs in at /authorize and whether they allow."""

    email: str
    name: str | None = None
    account: str | None = None
    consent: bool = True


@dataclass
class Counters:
    """Count requests and outcomes for the stats endpoint."""

    token_requests: Counter[str] = field(default_factory=Counter)
    revocations: int = 0
    exchanges_succeeded: Counter[tuple[str, str]] = field(default_factory=Counter)
    exchanges_failed: int = 0
    exchanges_by_subject: Counter[str] = field(default_factory=Counter)
    jwks_requests: int = 0
    provider_calls: dict[str, Counter[str]] = field(
        default_factory=lambda: {
            "google": Counter(),
            "microsoft": Counter(),
            "slack": Counter(),
            "github": Counter(),
        }
    )
