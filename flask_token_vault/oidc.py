"""The tenant's OpenID configuration, its signing keys, and back-channel logout tokens.

(Layer: core, above the transport; knows nothing of Flask.)

* :class:`TenantMetadata` reads the discovery document through the app's transport and trusts
  only what matches ``AUTH0_DOMAIN``: the issuer must be the configured one, and the
  authorization, token, JWKS and other endpoints must be on the configured origin (the token
  endpoint receives the client secret). ID tokens are accepted signed with RS256 only, whatever
  the document offers.
* :class:`TenantKeys` fetches the JWKS from there, and again when a token names a key it does
  not hold (at most once every :attr:`TenantKeys.min_refresh` seconds).
* :func:`verify_logout_token` checks an OIDC Back-Channel Logout token the way the
  specification and Auth0's documentation say: RS256 signature, ``iss``, ``aud``, ``iat``,
  ``exp``, the back-channel logout event, ``sid`` and/or ``sub``, and no ``nonce``. Whether its
  ``jti`` was seen before is the caller's check (it needs the shared store).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from ._http import Failure, Transport
from .config import Settings, is_loopback_host
from .errors import Auth0Unavailable, InvalidRequest, Misconfigured, TokenVaultError

__all__ = [
    "BACKCHANNEL_EVENT",
    "ID_TOKEN_ALGORITHMS",
    "LogoutClaims",
    "TenantKeys",
    "TenantMetadata",
    "checked_metadata",
    "verify_logout_token",
]

#: The ``events`` member that makes a JWT a back-channel logout token.
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
#: The only algorithm ID tokens and logout tokens may be signed with.
ID_TOKEN_ALGORITHMS = ("RS256",)
_ENDPOINTS = (
    "authorization_endpoint",
    "token_endpoint",
    "jwks_uri",
    "userinfo_endpoint",
    "end_session_endpoint",
    "revocation_endpoint",
    "mfa_challenge_endpoint",
    "device_authorization_endpoint",
    "registration_endpoint",
    "backchannel_authentication_endpoint",
    "pushed_authorization_request_endpoint",
)
_REQUIRED = ("authorization_endpoint", "token_endpoint", "jwks_uri")
_MAX_LOGOUT_TOKEN = 8192
_LEEWAY = 60.0
# A logout token lives about two minutes at Auth0; one naming a far expiry is refused, which
# also bounds how long its jti must be remembered.
_MAX_LOGOUT_TOKEN_LIFE = 3600.0


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _remedy(settings: Settings) -> str:
    return (
        f"Set AUTH0_DOMAIN to the domain your tenant's issuer names (now {settings.base_url}); "
        "with a custom domain, use the custom domain. If it is right, someone is answering for "
        "your tenant: check DNS and any proxy in between."
    )


def checked_metadata(document: Any, settings: Settings) -> dict[str, Any]:
    """Return the discovery document if it matches ``AUTH0_DOMAIN``, pinned to RS256.

    Raises :class:`~flask_token_vault.Misconfigured` naming what does not match: the issuer, or
    an endpoint on another origin (which would receive the client secret or sign-ins).
    """
    if not isinstance(document, Mapping):
        raise Auth0Unavailable(
            "Auth0's discovery document is not a JSON object.", error="malformed_answer"
        )
    issuer = document.get("issuer")
    if not isinstance(issuer, str) or issuer.lower() != settings.issuer.lower():
        raise Misconfigured(
            "Auth0's discovery document names another issuer than AUTH0_DOMAIN "
            f"({str(issuer)[:100]!r}, expected {settings.issuer!r}).",
            error="issuer_mismatch",
            remedy=_remedy(settings),
        )
    home = _origin(settings.base_url)
    for name in _ENDPOINTS:
        value = document.get(name)
        if value is None and name not in _REQUIRED:
            continue
        if not isinstance(value, str) or _origin(value) != home:
            raise Misconfigured(
                f"Auth0's discovery document sends {name} to another site than AUTH0_DOMAIN "
                f"({str(value)[:100]!r}).",
                error="discovery_mismatch",
                remedy=_remedy(settings),
            )
    checked = {key: value for key, value in document.items() if key != "jwks"}
    checked["id_token_signing_alg_values_supported"] = list(ID_TOKEN_ALGORITHMS)
    return checked


def _unavailable(what: str, base_url: str) -> Any:
    def hook(failure: Failure) -> TokenVaultError:
        if failure.kind == "status":
            reason = f"answered {failure.status}"
        elif failure.kind == "malformed_answer":
            reason = "answered something that is not JSON"
        else:
            reason = failure.reason or failure.kind
        return Auth0Unavailable(
            f"Auth0's {what} could not be read ({reason}).",
            error=failure.code if failure.kind != "status" else "malformed_answer",
            upstream_status=failure.status,
            remedy=_plain_http_remedy(base_url, failure),
        )

    return hook


def _plain_http_remedy(base_url: str, failure: Failure) -> str | None:
    """Name the usual cause when https to this machine fails: a local stand-in speaks http."""
    parts = urlsplit(base_url)
    if (
        failure.reason == "SSLError"
        and parts.scheme == "https"
        and is_loopback_host(parts.hostname or "")
    ):
        return (
            f"AUTH0_DOMAIN names this machine over https ({base_url}); a local stand-in for Auth0 "
            f"speaks plain http: set AUTH0_DOMAIN=http://{parts.netloc}."
        )
    return None


class TenantMetadata:
    """The tenant's discovery document, read once through the app's transport and checked."""

    def __init__(self, settings: Settings, transport: Transport) -> None:
        self.settings = settings
        self.transport = transport
        self._document: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TenantMetadata({self.settings.base_url!r})"

    @property
    def url(self) -> str:
        """Return the discovery document's URL."""
        return self.settings.base_url + "/.well-known/openid-configuration"

    def get(self) -> dict[str, Any]:
        """Return the checked discovery document (fetched on first use, then kept)."""
        if self._document is None:
            with self._lock:
                if self._document is None:
                    reply = self.transport.call_json(
                        "GET",
                        self.url,
                        error=_unavailable("discovery document", self.settings.base_url),
                        what="discovery document",
                    )
                    self._document = checked_metadata(reply.body, self.settings)
        return self._document


class TenantKeys:
    """The tenant's signing keys (JWKS), fetched through the app's transport."""

    #: The least time between two fetches forced by a token naming an unknown key.
    min_refresh = 30.0

    def __init__(self, metadata: TenantMetadata) -> None:
        self.metadata = metadata
        self._jwks: dict[str, Any] | None = None
        self._key_set: KeySet | None = None
        self._fetched = float("-inf")
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TenantKeys({self.metadata.settings.base_url!r})"

    def get(self, force: bool = False) -> dict[str, Any]:
        """Return the JWKS document; with ``force``, fetch it again unless that was just done."""
        transport = self.metadata.transport
        with self._lock:
            recent = transport.clock.monotonic() - self._fetched < self.min_refresh
            if self._jwks is not None and (not force or recent):
                return self._jwks
            reply = transport.call_json(
                "GET",
                str(self.metadata.get()["jwks_uri"]),
                error=_unavailable("signing keys (JWKS)", self.metadata.settings.base_url),
                what="JWKS",
            )
            body = reply.body
            if not isinstance(body, dict) or not isinstance(body.get("keys"), list):
                raise Auth0Unavailable(
                    "Auth0's signing keys (JWKS) are not a key set.", error="malformed_answer"
                )
            try:
                key_set = KeySet.import_key_set(body)  # type: ignore[arg-type]
            except (JoseError, ValueError, TypeError, KeyError) as exc:
                raise Auth0Unavailable(
                    f"Auth0's signing keys (JWKS) could not be read ({type(exc).__name__}).",
                    error="malformed_answer",
                ) from None
            self._jwks, self._key_set = body, key_set
            self._fetched = transport.clock.monotonic()
            return body

    def key_set(self, force: bool = False) -> KeySet:
        """Return the keys as a joserfc ``KeySet``."""
        self.get(force)
        if self._key_set is None:  # pragma: no cover - get() always sets it
            raise Auth0Unavailable("Auth0's signing keys (JWKS) are not available.")
        return self._key_set


@dataclass(frozen=True)
class LogoutClaims:
    """What a valid back-channel logout token says."""

    #: The Auth0 user id, when the token names one.
    sub: str | None
    #: The Auth0 session id, when the token names one.
    sid: str | None
    #: The token's unique id (replays are refused by it).
    jti: str
    #: When the token expires (epoch seconds).
    expires_at: float


def _bad(reason: str) -> InvalidRequest:
    return InvalidRequest(
        f"The logout token is not valid: {reason}.",
        error="invalid_logout_token",
        remedy="Only Auth0 sends logout tokens here; nothing to do if this was not Auth0.",
    )


def _decode(raw: str, keys: TenantKeys) -> jwt.Token:
    try:
        try:
            return jwt.decode(raw, keys.key_set(), algorithms=list(ID_TOKEN_ALGORITHMS))
        except InvalidKeyIdError:
            return jwt.decode(raw, keys.key_set(force=True), algorithms=list(ID_TOKEN_ALGORITHMS))
    except (JoseError, ValueError, TypeError, KeyError, RecursionError) as exc:
        raise _bad(f"it is not a JWT signed by the tenant ({type(exc).__name__})") from None


def _number(claims: Mapping[str, Any], name: str) -> float:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise _bad(f"'{name}' is missing or not a number")
    return float(value)


def _text(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > 512:
        raise _bad(f"'{name}' is malformed")
    return value


def verify_logout_token(raw: str, keys: TenantKeys, settings: Settings, now: float) -> LogoutClaims:
    """Return the claims of a valid back-channel logout token; raise a 400 error otherwise."""
    if not raw or len(raw) > _MAX_LOGOUT_TOKEN or not raw.isascii():
        raise _bad("it is empty, too long or not ASCII")
    claims = _decode(raw, keys).claims
    if not isinstance(claims, Mapping):
        raise _bad("its claims are not a JSON object")
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or issuer.lower() != settings.issuer.lower():
        raise _bad("'iss' is not this tenant")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if settings.client_id not in audiences:
        raise _bad("'aud' is not this application")
    issued_at = _number(claims, "iat")
    expires_at = _number(claims, "exp")
    if issued_at > now + _LEEWAY:
        raise _bad("'iat' is in the future")
    if expires_at <= now - _LEEWAY:
        raise _bad("it has expired")
    if expires_at > now + _MAX_LOGOUT_TOKEN_LIFE:
        raise _bad("'exp' is too far ahead for a logout token")
    events = claims.get("events")
    if not isinstance(events, Mapping) or not isinstance(events.get(BACKCHANNEL_EVENT), Mapping):
        raise _bad("'events' does not carry the back-channel logout event")
    if "nonce" in claims:
        raise _bad("it carries a 'nonce' (an ID token is not a logout token)")
    sub, sid = _text(claims, "sub"), _text(claims, "sid")
    if sub is None and sid is None:
        raise _bad("it names neither a session ('sid') nor a user ('sub')")
    jti = _text(claims, "jti")
    if jti is None:
        raise _bad("'jti' is missing")
    return LogoutClaims(sub=sub, sid=sid, jti=jti, expires_at=expires_at)
