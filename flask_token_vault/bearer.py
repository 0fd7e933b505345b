"""Validate the Auth0 access tokens that API callers send as ``Authorization: Bearer``.

(Layer: core, Flask-free, above the transport and the errors.)

:class:`BearerValidator` checks a token with joserfc, nothing hand-written: RS256 only, signed
by a key of the tenant's JSON Web Key Set, ``iss`` the tenant's issuer, ``aud`` containing the
API identifier, ``exp`` and ``nbf`` (and ``iat``) with a small leeway, and a ``sub``. The API
scopes are the union of the ``scope`` claim (space-separated) and the ``permissions`` claim
(Auth0's RBAC list). Anything else raises :class:`~flask_token_vault.InvalidAccessToken`,
whose message never contains the token.

The key set comes from ``https://{domain}/.well-known/jwks.json`` through the app's transport,
fetched on first use and kept; it is never fetched per request. A token signed with a key id
the set does not hold makes one refresh (a rotated key is trusted at once), and after that at
most one every :data:`JWKS_MIN_REFRESH` seconds whoever asks: a flood of made-up key ids costs
Auth0 one request a minute. A set older than :data:`JWKS_MAX_AGE` is refreshed on the next
use, keeping the old one if Auth0 does not answer.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import (
    ExpiredTokenError,
    InvalidClaimError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import KeySet, RSAKey

from ._http import Failure, Transport, clean_text
from .config import split_scopes
from .errors import Auth0Unavailable, InvalidAccessToken

__all__ = [
    "JWKS_MAX_AGE",
    "JWKS_MIN_REFRESH",
    "LEEWAY",
    "AccessToken",
    "BearerValidator",
]

log = logging.getLogger("flask_token_vault")

#: Seconds of clock skew allowed on ``exp``, ``nbf`` and ``iat``.
LEEWAY = 30
#: The least time between two fetches of the key set, in seconds.
JWKS_MIN_REFRESH = 60.0
#: After a failed first fetch (no keys at all), the least time before the next try.
JWKS_RETRY = 5.0
#: A key set older than this is fetched again on next use (keys Auth0 has revoked go away).
JWKS_MAX_AGE = 86_400.0
#: Longer tokens are refused before any parsing (Auth0's are a few hundred bytes to a few KB).
MAX_TOKEN_LENGTH = 8192
_ALGORITHM = "RS256"


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


def _invalid(description: str) -> InvalidAccessToken:
    return InvalidAccessToken(description)


@dataclass(eq=False, kw_only=True)
class BearerValidator:
    """Validate callers' access tokens for one API of one tenant; thread-safe."""

    #: The tenant's issuer, with its trailing slash.
    issuer: str
    #: The API identifier the tokens must be for.
    audience: str
    #: Where the tenant publishes its signing keys.
    jwks_uri: str
    transport: Transport
    leeway: int = LEEWAY
    _keys: KeySet | None = field(default=None, init=False)
    _fetched_at: float = field(default=0.0, init=False)
    _tried_at: float | None = field(default=None, init=False)
    _refreshed_at: float | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __repr__(self) -> str:
        return f"BearerValidator(audience={self.audience!r})"

    # keys -----------------------------------------------------------------------------------
    def _find(self, kid: str) -> RSAKey | None:
        keys = self._keys
        if keys is None:
            return None
        for key in keys.keys:
            if key.kid == kid and isinstance(key, RSAKey):
                return key
        return None

    def _stale(self) -> bool:
        return self.transport.clock.monotonic() - self._fetched_at >= JWKS_MAX_AGE

    def key(self, kid: str) -> RSAKey | None:
        """Return the tenant's RSA signing key with this id, refreshing the set when allowed."""
        found = self._find(kid)
        if found is not None and not self._stale():
            return found
        with self._lock:
            found = self._find(kid)
            if found is not None and not self._stale():
                return found  # another thread refreshed while this one waited
            now = self.transport.clock.monotonic()
            if self._keys is None:
                if self._tried_at is not None and now - self._tried_at < JWKS_RETRY:
                    raise Auth0Unavailable(
                        "The tenant's signing keys (JWKS) could not be fetched; access tokens "
                        "cannot be checked until they are.",
                        error="jwks_unavailable",
                    )
                self._tried_at = now
                self._keys = self._fetch()
                self._fetched_at = now
            elif self._refreshed_at is None or now - self._refreshed_at >= JWKS_MIN_REFRESH:
                self._refreshed_at = now
                try:
                    self._keys = self._fetch()
                    self._fetched_at = now
                except Auth0Unavailable:
                    log.warning("JWKS refresh failed; keeping the keys fetched before")
            return self._find(kid)

    def _fetch(self) -> KeySet:
        def failed(failure: Failure) -> Auth0Unavailable:
            return Auth0Unavailable(
                "The tenant's signing keys (JWKS) could not be fetched; access tokens cannot "
                "be checked until they are.",
                error="jwks_unavailable",
                upstream_status=failure.status,
            )

        reply = self.transport.call_json("GET", self.jwks_uri, error=failed, what="JWKS fetch")
        body = reply.body
        raw = body.get("keys") if isinstance(body, dict) else None
        if not isinstance(raw, list):
            raise failed(Failure("malformed_answer", reply.status))
        usable = [
            item
            for item in raw
            if isinstance(item, dict)
            and item.get("kty") == "RSA"
            and isinstance(item.get("kid"), str)
            and item.get("use", "sig") == "sig"
        ]
        try:
            keys: KeySet = KeySet.import_key_set({"keys": usable})
        except (JoseError, ValueError, TypeError):
            raise failed(Failure("malformed_answer", reply.status)) from None
        log.info("JWKS fetched: %d signing keys", len(keys.keys))
        return keys

    # tokens ---------------------------------------------------------------------------------
    def validate(self, token: str) -> AccessToken:
        """Return the validated token, or raise :class:`~flask_token_vault.InvalidAccessToken`.

        Raises :class:`~flask_token_vault.Auth0Unavailable` only when the key set was never
        fetched and cannot be now (the token may be fine: the API cannot tell).
        """
        if not token or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
            raise _invalid("The access token is malformed.")
        try:
            header = jws.extract_compact(token.encode("ascii")).headers()
        except (JoseError, ValueError, TypeError):
            raise _invalid("The access token is not a signed JWT.") from None
        algorithm = header.get("alg")
        if algorithm != _ALGORITHM:
            shown = clean_text(algorithm, 20) if isinstance(algorithm, str) else "none"
            raise _invalid(f"The access token must be signed with RS256, not {shown or 'none'}.")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid or len(kid) > 256:
            raise _invalid("The access token names no signing key (kid).")
        key = self.key(kid)
        if key is None:
            raise _invalid("The access token is signed with a key this tenant does not publish.")
        try:
            decoded = jwt.decode(token, key, algorithms=[_ALGORITHM])
        except (JoseError, ValueError, TypeError):
            raise _invalid("The access token's signature does not verify.") from None
        claims = decoded.claims
        self._check_claims(claims)
        return AccessToken(
            sub=claims["sub"],
            scopes=_scopes(claims),
            audience=_audience(claims.get("aud")),
            expires_at=float(claims["exp"]),
            client_id=claims["azp"] if isinstance(claims.get("azp"), str) else None,
            claims=claims,
            token=token,
        )

    def _check_claims(self, claims: dict[str, Any]) -> None:
        registry = jwt.JWTClaimsRegistry(
            now=lambda: int(self.transport.clock.time()),
            leeway=self.leeway,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.audience},
            exp={"essential": True},
            sub={"essential": True},
        )
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise _invalid("The access token has expired.") from None
        except MissingClaimError as exc:
            raise _invalid(
                f"The access token lacks the claim {clean_text(exc.claim, 40)}."
            ) from None
        except InvalidClaimError as exc:
            raise _invalid(_claim_problem(exc.claim)) from None
        except (JoseError, ValueError, TypeError):
            raise _invalid("The access token's claims are not valid.") from None


def _claim_problem(claim: str) -> str:
    return {
        "iss": "The access token was not issued by this tenant.",
        "aud": "The access token is not for this API (aud).",
        "nbf": "The access token is not valid yet (nbf).",
        "iat": "The access token was issued in the future (iat).",
        "sub": "The access token names no user (sub).",
    }.get(claim, f"The access token's claim {clean_text(claim, 40)} is not valid.")


def _audience(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(v for v in value if isinstance(v, str))
    return ()


def _scopes(claims: Mapping[str, Any]) -> tuple[str, ...]:
    found: set[str] = set()
    scope = claims.get("scope")
    if isinstance(scope, str):
        found.update(split_scopes(scope))
    permissions = claims.get("permissions")
    if isinstance(permissions, list):
        found.update(p for p in permissions if isinstance(p, str) and p)
    return tuple(sorted(found))
