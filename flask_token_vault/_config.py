"""Read and validate the extension's configuration once, in ``init_app``.

:data:`SETTINGS` is the one table of the keys, as Flask's ``default_config`` keeps each default
once: :class:`Settings` is built from it and the configuration reference is checked against it.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from . import _parsers as parse
from ._connection_options import ConnectionSettings, parse_connections, parse_scopes
from ._keys import ClientCertificate, ClientKey, DPoPKey
from ._parsers import parse_domain
from ._secret_key import check_secret_key
from .errors import ConfigurationError

_KEY_PREFIX = "TOKEN_VAULT_"


def _did_you_mean(key: str) -> str:
    # Compared without the shared prefix, which would make every key look alike.
    by_name = {known.removeprefix(_KEY_PREFIX): known for known in CONFIG_KEYS}
    close = difflib.get_close_matches(key.removeprefix(_KEY_PREFIX), sorted(by_name), 1, 0.75)
    return f" Did you mean {by_name[close[0]]}?" if close else ""


def _check_keys(config: Mapping[str, Any], options: Mapping[str, Any]) -> None:
    """Refuse unknown options and ``TOKEN_VAULT_*`` keys, which would be ignored without a word."""
    prefixed = [k for k in config if isinstance(k, str) and k.startswith(_KEY_PREFIX)]
    for keys, what in (
        (options, "a setting TokenVault() accepts; its options are the configuration keys"),
        (prefixed, "a Flask-Token-Vault setting, so it would be ignored"),
    ):
        for key in sorted(k for k in keys if k not in CONFIG_KEYS):
            raise ConfigurationError(
                key, f"is not {what} (see the configuration reference).{_did_you_mean(key)}"
            )
    # Other AUTH0_* keys may be the app's own; one that is a near miss of an unset key of ours
    # (a missing underscore, say) is a typo that would otherwise surface as "... is required".
    for key in sorted(k for k in config if isinstance(k, str) and k.startswith("AUTH0_")):
        meant = difflib.get_close_matches(key, sorted(_AUTH0_KEYS), 1, 0.85)
        if key not in CONFIG_KEYS and meant and meant[0] not in config:
            raise ConfigurationError(
                key,
                f"is not a Flask-Token-Vault setting, so it would be ignored. "
                f"Did you mean {meant[0]}?",
            )


@dataclass(frozen=True)
class Setting:
    """One configuration key: its default, how its value is read, and what it is for."""

    name: str
    #: What an app that does not set the key gets, written as it would be in ``app.config``.
    default: Any
    parse: parse.Parser
    #: What the key is for, in one line.
    doc: str
    #: How the configuration reference shows a ``None`` default.
    unset: str = "Default: none"

    @property
    def attribute(self) -> str:
        """Return the :class:`Settings` attribute the key fills, if any (others feed rules)."""
        return self.name.removeprefix(_KEY_PREFIX).removeprefix("AUTH0_").lower()

    @property
    def documented_default(self) -> str:
        """Return the default as the configuration reference's table shows it."""
        value = self.default
        if value is None:
            return self.unset
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        shown = repr(value) if isinstance(value, (bool, int, float)) else json.dumps(value)
        return f"Default: ``{shown}``"


def _login_scopes(value: Any, key: str) -> tuple[str, ...]:
    scopes = parse_scopes(value, key)
    if "openid" not in scopes or "offline_access" not in scopes:
        raise ConfigurationError(
            key,
            "must include 'openid' and 'offline_access': without offline_access Auth0 issues no "
            "refresh token and Token Vault cannot work.",
        )
    return scopes


#: The keys most apps set, in the order of the configuration reference's first table.
EVERYDAY: tuple[Setting, ...] = (
    Setting("AUTH0_DOMAIN", None, parse_domain, "The tenant's domain.", "Required"),
    Setting("AUTH0_CLIENT_ID", None, parse.required_text, "The app's client id.", "Required"),
    Setting(
        "AUTH0_CLIENT_SECRET",
        None,
        lambda value, key: parse.text(value, key) or "",
        "The app's client secret.",
        "Required, unless ``AUTH0_CLIENT_PRIVATE_KEY`` or ``AUTH0_CLIENT_CERTIFICATE`` is set",
    ),
    Setting(
        "AUTH0_CLIENT_PRIVATE_KEY", None, parse.as_given, "A private key instead of the secret."
    ),
    Setting("AUTH0_CLIENT_PRIVATE_KEY_ALG", "RS256", parse.as_given, "How that key signs."),
    Setting("AUTH0_CLIENT_CERTIFICATE", None, parse.as_given, "A TLS client certificate instead."),
    Setting("AUTH0_CLIENT_CERTIFICATE_KEY", None, parse.as_given, "That certificate's key."),
    Setting(
        "TOKEN_VAULT_MTLS_CA_BUNDLE", None, parse.text, "CAs the mTLS endpoint is checked with."
    ),
    Setting("TOKEN_VAULT_DPOP_KEY", None, parse.dpop_key, "A key tokens are bound to."),
    Setting("AUTH0_AUDIENCE", None, parse.text, "The identifier of the app's API."),
    Setting("TOKEN_VAULT_API_CLIENT_ID", None, parse.text, "The API's Custom API Client."),
    Setting("TOKEN_VAULT_API_CLIENT_SECRET", None, parse.text, "Its client secret."),
    Setting("SECRET_KEY", None, parse.as_given, "Flask's key, which keys derive from.", "Required"),
    Setting("SECRET_KEY_FALLBACKS", [], parse.as_given, "Flask's previous keys, still read."),
    Setting("TOKEN_VAULT_CONNECTIONS", {}, parse_connections, "The connections the app uses."),
    Setting(
        "TOKEN_VAULT_SCOPES",
        "openid profile email offline_access",
        _login_scopes,
        "Scopes asked of Auth0 at login.",
    ),
    Setting("TOKEN_VAULT_URL_PREFIX", "/auth", parse.url_prefix, "Where the routes live."),
    Setting("TOKEN_VAULT_DEFAULT_NEXT", "/", parse.site_path, "Where to land after login."),
    Setting(
        "TOKEN_VAULT_LOGOUT_RETURN_TO",
        None,
        parse.absolute_url,
        "Where Auth0 sends the user after logout.",
        "Default: ``TOKEN_VAULT_EXTERNAL_URL`` + ``TOKEN_VAULT_DEFAULT_NEXT``",
    ),
    Setting("TOKEN_VAULT_EXTERNAL_URL", None, parse.origin, "The site's own origin."),
    Setting("TOKEN_VAULT_SESSION_LIFETIME", 259_200.0, parse.lifetime, "Seconds a session lives."),
    Setting(
        "TOKEN_VAULT_SESSION_IDLE_TIMEOUT", 86_400.0, parse.lifetime, "Seconds it lives unused."
    ),
    Setting(
        "TOKEN_VAULT_REVOKE_ON_LOGOUT", True, parse.flag, "Revoke the refresh token at logout."
    ),
    Setting(
        "TOKEN_VAULT_ENCRYPTION_KEYS",
        None,
        parse.encryption_keys,
        "Secrets the encryption keys derive from.",
        "Default: derived from ``SECRET_KEY`` and ``SECRET_KEY_FALLBACKS``",
    ),
    Setting(
        "TOKEN_VAULT_CACHE",
        None,
        parse.as_given,
        "Where provider tokens are cached.",
        "Default: an in-process cache (``MemoryStore``)",
    ),
    Setting("TOKEN_VAULT_CONNECT_FLOW", "authorize", parse.connect_flow, "How users connect."),
    Setting("AUTH0_ORGANIZATION", None, parse.organization, "The organization users sign in to."),
    Setting(
        "TOKEN_VAULT_STEP_UP_ACR_VALUES",
        "http://schemas.openid.net/pape/policies/2007/06/multi-factor",
        parse.acr_values,
        "What a step-up sign-in asks of Auth0.",
    ),
    Setting(
        "TOKEN_VAULT_WORKER_AUDIT_CONTEXT",
        None,
        parse.audit_context,
        "Why background jobs take tokens.",
    ),
)

#: The tuning knobs, which few apps should touch (the reference lists them apart).
TUNING: tuple[Setting, ...] = (
    Setting("TOKEN_VAULT_CACHE_LEEWAY", 60.0, parse.number(), "Seconds a token expires early."),
    Setting("TOKEN_VAULT_LOCAL_CACHE_TTL", 5.0, parse.number(), "Seconds a token is kept near."),
    Setting(
        "TOKEN_VAULT_LOCAL_CACHE_MAX_USERS",
        10_000,
        parse.number(1, whole=True),
        "Users a process keeps in memory.",
    ),
    Setting("TOKEN_VAULT_CACHE_TIMEOUT", 0.5, parse.number(0.01), "Seconds a call to Redis takes."),
    Setting("TOKEN_VAULT_CACHE_COOLDOWN", 5.0, parse.number(0.1), "Seconds a failing cache rests."),
    Setting("TOKEN_VAULT_LOCK_TIMEOUT", 10.0, parse.number(0.1), "Seconds to wait for a peer."),
    Setting(
        "TOKEN_VAULT_DEFAULT_EXPIRES_IN",
        300.0,
        parse.number(1, 86_400),
        "Seconds a token without expires_in lives.",
    ),
    Setting("TOKEN_VAULT_HTTP_TIMEOUT", 10.0, parse.number(0.05), "Seconds one HTTP try takes."),
    Setting("TOKEN_VAULT_DEADLINE", 15.0, parse.number(0.05), "Seconds one call takes, retried."),
    Setting(
        "TOKEN_VAULT_MAX_RETRIES",
        3,
        parse.number(0, 10, whole=True),
        "Retries of transient failures.",
    ),
    Setting("TOKEN_VAULT_SEND_EXCHANGE_SCOPE", False, parse.flag, "Send scopes in the exchange."),
    Setting(
        "TOKEN_VAULT_CONNECT_LINK_LIFETIME", 3600.0, parse.number(1.0), "Seconds a link works."
    ),
    Setting(
        "TOKEN_VAULT_NOT_CONNECTED_TTL", 30.0, parse.number(), "Seconds 'not connected' holds."
    ),
    Setting("TOKEN_VAULT_RATE_LIMIT_WAIT", 1.0, parse.number(), "Seconds to wait on a rate limit."),
)

#: Every key the extension reads: one table of names, defaults, parsers and documentation.
SETTINGS: tuple[Setting, ...] = EVERYDAY + TUNING
#: Any other ``TOKEN_VAULT_*`` key in the app's config is a typo, and ``init_app`` says so.
CONFIG_KEYS = frozenset(setting.name for setting in SETTINGS)
#: The Auth0 keys among them, against which other ``AUTH0_*`` keys are checked for typos.
_AUTH0_KEYS = frozenset(key for key in CONFIG_KEYS if key.startswith("AUTH0_"))


@dataclass(frozen=True)
class Settings:
    """The resolved settings of one app, built once by :meth:`TokenVault.init_app`.

    Each attribute is filled by the key of :data:`SETTINGS` named after it, except ``base_url``
    (``AUTH0_DOMAIN``), ``client_key`` (``AUTH0_CLIENT_PRIVATE_KEY`` and its algorithm) and
    ``client_certificate`` (``AUTH0_CLIENT_CERTIFICATE`` and its key).
    """

    base_url: str
    client_id: str
    client_secret: str
    client_key: ClientKey | None
    client_certificate: ClientCertificate | None
    mtls_ca_bundle: str | None
    dpop_key: DPoPKey | None
    audience: str | None
    api_client_id: str | None
    api_client_secret: str | None
    connections: Mapping[str, ConnectionSettings]
    scopes: tuple[str, ...]
    url_prefix: str
    default_next: str
    logout_return_to: str | None
    external_url: str | None
    session_lifetime: float
    session_idle_timeout: float
    revoke_on_logout: bool
    encryption_keys: tuple[bytes, ...]
    cache: Any
    connect_flow: str
    organization: str | None
    step_up_acr_values: str | None
    worker_audit_context: str | None
    cache_leeway: float
    local_cache_ttl: float
    local_cache_max_users: int
    cache_timeout: float
    cache_cooldown: float
    lock_timeout: float
    default_expires_in: float
    http_timeout: float
    deadline: float
    max_retries: int
    send_exchange_scope: bool
    connect_link_lifetime: float
    not_connected_ttl: float
    rate_limit_wait: float

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


def load_settings(config: Mapping[str, Any], options: Mapping[str, Any]) -> Settings:
    """Build :class:`Settings` from ``app.config``, overridden by the extension's own options."""
    _check_keys(config, options)
    merged: dict[str, Any] = {**config, **options}
    given = {s.name: s.parse(merged.get(s.name, s.default), s.name) for s in SETTINGS}
    check_secret_key(merged)
    _check_api_client(given)
    values = _attributes(given)
    values["base_url"] = given["AUTH0_DOMAIN"]
    values["client_certificate"] = _client_certificate(given)
    values["client_key"] = _client_key(given, values["client_certificate"] is not None)
    values["encryption_keys"] = values["encryption_keys"] or _keys_from_secret(given)
    values["deadline"] = max(values["deadline"], values["http_timeout"])
    # Well inside the deadline whatever is configured: a hung cache costs a request one timeout.
    values["cache_timeout"] = min(values["cache_timeout"], values["deadline"] / 4)
    return Settings(**values)


def default_settings(**values: Any) -> Settings:
    """Return every setting at its default, with ``values`` (attribute names) over them.

    For a client built outside an app (the Management API client from its credentials) and for
    tests that build one part. ``values`` are not checked; the tenant and the client, which have
    no default, are empty unless given.
    """
    unconfigured = {"AUTH0_DOMAIN", "AUTH0_CLIENT_ID"}
    defaults = {s.name: s.parse(s.default, s.name) for s in SETTINGS if s.name not in unconfigured}
    empty = {"base_url": "", "client_id": "", "client_key": None, "client_certificate": None}
    return Settings(**{**_attributes(defaults), **empty, **values})


def _attributes(given: Mapping[str, Any]) -> dict[str, Any]:
    """Return the parsed keys that fill a :class:`Settings` attribute of their name."""
    names = {f.name for f in fields(Settings)}
    return {
        s.attribute: given[s.name] for s in SETTINGS if s.name in given and s.attribute in names
    }


def _client_certificate(given: Mapping[str, Any]) -> ClientCertificate | None:
    """Return the TLS client certificate, if any: both paths or neither, and no secret."""
    cert, key = given["AUTH0_CLIENT_CERTIFICATE"], given["AUTH0_CLIENT_CERTIFICATE_KEY"]
    if not cert and not key:
        return None
    if not cert or not key:
        missing = "AUTH0_CLIENT_CERTIFICATE_KEY" if cert else "AUTH0_CLIENT_CERTIFICATE"
        raise ConfigurationError(
            missing,
            "is required with the other: mTLS client authentication needs the certificate "
            "and its private key (the paths of two PEM files).",
        )
    if given["AUTH0_CLIENT_SECRET"]:
        raise ConfigurationError(
            "AUTH0_CLIENT_SECRET",
            "must not be set together with AUTH0_CLIENT_CERTIFICATE: with the certificate the "
            "client authenticates by mTLS; remove the secret once the certificate is registered.",
        )
    return ClientCertificate(cert, key)


def _client_key(given: Mapping[str, Any], has_certificate: bool) -> ClientKey | None:
    """Return the client key, if any: exactly one of the secret and the key must be set.

    With a client certificate the key is optional (it only signs Privileged Worker subject
    tokens; the client authenticates by mTLS).
    """
    raw_key = given["AUTH0_CLIENT_PRIVATE_KEY"]
    if raw_key is None or raw_key == "":
        if not given["AUTH0_CLIENT_SECRET"] and not has_certificate:
            raise ConfigurationError(
                "AUTH0_CLIENT_SECRET",
                "is required, or set AUTH0_CLIENT_PRIVATE_KEY to authenticate with a key "
                "(private_key_jwt), or AUTH0_CLIENT_CERTIFICATE and AUTH0_CLIENT_CERTIFICATE_KEY "
                "to authenticate by mTLS, instead of a secret.",
            )
        return None
    if given["AUTH0_CLIENT_SECRET"]:
        raise ConfigurationError(
            "AUTH0_CLIENT_SECRET",
            "must not be set together with AUTH0_CLIENT_PRIVATE_KEY: the client authenticates "
            "with one or the other; remove the secret once the key is registered.",
        )
    return ClientKey(raw_key, given["AUTH0_CLIENT_PRIVATE_KEY_ALG"])


def _keys_from_secret(given: Mapping[str, Any]) -> tuple[bytes, ...]:
    """Return ``SECRET_KEY`` and its fallbacks, which encryption keys derive from by default."""
    secret = given["SECRET_KEY"]
    if not secret:
        raise ConfigurationError(
            "SECRET_KEY",
            "is required: the session and the refresh token in it are protected "
            "with keys derived from it (or set TOKEN_VAULT_ENCRYPTION_KEYS).",
        )
    return parse.encryption_keys([secret, *(given["SECRET_KEY_FALLBACKS"] or ())], "SECRET_KEY")


def _check_api_client(given: Mapping[str, Any]) -> None:
    """Refuse a Custom API Client without its secret, without an API, or that is the app."""
    client_id = given["TOKEN_VAULT_API_CLIENT_ID"]
    secret = given["TOKEN_VAULT_API_CLIENT_SECRET"]
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
    if client_id and not given["AUTH0_AUDIENCE"]:
        raise ConfigurationError(
            "AUTH0_AUDIENCE",
            "is required with TOKEN_VAULT_API_CLIENT_ID: set it to the identifier of the API "
            "the Custom API Client is linked to (callers' access tokens are checked against it).",
        )
    if client_id and client_id == given["AUTH0_CLIENT_ID"]:
        raise ConfigurationError(
            "TOKEN_VAULT_API_CLIENT_ID",
            "must be the API's Custom API Client, not the web application (AUTH0_CLIENT_ID); "
            "`flask token-vault api-client enable` creates it.",
        )
