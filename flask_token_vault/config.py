"""Read and validate the extension's configuration once, in ``init_app``."""

from __future__ import annotations

import difflib
import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigurationError
from .keys import ClientKey, DPoPKey

__all__ = [
    "CONFIG_KEYS",
    "PLACEHOLDER_SECRET_KEYS",
    "ConnectionSettings",
    "Settings",
    "is_placeholder_secret",
    "parse_domain",
    "split_scopes",
]

#: Every configuration key the extension reads. Any other ``TOKEN_VAULT_*`` key in the app's
#: config is a typo, and ``init_app`` says so rather than ignore it.
CONFIG_KEYS = frozenset(
    {
        "AUTH0_DOMAIN",
        "AUTH0_CLIENT_ID",
        "AUTH0_CLIENT_SECRET",
        "AUTH0_CLIENT_PRIVATE_KEY",
        "AUTH0_CLIENT_PRIVATE_KEY_ALG",
        "AUTH0_AUDIENCE",
        "SECRET_KEY",
        "SECRET_KEY_FALLBACKS",
        "TOKEN_VAULT_CONNECTIONS",
        "TOKEN_VAULT_SCOPES",
        "TOKEN_VAULT_URL_PREFIX",
        "TOKEN_VAULT_DEFAULT_NEXT",
        "TOKEN_VAULT_LOGOUT_RETURN_TO",
        "TOKEN_VAULT_ENCRYPTION_KEYS",
        "TOKEN_VAULT_CACHE",
        "TOKEN_VAULT_CACHE_LEEWAY",
        "TOKEN_VAULT_LOCAL_CACHE_TTL",
        "TOKEN_VAULT_LOCAL_CACHE_MAX_USERS",
        "TOKEN_VAULT_LOCK_TIMEOUT",
        "TOKEN_VAULT_HTTP_TIMEOUT",
        "TOKEN_VAULT_DEADLINE",
        "TOKEN_VAULT_MAX_RETRIES",
        "TOKEN_VAULT_SEND_EXCHANGE_SCOPE",
        "TOKEN_VAULT_CONNECT_FLOW",
        "TOKEN_VAULT_DPOP_KEY",
        "TOKEN_VAULT_API_CLIENT_ID",
        "TOKEN_VAULT_API_CLIENT_SECRET",
        "TOKEN_VAULT_SESSION_LIFETIME",
        "TOKEN_VAULT_SESSION_IDLE_TIMEOUT",
        "TOKEN_VAULT_REVOKE_ON_LOGOUT",
        "TOKEN_VAULT_EXTERNAL_URL",
        "TOKEN_VAULT_CONNECT_LINK_LIFETIME",
        "TOKEN_VAULT_NOT_CONNECTED_TTL",
        "TOKEN_VAULT_RATE_LIMIT_WAIT",
        "TOKEN_VAULT_DEFAULT_EXPIRES_IN",
        "TOKEN_VAULT_CACHE_TIMEOUT",
        "TOKEN_VAULT_CACHE_COOLDOWN",
    }
)
_KEY_PREFIX = "TOKEN_VAULT_"

#: ``SECRET_KEY`` values copied from documentation and tutorials (this project's included).
#: Anyone can read them, so a session signed with one can be forged. ``doctor`` reports them;
#: compare with :func:`is_placeholder_secret`, which also catches one repeated character.
PLACEHOLDER_SECRET_KEYS = frozenset(
    {
        "dev",
        "development",
        "test",
        "testing",
        "secret",
        "secret-key",
        "secret_key",
        "secretkey",
        "mysecret",
        "my-secret-key",
        "your-secret-key",
        "your_secret_key",
        "supersecret",
        "super-secret",
        "super-secret-key",
        "changeme",
        "change-me",
        "change_me",
        "changeit",
        "change-this",
        "replace-me",
        "password",
        "s3cr3t",
        "dev-secret",
        "dev-secret-key",
        "not-a-secret",
        "change-me-to-a-long-random-string",
        "a-test-secret-of-at-least-16-characters",
    }
)


def is_placeholder_secret(value: str | bytes) -> bool:
    """Return whether ``value`` is a well-known placeholder secret or one repeated character."""
    raw = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    text = raw.strip().lower()
    return text in PLACEHOLDER_SECRET_KEYS or bool(re.fullmatch(r"(.)\1*", text))


#: Parameters that Google needs to hand Auth0 a refresh token of its own.
GOOGLE_DEFAULTS: dict[str, str] = {"access_type": "offline", "prompt": "consent"}
#: Where the providers' APIs live, for connections that do not set ``api_base``.
DEFAULT_API_BASES: dict[str, str] = {
    "google-oauth2": "https://www.googleapis.com",
    "windowslive": "https://graph.microsoft.com",
}
_CONNECTION_OPTIONS = frozenset(
    {"scopes", "optional_scopes", "authorization_params", "scope_separator", "label", "api_base"}
)
DEFAULT_SCOPES = ("openid", "profile", "email", "offline_access")
#: Seconds one try of a call to Auth0 or a provider may take (``TOKEN_VAULT_HTTP_TIMEOUT``).
DEFAULT_HTTP_TIMEOUT = 10.0
#: Seconds one call may take, its retries included (``TOKEN_VAULT_DEADLINE``).
DEFAULT_DEADLINE = 15.0
#: Tries after the first for a call worth trying again (``TOKEN_VAULT_MAX_RETRIES``).
DEFAULT_MAX_RETRIES = 3
_MIN_SECRET_BYTES = 32
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_SCOPE_RE = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]{1,512}$")  # RFC 6749 scope-token
_HOST_RE = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)
# Only these may be sent to /authorize from the connection defaults; anything else is a typo.
ALLOWED_AUTHORIZATION_PARAMS = frozenset(
    {
        "access_type",
        "prompt",
        "login_hint",
        "max_age",
        "ui_locales",
        "screen_hint",
        "acr_values",
        "display",
        "include_granted_scopes",
        "hd",
        "domain_hint",
    }
)


def split_scopes(value: str | None) -> tuple[str, ...]:
    """Split a scope string on commas and whitespace, dropping empties and duplicates."""
    if not value:
        return ()
    seen: dict[str, None] = {}
    for part in re.split(r"[\s,]+", value):
        if part:
            seen.setdefault(part, None)
    return tuple(seen)


def is_valid_scope(scope: str) -> bool:
    """Return whether ``scope`` is a well-formed OAuth scope token."""
    return bool(_SCOPE_RE.match(scope)) and "," not in scope


def is_valid_connection_name(name: str) -> bool:
    """Return whether ``name`` looks like an Auth0 connection name."""
    return bool(_NAME_RE.match(name))


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def is_loopback_host(host: str) -> bool:
    """Return whether ``host`` is this machine (``localhost``, ``127.0.0.1``, ``::1``...)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_api_base(value: Any, key: str) -> str:
    """Turn a provider's ``api_base`` into an absolute URL with no trailing slash.

    https anywhere; plain http only on loopback, for local stand-ins of the APIs
    (``http://127.0.0.1:8100/google``). A path is kept; a query or fragment is refused.
    """
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(key, "must be a URL such as 'https://www.googleapis.com'.")
    raw = value.strip().rstrip("/")
    parts = urlsplit(raw)
    try:
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise ConfigurationError(key, "has an invalid port.") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigurationError(
            key, f"must be an absolute https URL such as 'https://www.googleapis.com', not {raw!r}."
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigurationError(key, "must have no query, fragment or credentials.")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ConfigurationError(
            key, "plain http is only allowed on 127.0.0.1 or localhost (a local stand-in)."
        )
    return raw


def parse_domain(value: Any, key: str = "AUTH0_DOMAIN") -> str:
    """Turn ``AUTH0_DOMAIN`` into a base URL with no trailing slash.

    A bare domain means https. A full URL is accepted with https anywhere, and with plain http
    only on loopback (``127.0.0.1``, ``::1``, ``localhost``), for a local stand-in for Auth0.
    """
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(key, "is required: your Auth0 domain, e.g. 'tenant.us.auth0.com'.")
    raw = value.strip().rstrip("/")
    if "://" not in raw:
        raw = "https://" + raw
    parts = urlsplit(raw)
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http"):
        raise ConfigurationError(
            key, f"must be a domain or an https URL, not a {parts.scheme!r} URL."
        )
    if parts.path or parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigurationError(
            key, "must be a bare domain such as 'tenant.us.auth0.com', with no path."
        )
    try:
        port = parts.port
    except ValueError:
        raise ConfigurationError(key, "has an invalid port.") from None
    loopback = is_loopback_host(host)
    if not loopback and not _is_ip(host) and not _HOST_RE.match(host):
        raise ConfigurationError(key, f"{host!r} is not a valid host name.")
    if parts.scheme == "http" and not loopback:
        raise ConfigurationError(
            key,
            "plain http is only allowed for a local stand-in on 127.0.0.1 or localhost; "
            "use the bare domain (https) for a real tenant.",
        )
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    return f"{parts.scheme}://{netloc}"


@dataclass(frozen=True)
class ConnectionSettings:
    """Settings for one provider connection (``TOKEN_VAULT_CONNECTIONS`` entry)."""

    #: Auth0 connection name, e.g. ``google-oauth2``.
    name: str
    #: Scopes asked of the provider whenever the user connects.
    scopes: tuple[str, ...] = ()
    #: Extra ``/authorize`` parameters for this connection (Google: offline access).
    authorization_params: Mapping[str, str] = field(default_factory=dict)
    #: How ``connection_scope`` is joined: ``","`` as Auth0 documents, or ``" "``.
    scope_separator: str = ","
    #: A label to show people.
    label: str = ""
    #: Where the provider's API lives (``provider_api_url`` and relative ``provider_session``
    #: URLs start here); ``None`` when neither configured nor known.
    api_base: str | None = None
    #: Scopes the app may ask for later (step-up) but not at every connect.
    optional_scopes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Settings:
    """The resolved settings of one app, built once by :meth:`TokenVault.init_app`."""

    base_url: str
    client_id: str
    client_secret: str
    audience: str | None
    scopes: tuple[str, ...]
    connections: Mapping[str, ConnectionSettings]
    url_prefix: str
    default_next: str
    logout_return_to: str | None
    http_timeout: float
    deadline: float
    encryption_keys: tuple[bytes, ...]
    cache_leeway: float
    cache: Any
    lock_timeout: float
    connect_flow: str
    send_exchange_scope: bool
    max_retries: int = DEFAULT_MAX_RETRIES
    local_cache_ttl: float = 5.0
    #: How many users a process keeps near-cached tokens and checked session records of.
    local_cache_max_users: int = 10_000
    #: The client key (``AUTH0_CLIENT_PRIVATE_KEY``): ``private_key_jwt`` instead of a secret.
    client_key: ClientKey | None = None
    #: The DPoP key (``TOKEN_VAULT_DPOP_KEY``): tokens bound to it, when set.
    dpop_key: DPoPKey | None = None
    #: The Custom API Client that exchanges callers' access tokens (API mode), if any.
    api_client_id: str | None = None
    api_client_secret: str | None = None
    #: Seconds a session lives after sign-in (0: no limit).
    session_lifetime: float = 259_200.0
    #: Seconds a session lives without a request (0: no limit).
    session_idle_timeout: float = 86_400.0
    #: Revoke the user's Auth0 refresh token at logout.
    revoke_on_logout: bool = True
    #: The site's own origin (``https://app.example.com``), when configured.
    external_url: str | None = None
    #: Seconds a signed connect link stays valid.
    connect_link_lifetime: float = 3600.0
    #: Seconds the answer "this account is not connected" is remembered.
    not_connected_ttl: float = 30.0
    #: The most seconds one call waits for Auth0's rate limit before answering 503.
    rate_limit_wait: float = 1.0
    #: Seconds each call to a Redis cache may take (socket and connect timeouts).
    cache_timeout: float = 0.5
    #: Seconds the extension stops asking a cache that failed 3 times in a row.
    cache_cooldown: float = 5.0
    #: Seconds a provider token is taken to live when Auth0 gives no usable ``expires_in``.
    default_expires_in: float = 300.0

    @property
    def issuer(self) -> str:
        """Return the tenant's issuer, with the trailing slash Auth0 uses."""
        return self.base_url + "/"

    @property
    def token_endpoint(self) -> str:
        """Return the URL of ``/oauth/token``."""
        return self.base_url + "/oauth/token"

    def __repr__(self) -> str:
        # The dataclass repr would print the client secret and keys.
        return (
            f"Settings(base_url={self.base_url!r}, client_id={self.client_id!r}, "
            f"connections={sorted(self.connections)!r}, url_prefix={self.url_prefix!r})"
        )


def _str(
    config: Mapping[str, Any], key: str, *, required: bool, default: str | None = None
) -> str | None:
    value = config.get(key, default)
    if value is None or value == "":
        if required:
            raise ConfigurationError(key, "is required.")
        return None
    if not isinstance(value, str):
        raise ConfigurationError(key, f"must be a string, not {type(value).__name__}.")
    return value.strip()


def _number(
    config: Mapping[str, Any],
    key: str,
    default: float,
    *,
    minimum: float = 0.0,
    maximum: float = math.inf,
) -> float:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(key, f"must be a number of seconds, not {value!r}.")
    if not minimum <= value <= maximum:  # also refuses NaN
        bound = f"from {minimum:g} to {maximum:g}" if maximum < math.inf else f"at least {minimum}"
        raise ConfigurationError(key, f"must be {bound}, not {value!r}.")
    return float(value)


def _scopes(value: Any, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        scopes = split_scopes(value)
    elif isinstance(value, (list, tuple, set, frozenset)):
        if not all(isinstance(s, str) for s in value):
            raise ConfigurationError(key, "must be a list of scope strings.")
        scopes = tuple(dict.fromkeys(s.strip() for s in value if s.strip()))
    else:
        raise ConfigurationError(key, "must be a space-separated string or a list of scopes.")
    bad = [s for s in scopes if not is_valid_scope(s)]
    if bad:
        raise ConfigurationError(key, f"has malformed scopes: {bad!r}.")
    return scopes


def _connections(value: Any, base_url: str) -> dict[str, ConnectionSettings]:
    key = "TOKEN_VAULT_CONNECTIONS"
    if value is None:
        return {}
    if isinstance(value, (list, tuple)):
        value = {name: {} for name in value}
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            key, "must be a dict of connection name -> options, or a list of names."
        )
    result: dict[str, ConnectionSettings] = {}
    for name, options in value.items():
        where = f"{key}[{name!r}]"
        if not isinstance(name, str) or not is_valid_connection_name(name):
            raise ConfigurationError(key, f"{name!r} is not a valid connection name.")
        if options is None:
            options = {}
        if not isinstance(options, Mapping):
            raise ConfigurationError(where, "must be a dict of options.")
        unknown = set(options) - _CONNECTION_OPTIONS
        if unknown:
            raise ConfigurationError(
                where,
                f"has unknown options: {sorted(unknown)!r}; the options are "
                f"{sorted(_CONNECTION_OPTIONS)!r}.",
            )
        params = dict(GOOGLE_DEFAULTS) if name == "google-oauth2" else {}
        given = options.get("authorization_params", {})
        if not isinstance(given, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in given.items()
        ):
            raise ConfigurationError(
                where + "['authorization_params']", "must map strings to strings."
            )
        bad = sorted(set(given) - ALLOWED_AUTHORIZATION_PARAMS)
        if bad:
            raise ConfigurationError(
                where + "['authorization_params']",
                f"may not set {bad!r}; allowed: {sorted(ALLOWED_AUTHORIZATION_PARAMS)!r}.",
            )
        params.update(given)
        separator = options.get("scope_separator", ",")
        if separator not in (",", " "):
            raise ConfigurationError(where + "['scope_separator']", "must be ',' or ' '.")
        label = options.get("label", name)
        if not isinstance(label, str):
            raise ConfigurationError(where + "['label']", "must be a string.")
        api_base = options.get("api_base")
        result[name] = ConnectionSettings(
            name=name,
            scopes=_scopes(options.get("scopes", ()), where + "['scopes']"),
            optional_scopes=_scopes(
                options.get("optional_scopes", ()), where + "['optional_scopes']"
            ),
            authorization_params=params,
            scope_separator=separator,
            label=label,
            api_base=(
                DEFAULT_API_BASES.get(name)
                if api_base is None
                else parse_api_base(api_base, where + "['api_base']")
            ),
        )
    return result


def _keys(config: Mapping[str, Any]) -> tuple[bytes, ...]:
    key = "TOKEN_VAULT_ENCRYPTION_KEYS"
    value = config.get(key)
    raw: list[Any]
    if value:
        raw = [value] if isinstance(value, (str, bytes)) else list(value)
    else:
        secret = config.get("SECRET_KEY")
        if not secret:
            raise ConfigurationError(
                "SECRET_KEY",
                "is required: the session and the refresh token in it are protected "
                "with keys derived from it (or set TOKEN_VAULT_ENCRYPTION_KEYS).",
            )
        raw = [secret, *(config.get("SECRET_KEY_FALLBACKS") or ())]
    keys: list[bytes] = []
    for item in raw:
        if isinstance(item, str):
            item = item.encode()
        if not isinstance(item, bytes) or len(item) < 16:
            raise ConfigurationError(
                key if value else "SECRET_KEY",
                "each key must be a string of at least 16 characters.",
            )
        keys.append(item)
    return tuple(keys)


def check_secret_key(config: Mapping[str, Any]) -> None:
    """Refuse a ``SECRET_KEY`` that is a known placeholder or short, unless DEBUG or TESTING.

    The key signs the session cookie: with a guessable one anybody can make a session of
    their own choosing, so a production app must not start with it.
    """
    if config.get("DEBUG") or config.get("TESTING"):
        return
    secret = config.get("SECRET_KEY")
    if not secret:
        return  # _keys names a missing key; Flask refuses sessions without one
    raw = secret.decode("utf-8", "replace") if isinstance(secret, bytes) else str(secret)
    fix = (
        "set it from the environment to a long random value, e.g. the output of "
        "`python -c 'import secrets; print(secrets.token_urlsafe(48))'` (placeholders and short "
        "keys are accepted only with DEBUG or TESTING on)."
    )
    if is_placeholder_secret(raw):
        raise ConfigurationError("SECRET_KEY", "is a well-known placeholder: " + fix)
    size = len(raw.encode())
    if size < _MIN_SECRET_BYTES:
        raise ConfigurationError(
            "SECRET_KEY", f"is only {size} bytes long (at least {_MIN_SECRET_BYTES}): " + fix
        )


def _lifetime(config: Mapping[str, Any], key: str, default: float) -> float:
    """Read a lifetime in seconds; ``0`` or ``None`` turns the limit off."""
    if config.get(key, default) is None:
        return 0.0
    return _number(config, key, default)


def _external_url(config: Mapping[str, Any]) -> str | None:
    key = "TOKEN_VAULT_EXTERNAL_URL"
    value = _str(config, key, required=False)
    if value is None:
        return None
    parts = urlsplit(value.rstrip("/"))
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path
        or parts.query
        or parts.fragment
        or parts.username
        or parts.password
    ):
        raise ConfigurationError(
            key, "must be the site's origin, such as 'https://app.example.com', with no path."
        )
    return f"{parts.scheme}://{parts.netloc}"


def _bool(config: Mapping[str, Any], key: str, default: bool) -> bool:
    value = config.get(key, default)
    if not isinstance(value, bool):
        raise ConfigurationError(key, "must be True or False.")
    return value


def _prefix(config: Mapping[str, Any]) -> str:
    key = "TOKEN_VAULT_URL_PREFIX"
    value = config.get(key, "/auth")
    if not isinstance(value, str) or not re.fullmatch(r"(/[A-Za-z0-9._~-]+)*", value.rstrip("/")):
        raise ConfigurationError(key, f"must be a path such as '/auth', not {value!r}.")
    return value.rstrip("/")


def _did_you_mean(key: str) -> str:
    # Compared without the shared prefix, which would make every key look alike.
    by_name = {known.removeprefix(_KEY_PREFIX): known for known in CONFIG_KEYS}
    close = difflib.get_close_matches(key.removeprefix(_KEY_PREFIX), sorted(by_name), 1, 0.75)
    return f" Did you mean {by_name[close[0]]}?" if close else ""


def check_keys(config: Mapping[str, Any], options: Mapping[str, Any]) -> None:
    """Refuse ``TOKEN_VAULT_*`` keys the extension does not know, and unknown options.

    A misspelt key would otherwise be ignored and its default used without a word.
    """
    for key in sorted(k for k in options if k not in CONFIG_KEYS):
        raise ConfigurationError(
            key,
            "is not a setting TokenVault() accepts; its options are the configuration keys "
            f"(see the configuration reference).{_did_you_mean(key)}",
        )
    for key in sorted(
        k
        for k in config
        if isinstance(k, str) and k.startswith(_KEY_PREFIX) and k not in CONFIG_KEYS
    ):
        raise ConfigurationError(
            key,
            "is not a Flask-Token-Vault setting, so it would be ignored (see the configuration "
            f"reference for the keys).{_did_you_mean(key)}",
        )


def _count(config: Mapping[str, Any], key: str, default: int) -> int:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(key, f"must be a whole number of at least 1, not {value!r}.")
    return value


def load_settings(config: Mapping[str, Any], options: Mapping[str, Any]) -> Settings:
    """Build :class:`Settings` from ``app.config``, overridden by the extension's own options."""
    check_keys(config, options)
    merged: dict[str, Any] = dict(config)
    merged.update(options)
    base_url = parse_domain(merged.get("AUTH0_DOMAIN"))
    client_id = _str(merged, "AUTH0_CLIENT_ID", required=True) or ""
    client_secret, client_key = _client_credentials(merged)
    audience = _str(merged, "AUTH0_AUDIENCE", required=False)
    scopes = _scopes(merged.get("TOKEN_VAULT_SCOPES", DEFAULT_SCOPES), "TOKEN_VAULT_SCOPES")
    if "openid" not in scopes or "offline_access" not in scopes:
        raise ConfigurationError(
            "TOKEN_VAULT_SCOPES",
            "must include 'openid' and 'offline_access': without offline_access Auth0 issues no "
            "refresh token and Token Vault cannot work.",
        )
    default_next = _str(merged, "TOKEN_VAULT_DEFAULT_NEXT", required=False, default="/") or "/"
    if not default_next.startswith("/") or default_next.startswith("//"):
        raise ConfigurationError(
            "TOKEN_VAULT_DEFAULT_NEXT", "must be a path on this site such as '/'."
        )
    logout_return_to = _str(merged, "TOKEN_VAULT_LOGOUT_RETURN_TO", required=False)
    if logout_return_to and urlsplit(logout_return_to).scheme not in ("http", "https"):
        raise ConfigurationError("TOKEN_VAULT_LOGOUT_RETURN_TO", "must be an absolute http(s) URL.")
    connect_flow = merged.get("TOKEN_VAULT_CONNECT_FLOW", "authorize")
    if connect_flow not in ("authorize", "connected_accounts"):
        raise ConfigurationError(
            "TOKEN_VAULT_CONNECT_FLOW", "must be 'authorize' or 'connected_accounts'."
        )
    retries = merged.get("TOKEN_VAULT_MAX_RETRIES", DEFAULT_MAX_RETRIES)
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 10:
        raise ConfigurationError("TOKEN_VAULT_MAX_RETRIES", "must be an integer from 0 to 10.")
    send_scope = _bool(merged, "TOKEN_VAULT_SEND_EXCHANGE_SCOPE", False)
    check_secret_key(merged)
    api_client_id, api_client_secret = _api_client(merged, audience)
    http_timeout = _number(merged, "TOKEN_VAULT_HTTP_TIMEOUT", DEFAULT_HTTP_TIMEOUT, minimum=0.05)
    deadline = _number(merged, "TOKEN_VAULT_DEADLINE", DEFAULT_DEADLINE, minimum=0.05)
    deadline = max(deadline, http_timeout)
    # Well inside the deadline whatever is configured: a hung cache costs a request one timeout.
    cache_timeout = min(
        _number(merged, "TOKEN_VAULT_CACHE_TIMEOUT", 0.5, minimum=0.01), deadline / 4
    )
    return Settings(
        base_url=base_url,
        client_id=client_id,
        client_secret=client_secret,
        audience=audience,
        scopes=scopes,
        connections=_connections(merged.get("TOKEN_VAULT_CONNECTIONS"), base_url),
        url_prefix=_prefix(merged),
        default_next=default_next,
        logout_return_to=logout_return_to,
        http_timeout=http_timeout,
        deadline=deadline,
        encryption_keys=_keys(merged),
        cache_leeway=_number(merged, "TOKEN_VAULT_CACHE_LEEWAY", 60.0),
        cache=merged.get("TOKEN_VAULT_CACHE"),
        lock_timeout=_number(merged, "TOKEN_VAULT_LOCK_TIMEOUT", 10.0, minimum=0.1),
        connect_flow=connect_flow,
        send_exchange_scope=send_scope,
        max_retries=retries,
        local_cache_ttl=_number(merged, "TOKEN_VAULT_LOCAL_CACHE_TTL", 5.0),
        local_cache_max_users=_count(merged, "TOKEN_VAULT_LOCAL_CACHE_MAX_USERS", 10_000),
        client_key=client_key,
        dpop_key=_dpop_key(merged),
        api_client_id=api_client_id,
        api_client_secret=api_client_secret,
        session_lifetime=_lifetime(merged, "TOKEN_VAULT_SESSION_LIFETIME", 259_200.0),
        session_idle_timeout=_lifetime(merged, "TOKEN_VAULT_SESSION_IDLE_TIMEOUT", 86_400.0),
        revoke_on_logout=_bool(merged, "TOKEN_VAULT_REVOKE_ON_LOGOUT", True),
        external_url=_external_url(merged),
        connect_link_lifetime=_number(
            merged, "TOKEN_VAULT_CONNECT_LINK_LIFETIME", 3600.0, minimum=1.0
        ),
        not_connected_ttl=_number(merged, "TOKEN_VAULT_NOT_CONNECTED_TTL", 30.0),
        rate_limit_wait=_number(merged, "TOKEN_VAULT_RATE_LIMIT_WAIT", 1.0),
        cache_timeout=cache_timeout,
        cache_cooldown=_number(merged, "TOKEN_VAULT_CACHE_COOLDOWN", 5.0, minimum=0.1),
        default_expires_in=_number(
            merged, "TOKEN_VAULT_DEFAULT_EXPIRES_IN", 300.0, minimum=1, maximum=86_400
        ),
    )


def _client_credentials(config: Mapping[str, Any]) -> tuple[str, ClientKey | None]:
    """Return the client secret or the client key: exactly one of them must be configured."""
    secret = _str(config, "AUTH0_CLIENT_SECRET", required=False)
    raw_key = config.get("AUTH0_CLIENT_PRIVATE_KEY")
    if raw_key is None or raw_key == "":
        if not secret:
            raise ConfigurationError(
                "AUTH0_CLIENT_SECRET",
                "is required, or set AUTH0_CLIENT_PRIVATE_KEY to authenticate with a key "
                "(private_key_jwt) instead of a secret.",
            )
        return secret, None
    if secret:
        raise ConfigurationError(
            "AUTH0_CLIENT_SECRET",
            "must not be set together with AUTH0_CLIENT_PRIVATE_KEY: the client authenticates "
            "with one or the other; remove the secret once the key is registered.",
        )
    algorithm = config.get("AUTH0_CLIENT_PRIVATE_KEY_ALG", "RS256")
    return "", ClientKey.from_config(raw_key, algorithm)


def _dpop_key(config: Mapping[str, Any]) -> DPoPKey | None:
    raw = config.get("TOKEN_VAULT_DPOP_KEY")
    if raw is None or raw == "" or raw is False:
        return None
    return DPoPKey.from_config(raw)


def _api_client(config: Mapping[str, Any], audience: str | None) -> tuple[str | None, str | None]:
    """Return the Custom API Client's id and secret: both or neither, and only with an API."""
    client_id = _str(config, "TOKEN_VAULT_API_CLIENT_ID", required=False)
    secret = _str(config, "TOKEN_VAULT_API_CLIENT_SECRET", required=False)
    if client_id and not secret:
        raise ConfigurationError(
            "TOKEN_VAULT_API_CLIENT_SECRET",
            "is required with TOKEN_VAULT_API_CLIENT_ID: the Custom API Client authenticates "
            "with its client secret.",
        )
    if secret and not client_id:
        raise ConfigurationError(
            "TOKEN_VAULT_API_CLIENT_ID",
            "is required with TOKEN_VAULT_API_CLIENT_SECRET: the id of the Custom API Client.",
        )
    if client_id and not audience:
        raise ConfigurationError(
            "AUTH0_AUDIENCE",
            "is required with TOKEN_VAULT_API_CLIENT_ID: set it to the identifier of the API "
            "the Custom API Client is linked to (callers' access tokens are checked against it).",
        )
    if client_id and client_id == config.get("AUTH0_CLIENT_ID"):
        raise ConfigurationError(
            "TOKEN_VAULT_API_CLIENT_ID",
            "must be the API's Custom API Client, not the web application (AUTH0_CLIENT_ID); "
            "`flask token-vault api-client enable` creates it.",
        )
    return client_id, secret
