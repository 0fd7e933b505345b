"""URLs: the extension's own links, and validation of redirect targets (layer: request-time)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

from flask import request, url_for

from ._state import get_state
from ._tokens import optional_user

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

    Only scopes the app declares (configured, or required by its views) go into the link; others
    are left out and logged. Beyond the configured ``scopes``, the list is signed for the
    signed-in user until ``TOKEN_VAULT_CONNECT_LINK_LIFETIME`` seconds from now.
    """
    state = get_state()
    user = optional_user()
    params = state.links.query(
        connection,
        scopes or (),
        user.sub if user is not None else "",
        state.declared_scopes(connection),
    )
    if next:
        params["next"] = next
    if login_hint:
        params["login_hint"] = login_hint
    return _route_url("token_vault.connect", params, _external, connection=connection)


def login_url(
    next: str | None = None,
    *,
    max_age: int | None = None,
    organization: str | None = None,
    acr_values: str | None = None,
    _external: bool = False,
) -> str:
    """Return the URL of the login route, coming back to ``next`` afterwards.

    With ``max_age`` (seconds) the user must authenticate again unless they did at Auth0 within
    that time (OIDC ``max_age``; the callback checks the ID token's ``auth_time``). With
    ``organization`` (an id ``org_...`` or a name; default ``AUTH0_ORGANIZATION``) the user
    signs in to that Auth0 Organization, and the callback checks the ID token's ``org_id`` (or
    ``org_name``). With ``acr_values`` (a step-up, e.g. the multi-factor policy URI) Auth0 asks
    for that authentication, and the callback checks the ID token's ``acr``/``amr``.
    """
    params: dict[str, str] = {"next": next} if next else {}
    if max_age is not None:
        params["max_age"] = str(int(max_age))
    if organization:
        params["organization"] = organization
    if acr_values:
        params["acr_values"] = acr_values
    return _route_url("token_vault.login", params, _external)


def _route_url(endpoint: str, params: dict[str, str], external: bool, **values: Any) -> str:
    """Return the URL of ``endpoint`` (absolute when ``external``) with the query ``params``."""
    base = external_url(endpoint, **values) if external else url_for(endpoint, **values)
    return base + ("?" + urlencode(params) if params else "")


def external_url(endpoint: str, **values: Any) -> str:
    """Return the absolute URL of one of the app's endpoints.

    On ``TOKEN_VAULT_EXTERNAL_URL`` when it is set (behind a proxy that rewrites the Host),
    else as Flask builds it (``SERVER_NAME`` and ``PREFERRED_URL_SCHEME``, or the request).
    """
    origin = get_state().settings.external_url
    if origin:
        return origin + url_for(endpoint, **values)
    values["_external"] = True
    return url_for(endpoint, **values)
