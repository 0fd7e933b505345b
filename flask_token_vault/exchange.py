"""The Token Vault exchange on the wire: refresh token in, provider access token out.

One :class:`Exchanger` per app holds a pooled ``requests.Session``. Every request has a timeout,
and all attempts of one call share one total deadline. Connection errors, timeouts, 5xx answers
and unreadable answers are retried with exponential backoff and full jitter; a 429 waits for
Auth0's ``Retry-After`` (or ``X-RateLimit-Reset``) when that fits in the deadline; nothing else
is retried. Auth0's error code is kept on the typed error that comes out.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from .config import Settings, split_scopes
from .errors import (
    AccountNotConnected,
    Auth0Unavailable,
    ExchangeRejected,
    InsufficientScope,
    LoginRequired,
    Misconfigured,
    RateLimited,
    ReconsentRequired,
    TokenVaultError,
)

__all__ = [
    "GRANT_TYPE",
    "REQUESTED_TOKEN_TYPE",
    "SUBJECT_TOKEN_TYPE",
    "Exchanger",
    "ProviderToken",
    "error_from_answer",
]

log = logging.getLogger("flask_token_vault")

GRANT_TYPE = "urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token"
# Token *type* URNs, not secrets (bandit B105 and ruff S105 match on the word "TOKEN").
SUBJECT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:refresh_token"  # noqa: S105  # nosec B105
_FCAT = "federated-connection-access-token"
REQUESTED_TOKEN_TYPE = f"http://auth0.com/oauth/token-type/{_FCAT}"
DEFAULT_EXPIRES_IN = 3600
_TRANSIENT_STATUS = frozenset({500, 502, 503, 504})
_NOT_CONNECTED = frozenset({"federated_connection_refresh_token_not_found", "tokenset_not_found"})


@dataclass(frozen=True)
class ProviderToken:
    """A provider access token from the vault, with what Auth0 said about it."""

    #: The provider's access token (send it as ``Authorization: Bearer``).
    access_token: str = field(repr=False)
    #: When the token expires, in epoch seconds.
    expires_at: float
    #: Granted scopes, or ``None`` when Auth0 did not say.
    scopes: tuple[str, ...] | None
    #: The connection the token is for.
    connection: str
    #: The account hint it was asked for, if any.
    login_hint: str | None = None
    #: The token type Auth0 named (``Bearer``).
    token_type: str = "Bearer"  # noqa: S105 - a token type name

    def expires_in(self, now: float | None = None) -> float:
        """Return the seconds left before the token expires."""
        return self.expires_at - (time.time() if now is None else now)

    def has_scopes(self, required: tuple[str, ...] | frozenset[str] | list[str]) -> bool:
        """Return whether the token carries every required scope (unknown scopes count as yes)."""
        return self.scopes is None or set(required) <= set(self.scopes)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (includes the token: encrypt before storing)."""
        return {
            "access_token": self.access_token,
            "expires_at": self.expires_at,
            "scopes": list(self.scopes) if self.scopes is not None else None,
            "connection": self.connection,
            "login_hint": self.login_hint,
            "token_type": self.token_type,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProviderToken:
        """Rebuild a token from :meth:`to_dict` output."""
        scopes = data.get("scopes")
        return cls(
            access_token=str(data["access_token"]),
            expires_at=float(data["expires_at"]),
            scopes=tuple(scopes) if scopes is not None else None,
            connection=str(data["connection"]),
            login_hint=data.get("login_hint"),
            token_type=str(data.get("token_type") or "Bearer"),
        )


def _retry_after(response: requests.Response, now: float) -> float | None:
    value = response.headers.get("Retry-After")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(value).timestamp() - now)
            except (TypeError, ValueError):
                pass
    reset = response.headers.get("X-RateLimit-Reset")
    if reset:
        try:
            return max(0.0, float(reset) - now)
        except ValueError:
            return None
    return None


def _json_body(response: requests.Response) -> dict[str, Any] | None:
    ctype = response.headers.get("Content-Type", "")
    if not ctype.lower().startswith("application/json"):
        return None
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def _clean(text: Any, limit: int = 300) -> str:
    """Keep an upstream description printable and short (it is shown to people)."""
    if not isinstance(text, str):
        return ""
    return "".join(ch if ch.isprintable() else " " for ch in text)[:limit]


def error_from_answer(
    status: int, body: Mapping[str, Any] | None, connection: str | None
) -> TokenVaultError:
    """Map an Auth0 error answer of the exchange to the typed error that says what to do."""
    code = _clean((body or {}).get("error"), 100) or f"http_{status}"
    text = _clean((body or {}).get("error_description"))
    desc = f"Auth0 refused the token exchange for {connection}: {text or code}."
    kwargs: dict[str, Any] = {"error": code, "connection": connection, "status": status}
    lowered = text.lower()
    if code in _NOT_CONNECTED:
        return AccountNotConnected(f"No {connection} account is connected for this user.", **kwargs)
    if code == "federated_connection_refresh_token_flow_failed":
        return ReconsentRequired(
            f"{connection} no longer accepts the permission stored in the vault.", **kwargs
        )
    if code == "invalid_grant":
        if "refresh token" in lowered or "refresh_token" in lowered or "subject" in lowered:
            return LoginRequired("The session's Auth0 refresh token is no longer valid.", **kwargs)
        return ReconsentRequired(desc, **kwargs)
    if code == "invalid_scope":
        return InsufficientScope(desc, connection=connection, error=code)
    if (
        "mfa" in lowered
        or "multifactor" in lowered
        or "multi-factor" in lowered
        or code == "mfa_required"
    ):
        return Misconfigured(
            desc,
            remedy="Set the tenant's MFA policy to 'Never' and enforce MFA in an Action; "
            "Token Vault cannot run under the 'Always' policy.",
            **kwargs,
        )
    if code in ("unauthorized_client", "invalid_client", "access_denied") or status == 403:
        return Misconfigured(desc, **kwargs)
    if status == 429:
        return RateLimited(desc, **kwargs)
    if status >= 500:
        return Auth0Unavailable(desc, **kwargs)
    return ExchangeRejected(desc, **kwargs)


def pooled_session(pool_maxsize: int = 64) -> requests.Session:
    """Return a ``requests.Session`` that keeps connections to Auth0 open between calls.

    Retries are ours (deadline-bounded), so urllib3's own are off.
    """
    http = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_maxsize, max_retries=0)
    http.mount("https://", adapter)
    http.mount("http://", adapter)
    http.headers["User-Agent"] = "Flask-Token-Vault"
    return http


class Exchanger:
    """Perform Token Vault exchanges for one app, over one pooled HTTP session."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.monotonic = monotonic
        self.sleep = sleep
        self.http = pooled_session()

    def __repr__(self) -> str:
        return f"Exchanger({self.settings.base_url!r})"

    def exchange(
        self,
        refresh_token: str,
        connection: str,
        *,
        login_hint: str | None = None,
        scopes: tuple[str, ...] = (),
    ) -> ProviderToken:
        """Exchange the user's refresh token for a provider access token."""
        s = self.settings
        data = {
            "grant_type": GRANT_TYPE,
            "client_id": s.client_id,
            "client_secret": s.client_secret,
            "subject_token_type": SUBJECT_TOKEN_TYPE,
            "subject_token": refresh_token,
            "requested_token_type": REQUESTED_TOKEN_TYPE,
            "connection": connection,
        }
        if login_hint:
            data["login_hint"] = login_hint
        if scopes and s.send_exchange_scope:
            data["scope"] = " ".join(scopes)
        started = self.clock()
        body = self.post_token(data, connection=connection)
        return self._parse_success(body, connection, login_hint, started)

    def _parse_success(
        self, body: Mapping[str, Any], connection: str, login_hint: str | None, started: float
    ) -> ProviderToken:
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise Auth0Unavailable(
                "Auth0 answered the exchange without an access token.",
                error="malformed_answer",
                connection=connection,
            )
        expires_in = body.get("expires_in", DEFAULT_EXPIRES_IN)
        if isinstance(expires_in, str) and expires_in.isdigit():
            expires_in = int(expires_in)
        if (
            isinstance(expires_in, bool)
            or not isinstance(expires_in, (int, float))
            or expires_in <= 0
        ):
            expires_in = DEFAULT_EXPIRES_IN
        raw_scope = body.get("scope")
        scopes = split_scopes(raw_scope) if isinstance(raw_scope, str) else None
        token_type = body.get("token_type")
        return ProviderToken(
            access_token=token,
            expires_at=started + float(expires_in),
            scopes=scopes,
            connection=connection,
            login_hint=login_hint,
            token_type=token_type if isinstance(token_type, str) and token_type else "Bearer",
        )

    def post_token(
        self, data: Mapping[str, str], *, connection: str | None = None
    ) -> dict[str, Any]:
        """POST form data to ``/oauth/token`` with retries; return the JSON answer or raise."""
        s = self.settings
        deadline = self.monotonic() + s.deadline
        attempt = 0
        grant = data.get("grant_type", "")
        while True:
            remaining = deadline - self.monotonic()
            failure: TokenVaultError
            retry_in: float | None = None
            try:
                response = self.http.post(
                    s.token_endpoint,
                    data=data,
                    headers={"Accept": "application/json"},
                    timeout=(min(s.http_timeout, max(remaining, 0.05)),) * 2,
                    allow_redirects=False,
                )
            except requests.Timeout:
                failure = Auth0Unavailable(
                    "Auth0 did not answer in time.", error="timeout", connection=connection
                )
            except requests.RequestException as exc:
                failure = Auth0Unavailable(
                    f"Auth0 could not be reached ({type(exc).__name__}).",
                    error="connection_error",
                    connection=connection,
                )
            else:
                body = _json_body(response)
                if response.status_code == 200:
                    if body is not None:
                        return body
                    failure = Auth0Unavailable(
                        "Auth0 answered with something that is not JSON.",
                        error="malformed_answer",
                        connection=connection,
                        status=200,
                    )
                elif response.status_code == 429:
                    wait = _retry_after(response, self.clock())
                    failure = error_from_answer(429, body, connection)
                    if isinstance(failure, RateLimited):
                        failure.retry_after = wait
                    retry_in = wait if wait is not None else None
                elif response.status_code in _TRANSIENT_STATUS or (
                    body is None and response.status_code >= 500
                ):
                    failure = Auth0Unavailable(
                        f"Auth0 answered {response.status_code}.",
                        error=str((body or {}).get("error") or f"http_{response.status_code}"),
                        connection=connection,
                        status=response.status_code,
                    )
                elif body is None:
                    failure = Auth0Unavailable(
                        f"Auth0 answered {response.status_code} with a body that is not JSON.",
                        error="malformed_answer",
                        connection=connection,
                        status=response.status_code,
                    )
                    # A 4xx HTML page is not transient: do not retry it.
                    raise failure
                else:
                    raise error_from_answer(response.status_code, body, connection)
            attempt += 1
            if retry_in is None:  # a 429 without a wait backs off like any transient failure
                retry_in = random.uniform(0, min(2.0, 0.1 * 2**attempt))  # noqa: S311  # nosec B311
            remaining = deadline - self.monotonic()
            if attempt > s.max_retries or retry_in >= remaining:
                log.warning(
                    "token request failed: grant=%s connection=%s error=%s attempts=%d",
                    _grant_name(grant),
                    connection,
                    failure.error,
                    attempt,
                )
                raise failure
            log.info(
                "token request failed, retrying in %.2fs: grant=%s connection=%s error=%s",
                retry_in,
                _grant_name(grant),
                connection,
                failure.error,
            )
            self.sleep(retry_in)


def _grant_name(grant: str) -> str:
    return "token_vault" if grant == GRANT_TYPE else grant
