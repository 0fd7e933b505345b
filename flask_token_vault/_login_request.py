"""What a sign-in asks of Auth0, and what the callback checks Auth0 gave (layer: views).

The login route's parameters (``login_hint``, ``max_age``, ``organization``, ``acr_values``) are
read here, and the ID token is checked against them at the callback: a recent enough
``auth_time``, the organization asked for, the authentication policy asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import request

from . import _parsers as parse
from ._clock import is_numeric_date
from ._state import AppState
from .errors import CallbackError, ConfigurationError, InvalidRequest

#: The ``amr`` value Auth0 writes in an ID token when the user passed a second factor.
MFA_AMR = "mfa"


def login_hint() -> str | None:
    """Return the ``login_hint`` a link gives (which account to sign in with), if any."""
    hint = request.args.get("login_hint")
    if hint is None or hint == "":
        return None
    if len(hint) > 320 or any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in hint):
        raise InvalidRequest("The login hint is malformed.")
    return hint


def max_age() -> int | None:
    """Return the ``max_age`` a login link asks for (seconds), if any."""
    raw = request.args.get("max_age")
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 9:
        raise InvalidRequest("'max_age' must be a number of seconds.")
    return int(raw)


def _checked(parser: parse.Parser, name: str) -> str | None:
    try:
        return parser(request.args.get(name), name)  # type: ignore[no-any-return]
    except ConfigurationError:
        raise InvalidRequest(f"The '{name}' parameter is malformed.") from None


def organization(state: AppState) -> str | None:
    """Return the organization to sign in to: the link's ``organization``, else the setting's."""
    return _checked(parse.organization, "organization") or state.settings.organization


def acr_values() -> str | None:
    """Return the ``acr_values`` a login link asks for (a step-up), if any."""
    return _checked(parse.acr_values, "acr_values")


def check_id_token(state: AppState, claims: Mapping[str, Any], asked: Mapping[str, Any]) -> None:
    """Refuse an ID token that does not give what the sign-in asked for (``asked``)."""
    _check_auth_time(state, claims, asked.get("max_age"))
    _check_organization(claims, asked.get("organization"))
    _check_acr(claims, asked.get("acr_values"))


def _check_auth_time(state: AppState, claims: Any, max_age: object) -> None:
    """Refuse a sign-in that asked for ``max_age`` unless the ID token shows one that recent.

    OIDC Core 3.1.2.1: with ``max_age`` requested, ``auth_time`` must be present, and the client
    checks it; an old session passed off as fresh would defeat ``fresh_login_required``.
    """
    if not isinstance(max_age, int):
        return
    auth_time = claims.get("auth_time")
    if not is_numeric_date(auth_time) or state.clock.time() - auth_time > max_age + 120:
        raise CallbackError(
            "Auth0 did not confirm a recent sign-in, which this page needs.",
            error="stale_authentication",
        )


def _check_organization(claims: Mapping[str, Any], asked: object) -> None:
    """Refuse an ID token for another organization than the one asked for.

    Auth0's Organizations guide: with ``organization`` at /authorize, the ID token's ``org_id``
    (asked by id) or ``org_name`` (asked by name) must be it; otherwise a session of another
    organization, or of none, would pass for a member of this one.
    """
    if not isinstance(asked, str):
        return
    claim = "org_id" if asked.startswith("org_") else "org_name"
    given = claims.get(claim)
    if not isinstance(given, str) or given.lower() != asked.lower():
        raise CallbackError(
            "Auth0 signed you in to another organization than this site asked for.",
            error="organization_mismatch",
        )


def _check_acr(claims: Mapping[str, Any], asked: object) -> None:
    """Refuse a step-up sign-in whose ID token shows no second factor (``acr`` or ``amr``)."""
    if not isinstance(asked, str):
        return
    acr = claims.get("acr")
    amr = claims.get("amr")
    met = (isinstance(acr, str) and acr in asked.split()) or (
        isinstance(amr, list) and MFA_AMR in amr
    )
    if not met:
        raise CallbackError(
            "Auth0 did not confirm the stronger sign-in (a second factor) this action needs.",
            error="step_up_failed",
        )
