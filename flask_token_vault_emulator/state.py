"""Hold the emulated tenant: clients, APIs, connections, users, accounts, tokens and counters.

Every public method of :class:`EmulatorState` takes the state's lock, so the request threads of
the server and the test code driving the emulator can use it at the same time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

from joserfc.jwk import RSAKey

from .constants import TOKEN_VAULT_GRANT
from .fake_data import CalendarEvent
from .faults import Fault
from .signing import SigningKey

Clock = Callable[[], float]

#: Stands for "leave the field out" in :meth:`EmulatorState.misreport_expires_in`.
MISSING: Any = object()
DEFAULT_CLIENT_ID = "emulator-client-id"
# A well-known secret of the local emulator, printed on its start-up banner.
DEFAULT_CLIENT_SECRET = "emulator-client-secret"  # noqa: S105  # nosec B105
DEFAULT_CLIENT_NAME = "Token Vault Emulator App"
DEFAULT_GRANT_TYPES = (
    "authorization_code",
    "refresh_token",
    TOKEN_VAULT_GRANT,
    "client_credentials",
)
#: The grant types of a Regular Web Application just created in the Auth0 Dashboard (no Token
#: Vault; Client Credentials so the app may call the Management API once it is authorized to).
NEW_APP_GRANT_TYPES = ("authorization_code", "implicit", "refresh_token", "client_credentials")
DEFAULT_LOGIN_SCOPE = "openid profile email offline_access"
#: The tenant's API (resource server) that a fresh emulator has, and its Custom API Client.
DEFAULT_API_IDENTIFIER = "https://api.example.com/"
DEFAULT_API_NAME = "Example API"
DEFAULT_API_SCOPES = ("read:calendar", "write:calendar")
DEFAULT_API_CLIENT_ID = "emulator-api-client-id"
# Well-known credentials of the local emulator, like the default client's.
DEFAULT_API_CLIENT_SECRET = "emulator-api-client-secret"  # noqa: S105  # nosec B105
#: A public single-page application client (no secret; PKCE), for the SPA flow.
DEFAULT_SPA_CLIENT_ID = "emulator-spa-client-id"
#: Scopes that are not an API's: Auth0 keeps them in an API access token's ``scope``.
OIDC_SCOPES = ("openid", "profile", "email", "offline_access")
#: The My Account API scopes of Connected Accounts (the default client's MRRT policy allows all).
MY_ACCOUNT_SCOPES = (
    "create:me:connected_accounts",
    "read:me:connected_accounts",
    "delete:me:connected_accounts",
)
CONNECT_SESSION_LIFETIME = 300
DEFAULT_PROVIDER_TOKEN_TTL = 3600
CODE_LIFETIME = 60
LOGIN_TRANSACTION_LIFETIME = 600
#: How long the emulator remembers who signed in on its page (Auth0's default is 3 days).
BROWSER_SESSION_LIFETIME = 3 * 86400
ACCESS_TOKEN_LIFETIME = 86400
ID_TOKEN_LIFETIME = 36000
LOGOUT_TOKEN_LIFETIME = 120
#: The ``events`` member of a back-channel logout token.
BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
#: How long Auth0 waits for an application's back-channel logout URL to answer.
BACKCHANNEL_TIMEOUT = 5.0

GOOGLE_CONNECTION = "google-oauth2"
MICROSOFT_CONNECTION = "windowslive"
DATABASE_CONNECTION = "Username-Password-Authentication"

PROVIDER_BY_STRATEGY = {"google-oauth2": "google", "windowslive": "microsoft"}
PROVIDER_TOKEN_PREFIX = {"google": "ya29.emu.", "microsoft": "EwB.emu."}

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost"})

_ALPHANUMERIC = string.ascii_letters + string.digits


def random_id(length: int) -> str:
    """Return a random string of ASCII letters and digits."""
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(length))


def split_scopes(value: str | Iterable[str] | None) -> list[str]:
    """Split a scope string on commas and whitespace; keep first-seen order, drop duplicates."""
    if value is None:
        return []
    parts = re.split(r"[\s,]+", value) if isinstance(value, str) else list(value)
    return list(dict.fromkeys(part.strip() for part in parts if part and part.strip()))


def normalize_email(email: str) -> str:
    """Return the key the emulator files an email address under (trimmed, lower case)."""
    return email.strip().lower()


def user_id_for(email: str) -> str:
    """Return the Auth0 user id the emulator gives the user with this email."""
    digest = hashlib.sha256(normalize_email(email).encode()).hexdigest()
    return "auth0|" + digest[:24]


def display_name_for(email: str) -> str:
    """Return a readable name made from the local part of an email address."""
    local = normalize_email(email).split("@", 1)[0]
    return " ".join(word.capitalize() for word in re.split(r"[._+-]+", local) if word) or email


def is_loopback_url(url: str) -> bool:
    """Tell whether ``url`` is an http URL on 127.0.0.1 or localhost (any port, any path)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return False
    return parts.scheme == "http" and (parts.hostname or "") in LOOPBACK_HOSTS


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

    def _credentials_named(self, setting: Any) -> list[Credential]:
        wanted: set[str] = set()
        for item in (setting or {}).get("credentials") or []:
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                wanted.add(item["id"])
        return [c for c in self.credentials if c.id in wanted]

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
        return PROVIDER_BY_STRATEGY.get(self.strategy)


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


@dataclass
class AuthorizationCode:
    """Hold an issued authorization code and what it is bound to."""

    code: str
    client_id: str
    redirect_uri: str
    user_id: str
    scope: str
    audience: str | None
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    sid: str
    expires_at: float
    used: bool = False


@dataclass
class RefreshToken:
    """Hold an issued Auth0 refresh token (opaque, non-rotating)."""

    token: str
    user_id: str
    client_id: str
    scope: str
    audience: str | None
    sid: str
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
        default_factory=lambda: {"google": Counter(), "microsoft": Counter()}
    )


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


class EmulatorState:
    """Keep the whole emulated tenant in memory, guarded by one re-entrant lock."""

    def __init__(self, clock: Clock = time.time, base_url: str = "") -> None:
        """Create a tenant with the default client and connections."""
        self.lock = threading.RLock()
        self.clock = clock
        self.base_url = base_url
        self.signing_key = SigningKey()
        self.clients = default_clients()
        self.connections = default_connections()
        self.resource_servers = default_resource_servers()
        self.users: dict[str, User] = {}
        self.tokensets: dict[tuple[str, str, str], Tokenset] = {}
        self.transactions: dict[str, LoginTransaction] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.provider_tokens: dict[str, ProviderToken] = {}
        self.created_events: dict[tuple[str, str], list[CalendarEvent]] = {}
        self.provider_token_ttl: dict[str, int] = {}
        #: connection -> what the exchange reports as ``expires_in`` instead of the truth
        #: (``MISSING`` leaves it out).
        self.reported_expires_in: dict[str, Any] = {}
        self.faults: list[Fault] = []
        self.auto_login: AutoLogin | None = None
        self.default_auto_login: AutoLogin | None = None
        self.counters = Counters()
        self.connect_sessions: dict[str, ConnectSession] = {}
        #: Who is signed in at the emulator, by its session cookie (Auth0's own session; its
        #: ``sid`` is the ID tokens' ``sid``).
        self.browser_sessions: dict[str, BrowserSession] = {}
        #: Every logout token sent to a back-channel logout URL, oldest first.
        self.backchannel_deliveries: list[BackchannelDelivery] = []
        #: How the Management API writes tokenset times: ``"epoch"`` seconds or ``"iso"``.
        self.tokenset_timestamps = "epoch"
        #: The tenant's MFA policies (``["all-applications"]`` is the "Always" policy).
        self.mfa_policies: list[str] = []
        #: Whether the Management API still has the tokenset endpoints (Auth0 dropped them
        #: from its spec in 2026-07; ``False`` answers them 404 like an unknown route).
        self.tokenset_endpoints = True
        #: Whether connections know the top-level ``connected_accounts`` switch (``False``: a
        #: tenant from before Connected Accounts, whose Management API refuses the property).
        self.connected_accounts_switch = True
        #: Every ``jti`` accepted (assertions, DPoP proofs, subject tokens) -> until when.
        self.used_jtis: dict[tuple[str, str, str], float] = {}
        #: The nonce DPoP proofs must carry, or ``None`` when no nonce is asked for.
        self.dpop_nonce: str | None = None
        self._seq = 0

    # -- tenant ---------------------------------------------------------------------------

    @property
    def issuer(self) -> str:
        """Return the issuer (base URL with the trailing slash, as Auth0 writes it)."""
        return self.base_url + "/"

    def now(self) -> float:
        """Return the emulator's current time in epoch seconds."""
        return float(self.clock())

    def reset(self) -> None:
        """Forget users, tokens, accounts, counters and faults; keep clients and connections.

        Provider token lifetimes go back to the default and auto-login goes back to
        ``default_auto_login`` (what the emulator was started with).
        """
        with self.lock:
            self.users.clear()
            self.tokensets.clear()
            self.transactions.clear()
            self.codes.clear()
            self.refresh_tokens.clear()
            self.provider_tokens.clear()
            self.created_events.clear()
            self.provider_token_ttl.clear()
            self.reported_expires_in.clear()
            self.faults.clear()
            self.auto_login = self.default_auto_login
            self.counters = Counters()
            self.connect_sessions.clear()
            self.browser_sessions.clear()
            self.backchannel_deliveries.clear()
            self.tokenset_timestamps = "epoch"
            self.used_jtis.clear()
            self.dpop_nonce = None

    def restore_tenant(self) -> None:
        """Put the default clients, APIs, connections and MFA policy back (undo tenant changes)."""
        with self.lock:
            self.clients = default_clients()
            self.connections = default_connections()
            self.resource_servers = default_resource_servers()
            self.signing_key.forget_previous()
            self.mfa_policies = []
            self.tokenset_endpoints = True
            self.connected_accounts_switch = True

    def make_bare(self) -> None:
        """Make the tenant a new one: the app, the connections and the API exist; nothing is set up.

        What ``flask token-vault setup`` must do is left undone: no Token Vault grant, rotation
        on, no My Account API policy, no callback or logout URL (loopback gets no free pass),
        and neither Token Vault switch on any connection. The app may call the Management API.
        """
        with self.lock:
            self.clients = bare_clients()
            self.connections = default_connections(vault=False)
            self.resource_servers = default_resource_servers()
            self.mfa_policies = []
            self.tokenset_endpoints = True
            self.connected_accounts_switch = True

    def set_tenant_features(
        self,
        *,
        tokenset_endpoints: bool | None = None,
        connected_accounts_switch: bool | None = None,
    ) -> None:
        """Switch tenant features: the tokenset endpoints, the connections' Connected Accounts."""
        with self.lock:
            if tokenset_endpoints is not None:
                self.tokenset_endpoints = tokenset_endpoints
            if connected_accounts_switch is not None:
                self.connected_accounts_switch = connected_accounts_switch

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

    def issue_access_token_for(
        self,
        email: str,
        audience: str,
        scope: str,
        *,
        client_id: str,
        expires_in: int,
        claims: dict[str, Any] | None,
    ) -> str:
        """Create the user if needed and sign an access token for an API, as a login would.

        ``claims`` replace or add claims (a ``None`` value removes one), to make tokens a test
        wants refused: another ``iss``, ``aud`` or ``exp``. The token is signed with the
        tenant's key whatever it says.
        """
        with self.lock:
            user = self.ensure_user(email)
            server = self.get_resource_server(audience)
            now = int(self.now())
            body: dict[str, Any] = {
                "iss": self.issuer,
                "sub": user.user_id,
                "aud": audience,
                "iat": now,
                "exp": now + expires_in,
                "scope": " ".join(split_scopes(scope)),
                "azp": client_id,
                "jti": secrets.token_urlsafe(12),
            }
            if server is not None and server.rbac:
                body["permissions"] = [s for s in split_scopes(scope) if s in server.scopes]
            for name, value in (claims or {}).items():
                if value is None:
                    body.pop(name, None)
                else:
                    body[name] = value
            return self.signing_key.sign(body)

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

    # -- users and connected accounts -----------------------------------------------------

    def ensure_user(self, email: str, name: str | None = None) -> User:
        """Return the user with this email, creating it; a given name replaces the old one."""
        key = normalize_email(email)
        if not key or "@" not in key:
            raise ValueError(f"not an email address: {email!r}")
        with self.lock:
            user = self.users.get(key)
            if user is None:
                user = User(user_id_for(key), key, name or display_name_for(key), self.now())
                self.users[key] = user
            elif name:
                user.name = name
            return user

    def user_by_id(self, user_id: str) -> User | None:
        """Return the user with this Auth0 user id, or None."""
        with self.lock:
            return next((user for user in self.users.values() if user.user_id == user_id), None)

    def connect(
        self,
        user: User,
        connection_name: str,
        scopes: Iterable[str] = (),
        account: str | None = None,
    ) -> Tokenset:
        """Record a connected account, merging scopes with earlier ones and the defaults."""
        account_key = normalize_email(account) if account and account.strip() else user.email
        with self.lock:
            connection = self._require_connection(connection_name)
            if not connection.stores_tokens:
                raise ValueError(f"Token Vault is not active on connection {connection_name!r}")
            now = self.now()
            self._seq += 1
            key = (user.user_id, connection_name, account_key)
            tokenset = self.tokensets.get(key)
            if tokenset is None:
                tokenset = Tokenset(
                    id="fcts_" + random_id(20),
                    user_id=user.user_id,
                    connection=connection_name,
                    account=account_key,
                    scopes=[],
                    issued_at=now,
                    expires_at=now,
                    created_at=now,
                )
                self.tokensets[key] = tokenset
            tokenset.scopes = split_scopes([*tokenset.scopes, *connection.default_scopes, *scopes])
            tokenset.issued_at = now
            tokenset.expires_at = now + self.provider_ttl(connection_name)
            tokenset.broken = False
            tokenset.connected_seq = self._seq
            return tokenset

    def find_tokenset(
        self, user_id: str, connection: str, account: str | None = None
    ) -> Tokenset | None:
        """Return the connected account for ``account``, or else the most recently connected one."""
        with self.lock:
            if account:
                return self.tokensets.get((user_id, connection, normalize_email(account)))
            candidates = [
                tokenset
                for (owner, name, _), tokenset in self.tokensets.items()
                if owner == user_id and name == connection
            ]
            return max(candidates, key=lambda t: t.connected_seq, default=None)

    def tokensets_for(self, user_id: str) -> list[Tokenset]:
        """Return every connected account of a user, oldest connection first."""
        with self.lock:
            found = [t for t in self.tokensets.values() if t.user_id == user_id]
            return sorted(found, key=lambda t: t.connected_seq)

    def delete_tokenset(self, user_id: str, tokenset_id: str) -> bool:
        """Remove a connected account by its tokenset id or its ``cac_`` id; tell if it existed.

        The provider's tokens are not revoked (Auth0 does not either), but the exchange no longer
        finds the account.
        """
        with self.lock:
            for key, tokenset in list(self.tokensets.items()):
                if tokenset.user_id == user_id and tokenset_id in (
                    tokenset.id,
                    tokenset.account_id,
                ):
                    del self.tokensets[key]
                    return True
            return False

    def start_connect_session(self, **fields: Any) -> ConnectSession:
        """Record a My Account ``connect`` request; return it with a fresh session and ticket."""
        session = ConnectSession(
            auth_session=secrets.token_urlsafe(24),
            ticket=secrets.token_urlsafe(24),
            expires_at=self.now() + CONNECT_SESSION_LIFETIME,
            **fields,
        )
        with self.lock:
            now = self.now()
            for key in [k for k, s in self.connect_sessions.items() if s.expires_at <= now]:
                del self.connect_sessions[key]
            self.connect_sessions[session.auth_session] = session
        return session

    def connect_session_by_ticket(self, ticket: str) -> ConnectSession | None:
        """Return the pending connect session of a ticket, if it is unused and not expired."""
        with self.lock:
            for session in self.connect_sessions.values():
                if (
                    ticket
                    and hmac.compare_digest(session.ticket, ticket)
                    and session.connect_code is None
                    and session.expires_at > self.now()
                ):
                    return session
            return None

    def get_connect_session(self, auth_session: str) -> ConnectSession | None:
        """Return the connect session with this ``auth_session``, if it has not expired."""
        with self.lock:
            session = self.connect_sessions.get(auth_session)
            if session is None or session.expires_at <= self.now():
                return None
            return session

    def set_broken(
        self, user_id: str, connection: str, broken: bool = True, account: str | None = None
    ) -> int:
        """Mark a user's accounts on ``connection`` as refusing refresh; return how many."""
        with self.lock:
            matches = [
                tokenset
                for tokenset in self.tokensets.values()
                if tokenset.user_id == user_id
                and tokenset.connection == connection
                and (account is None or tokenset.account == normalize_email(account))
            ]
            for tokenset in matches:
                tokenset.broken = broken
            return len(matches)

    # -- the emulator's own sign-in session (a cookie, as Auth0 keeps one) -----------------

    def start_browser_session(self, user: User) -> BrowserSession:
        """Record that ``user`` signed in on the emulator's page; return the new session."""
        with self.lock:
            now = self.now()
            for sid in [k for k, v in self.browser_sessions.items() if v.expires_at <= now]:
                del self.browser_sessions[sid]
            session = BrowserSession(
                secrets.token_urlsafe(24),
                user.user_id,
                now + BROWSER_SESSION_LIFETIME,
                created_at=now,
            )
            self.browser_sessions[session.sid] = session
            return session

    def browser_session_user(self, sid: str | None) -> User | None:
        """Return the user signed in by this session cookie, if it is known and current."""
        if not sid:
            return None
        with self.lock:
            session = self.browser_sessions.get(sid)
            if session is None or session.expires_at <= self.now():
                return None
            return self.user_by_id(session.user_id)

    def end_browser_session(self, sid: str | None) -> BrowserSession | None:
        """Forget a sign-in session (logout); return it, if it existed."""
        with self.lock:
            return self.browser_sessions.pop(sid or "", None)

    def users_by_email(self, email: str) -> list[User]:
        """Return the users with this email address (Auth0 may have several; here, one)."""
        with self.lock:
            user = self.users.get(normalize_email(email))
            return [user] if user is not None else []

    # -- login transactions and codes -----------------------------------------------------

    def start_transaction(self, *, store: bool = True, **fields: Any) -> LoginTransaction:
        """Make a pending /authorize request (with a fresh ``txn`` id); store it unless told not."""
        transaction = LoginTransaction(
            txn=secrets.token_urlsafe(24),
            expires_at=self.now() + LOGIN_TRANSACTION_LIFETIME,
            **fields,
        )
        if store:
            self.save_transaction(transaction)
        return transaction

    def save_transaction(self, transaction: LoginTransaction) -> None:
        """Store a pending login so the login form can finish it; drop expired ones."""
        with self.lock:
            now = self.now()
            expired = [k for k, t in self.transactions.items() if t.expires_at <= now]
            for key in expired:
                del self.transactions[key]
            self.transactions[transaction.txn] = transaction

    def take_transaction(self, txn: str) -> LoginTransaction | None:
        """Remove and return a pending login if it exists and has not expired."""
        with self.lock:
            transaction = self.transactions.pop(txn, None)
            if transaction is None or transaction.expires_at <= self.now():
                return None
            return transaction

    def join_browser_session(self, session: BrowserSession, client_id: str) -> None:
        """Record that ``client_id`` signed in through ``session`` (it is told of its end)."""
        with self.lock:
            if client_id not in session.clients:
                session.clients.append(client_id)

    def browser_session(self, sid: str | None) -> BrowserSession | None:
        """Return the current session of this cookie, if it is known and not expired."""
        with self.lock:
            session = self.browser_sessions.get(sid or "")
            return session if session is not None and session.expires_at > self.now() else None

    def sessions_of(self, user_id: str) -> list[BrowserSession]:
        """Return the user's current Auth0 sessions, oldest first."""
        with self.lock:
            now = self.now()
            found = [
                s
                for s in self.browser_sessions.values()
                if s.user_id == user_id and s.expires_at > now
            ]
            return sorted(found, key=lambda s: s.created_at)

    def logout_token(
        self, client_id: str, *, sub: str | None, sid: str | None, **overrides: Any
    ) -> str:
        """Return a signed back-channel logout token for a client (``overrides`` change claims).

        An override of ``None`` removes the claim, to make malformed tokens for tests.
        """
        now = int(self.now())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": client_id,
            "iat": now,
            "exp": now + LOGOUT_TOKEN_LIFETIME,
            "jti": secrets.token_urlsafe(16),
            "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
        }
        if sub is not None:
            claims["sub"] = sub
        if sid is not None:
            claims["sid"] = sid
        for name, value in overrides.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        return self.signing_key.sign(claims)

    def record_delivery(self, delivery: BackchannelDelivery) -> None:
        """Remember a logout token sent to a back-channel logout URL."""
        with self.lock:
            self.backchannel_deliveries.append(delivery)

    def revoke_refresh_token(self, token: str, client_id: str) -> bool:
        """Revoke a refresh token issued to ``client_id``; tell whether it existed."""
        with self.lock:
            self.counters.revocations += 1
            record = self.refresh_tokens.get(token)
            if record is None or record.client_id != client_id:
                return False
            del self.refresh_tokens[token]
            return True

    def issue_code(
        self, transaction: LoginTransaction, user: User, sid: str | None = None
    ) -> AuthorizationCode:
        """Issue a single-use authorization code bound to the login's parameters."""
        code = AuthorizationCode(
            code=secrets.token_urlsafe(24),
            client_id=transaction.client_id,
            redirect_uri=transaction.redirect_uri,
            user_id=user.user_id,
            scope=transaction.scope,
            audience=transaction.audience,
            nonce=transaction.nonce,
            code_challenge=transaction.code_challenge,
            code_challenge_method=transaction.code_challenge_method,
            sid=sid or secrets.token_urlsafe(16),
            expires_at=self.now() + CODE_LIFETIME,
        )
        with self.lock:
            self.codes[code.code] = code
        return code

    def redeem_code(self, code: str, client_id: str) -> AuthorizationCode | None:
        """Use up a code issued to ``client_id``; return None if unknown, expired or used."""
        with self.lock:
            record = self.codes.get(code)
            if record is None or record.client_id != client_id:
                return None
            if record.used or record.expires_at <= self.now():
                record.used = True
                return None
            record.used = True
            return record

    # -- tokens ---------------------------------------------------------------------------

    def new_refresh_token(
        self,
        user: User,
        client_id: str,
        scope: str,
        audience: str | None,
        sid: str,
        jkt: str | None = None,
    ) -> RefreshToken:
        """Issue an opaque, non-rotating Auth0 refresh token (bound to a DPoP key with ``jkt``)."""
        token = RefreshToken(
            token="v1.emu." + secrets.token_urlsafe(32),
            user_id=user.user_id,
            client_id=client_id,
            scope=scope,
            audience=audience,
            sid=sid,
            issued_at=self.now(),
            jkt=jkt,
        )
        with self.lock:
            self.refresh_tokens[token.token] = token
        return token

    def get_refresh_token(self, token: str) -> RefreshToken | None:
        """Return the refresh token record, or None."""
        with self.lock:
            return self.refresh_tokens.get(token)

    def issue_provider_token(
        self, tokenset: Tokenset, scopes: list[str] | None = None
    ) -> ProviderToken:
        """Issue a fresh provider access token from a connected account; mark the account used."""
        with self.lock:
            connection = self._require_connection(tokenset.connection)
            provider = connection.provider
            now = self.now()
            ttl = self.provider_ttl(connection.name)
            prefix = PROVIDER_TOKEN_PREFIX.get(provider or "", "emu.")
            token = ProviderToken(
                token=prefix + secrets.token_urlsafe(32),
                user_id=tokenset.user_id,
                connection=connection.name,
                provider=provider,
                account=tokenset.account,
                scopes=list(tokenset.scopes if scopes is None else scopes),
                issued_at=now,
                expires_at=now + ttl,
            )
            self.provider_tokens[token.token] = token
            tokenset.last_used_at = now
            tokenset.expires_at = now + ttl
            return token

    def get_provider_token(self, token: str) -> ProviderToken | None:
        """Return the provider token record, or None."""
        with self.lock:
            return self.provider_tokens.get(token)

    def revoke_provider_tokens(
        self, user_id: str | None = None, connection: str | None = None
    ) -> int:
        """Revoke provider tokens issued so far (filtered by user and connection); return count."""
        with self.lock:
            count = 0
            for token in self.provider_tokens.values():
                if user_id is not None and token.user_id != user_id:
                    continue
                if connection is not None and token.connection != connection:
                    continue
                if not token.revoked:
                    token.revoked = True
                    count += 1
            return count

    # -- fake provider data ---------------------------------------------------------------

    def add_event(self, connection: str, account: str, event: CalendarEvent) -> None:
        """Remember a calendar event created through a fake provider API."""
        with self.lock:
            self.created_events.setdefault((connection, account), []).append(event)

    def events_created(self, connection: str, account: str) -> list[CalendarEvent]:
        """Return the calendar events created for an account through a fake provider API."""
        with self.lock:
            return list(self.created_events.get((connection, account), []))

    # -- faults ---------------------------------------------------------------------------

    def add_fault(self, fault: Fault) -> None:
        """Queue a fault; faults are tried in the order they were added."""
        with self.lock:
            self.faults.append(fault)

    def clear_faults(self) -> None:
        """Remove every fault."""
        with self.lock:
            self.faults.clear()

    def take_fault(self, names: Iterable[str]) -> Fault | None:
        """Return the first fault matching one of ``names`` and use up one of its ``times``."""
        wanted = set(names)
        with self.lock:
            for fault in self.faults:
                if fault.endpoint in wanted:
                    if fault.times > 0:
                        fault.times -= 1
                        if fault.times == 0:
                            self.faults.remove(fault)
                    return fault
            return None

    # -- counters -------------------------------------------------------------------------

    def record_token_request(self, grant_type: str) -> None:
        """Count one request to the token endpoint."""
        with self.lock:
            self.counters.token_requests[grant_type or "(none)"] += 1

    def record_exchange(
        self,
        user_id: str | None,
        connection: str | None,
        ok: bool,
        subject_token_type: str | None = None,
    ) -> None:
        """Count one Token Vault exchange, successful or not (and its subject token type)."""
        with self.lock:
            if ok and user_id and connection:
                self.counters.exchanges_succeeded[(user_id, connection)] += 1
                if subject_token_type:
                    short = subject_token_type.rsplit(":", 1)[-1]
                    self.counters.exchanges_by_subject[short] += 1
            else:
                self.counters.exchanges_failed += 1

    def record_jwks_request(self) -> None:
        """Count one fetch of the JSON Web Key Set."""
        with self.lock:
            self.counters.jwks_requests += 1

    def record_provider_call(self, provider: str, status: str) -> None:
        """Count one call to a fake provider API by its answer's status."""
        with self.lock:
            self.counters.provider_calls.setdefault(provider, Counter())[status] += 1

    def exchange_count(self, user_id: str | None = None, connection: str | None = None) -> int:
        """Return how many Token Vault exchanges succeeded, optionally filtered."""
        with self.lock:
            return sum(
                count
                for (owner, name), count in self.counters.exchanges_succeeded.items()
                if (user_id is None or owner == user_id)
                and (connection is None or name == connection)
            )

    def stats(self) -> dict[str, Any]:
        """Return the counters and sizes as the control API's stats document."""
        with self.lock:
            counters = self.counters
            succeeded = sum(counters.exchanges_succeeded.values())
            return {
                "exchanges": {
                    "total": succeeded + counters.exchanges_failed,
                    "succeeded": succeeded,
                    "failed": counters.exchanges_failed,
                    "by_user_connection": [
                        {"user_id": owner, "connection": name, "count": count}
                        for (owner, name), count in sorted(counters.exchanges_succeeded.items())
                    ],
                    "by_subject_token_type": dict(counters.exchanges_by_subject),
                },
                "jwks_requests": counters.jwks_requests,
                "token_requests": dict(counters.token_requests),
                "revocations": counters.revocations,
                "backchannel_deliveries": [d.to_dict() for d in self.backchannel_deliveries],
                "provider_calls": {
                    provider: dict(by_status)
                    for provider, by_status in counters.provider_calls.items()
                },
                "users": len(self.users),
                "tokensets": len(self.tokensets),
            }

    # -- controls (used by the Python API and the control endpoints) ------------------------

    def set_auto_login(
        self, email: str | None, name: str | None, account: str | None, consent: bool
    ) -> None:
        """Sign ``email`` in at /authorize without showing the page; None shows the page again."""
        if email is None:
            auto_login = None
        else:
            if "@" not in email:
                raise ValueError(f"not an email address: {email!r}")
            auto_login = AutoLogin(normalize_email(email), name, account, consent)
        with self.lock:
            self.auto_login = auto_login

    def connect_account(
        self, email: str, connection: str, scopes: str | Iterable[str], account: str | None
    ) -> Tokenset:
        """Create the user if needed and connect (or re-connect) an account without a browser."""
        with self.lock:
            user = self.ensure_user(email)
            return self.connect(user, connection, split_scopes(scopes), account)

    def issue_refresh_token_for(self, email: str, scope: str, client_id: str) -> RefreshToken:
        """Create the user if needed and issue an Auth0 refresh token as a login would."""
        with self.lock:
            if client_id not in self.clients:
                raise ValueError(f"unknown client {client_id!r}")
            user = self.ensure_user(email)
            session = self.start_browser_session(user)
            self.join_browser_session(session, client_id)
            return self.new_refresh_token(user, client_id, scope, None, session.sid)

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

    def revoke_provider_tokens_for(
        self, email: str | None = None, connection: str | None = None
    ) -> int:
        """Revoke the provider tokens issued so far for a user (by email) and/or connection."""
        user_id = None if email is None else user_id_for(email)
        return self.revoke_provider_tokens(user_id, connection)

    def break_provider_refresh(
        self, email: str, connection: str, broken: bool = True, account: str | None = None
    ) -> int:
        """Make the provider refuse a user's stored refresh token (or accept it again)."""
        changed = self.set_broken(user_id_for(email), connection, broken, account)
        if changed == 0:
            raise ValueError(f"{email} has no connected account on {connection!r}")
        return changed

    # -- helpers --------------------------------------------------------------------------

    def _require_connection(self, name: str) -> Connection:
        connection = self.connections.get(name)
        if connection is None:
            raise ValueError(f"unknown connection {name!r}")
        return connection
