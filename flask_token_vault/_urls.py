"""URLs: the extension's own links, and validation of redirect targets from query strings.

(Layer: request-time, above the per-app state: the connect link's scope list is signed with the
app's keys.)
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import unquote, urlencode, urlsplit

from flask import request, url_for

from ._state import get_state

__all__ = ["connect_url", "current_path", "login_url", "safe_next"]

_MAX_NEXT = 2048


def safe_next(value: str | None) -> str | None:
    r"""Return ``value`` if it is a path on this site, else ``None``.

    Only a path that starts with a single ``/`` is accepted: no scheme, no host, no
    protocol-relative ``//`` or ``/\\``, no control characters (CRLF), in the raw value and once
    percent-decoded (browsers and proxies decode in different places).
    """
    if not value or len(value) > _MAX_NEXT:
        return None
    for candidate in (value, unquote(value)):
        if not candidate.startswith("/") or candidate.startswith(("//", "/\\")):
            return None
        if "\\" in candidate or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in candidate):
            return None
        parts = urlsplit(candidate)
        if parts.scheme or parts.netloc:
            return None
    return value


def current_path() -> str:
    """Return the path and query of this request, to come back to after a sign-in."""
    path = request.full_path
    return path[:-1] if path.endswith("?") else path


def connect_url(
    connection: str,
    scopes: Iterable[str] | None = None,
    next: str | None = None,
    *,
    login_hint: str | None = None,
    _external: bool = False,
) -> str:
    """Return the URL that sends the user to connect ``connection`` asking for ``scopes``.

    The scope list is signed, so the link cannot be altered to ask for other scopes.
    """
    state = get_state()
    params: dict[str, str] = {}
    wanted = sorted(set(scopes or ()))
    if wanted:
        params["scope"] = " ".join(wanted)
        params["sig"] = state.scope_signature(connection, wanted)
    if next:
        params["next"] = next
    if login_hint:
        params["login_hint"] = login_hint
    base = url_for("token_vault.connect", connection=connection, _external=_external)
    return base + ("?" + urlencode(params) if params else "")


def login_url(next: str | None = None, *, _external: bool = False) -> str:
    """Return the URL of the login route, coming back to ``next`` afterwards."""
    params = {"next": next} if next else {}
    base = url_for("token_vault.login", _external=_external)
    return base + ("?" + urlencode(params) if params else "")
