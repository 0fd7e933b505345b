"""Name the tenant's defaults and lifetimes; make ids, scope lists and user ids."""

from __future__ import annotations

import hashlib
import re
import secrets
import string
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from ..constants import CIBA_GRANT, TOKEN_VAULT_GRANT

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
    CIBA_GRANT,
)
#: The grant types of a Regular Web Application just created in the Auth0 Dashboard (no Token
#: Vault; Client Credentials so the app may call the Management API once it is authorized to).
NEW_APP_GRANT_TYPES = ("authorization_code", "implicit", "refresh_token", "client_credentials")
DEFAULT_LOGIN_SCOPE = "openid profile email offline_access"
#: The ``acr_values`` policy that asks Auth0 for a second factor at login (OpenID PAPE).
MFA_POLICY = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"
#: How recent a second factor must be for the Authentication Assurance policy (15 minutes).
ASSURANCE_WINDOW = 900
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

SLACK_CONNECTION = "sign-in-with-slack"
GITHUB_CONNECTION = "github"

PROVIDER_BY_STRATEGY = {
    "google-oauth2": "google",
    "windowslive": "microsoft",
    "github": "github",
    "slack": "slack",
}
#: Connections whose strategy is the generic ``oauth2`` but whose provider is known by name:
#: Auth0's "Sign in with Slack" is such a connection.
PROVIDER_BY_CONNECTION = {SLACK_CONNECTION: "slack"}
#: How Auth0's pages name a social connection's provider, by strategy (its Dashboard's names).
DISPLAY_NAME_BY_STRATEGY = {
    "google-oauth2": "Google",
    "windowslive": "Microsoft",
    "github": "GitHub",
    "box": "Box",
    "dropbox": "Dropbox",
    "facebook": "Facebook",
    "linkedin": "LinkedIn",
    "salesforce": "Salesforce",
    "slack": "Slack",
    "twitter": "X",
}
PROVIDER_TOKEN_PREFIX = {
    "google": "ya29.emu.",
    "microsoft": "EwB.emu.",
    "slack": "xoxp-emu-",
    "github": "gho_emu",
}

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
