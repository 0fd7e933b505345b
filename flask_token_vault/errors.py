"""Errors raised by Flask-Token-Vault.

Every error is a :class:`TokenVaultError`. Each carries a machine-readable ``error`` code (Auth0's
own code when Auth0 gave one), a human ``description`` and a ``remedy`` that says what to do. Each
is also a werkzeug :class:`~werkzeug.exceptions.HTTPException` whose ``code`` is the HTTP status
the app answers with, so apps can customise it with ``@app.errorhandler(SomeError)``; the status
Auth0 (or a provider) answered is ``upstream_status`` on every class.

Errors carry data only. The extension turns them into an HTML page or a JSON body in one place
(the error handler that ``init_app`` registers); the CLI prints them its own way.

No message, repr or body ever contains a token, a refresh token, a code or a client secret.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any, ClassVar

from werkzeug.datastructures import Headers
from werkzeug.exceptions import HTTPException

__all__ = [
    "AccountNotConnected",
    "ApiClientMisconfigured",
    "Auth0Unavailable",
    "CallbackError",
    "ClientNotEligible",
    "ConfigurationError",
    "ExchangeRejected",
    "InsufficientApiScope",
    "InsufficientScope",
    "InvalidAccessToken",
    "InvalidRequest",
    "LoginRequired",
    "ManagementError",
    "ManagementForbidden",
    "ManagementNotFound",
    "ManagementRateLimited",
    "Misconfigured",
    "MyAccountError",
    "ProviderUnavailable",
    "RateLimited",
    "ReconsentRequired",
    "TokenVaultError",
    "TokensetsGone",
]


class ConfigurationError(RuntimeError):
    """Raise at start-up when a configuration key is missing or malformed."""

    def __init__(self, key: str, problem: str) -> None:
        #: The configuration key at fault, e.g. ``AUTH0_DOMAIN``.
        self.key = key
        #: What is wrong with it and what it must be.
        self.problem = problem
        super().__init__(f"{key}: {problem}")


class TokenVaultError(HTTPException):
    """Base class of every error the extension raises while serving a request."""

    #: HTTP status used when the error is not handled by the app. ``None`` on this base class
    #: on purpose: Flask files an ``errorhandler`` for an HTTPException class under its code,
    #: so ``@app.errorhandler(TokenVaultError)`` only catches every subclass if this is None.
    #: An instance of the base class itself answers 500.
    code: int | None = None
    #: Machine-readable code used when no more specific one is known.
    default_error: ClassVar[str] = "token_vault_error"
    #: What the user or the developer should do about it.
    default_remedy: ClassVar[str] = "See the Flask-Token-Vault troubleshooting guide."

    def __init__(
        self,
        description: str | None = None,
        *,
        error: str | None = None,
        remedy: str | None = None,
        connection: str | None = None,
        upstream_status: int | None = None,
        code: int | None = None,
    ) -> None:
        super().__init__(description or self.__class__.__doc__ or self.default_error)
        if code is not None:
            self.code = code
        elif self.code is None:
            self.code = 500
        #: Machine-readable code: Auth0's own when it gave one, else :attr:`default_error`.
        self.error: str = error or self.default_error
        #: What the user or the developer should do about it.
        self.remedy: str = remedy or self.default_remedy
        #: The connection concerned, when there is one.
        self.connection: str | None = connection
        #: The HTTP status Auth0 (or the provider) answered with, when it answered.
        self.upstream_status: int | None = upstream_status

    def __repr__(self) -> str:
        extra = f", connection={self.connection!r}" if self.connection else ""
        return (
            f"{type(self).__name__}(error={self.error!r}{extra}, description={self.description!r})"
        )

    def __str__(self) -> str:
        return f"{self.error}: {self.description}"

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON body describing this error."""
        body: dict[str, Any] = {
            "error": self.error,
            "error_description": self.description,
            "remedy": self.remedy,
        }
        if self.connection:
            body["connection"] = self.connection
        if self.upstream_status is not None:
            body["upstream_status"] = self.upstream_status
        return body

    def extra_headers(self) -> Headers:
        """Return headers to add to the error response (``Retry-After``, ``WWW-Authenticate``)."""
        return Headers()


class InvalidRequest(TokenVaultError):
    """The request to one of the extension's routes was malformed or not allowed."""

    code = 400
    default_error = "invalid_request"
    default_remedy = "Go back and try again from a link on this site."


class CallbackError(TokenVaultError):
    """The login callback could not be completed (state, code or ID token rejected)."""

    code = 400
    default_error = "callback_failed"
    default_remedy = "Start the sign-in again; the link you followed is stale or was tampered with."


class LoginRequired(TokenVaultError):
    """The user is not signed in, or their session no longer holds a usable refresh token."""

    code = 401
    default_error = "login_required"
    default_remedy = "Sign in again."

    def extra_headers(self) -> Headers:
        """Tell API clients how to authenticate."""
        return Headers([("WWW-Authenticate", 'Bearer error="login_required"')])


def _challenge_text(text: str) -> str:
    """Keep a value fit for a quoted ``WWW-Authenticate`` parameter (RFC 6750 section 3)."""
    return "".join(ch for ch in text if 0x20 <= ord(ch) <= 0x7E and ch not in '"\\')[:200]


class InvalidAccessToken(TokenVaultError):
    """The request's ``Authorization: Bearer`` access token is missing, malformed or not valid.

    Answered 401 with ``WWW-Authenticate: Bearer error="invalid_token"`` (RFC 6750), never with
    a redirect: the caller is a program, and only it can get a new token. A route that needs
    API scopes answers a request without any access token the same status, with
    ``error`` ``access_token_required`` and a bare ``Bearer`` challenge.
    """

    code = 401
    default_error = "invalid_token"
    default_remedy = "Send a valid access token for this API: get a new one from Auth0."

    def extra_headers(self) -> Headers:
        """Tell the caller, as RFC 6750 says, that its token was refused (or is needed)."""
        if self.error != "invalid_token":
            return Headers([("WWW-Authenticate", "Bearer")])
        description = _challenge_text(str(self.description))
        return Headers(
            [
                (
                    "WWW-Authenticate",
                    f'Bearer error="invalid_token", error_description="{description}"',
                )
            ]
        )


class _ScopeGap:
    """What a token carries (``granted``) against what a call needs (``required``)."""

    granted: tuple[str, ...]
    required: tuple[str, ...]

    @property
    def missing(self) -> tuple[str, ...]:
        """Return the required scopes the token does not carry."""
        return tuple(sorted(set(self.required) - set(self.granted)))


class InsufficientApiScope(_ScopeGap, TokenVaultError):
    """The caller's access token is valid but lacks API scopes (permissions) the route needs.

    Answered 403 with ``WWW-Authenticate: Bearer error="insufficient_scope", scope="..."``
    naming the missing scopes. Not to be confused with :class:`InsufficientScope`, which is
    about the *provider* token's scopes.
    """

    code = 403
    default_error = "insufficient_scope"
    default_remedy = (
        "Ask Auth0 for an access token carrying the missing scopes (request them with the "
        "API's audience, or grant the permissions to the user in Auth0)."
    )

    def __init__(
        self,
        description: str | None = None,
        *,
        granted: Iterable[str] = (),
        required: Iterable[str] = (),
    ) -> None:
        #: The API scopes the access token carries.
        self.granted: tuple[str, ...] = tuple(sorted(set(granted)))
        #: The API scopes the route needs.
        self.required: tuple[str, ...] = tuple(sorted(set(required)))
        super().__init__(
            description or f"The access token lacks the API scopes: {' '.join(self.missing)}."
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON body, naming the missing API scopes."""
        body = super().to_dict()
        body["required_api_scopes"] = list(self.required)
        body["missing_api_scopes"] = list(self.missing)
        return body

    def extra_headers(self) -> Headers:
        """Name the missing scopes in the challenge, as RFC 6750 section 3 allows."""
        scope = _challenge_text(" ".join(self.missing))
        return Headers(
            [("WWW-Authenticate", f'Bearer error="insufficient_scope", scope="{scope}"')]
        )


class AccountNotConnected(TokenVaultError):
    """The user has not connected their account at this provider (nothing in the vault)."""

    code = 401
    default_error = "account_not_connected"
    default_remedy = "Connect the account at this provider, then try again."


class ReconsentRequired(TokenVaultError):
    """The provider no longer honours the stored grant; the user must connect again."""

    code = 401
    default_error = "reconsent_required"
    default_remedy = "Connect the account again to renew the permission given to this app."


class InsufficientScope(_ScopeGap, ReconsentRequired):
    """The provider token lacks scopes the call needs; the user must consent to more."""

    code = 403
    default_error = "insufficient_scope"
    default_remedy = "Connect the account again and allow the additional permissions."

    def __init__(
        self,
        description: str | None = None,
        *,
        connection: str | None = None,
        granted: Iterable[str] = (),
        required: Iterable[str] = (),
        error: str | None = None,
    ) -> None:
        #: The scopes the provider token carries.
        self.granted: tuple[str, ...] = tuple(sorted(set(granted)))
        #: The scopes the call needs.
        self.required: tuple[str, ...] = tuple(sorted(set(required)))
        #: What to ask for at re-consent: granted | required, so no earlier consent is lost.
        self.union: tuple[str, ...] = tuple(sorted(set(self.granted) | set(self.required)))
        super().__init__(
            description or f"The {connection} token lacks the scopes: {' '.join(self.missing)}.",
            error=error,
            connection=connection,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON body, with granted and required scopes."""
        body = super().to_dict()
        body["granted_scopes"] = list(self.granted)
        body["required_scopes"] = list(self.union)
        return body


class Misconfigured(TokenVaultError):
    """Auth0 refused the exchange because the tenant or the app is set up wrongly."""

    code = 500
    default_error = "misconfigured"
    default_remedy = (
        "Enable the Token Vault grant on the application and Token Vault on the connection, "
        "make sure refresh-token rotation is off and the MFA policy is not 'Always'; "
        "`flask token-vault doctor` checks all of these."
    )


class ApiClientMisconfigured(Misconfigured):
    """The API cannot exchange callers' access tokens: its Custom API Client is missing or wrong.

    Raised when ``TOKEN_VAULT_API_CLIENT_ID`` is not set, or when Auth0 refuses the Custom API
    Client (not linked to the API of the caller's token, no Token Vault grant, wrong secret).
    Answered 503, not 500: nothing crashed and the caller did nothing wrong; the API cannot
    serve this until its operator fixes the set-up (502 would blame Auth0, which answered
    correctly).
    """

    code = 503
    default_error = "api_client_misconfigured"
    default_remedy = (
        "Create or find the API's Custom API Client with `flask token-vault api-client enable` "
        "(it links a client to AUTH0_AUDIENCE and gives it the Token Vault grant), then set "
        "TOKEN_VAULT_API_CLIENT_ID and TOKEN_VAULT_API_CLIENT_SECRET; `flask token-vault "
        "doctor` checks the set-up."
    )


class ExchangeRejected(TokenVaultError):
    """Auth0 rejected the exchange for a reason not covered by a more specific error."""

    code = 502
    default_error = "exchange_rejected"
    default_remedy = "Try again; if it persists, check the Auth0 tenant logs for this error code."


class RateLimited(TokenVaultError):
    """Auth0 rate-limited the request and waiting would hold the request too long.

    The app answers 503 with ``Retry-After``: the visitor did nothing wrong, the app is
    briefly unable to serve them (``TOKEN_VAULT_RATE_LIMIT_WAIT`` bounds the wait).
    """

    code = 503
    default_error = "too_many_requests"
    default_remedy = "Wait a moment and try again."
    #: ``Retry-After`` sent when Auth0 did not say how long to wait.
    default_retry_after = 5

    def __init__(
        self, description: str | None = None, *, retry_after: float | None = None, **kwargs: Any
    ) -> None:
        super().__init__(description, **kwargs)
        #: Seconds Auth0 asked us to wait, when it said.
        self.retry_after = retry_after

    def extra_headers(self) -> Headers:
        """Pass Auth0's wait on to the client (a default one when Auth0 did not say)."""
        wait = self.default_retry_after if self.retry_after is None else self.retry_after
        return Headers([("Retry-After", str(max(1, round(wait))))])

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON body, with the wait in seconds."""
        body = super().to_dict()
        body["retry_after"] = self.retry_after
        return body


class ProviderUnavailable(TokenVaultError):
    """The provider's API could not be reached or did not answer in time."""

    code = 502
    default_error = "provider_unavailable"
    default_remedy = "The provider did not answer; try again in a moment."


class Auth0Unavailable(TokenVaultError):
    """Auth0 could not be reached, timed out, failed, or answered something unreadable."""

    code = 503
    default_error = "auth0_unavailable"
    default_remedy = "Auth0 did not answer properly; try again in a moment."


class _StatusCodeAlias:
    """The deprecated ``status_code`` of the errors that had one, for ``upstream_status``."""

    upstream_status: int | None

    @property
    def status_code(self) -> int | None:
        """Return :attr:`upstream_status` (deprecated name)."""
        warnings.warn(
            "'status_code' is deprecated: use 'upstream_status' (the status Auth0 answered); "
            "'code' is the status the app answers with.",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.upstream_status


class ManagementError(_StatusCodeAlias, TokenVaultError):
    """Auth0's Management API refused or failed a request.

    Carries what Auth0 said: ``upstream_status`` (its ``statusCode``, or ``None`` when it did not
    answer), ``error_code`` (its ``errorCode``) and ``message``.
    """

    code = 502
    default_error = "management_error"
    default_remedy = (
        "Check the message; `flask token-vault doctor` checks the tenant's set-up for this app."
    )

    def __init__(
        self,
        description: str | None = None,
        *,
        upstream_status: int | None = None,
        error_code: str | None = None,
        message: str | None = None,
        remedy: str | None = None,
        connection: str | None = None,
        code: int | None = None,
    ) -> None:
        #: Auth0's ``errorCode`` (or ``error``), or a code of ours such as ``timeout``.
        self.error_code = error_code or self.default_error
        #: Auth0's ``message``.
        self.message = message or ""
        super().__init__(
            description or message,
            error=self.error_code,
            remedy=remedy,
            connection=connection,
            upstream_status=upstream_status,
            code=code,
        )


class ManagementNotFound(ManagementError):
    """The Management API has no such user, connection, client or tokenset."""

    code = 404
    default_error = "not_found"
    default_remedy = "Check the id or name; `flask token-vault` lists what exists."


class TokensetsGone(ManagementNotFound):
    """The tenant has no tokenset endpoints any more: its vault is managed as Connected Accounts.

    Auth0 dropped ``/api/v2/users/{id}/federated-connections-tokensets`` from the Management
    API in 2026-07; on such a tenant they answer 404 like an unknown route.
    """

    code = 500
    default_error = "tokensets_gone"
    default_remedy = (
        "Use the Connected Accounts equivalents: list a user's accounts with `flask token-vault "
        "accounts list USER_ID` (ManagementClient.list_connected_accounts, GET "
        "/api/v2/users/{id}/connected-accounts); for the signed-in user set "
        "TOKEN_VAULT_CONNECT_FLOW = 'connected_accounts', then my_connected_accounts() lists and "
        "disconnect() deletes through the My Account API (/me/v1/connected-accounts/accounts)."
    )


class ManagementForbidden(ManagementError):
    """The app's Management API token lacks the scope the request needs."""

    code = 500
    default_error = "insufficient_scope"
    default_remedy = (
        "Authorize this application for the Auth0 Management API with the scopes it needs "
        "(Dashboard > Applications > APIs > Auth0 Management API > Machine To Machine "
        "Applications)."
    )


class ManagementRateLimited(ManagementError, RateLimited):
    """The Management API rate-limited the request and the wait would exceed the deadline.

    Also a :class:`RateLimited`, so one handler serves every rate limit; ``Retry-After`` and the
    JSON body's ``retry_after`` come from there.
    """

    code = 429
    default_error = "too_many_requests"
    default_remedy = "Wait a moment and try again."

    def __init__(
        self, description: str | None = None, *, retry_after: float | None = None, **kwargs: Any
    ) -> None:
        super().__init__(description, **kwargs)
        #: Seconds Auth0 asked us to wait, when it said.
        self.retry_after = retry_after


class ClientNotEligible(Misconfigured):
    """The application cannot use Token Vault as it is set up in Auth0."""

    default_error = "client_not_eligible"
    default_remedy = (
        "Make the application a first-party, confidential (Regular Web Application), "
        "OIDC-conformant client in the Auth0 Dashboard, then try again."
    )

    def __init__(self, client_id: str, problems: Iterable[str]) -> None:
        #: The client that was checked.
        self.client_id = client_id
        #: One sentence per problem found.
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__(
            f"The client {client_id} cannot use the Token Vault grant: "
            + "; ".join(self.problems)
            + "."
        )


class MyAccountError(_StatusCodeAlias, TokenVaultError):
    """Auth0's My Account API (Connected Accounts) refused or failed a request.

    Carries its problem document: ``upstream_status``, ``error_type`` (``type``), ``title`` and
    ``detail``.
    """

    code = 502
    default_error = "my_account_error"
    default_remedy = (
        "Try connecting again; if it persists, check that Connected Accounts is enabled on the "
        "connection and the My Account API is allowed for this application."
    )

    def __init__(
        self,
        description: str | None = None,
        *,
        upstream_status: int | None = None,
        error_type: str | None = None,
        title: str | None = None,
        detail: str | None = None,
        error: str | None = None,
        remedy: str | None = None,
        connection: str | None = None,
        code: int | None = None,
    ) -> None:
        #: The problem ``type`` URI.
        self.error_type = error_type
        #: The problem ``title``.
        self.title = title or ""
        #: The problem ``detail``.
        self.detail = detail or ""
        super().__init__(
            description or detail,
            error=error,
            remedy=remedy,
            connection=connection,
            upstream_status=upstream_status,
            code=code,
        )
