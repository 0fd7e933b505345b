"""Validate the Auth0 access tokens that API callers send as ``Authorization: Bearer``.

(Layer: core, Flask-free, above the transport and the errors.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._connection_options import split_api_scopes
from ._oidc import TenantKeys
from .errors import InvalidAccessToken

#: Seconds of clock skew allowed on ``exp``, ``nbf`` and ``iat``.
LEEWAY = 30


@dataclass(frozen=True)
class AccessToken:
    """A validated Auth0 access token of an API call (the raw token is kept out of reprs)."""

    #: The Auth0 user id (``sub``).
    sub: str
    #: The API scopes it carries: ``scope`` and ``permissions`` together, sorted.
    scopes: tuple[str, ...]
    #: Its audiences (``aud``).
    audience: tuple[str, ...]
    #: When it expires, in epoch seconds.
    expires_at: float
    #: The client (application) it was issued to (``azp``), when it says.
    client_id: str | None = None
    #: Every claim, as issued.
    claims: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    token: str = field(default="", repr=False, compare=False)

    def has_scopes(self, required: Iterable[str]) -> bool:
        """Return whether the token carries every one of the ``required`` API scopes."""
        return set(required) <= set(self.scopes)

    def __str__(self) -> str:
        return f"access token of {self.sub}"


def _refused(reason: str) -> InvalidAccessToken:
    return InvalidAccessToken(f"The access token {reason}.")


@dataclass(eq=False)
class BearerValidator:
    """Validate callers' access tokens for one API of the tenant; thread-safe."""

    keys: TenantKeys = field(repr=False)
    #: The API identifier the tokens must be for.
    audience: str

    def validate(self, token: str) -> AccessToken:
        """Return the validated token, or raise :class:`~flask_token_vault.InvalidAccessToken`.

        The token must be signed by the tenant for :attr:`audience` and name a user (``sub``).
        Raises :class:`~flask_token_vault.Auth0Unavailable` only when the key set was never
        fetched and cannot be now (the token may be fine: the API cannot tell).
        """
        claims = self.keys.verify(
            token,
            audience=self.audience,
            leeway=LEEWAY,
            essential=("exp", "sub"),
            refuse=_refused,
        )
        return AccessToken(
            sub=claims["sub"],
            scopes=_scopes(claims),
            # The check above let through a string or a list of strings only.
            audience=(claims["aud"],) if isinstance(claims["aud"], str) else tuple(claims["aud"]),
            expires_at=float(claims["exp"]),
            client_id=claims["azp"] if isinstance(claims.get("azp"), str) else None,
            claims=claims,
            token=token,
        )


def _scopes(claims: Mapping[str, Any]) -> tuple[str, ...]:
    found: set[str] = set()
    scope = claims.get("scope")
    if isinstance(scope, str):
        found.update(split_api_scopes(scope))
    permissions = claims.get("permissions")
    if isinstance(permissions, list):
        # Each item is one permission, taken as it is: never split on anything.
        found.update(p for p in permissions if isinstance(p, str) and p)
    return tuple(sorted(found))
