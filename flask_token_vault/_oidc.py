"""The tenant as the app sees it: its discovery document, its public keys, its logout tokens.

(Layer: core, above the transport; knows nothing of Flask.)
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from joserfc import jws, jwt
from joserfc.errors import ExpiredTokenError, InvalidClaimError, JoseError, MissingClaimError
from joserfc.jwk import RSAKey
from joserfc.jwt import ClaimsOption

from ._clock import is_numeric_date
from ._config import Settings
from ._http import ErrorHook, Failure, Transport, clean_text
from ._parsers import is_loopback_host
from .errors import Auth0Unavailable, InvalidRequest, Misconfigured, TokenVaultError

log = logging.getLogger("flask_token_vault")

#: The ``events`` member that makes a JWT a back-channel logout token.
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
#: The only algorithm the tenant's tokens (ID, logout, access) may be signed with.
SIGNING_ALGORITHM = "RS256"
#: The least time between two fetches of the key set forced by unknown key ids, in seconds.
JWKS_MIN_REFRESH = 60.0
#: After a failed first fetch (no keys at all), the least time before the next try.
JWKS_RETRY = 5.0
#: A key set older than this is fetched again on next use (keys Auth0 has revoked go away).
JWKS_MAX_AGE = 86_400.0
#: Longer tokens are refused before any parsing (Auth0's are a few hundred bytes to a few KB).
MAX_TOKEN_LENGTH = 8192
#: The claims that hold a time (RFC 7519's NumericDates, OpenID's ``auth_time``): each is
#: checked by :func:`check_times` before anything reads it.
TIME_CLAIMS = ("exp", "iat", "nbf", "auth_time")
_REQUIRED = {"authorization_endpoint", "token_endpoint", "jwks_uri"}
_LOGOUT_LEEWAY = 60
# A logout token lives about two minutes at Auth0; one naming a far expiry is refused, which
# also bounds how long its jti must be remembered.
_MAX_LOGOUT_TOKEN_LIFE = 3600.0
_CLAIM_PROBLEMS = {
    "iss": "was not issued by this tenant",
    "aud": "is meant for someone else (aud)",
    "nbf": "is not valid yet (nbf)",
    "iat": "was issued in the future (iat)",
    "sub": "names no user (sub)",
}


def check_times(claims: Mapping[str, Any], refuse: Callable[[str], TokenVaultError]) -> None:
    """Raise ``refuse`` unless each time claim present is a bounded, finite NumericDate.

    The one check of a token's numbers, for access and logout tokens alike: after it, every
    comparison and ``float()`` of them is safe (no NaN that never expires, no 400-digit
    ``exp`` that overflows into a 500).
    """
    for name in TIME_CLAIMS:
        if name in claims and not is_numeric_date(claims[name]):
            raise refuse(f"has a malformed {name}")


def origin(url: str) -> str:
    """Return the lower-cased ``scheme://host[:port]`` of ``url``."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def checked_metadata(document: Any, settings: Settings) -> dict[str, Any]:
    """Return the discovery document if it matches ``AUTH0_DOMAIN``, pinned to RS256.

    Raises :class:`~flask_token_vault.Misconfigured` naming the issuer or an endpoint on another
    origin (the token endpoint receives the client secret).
    """
    if not isinstance(document, Mapping):
        raise Auth0Unavailable(
            "Auth0's discovery document is not a JSON object.", error="malformed_answer"
        )
    remedy = (
        f"Set AUTH0_DOMAIN to the domain your tenant's issuer names (now {settings.base_url}); "
        "with a custom domain, use the custom domain. If it is right, someone is answering for "
        "your tenant: check DNS and any proxy in between."
    )
    issuer = document.get("issuer")
    if not isinstance(issuer, str) or issuer.lower() != settings.issuer.lower():
        raise Misconfigured(
            "Auth0's discovery document names another issuer than AUTH0_DOMAIN "
            f"({str(issuer)[:100]!r}, expected {settings.issuer!r}).",
            error="issuer_mismatch",
            remedy=remedy,
        )
    home = origin(settings.base_url)
    for name in sorted(_REQUIRED | {key for key in document if str(key).endswith("_endpoint")}):
        value = document.get(name)
        if value is None and name not in _REQUIRED:
            continue
        if not isinstance(value, str) or origin(value) != home:
            raise Misconfigured(
                f"Auth0's discovery document sends {name} to another site than AUTH0_DOMAIN "
                f"({str(value)[:100]!r}).",
                error="discovery_mismatch",
                remedy=remedy,
            )
    _check_mtls_aliases(document.get("mtls_endpoint_aliases"), settings, remedy)
    checked = {key: value for key, value in document.items() if key != "jwks"}
    checked["id_token_signing_alg_values_supported"] = [SIGNING_ALGORITHM]
    return checked


def _check_mtls_aliases(aliases: Any, settings: Settings, remedy: str) -> None:
    """Refuse mTLS aliases (RFC 8705) that leave the tenant: https, its host or ``mtls.`` + it.

    They receive the user's refresh tokens, as the token endpoint does; only the port may
    differ (Auth0 serves them on a host of their own).
    """
    if aliases is None:
        return
    host = (urlsplit(settings.base_url).hostname or "").lower()
    for name, value in aliases.items() if isinstance(aliases, Mapping) else [("", aliases)]:
        parts = urlsplit(value) if isinstance(value, str) else None
        if parts is None or parts.scheme != "https" or parts.hostname not in (host, "mtls." + host):
            raise Misconfigured(
                f"Auth0's discovery document sends the mTLS alias {str(name)[:60]} to another "
                f"site than AUTH0_DOMAIN ({str(value)[:100]!r}).",
                error="discovery_mismatch",
                remedy=remedy,
            )


def nothing_answers(
    base_url: str, reason: str | None = None, error: str | None = None
) -> Auth0Unavailable:
    """Return the error for an ``AUTH0_DOMAIN`` where no server listens (said plainly).

    ``error`` is the code of what could not be read (default ``connection_error``).
    """
    if is_loopback_host(urlsplit(base_url).hostname or ""):
        said, fix = "is the local Auth0 server running?", "Start the local Auth0 server at "
        fix += f"{base_url}, or set AUTH0_DOMAIN to your tenant's domain."
    else:
        said = f"({reason or 'connection refused'})."
        fix = f"Check AUTH0_DOMAIN ({base_url}) and this machine's network and DNS."
    return Auth0Unavailable(
        f"Nothing answers at {base_url}: {said}", error=error or "connection_error", remedy=fix
    )


def check_local_server(base_url: str) -> None:
    """Raise :func:`nothing_answers` when ``base_url`` is on this machine and nothing listens.

    Before sending a browser to a local Auth0 stand-in: a refused connection there costs well
    under a millisecond to find, and spares the visitor the browser's own error page.
    """
    parts = urlsplit(base_url)
    if not is_loopback_host(parts.hostname or ""):
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=0.5).close()
    except OSError:
        raise nothing_answers(base_url) from None


def _unavailable(what: str, base_url: str, error: str | None = None) -> ErrorHook:
    """Return the transport's error hook for a read of the tenant's ``what``."""
    parts = urlsplit(base_url)
    # The usual cause when https to this machine fails: a local stand-in speaks plain http.
    local = parts.scheme == "https" and is_loopback_host(parts.hostname or "")

    def hook(failure: Failure) -> TokenVaultError:
        reason = failure.reason or {
            "status": f"answered {failure.status}",
            "malformed_answer": "answered something that is not JSON",
        }.get(failure.kind, failure.kind)
        remedy = None
        if failure.kind == "connection_error" and failure.reason != "SSLError":
            return nothing_answers(base_url, failure.reason, error)
        if local and failure.reason == "SSLError":
            remedy = (
                f"AUTH0_DOMAIN names this machine over https ({base_url}); a local stand-in "
                f"for Auth0 speaks plain http: set AUTH0_DOMAIN=http://{parts.netloc}."
            )
        return Auth0Unavailable(
            f"Auth0's {what} could not be read ({reason}).",
            error=error or ("malformed_answer" if failure.kind == "status" else failure.kind),
            upstream_status=failure.status,
            remedy=remedy,
        )

    return hook


def read_discovery(settings: Settings, transport: Transport) -> dict[str, Any]:
    """Read the tenant's discovery document through ``transport``; return it checked."""
    reply = transport.call_json(
        "GET",
        settings.base_url + "/.well-known/openid-configuration",
        error=_unavailable("discovery document", settings.base_url),
        what="discovery document",
    )
    return checked_metadata(reply.body, settings)


class TenantKeys:
    """The tenant's public signing keys (JWKS), fetched on first use, never per request.

    The one key set behind ID, logout and access tokens; thread-safe. A key id the set lacks
    makes one fetch at once (a rotated key is trusted), then one per :data:`JWKS_MIN_REFRESH`.
    """

    def __init__(self, settings: Settings, transport: Transport) -> None:
        self.settings = settings
        self.transport = transport
        #: Where the keys are read. Auth0 publishes them at this fixed address, so an API
        #: call needs no discovery document first.
        self.jwks_uri = settings.base_url + "/.well-known/jwks.json"
        self._jwks: dict[str, Any] | None = None
        self._by_kid: dict[str, RSAKey] = {}
        self._fetched_at = 0.0
        self._tried_at = float("-inf")
        self._refreshed_at = float("-inf")
        self._lock = threading.Lock()

    def _fresh(self, kid: str | None) -> bool:
        """Return whether the set held answers: fetched, not too old, and holding ``kid``."""
        return (
            self._jwks is not None
            and self.transport.clock.monotonic() - self._fetched_at < JWKS_MAX_AGE
            and (kid is None or kid in self._by_kid)
        )

    def _update(self, kid: str | None = None, refresh: bool = False) -> None:
        """Fetch the set if it is missing, too old, or lacks ``kid``, as often as allowed."""
        if not refresh and self._fresh(kid):
            return
        with self._lock:
            if not refresh and self._fresh(kid):
                return  # another thread fetched while this one waited
            now = self.transport.clock.monotonic()
            if self._jwks is None:
                if now - self._tried_at < JWKS_RETRY:
                    raise Auth0Unavailable(
                        "Auth0's signing keys (JWKS) could not be read moments ago; tokens "
                        "cannot be checked until they are.",
                        error="jwks_unavailable",
                    )
                self._tried_at = now
                self._fetch(now)
            elif now - self._refreshed_at >= JWKS_MIN_REFRESH:
                self._refreshed_at = now
                try:
                    self._fetch(now)
                except Auth0Unavailable:
                    log.warning("JWKS refresh failed; keeping the keys fetched before")

    def _fetch(self, now: float) -> None:
        failed = _unavailable("signing keys (JWKS)", self.settings.base_url, "jwks_unavailable")
        reply = self.transport.call_json("GET", self.jwks_uri, error=failed, what="JWKS fetch")
        raw = reply.body.get("keys") if isinstance(reply.body, dict) else None
        if not isinstance(raw, list):
            raise failed(Failure("malformed_answer", reply.status, reason="not a key set"))
        # Only RSA signing keys with an id can verify a token: the rest are left out, so that
        # a key of another kind in the set cannot make the whole set unreadable.
        usable = [
            item
            for item in raw
            if isinstance(item, dict)
            and item.get("kty") == "RSA"
            and isinstance(item.get("kid"), str)
            and item.get("use", "sig") == "sig"
        ]
        try:
            by_kid = {item["kid"]: RSAKey.import_key(item) for item in usable}
        except (JoseError, ValueError, TypeError):
            raise failed(Failure("malformed_answer", reply.status, reason="a bad key")) from None
        self._jwks, self._by_kid, self._fetched_at = {"keys": usable}, by_kid, now
        log.info("JWKS fetched: %d signing keys", len(by_kid))

    def jwks(self, refresh: bool = False) -> dict[str, Any]:
        """Return the key set as a JWKS document; ``refresh`` when a token named a key it lacks."""
        self._update(refresh=refresh)
        return self._jwks or {"keys": []}

    def verify(
        self,
        token: str,
        *,
        audience: str,
        leeway: int,
        essential: Iterable[str],
        refuse: Callable[[str], TokenVaultError],
    ) -> dict[str, Any]:
        """Return the claims of a token the tenant signed for ``audience``; else raise ``refuse``.

        Checked: RS256 whatever the token offers, a known ``kid``, the signature, the time
        claims' numbers (:func:`check_times`), ``iss``, ``aud``, ``exp``, ``nbf`` and ``iat``
        (within ``leeway`` seconds), and the ``essential`` claims. ``refuse`` turns the reason,
        never the token, into the caller's error.
        Raises :class:`~flask_token_vault.Auth0Unavailable` when no key set can be had.
        """
        if not token or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
            raise refuse("is empty, too long or not ASCII")
        try:
            header = jws.extract_compact(token.encode("ascii")).headers()
        except (JoseError, ValueError, TypeError):
            raise refuse("is not a signed JWT") from None
        algorithm = header.get("alg")
        if algorithm != SIGNING_ALGORITHM:
            shown = clean_text(algorithm, 20) if isinstance(algorithm, str) else ""
            raise refuse(f"must be signed with RS256, not {shown or 'none'}")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid or len(kid) > 256:
            raise refuse("names no signing key (kid)")
        self._update(kid)
        key = self._by_kid.get(kid)
        if key is None:
            raise refuse("is signed with a key this tenant does not publish")
        try:
            # A second pin, which no test can tell from a wider list: the header check above lets
            # only RS256 through, and every key here is an RSA key. It stays so that joserfc
            # never takes the algorithm from the token should that check ever change.
            claims = jwt.decode(token, key, algorithms=[SIGNING_ALGORITHM]).claims
            check_times(claims, refuse)  # before the registry compares any of them
            jwt.JWTClaimsRegistry(
                now=int(self.transport.clock.time()),
                leeway=leeway,
                iss={"essential": True, "value": self.settings.issuer},
                aud={"essential": True, "value": audience},
                **{name: ClaimsOption(essential=True) for name in essential},
            ).validate(claims)
        except ExpiredTokenError:
            raise refuse("has expired") from None
        except MissingClaimError as exc:
            raise refuse(f"lacks the claim {clean_text(exc.claim, 40)}") from None
        except InvalidClaimError as exc:
            problem = _CLAIM_PROBLEMS.get(exc.claim)
            raise refuse(problem or f"has an invalid {clean_text(exc.claim, 40)}") from None
        except (JoseError, ValueError, TypeError, RecursionError):
            raise refuse("does not verify") from None
        return claims


@dataclass(frozen=True)
class LogoutClaims:
    """What a valid back-channel logout token says: a user, a session or both, its id, expiry."""

    sub: str | None
    sid: str | None
    jti: str
    expires_at: float


def _refused(reason: str) -> InvalidRequest:
    return InvalidRequest(
        f"The logout token {reason}.",
        error="invalid_logout_token",
    )


def verify_logout_token(raw: str, keys: TenantKeys) -> LogoutClaims:
    """Return the claims of a valid back-channel logout token; raise a 400 error otherwise."""
    claims = keys.verify(
        raw,
        audience=keys.settings.client_id,
        leeway=_LOGOUT_LEEWAY,
        essential=("iat", "exp", "jti"),
        refuse=_refused,
    )
    if claims["exp"] > keys.transport.clock.time() + _MAX_LOGOUT_TOKEN_LIFE:
        raise _refused("expires too far ahead for a logout token")
    events = claims.get("events")
    if not isinstance(events, Mapping) or not isinstance(events.get(BACKCHANNEL_EVENT), Mapping):
        raise _refused("does not carry the back-channel logout event")
    if "nonce" in claims:
        raise _refused("carries a nonce (an ID token is not a logout token)")
    sub, sid = claims.get("sub"), claims.get("sid")
    if sub is None and sid is None:
        raise _refused("names neither a session (sid) nor a user (sub)")
    for name in ("sub", "sid", "jti"):
        value = claims.get(name)
        if value is not None and (not isinstance(value, str) or not value or len(value) > 512):
            raise _refused(f"has a malformed {name}")
    return LogoutClaims(sub=sub, sid=sid, jti=claims["jti"], expires_at=float(claims["exp"]))
