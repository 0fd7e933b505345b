"""Parse configuration values: each parser turns a value into what the settings hold.

A parser takes the value and its key, and raises :class:`ConfigurationError` naming the key
when the value is malformed. (Layer: settings, at the bottom: nothing here knows Flask.)
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from ._keys import DPoPKey
from .errors import ConfigurationError

#: Turns a configured value into the setting's, or raises ConfigurationError naming the key.
Parser = Callable[[Any, str], Any]

_HOST_RE = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)


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


def parse_origin(url: str, key: str) -> str:
    """Turn a site's origin (``TOKEN_VAULT_EXTERNAL_URL``) into ``scheme://host[:port]``."""
    parts = urlsplit(url.rstrip("/"))
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


def as_given(value: Any, key: str) -> Any:
    """Take the value as it is: the part it feeds, or a rule over several keys, checks it."""
    return value


def seconds(minimum: float = 0.0, maximum: float = math.inf) -> Parser:
    """Return a parser of a number of seconds from ``minimum`` to ``maximum``."""

    def parse(value: Any, key: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigurationError(key, f"must be a number of seconds, not {value!r}.")
        if not minimum <= value <= maximum:  # also refuses NaN
            bound = (
                f"from {minimum:g} to {maximum:g}" if maximum < math.inf else f"at least {minimum}"
            )
            raise ConfigurationError(key, f"must be {bound}, not {value!r}.")
        return float(value)

    return parse


def lifetime(value: Any, key: str) -> float:
    """Read a lifetime in seconds; ``0`` or ``None`` turns the limit off."""
    return 0.0 if value is None else seconds()(value, key)


def flag(value: Any, key: str) -> bool:
    """Read ``True`` or ``False``, nothing else."""
    if not isinstance(value, bool):
        raise ConfigurationError(key, "must be True or False.")
    return value


def whole(minimum: int, maximum: int, wanted: str) -> Parser:
    """Return a parser of a whole number from ``minimum`` to ``maximum`` (``wanted`` says so)."""

    def parse(value: Any, key: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            raise ConfigurationError(key, f"must be {wanted}, not {value!r}.")
        return value

    return parse


#: A count of things, at least one.
count = whole(1, 2**63, "a whole number of at least 1")
#: How many times a call is tried again.
retries = whole(0, 10, "an integer from 0 to 10")


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
    """Read an optional origin of the site (see :func:`parse_origin`)."""
    url = text(value, key)
    return None if url is None else parse_origin(url, key)


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
