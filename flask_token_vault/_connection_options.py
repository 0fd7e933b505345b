"""Parse ``TOKEN_VAULT_CONNECTIONS`` and scopes (layer: settings, at the bottom)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._parsers import parse_api_base
from .errors import ConfigurationError

#: Parameters that Google needs to hand Auth0 a refresh token of its own.
GOOGLE_DEFAULTS: dict[str, str] = {"access_type": "offline", "prompt": "consent"}
#: What people call the providers of Auth0's usual social connections (the default ``label``).
DEFAULT_LABELS: dict[str, str] = {
    "google-oauth2": "Google",
    "windowslive": "Microsoft",
    "github": "GitHub",
    "sign-in-with-slack": "Slack",
    "box": "Box",
    "dropbox": "Dropbox",
    "salesforce": "Salesforce",
}
#: Where the providers' APIs live, for connections that do not set ``api_base``.
DEFAULT_API_BASES: dict[str, str] = {
    "google-oauth2": "https://www.googleapis.com",
    "windowslive": "https://graph.microsoft.com",
}
_CONNECTION_OPTIONS = frozenset(
    {"scopes", "optional_scopes", "authorization_params", "scope_separator", "label", "api_base"}
)
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_SCOPE_RE = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]{1,512}$")  # RFC 6749 scope-token
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
    """Split scopes a person wrote (settings, the command line) on commas and whitespace.

    Empties and duplicates are dropped. Only for lists people type: a token's ``scope`` goes
    through :func:`split_api_scopes`, a provider's grant through :func:`split_provider_scopes`.
    """
    return tuple(dict.fromkeys(part for part in re.split(r"[\s,]+", value or "") if part))


def split_api_scopes(value: str) -> tuple[str, ...]:
    """Split an access token's ``scope`` claim on ASCII spaces only (RFC 6749 3.3, RFC 9068).

    A comma, a tab or a no-break space is part of a scope, as the RFCs have it: a token whose
    ``scope`` is ``"read:calendar,admin"`` or ``"read:calendar\u00a0x"`` does not carry
    ``read:calendar``. Empties (two spaces in a row) and duplicates are dropped.
    """
    return tuple(dict.fromkeys(part for part in value.split(" ") if part))


def split_provider_scopes(value: str) -> tuple[str, ...]:
    """Split the scopes Auth0 says a provider granted, on ASCII spaces and commas.

    Auth0 joins them with the connection's own separator: a space for Google and Microsoft, a
    comma for GitHub and others. What they decide is whether a token is asked for again, not
    what a caller may do: the provider checks its own token. Scopes the app requires never
    hold a comma (:func:`is_valid_scope`).
    """
    return tuple(dict.fromkeys(part for part in re.split(r"[ ,]", value) if part))


def is_valid_scope(scope: str) -> bool:
    """Return whether ``scope`` is a well-formed OAuth scope token."""
    return bool(_SCOPE_RE.match(scope)) and "," not in scope


def is_valid_connection_name(name: str) -> bool:
    """Return whether ``name`` looks like an Auth0 connection name."""
    return bool(_NAME_RE.match(name))


@dataclass(frozen=True)
class ConnectionSettings:
    """Settings for one provider connection (``TOKEN_VAULT_CONNECTIONS`` entry)."""

    #: Auth0 connection name, e.g. ``google-oauth2``.
    name: str
    #: Scopes asked of the provider whenever the user connects.
    scopes: tuple[str, ...]
    #: Scopes the app may ask for later (step-up) but not at every connect.
    optional_scopes: tuple[str, ...]
    #: Extra ``/authorize`` parameters for this connection (Google: offline access).
    authorization_params: Mapping[str, str]
    #: How ``connection_scope`` is joined: ``","`` as Auth0 documents, or ``" "``.
    scope_separator: str
    #: A label to show people.
    label: str
    #: Where the provider's API lives (``provider_api_url`` and relative ``provider_session``
    #: URLs start here); ``None`` when neither configured nor known.
    api_base: str | None


def parse_scopes(value: Any, key: str) -> tuple[str, ...]:
    """Read scopes from a space- or comma-separated string or a list of strings."""
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


def parse_connections(value: Any, key: str) -> dict[str, ConnectionSettings]:
    """Read a dict of connection name to options, or a list of names (no options)."""
    if isinstance(value, (list, tuple)) or value is None:
        value = dict.fromkeys(value or ())
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            key, "must be a dict of connection name -> options, or a list of names."
        )
    for name in value:
        if not isinstance(name, str) or not is_valid_connection_name(name):
            raise ConfigurationError(key, f"{name!r} is not a valid connection name.")
    return {
        name: _connection(name, {} if options is None else options, f"{key}[{name!r}]")
        for name, options in value.items()
    }


def _connection(name: str, options: Any, where: str) -> ConnectionSettings:
    """Read the options of the connection ``name``; ``where`` names it in errors."""
    if not isinstance(options, Mapping):
        raise ConfigurationError(where, "must be a dict of options.")
    unknown = set(options) - _CONNECTION_OPTIONS
    if unknown:
        raise ConfigurationError(
            where,
            f"has unknown options: {sorted(unknown)!r}; the options are "
            f"{sorted(_CONNECTION_OPTIONS)!r}.",
        )
    given = options.get("authorization_params", {})
    if not isinstance(given, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in given.items()
    ):
        raise ConfigurationError(where + "['authorization_params']", "must map strings to strings.")
    bad = sorted(set(given) - ALLOWED_AUTHORIZATION_PARAMS)
    if bad:
        raise ConfigurationError(
            where + "['authorization_params']",
            f"may not set {bad!r}; allowed: {sorted(ALLOWED_AUTHORIZATION_PARAMS)!r}.",
        )
    separator = options.get("scope_separator", ",")
    if separator not in (",", " "):
        raise ConfigurationError(where + "['scope_separator']", "must be ',' or ' '.")
    label = options.get("label", DEFAULT_LABELS.get(name, name))
    if not isinstance(label, str):
        raise ConfigurationError(where + "['label']", "must be a string.")
    api_base = options.get("api_base")
    return ConnectionSettings(
        name=name,
        scopes=parse_scopes(options.get("scopes", ()), where + "['scopes']"),
        optional_scopes=parse_scopes(
            options.get("optional_scopes", ()), where + "['optional_scopes']"
        ),
        authorization_params={**(GOOGLE_DEFAULTS if name == "google-oauth2" else {}), **given},
        scope_separator=separator,
        label=label,
        api_base=(
            DEFAULT_API_BASES.get(name)
            if api_base is None
            else parse_api_base(api_base, where + "['api_base']")
        ),
    )
