"""Parse configuration values; each parser takes the value and its key (layer: settings).

A malformed value raises :class:`ConfigurationError` naming the key.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import SplitResult, urlsplit

from ._keys import DPoPKey, audit_context_problem
from .errors import ConfigurationError

#: Turns a configured value into the setting's, or raises ConfigurationError naming the key.
Parser = Callable[[Any, str], Any]

_HOST_RE = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)


def _ip_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def is_loopback_host(host: str) -> bool:
    """Return whether ``host`` is this machine (``localhost``, ``127.0.0.1``, ``::1``...)."""
    address = _ip_address(host)
    return host == "localhost" or (address is not None and address.is_loopback)


def _http_url(url: str, key: str, wanted: str, *, path: bool = False) -> SplitResult:
    """Split an http(s) URL with a host, and no query, fragment, credentials nor unasked path."""
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise ConfigurationError(key, "has an invalid port.") from None
    if parts.scheme not in ("https", "http"):
        raise ConfigurationError(key, f"must be {wanted}, not a {parts.scheme or 'relative'} URL.")
    if (
        not parts.hostname
        or parts.query
        or parts.fragment
        or parts.username
        or parts.password
        or (parts.path and not path)
    ):
        raise ConfigurationError(key, f"must be {wanted}.")
    return parts


def _refuse_remote_http(parts: SplitResult, key: str) -> None:
    # Plain http only reaches a local stand-in: anywhere else, tokens would cross in clear.
    if parts.scheme == "http" and not is_loopback_host(parts.hostname or ""):
        raise ConfigurationError(
            key, "plain http is only allowed for a local stand-in on 127.0.0.1 or localhost."
        )


def parse_api_base(value: Any, key: str) -> str:
    """Turn a provider's ``api_base`` into an https URL (http on loopback), no trailing slash."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(key, "must be a URL such as 'https://www.googleapis.com'.")
    raw = value.strip().rstrip("/")
    wanted = "an absolute https URL such as 'https://www.googleapis.com', with no query"
    _refuse_remote_http(_http_url(raw, key, wanted, path=True), key)
    return raw


def parse_domain(value: Any, key: str = "AUTH0_DOMAIN") -> str:
    """Turn ``AUTH0_DOMAIN`` (a bare domain, or an https URL) into a base URL.

    Plain http is accepted only on loopback, for a local stand-in for Auth0.
    """
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(key, "is required: your Auth0 domain, e.g. 'tenant.us.auth0.com'.")
    raw = value.strip().rstrip("/")
    wanted = "a bare domain such as 'tenant.us.auth0.com' (or its https URL), with no path"
    parts = _http_url(raw if "://" in raw else "https://" + raw, key, wanted)
    host = parts.hostname or ""
    if _ip_address(host) is None and host != "localhost" and not _HOST_RE.match(host):
        raise ConfigurationError(key, f"{host!r} is not a valid host name.")
    _refuse_remote_http(parts, key)
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return f"{parts.scheme}://{netloc}"


def text(value: Any, key: str) -> str | None:
    """Read an optional string, stripped; empty is ``None``."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigurationError(key, f"must be a string, not {type(value).__name__}.")
    return value.strip()


def required_text(value: Any, key: str) -> str:
    """Read a string that must be set."""
    given = text(value, key)
    if given is None:
        raise ConfigurationError(key, "is required.")
    return given


#: An Auth0 organization: its id (``org_`` and letters or digits) or its name (lowercase).
_ORGANIZATION_RE = re.compile(r"^(org_[A-Za-z0-9]{1,40}|[a-z0-9][a-z0-9_-]{0,49})$")
#: ``acr_values``: space-separated URIs or names, printable ASCII.
_ACR_VALUES_RE = re.compile(r"^[\x21-\x7e]{1,200}( [\x21-\x7e]{1,200}){0,4}$")


def organization(value: Any, key: str) -> str | None:
    """Read an Auth0 organization, by id (``org_...``) or by name; empty is ``None``."""
    given = text(value, key)
    if given is not None and not _ORGANIZATION_RE.fullmatch(given):
        raise ConfigurationError(
            key, "must be an organization id ('org_...') or an organization's name (lowercase)."
        )
    return given


def acr_values(value: Any, key: str) -> str | None:
    """Read ``acr_values``: up to five space-separated policy URIs; empty is ``None``."""
    given = text(value, key)
    if given is not None and not _ACR_VALUES_RE.fullmatch(given):
        raise ConfigurationError(key, "must be up to five policy URIs separated by spaces.")
    return given


def as_given(value: Any, key: str) -> Any:
    """Take the value as it is: the part it feeds, or a rule over several keys, checks it."""
    return value


def number(minimum: float = 0.0, maximum: float = math.inf, *, whole: bool = False) -> Parser:
    """Return a parser of a number of seconds (or a ``whole`` number) in a range."""
    kind = "whole number" if whole else "number of seconds"
    bound = f"from {minimum:g} to {maximum:g}" if maximum < math.inf else f"at least {minimum:g}"
    accepted = (int,) if whole else (int, float)

    def parse(value: Any, key: str) -> Any:
        # bool is an int, and NaN fails every comparison, so both are refused here.
        if isinstance(value, bool) or not isinstance(value, accepted):
            raise ConfigurationError(key, f"must be a {kind}, not {value!r}.")
        if not minimum <= value <= maximum:
            raise ConfigurationError(key, f"must be {bound}, not {value!r}.")
        return value if whole else float(value)

    return parse


def lifetime(value: Any, key: str) -> float:
    """Read a lifetime in seconds; ``0`` or ``None`` turns the limit off."""
    return 0.0 if value is None else float(number()(value, key))


def flag(value: Any, key: str) -> bool:
    """Read ``True`` or ``False``, nothing else."""
    if not isinstance(value, bool):
        raise ConfigurationError(key, "must be True or False.")
    return value


def connect_flow(value: Any, key: str) -> str:
    """Read how users connect an account: ``"authorize"`` or ``"connected_accounts"``."""
    if value not in ("authorize", "connected_accounts"):
        raise ConfigurationError(key, "must be 'authorize' or 'connected_accounts'.")
    return str(value)


def url_prefix(value: Any, key: str) -> str:
    """Read the routes' URL prefix, without its trailing slash."""
    if not isinstance(value, str) or not re.fullmatch(r"(/[A-Za-z0-9._~-]+)*", value.rstrip("/")):
        raise ConfigurationError(key, f"must be a path such as '/auth', not {value!r}.")
    return value.rstrip("/")


def site_path(value: Any, key: str) -> str:
    """Read a path on this site (never ``//host``, which browsers take for another site)."""
    path = text(value, key) or "/"  # an empty path is the site's root
    if not path.startswith("/") or path.startswith("//"):
        raise ConfigurationError(key, "must be a path on this site such as '/'.")
    return path


def absolute_url(value: Any, key: str) -> str | None:
    """Read an optional absolute http(s) URL."""
    url = text(value, key)
    if url and urlsplit(url).scheme not in ("http", "https"):
        raise ConfigurationError(key, "must be an absolute http(s) URL.")
    return url


def origin(value: Any, key: str) -> str | None:
    """Read the site's optional origin (``TOKEN_VAULT_EXTERNAL_URL``) as ``scheme://host[:port]``."""
    url = text(value, key)
    if url is None:
        return None
    wanted = "the site's origin, such as 'https://app.example.com', with no path"
    parts = _http_url(url.rstrip("/"), key, wanted)
    return f"{parts.scheme}://{parts.netloc}"


def encryption_keys(value: Any, key: str) -> tuple[bytes, ...]:
    """Read one secret or a list of them, each at least 16 characters (none: ``()``)."""
    if not value:
        return ()
    keys: list[bytes] = []
    for item in [value] if isinstance(value, (str, bytes)) else list(value):
        if isinstance(item, str):
            item = item.encode()
        if not isinstance(item, bytes) or len(item) < 16:
            raise ConfigurationError(key, "each key must be a string of at least 16 characters.")
        keys.append(item)
    return tuple(keys)


def dpop_key(value: Any, key: str) -> DPoPKey | None:
    """Read the DPoP key (PEM text or path); unset or ``False`` turns DPoP off."""
    return None if value is None or value == "" or value is False else DPoPKey(value)


def audit_context(value: Any, key: str) -> str | None:
    """Read a default Privileged Worker ``audit_context`` (1 to 256 characters); empty is unset."""
    if value is None or value == "":
        return None
    problem = audit_context_problem(value)
    if problem is not None:
        raise ConfigurationError(key, f"{problem} (it is the reason Auth0 logs for each job).")
    return str(value)
