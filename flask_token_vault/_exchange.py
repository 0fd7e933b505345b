"""The Token Vault exchange and Auth0's token endpoint (layer: core, above the transport).

Client authentication is a client secret, or with ``AUTH0_CLIENT_PRIVATE_KEY`` a
``private_key_jwt`` assertion signed anew for every try (its ``jti`` is single use), or with
``AUTH0_CLIENT_CERTIFICATE`` the TLS client certificate (mTLS, see ``_mtls``). With
``TOKEN_VAULT_DPOP_KEY``, the calls that issue or use the user's tokens carry a DPoP proof.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import requests

from ._config import Settings
from ._connection_options import split_provider_scopes
from ._dpop import DPoP
from ._http import Attempt, ErrorHook, Failure, Reply, Transport, clean_text
from ._keys import ASSERTION_TYPE
from ._mtls import MutualTLS
from .errors import (
    AccountNotConnected,
    ApiClientMisconfigured,
    Auth0Unavailable,
    CallbackError,
    ExchangeRejected,
    InsufficientScope,
    InvalidAccessToken,
    LoginRequired,
    Misconfigured,
    PrivilegedAccessDenied,
    RateLimited,
    ReconsentRequired,
    TokenVaultError,
)

log = logging.getLogger("flask_token_vault")

GRANT_TYPE = "urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token"
# Token *type* URNs, not secrets (bandit B105 and ruff S105 match on the word "TOKEN").
SUBJECT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:refresh_token"  # noqa: S105  # nosec B105
#: The subject token type of the access-token exchange (an API exchanging its caller's token).
ACCESS_TOKEN_SUBJECT_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105  # nosec B105
_FCAT = "federated-connection-access-token"
REQUESTED_TOKEN_TYPE = f"http://auth0.com/oauth/token-type/{_FCAT}"
#: The Privileged Worker exchange's subject: a JWT the client key signs.
WORKER_SUBJECT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"  # noqa: S105  # nosec B105
#: What the Privileged Worker exchange asks for.
WORKER_REQUESTED_TOKEN_TYPE = "http://auth0.com/oauth/token-type/token-vault-access-token"  # noqa: S105  # nosec B105
#: The longest ``expires_in`` believed (a year); anything longer is a malformed answer.
MAX_EXPIRES_IN = 366 * 86_400
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
        return self.scopes is None or set(self.scopes).issuperset(required)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (includes the token: encrypt before storing)."""
        return {**asdict(self), "scopes": list(self.scopes) if self.scopes is not None else None}

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


def error_from_answer(
    status: int,
    body: Mapping[str, Any],
    connection: str | None,
    *,
    subject: str | None = None,
) -> TokenVaultError:
    """Map an Auth0 refusal (a status below 500) to the typed error that says what to do.

    ``subject`` is the subject token type: the access-token exchange maps Auth0's 401 for the
    token to :class:`~flask_token_vault.InvalidAccessToken` and a refused client to
    :class:`~flask_token_vault.ApiClientMisconfigured`.
    """
    code = clean_text(body.get("error"), 100) or f"http_{status}"
    # Auth0 ends its descriptions with a period, and ours add one.
    text = clean_text(body.get("error_description")).rstrip(".")
    desc = f"Auth0 refused the token exchange for {connection}: {text or code}."
    kwargs: dict[str, Any] = {"error": code, "connection": connection, "upstream_status": status}
    lowered = text.lower()
    mfa = code == "mfa_required" or re.search("mfa|multi-?factor", lowered) is not None
    if code in _NOT_CONNECTED:
        return AccountNotConnected(f"No {connection} account is connected for this user.", **kwargs)
    if code == "federated_connection_refresh_token_flow_failed":
        return ReconsentRequired(
            f"{connection} no longer accepts the permission stored in the vault.", **kwargs
        )
    if subject == ACCESS_TOKEN_SUBJECT_TYPE and not mfa:
        if code in ("invalid_client", "unauthorized_client") or status == 403:
            return ApiClientMisconfigured(desc, **kwargs)
        if status == 401 or code == "invalid_grant":
            # Auth0 refused the caller's token after it passed the API's own checks (revoked,
            # or expired inside the leeway): to the caller it is an invalid token like any other.
            return InvalidAccessToken(
                "Auth0 refused the access token for the exchange: get a new one.",
                error="invalid_token",
                connection=connection,
                upstream_status=status,
            )
    if subject == WORKER_SUBJECT_TOKEN_TYPE and not mfa:
        cause = _worker_cause(status, code, lowered)
        if cause is not None:
            return PrivilegedAccessDenied(
                f"Auth0 refused the background token request for {connection}: {text or code}.",
                cause=cause,
                **kwargs,
            )
    if code == "invalid_grant":
        if not re.search("refresh[ _]token|subject", lowered):
            return ReconsentRequired(desc, **kwargs)
        if subject == WORKER_SUBJECT_TOKEN_TYPE:
            # No session is involved: a refused subject token is the job's setup, not a login.
            return ExchangeRejected(
                f"Auth0 refused the background token request for {connection}: {text or code}.",
                remedy="Auth0 refused the subject token: check that the user id is a user of the "
                "tenant, that this machine's clock is right (Auth0 refuses a subject token older "
                "than 60 s) and that the client key is the one allowed privileged access "
                "(`flask token-vault worker setup` registers it).",
                **kwargs,
            )
        return LoginRequired("The session's Auth0 refresh token is no longer valid.", **kwargs)
    if code == "invalid_scope":
        return InsufficientScope(desc, connection=connection, error=code)
    if mfa:
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
    return ExchangeRejected(desc, **kwargs)


def _worker_cause(status: int, code: str, lowered: str) -> str | None:
    """Return which part of the Privileged Worker set-up a refusal names, if it is one.

    Auth0 answers 403 for each (``unauthorized_client`` without privileged access,
    ``access_denied`` otherwise) and names the part in ``error_description``; a connection not
    enabled for the client is a 400 ``invalid_request``.
    """
    if code == "unauthorized_client":
        return "no_privileged_access"
    if code == "invalid_client":
        return "client_key_refused"
    if code == "invalid_request":
        return "connection_not_enabled" if "not enabled" in lowered else None
    if code != "access_denied" and status != 403:
        return None
    if re.search(r"allowlist|\bip\b|address", lowered):
        return "ip_not_allowed"
    if "not enabled" in lowered:
        return "connection_not_enabled"
    if "scope" in lowered:
        return "scope_not_granted"
    if re.search("grant|connection", lowered):
        return "connection_not_granted"
    if "privileged" in lowered:
        return "no_privileged_access"
    return "unknown"


def token_failure(
    failure: Failure, connection: str | None = None, subject: str | None = None
) -> TokenVaultError:
    """Turn a failed call to ``/oauth/token`` into the typed error that says what to do."""
    unusable = {
        "timeout": "Auth0 did not answer in time.",
        "connection_error": f"Auth0 could not be reached ({failure.reason}).",
        "malformed_answer": f"Auth0 answered {failure.status} with something that is not JSON.",
    }
    status = failure.status or 0
    # An outage page (a proxy's HTML 503) is an outage, not an unreadable answer.
    if failure.kind in unusable and not (failure.kind == "malformed_answer" and status >= 500):
        return Auth0Unavailable(
            unusable[failure.kind],
            error=failure.kind,
            connection=connection,
            upstream_status=failure.status,
        )
    body = failure.body if isinstance(failure.body, Mapping) else {}
    if status >= 500:
        return Auth0Unavailable(
            f"Auth0 answered {status}.",
            error=clean_text(body.get("error"), 100) or f"http_{status}",
            connection=connection,
            upstream_status=status,
        )
    error = error_from_answer(status, body, connection, subject=subject)
    if isinstance(error, RateLimited):
        error.retry_after = failure.retry_after
    return error


def _binds_user_tokens(data: Mapping[str, str]) -> bool:
    """Return whether a grant issues or uses the user's tokens (those DPoP binds)."""
    grant = data.get("grant_type")
    if grant in ("authorization_code", "refresh_token"):
        return True
    return grant == GRANT_TYPE and data.get("subject_token_type") == SUBJECT_TOKEN_TYPE


class _TokenHook:
    """Finish each try of a call: a fresh client assertion and, with ``dpop``, DPoP proof."""

    def __init__(self, exchanger: Exchanger, dpop: DPoP | None) -> None:
        self.exchanger = exchanger
        self.dpop = dpop

    def prepare(self, attempt: Attempt) -> None:
        if attempt.data is not None:
            attempt.data.update(self.exchanger.client_auth())
        if self.dpop is not None:
            self.dpop.prepare(attempt)

    def retry(self, response: requests.Response) -> bool:
        return self.dpop is not None and self.dpop.retry(response)


class Exchanger:
    """Call Auth0's token endpoint for one client: the Token Vault exchange and other grants.

    The client is the app's own (``AUTH0_CLIENT_ID``) unless ``client_id`` and
    ``client_secret`` name another, such as an API's Custom API Client (which authenticates
    with its secret).
    """

    def __init__(
        self,
        settings: Settings,
        transport: Transport,
        dpop: DPoP | None = None,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
    ) -> None:
        self.settings = settings
        self.transport = transport
        #: The app's DPoP proofs, when ``TOKEN_VAULT_DPOP_KEY`` is set.
        self.dpop = dpop
        #: The client that authenticates at the token endpoint.
        self.client_id = client_id or settings.client_id
        # Another client than the app's: authenticated by its own secret, not the app's key.
        self._other_secret = client_secret if client_id else None
        #: The app's mTLS client authentication, when ``AUTH0_CLIENT_CERTIFICATE`` is set.
        self.mtls = (
            MutualTLS(settings, transport)
            if settings.client_certificate is not None and self._other_secret is None
            else None
        )

    def __repr__(self) -> str:
        return f"Exchanger({self.settings.base_url!r}, client_id={self.client_id!r})"

    def client_auth(self) -> dict[str, str]:
        """Return the form fields that authenticate the client at ``/oauth/token``.

        With a client key, a new assertion each time (call it once per try); with a client
        certificate, the ``client_id`` alone (the certificate authenticates).
        """
        settings = self.settings
        if self._other_secret is not None:
            return {"client_id": self.client_id, "client_secret": self._other_secret}
        if self.mtls is not None:
            return {"client_id": settings.client_id}
        key = settings.client_key
        if key is None:
            return {"client_id": settings.client_id, "client_secret": settings.client_secret}
        return {
            "client_id": settings.client_id,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": key.client_assertion(
                settings.client_id, settings.issuer, self.transport.clock.time()
            ),
        }

    def exchange_code(self, code: str, redirect_uri: str, code_verifier: str) -> dict[str, Any]:
        """Exchange the login's authorization code (PKCE) for the user's tokens.

        A refused code becomes a :class:`~flask_token_vault.CallbackError`; rate limits and
        outages keep their own types.
        """
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        try:
            # Sent once: a code is redeemed once, and a second try after a lost answer could
            # make Auth0 revoke the tokens the first one issued.
            return self.post_token(data, retry=False)
        except (RateLimited, Auth0Unavailable):
            raise
        except Misconfigured as exc:
            # The app's own credentials or grants were refused: no new sign-in can fix that,
            # so the operator is told (log and error), not the visitor sent round again.
            raise exc.restated(
                f"Auth0 refused this application when it redeemed the sign-in code: {exc.error}."
            ) from None
        except TokenVaultError as exc:
            raise CallbackError(
                f"Auth0 refused the sign-in: {exc.error}.",
                error=exc.error,
                upstream_status=exc.upstream_status,
            ) from None

    def privileged_exchange(
        self,
        user_id: str,
        connection: str,
        *,
        audit_context: str,
        login_hint: str | None,
        scopes: tuple[str, ...],
        org_id: str | None = None,
    ) -> ProviderToken:
        """Get a user's provider token with no session: Auth0's Privileged Worker exchange.

        The subject token is a ``token-vault-req+jwt`` the client key signs for ``user_id``,
        carrying ``audit_context`` (the reason Auth0 records) and ``org_id`` when given; the
        client authenticates with ``private_key_jwt``.
        """
        settings = self.settings
        key = settings.client_key
        if key is None:
            raise Misconfigured(
                "Background tokens (the Privileged Worker exchange) need the client key.",
                error="client_key_required",
                connection=connection,
                remedy="Set AUTH0_CLIENT_PRIVATE_KEY and register its public key with "
                "`flask token-vault worker setup`.",
            )
        started = self.transport.clock.time()
        subject = key.subject_token(
            settings.client_id,
            settings.issuer,
            user_id,
            started,
            audit_context=audit_context,
            org_id=org_id,
        )
        return self._vault_exchange(
            WORKER_SUBJECT_TOKEN_TYPE,
            subject,
            WORKER_REQUESTED_TOKEN_TYPE,
            connection,
            login_hint,
            scopes,
            started,
        )

    def exchange(
        self,
        subject_token: str,
        connection: str,
        *,
        login_hint: str | None = None,
        scopes: tuple[str, ...] = (),
        subject_token_type: str = SUBJECT_TOKEN_TYPE,
    ) -> ProviderToken:
        """Exchange the user's refresh token (or an API caller's access token) at Token Vault.

        With ``subject_token_type`` :data:`ACCESS_TOKEN_SUBJECT_TYPE`, ``subject_token`` is the
        caller's Auth0 access token and this exchanger's client must be the API's Custom API
        Client.
        """
        return self._vault_exchange(
            subject_token_type,
            subject_token,
            REQUESTED_TOKEN_TYPE,
            connection,
            login_hint,
            scopes if self.settings.send_exchange_scope else (),
            self.transport.clock.time(),
        )

    def _vault_exchange(
        self,
        subject_type: str,
        subject: str,
        requested_type: str,
        connection: str,
        login_hint: str | None,
        scopes: tuple[str, ...],
        started: float,
    ) -> ProviderToken:
        data = {
            "grant_type": GRANT_TYPE,
            "subject_token_type": subject_type,
            "subject_token": subject,
            "requested_token_type": requested_type,
            "connection": connection,
        }
        if login_hint:
            data["login_hint"] = login_hint
        if scopes:
            data["scope"] = " ".join(scopes)
        body = self.post_token(data, connection=connection)
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise Auth0Unavailable(
                "Auth0 answered the exchange without an access token.",
                error="malformed_answer",
                connection=connection,
            )
        raw_expires_in = body.get("expires_in")
        expires_in = checked_expires_in(
            raw_expires_in, connection, default=self.settings.default_expires_in
        )
        if raw_expires_in is None:
            log.info(
                "Auth0 gave no expires_in: connection=%s taking=%gs "
                "(TOKEN_VAULT_DEFAULT_EXPIRES_IN)",
                connection,
                expires_in,
            )
        raw_scope = body.get("scope")
        token_type = body.get("token_type")
        return ProviderToken(
            access_token=token,
            expires_at=started + expires_in,
            scopes=split_provider_scopes(raw_scope) if isinstance(raw_scope, str) else None,
            connection=connection,
            login_hint=login_hint,
            token_type=token_type if isinstance(token_type, str) and token_type else "Bearer",
        )

    def revoke(self, refresh_token: str) -> None:
        """Revoke a refresh token at Auth0 (``POST /oauth/revoke``); raise the typed error."""
        self.post(
            "revocation_endpoint",
            self.settings.base_url + "/oauth/revoke",
            {"token": refresh_token},
            what="refresh token revocation",
        )

    def post_token(
        self, data: Mapping[str, str], *, connection: str | None = None, retry: bool = True
    ) -> dict[str, Any]:
        """POST a grant to ``/oauth/token`` with the client's authentication; return the answer.

        Retried inside the app's deadline, each try with its own client assertion and (for the
        grants that issue or use the user's tokens, when a DPoP key is set) DPoP proof; raises
        the typed error for whatever still fails. ``retry=False`` sends a grant once (a DPoP
        nonce answer still gets its one more try, since Auth0 refused the request before
        looking at the grant).
        """
        grant = data.get("grant_type", "")
        subject = data.get("subject_token_type")
        reply = self.post(
            "token_endpoint",
            self.settings.token_endpoint,
            data,
            what=f"token request (grant={'token_vault' if grant == GRANT_TYPE else grant} "
            f"connection={connection})",
            error=lambda failure: token_failure(failure, connection, subject),
            dpop=self.dpop if _binds_user_tokens(data) else None,
            retry=retry,
        )
        if not isinstance(reply.body, dict):
            raise Auth0Unavailable(
                "Auth0 answered with something that is not a JSON object.",
                error="malformed_answer",
                connection=connection,
                upstream_status=reply.status,
            )
        return reply.body

    def post(
        self,
        endpoint: str,
        url: str,
        data: Mapping[str, str],
        *,
        what: str,
        error: ErrorHook = token_failure,
        dpop: DPoP | None = None,
        retry: bool = True,
    ) -> Reply:
        """POST a form to Auth0 with the client's authentication, anew on each try.

        ``endpoint`` is the call's discovery name (``token_endpoint``, ...); with mTLS the call
        goes to its ``mtls_endpoint_aliases`` entry, when the tenant has one, with the
        certificate. ``dpop`` adds a DPoP proof to each try.
        """
        tls: dict[str, Any] = {}
        if self.mtls is not None:
            url, error, tls = self.mtls.route(endpoint, url, error)
        return self.transport.call_json(
            "POST",
            url,
            data=dict(data),
            error=error,
            what=what,
            hook=_TokenHook(self, dpop),
            retry=retry,
            **tls,
        )


def checked_expires_in(value: Any, connection: str | None = None, *, default: float) -> float:
    """Return Auth0's ``expires_in`` as seconds: finite, positive, at most a year.

    Missing (or ``null``) means ``default`` (``TOKEN_VAULT_DEFAULT_EXPIRES_IN`` for the
    exchange: a conservative guess; a token that dies sooner is dropped on the provider's first
    401). ``Infinity``, ``NaN``, ``1e400``, a 400-digit integer or anything
    that is not a number is a malformed answer, not a 500.
    """
    if value is None:
        return float(default)
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 12:
        value = int(value)
    # The comparison refuses NaN and infinities too, and a huge int before float() overflows.
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not is_number or not 0 < value <= MAX_EXPIRES_IN:
        raise Auth0Unavailable(
            "Auth0 answered the exchange with an unusable 'expires_in'.",
            error="malformed_answer",
            connection=connection,
        )
    return float(value)
