"""Errors raised by Flask-Token-Vault, grouped by who must act on them.

Each error carries data only: an ``error`` code (Auth0's own when it gave one), a ``description``,
a ``remedy`` and, as its werkzeug ``code``, the status the app answers with; ``_responses`` turns
it into a response. No message, repr or body ever contains a token, a code or a client secret.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, TypeVar

from werkzeug.datastructures import Headers
from werkzeug.exceptions import HTTPException

from ._error_codes import CODES, Code

_E = TypeVar("_E", bound="TokenVaultError")


class ConfigurationError(RuntimeError):
    """Raise at start-up when a configuration key is missing or malformed (not a response)."""

    def __init__(self, key: str, problem: str) -> None:
        #: The configuration key at fault, e.g. ``AUTH0_DOMAIN``.
        self.key = key
        #: What is wrong with it and what it must be.
        self.problem = problem
        super().__init__(f"{key}: {problem}")


class TokenVaultError(HTTPException):
    """Base class of every error the extension raises while serving a request."""

    #: HTTP status the app answers with. ``None`` on the base and the groups: Flask files an
    #: ``errorhandler`` under the class's code, so only then does one for a group catch it all.
    code: int | None = None
    #: The statuses the classes of a group may answer with.
    statuses: ClassVar[frozenset[int]]
    #: Machine-readable code used when no more specific one is known.
    default_error: ClassVar[str] = "token_vault_error"
    #: What the user or the developer should do about it.
    default_remedy: ClassVar[str] = "See the Flask-Token-Vault troubleshooting guide."
    #: The error page's title, for people (never werkzeug's bare "400 Bad Request").
    heading: ClassVar[str] = "Something went wrong"
    #: Attributes the JSON body adds: (key, attribute) pairs.
    body_fields: ClassVar[tuple[tuple[str, str], ...]] = ()
    #: The other ``error`` codes this class is raised with.
    codes: ClassVar[Mapping[str, Code]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Each class its own: a subclass with its own remedy must not take its base's.
        cls.codes = CODES.get(cls.__name__, {})

    def __init__(
        self,
        description: str | None = None,
        *,
        error: str | None = None,
        remedy: str | None = None,
        connection: str | None = None,
        upstream_status: int | None = None,
        code: int | None = None,
        retry_url: str | None = None,
    ) -> None:
        super().__init__(description or self.__class__.__doc__ or self.default_error)
        self.code = code or self.code or 500
        #: Machine-readable code: Auth0's own when it gave one, else :attr:`default_error`.
        self.error: str = error or self.default_error
        known = self.codes.get(self.error)
        #: What the user or the developer should do about it.
        self.remedy: str = remedy or (known.fix if known else self.default_remedy)
        #: The error page's heading, for people.
        self.page_title: str = (known.title if known else None) or self.heading
        #: The connection concerned, when there is one.
        self.connection: str | None = connection
        #: The HTTP status Auth0 (or the provider) answered with, when it answered.
        self.upstream_status: int | None = upstream_status
        #: Where to try again (a path of this app), when there is a better place than here.
        self.retry_url: str | None = retry_url

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
        if self.retry_url:
            body["retry_url"] = self.retry_url
        for key, attribute in self.body_fields:
            value = getattr(self, attribute)
            body[key] = list(value) if isinstance(value, tuple) else value
        return body

    def extra_headers(self) -> Headers:
        """Return headers to add to the error response (``Retry-After``, ``WWW-Authenticate``)."""
        return Headers()

    def restated(self: _E, description: str, *, remedy: str | None = None) -> _E:
        """Return this error saying ``description`` (and ``remedy``) where more is known.

        Everything else (class, codes, upstream status) is kept.
        """
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.description = description
        clone.remedy = remedy or self.remedy
        return clone


# -- the four groups -------------------------------------------------------------------------
class UserActionRequired(TokenVaultError):
    """The person using the app must act: sign in, connect an account or consent again."""

    statuses = frozenset({400, 401, 403})


class CallerError(TokenVaultError):
    """The program that called must change its request or its access token."""

    statuses = frozenset(range(400, 500))
    heading = "This link did not work"


class OperatorError(TokenVaultError):
    """Whoever runs the app must fix its configuration or the Auth0 tenant's set-up."""

    statuses = frozenset({500, 503})
    heading = "This site is not set up correctly"


class UpstreamError(TokenVaultError):
    """Auth0, a provider or the cache failed, refused or is busy; trying again later may work."""

    statuses = frozenset({502, 503, 504})
    heading = "Please try again in a moment"


#: The four groups, one per party that must act.
GROUPS = (UserActionRequired, CallerError, OperatorError, UpstreamError)


def _challenge_text(text: str) -> str:
    """Keep a value fit for a quoted ``WWW-Authenticate`` parameter (RFC 6750 section 3)."""
    return "".join(ch for ch in text if 0x20 <= ord(ch) <= 0x7E and ch not in '"\\')[:200]


class _ScopeGap(TokenVaultError):
    """What a token carries (``granted``) against what a call needs (``required``)."""

    #: How the description starts, before the missing scopes (``{connection}`` is filled in).
    lacks: ClassVar[str]

    def __init__(
        self,
        description: str | None = None,
        *,
        granted: Iterable[str] = (),
        required: Iterable[str] = (),
        connection: str | None = None,
        error: str | None = None,
    ) -> None:
        #: The scopes the token carries.
        self.granted: tuple[str, ...] = tuple(sorted(set(granted)))
        #: The scopes the call needs.
        self.required: tuple[str, ...] = tuple(sorted(set(required)))
        said = f"{self.lacks.format(connection=connection)}: {' '.join(self.missing)}."
        super().__init__(description or said, error=error, connection=connection)

    @property
    def missing(self) -> tuple[str, ...]:
        """Return the required scopes the token does not carry."""
        return tuple(sorted(set(self.required) - set(self.granted)))

    @property
    def union(self) -> tuple[str, ...]:
        """Return what to ask for at re-consent: granted and required, so nothing is lost."""
        return tuple(sorted(set(self.granted) | set(self.required)))


# -- the user acts ---------------------------------------------------------------------------
class LoginRequired(UserActionRequired):
    """The user is not signed in, or their session no longer holds a usable refresh token."""

    code = 401
    default_error = "login_required"
    default_remedy = "Sign in, then try again."
    heading = "Please sign in"

    def extra_headers(self) -> Headers:
        """Tell API clients how to authenticate."""
        return Headers([("WWW-Authenticate", 'Bearer error="login_required"')])


class CallbackError(UserActionRequired):
    """The sign-in or connection round trip could not be completed (stale, tampered, refused)."""

    code = 400
    default_error = "callback_failed"
    default_remedy = "Start the sign-in again; the link you followed is stale or was tampered with."
    heading = "The sign-in was not completed"


class AccountNotConnected(UserActionRequired):
    """The user has not connected their account at this provider (nothing in the vault)."""

    code = 401
    default_error = "account_not_connected"
    default_remedy = "Connect the account at this provider, then try again."
    heading = "Account not connected"


class ReconsentRequired(UserActionRequired):
    """The provider no longer honours the stored grant; the user must connect again (403)."""

    code = 403
    default_error = "reconsent_required"
    default_remedy = "Connect the account again to renew the permission given to this app."
    heading = "Please connect your account again"


class InsufficientScope(_ScopeGap, ReconsentRequired):
    """The provider token lacks scopes the call needs; the user must consent to more."""

    default_error = "insufficient_scope"
    default_remedy = "Connect the account again and allow the additional permissions."
    heading = "More access needed"
    body_fields = (("granted_scopes", "granted"), ("required_scopes", "union"))
    lacks = "The {connection} token lacks the scopes"


class TokenVaultInterrupt(UserActionRequired):
    """An agent's tool needs the user to connect an account or grant scopes; resume after."""

    code = 401
    default_error = "token_vault_interrupt"
    default_remedy = "Follow connect_url, then run the same tool call again."
    heading = "Your permission is needed"
    body_fields = (
        ("connect_url", "connect_url"),
        ("scopes", "scopes"),
        ("required_scopes", "required"),
        ("tool", "tool"),
    )

    def __init__(
        self,
        description: str | None = None,
        *,
        connection: str,
        scopes: Iterable[str],
        connect_url: str | None,
        tool: str,
        granted: Iterable[str] = (),
        required: Iterable[str] = (),
        arguments: Mapping[str, Any] | None = None,
        error: str | None = None,
        code: int | None = None,
    ) -> None:
        super().__init__(description, error=error, connection=connection, code=code)
        #: What to ask the user for: the scopes granted and those required (nothing is lost).
        self.scopes: tuple[str, ...] = tuple(sorted(set(scopes)))
        #: The scopes granted so far, when Auth0 said.
        self.granted: tuple[str, ...] = tuple(sorted(set(granted)))
        #: The scopes the tool needs.
        self.required: tuple[str, ...] = tuple(sorted(set(required)))
        #: The path of the app's connect route asking for :attr:`scopes` (``None`` for an API
        #: caller, who connects through the My Account API).
        self.connect_url: str | None = connect_url
        #: The tool's name.
        self.tool: str = tool
        #: The arguments of the call, to run it again once the user has acted.
        self.arguments: dict[str, Any] = dict(arguments or {})


# -- the calling program acts ----------------------------------------------------------------
class InvalidRequest(CallerError):
    """The request to one of the extension's routes was malformed or not allowed."""

    code = 400
    default_error = "invalid_request"
    default_remedy = "Go back and try again from a link on this site."


class InvalidAccessToken(CallerError):
    """The request's ``Authorization: Bearer`` access token is missing, malformed or not valid.

    Without any token, ``error`` is ``access_token_required`` and the challenge a bare ``Bearer``.
    """

    code = 401
    default_error = "invalid_token"
    default_remedy = "Send a valid access token for this API: get a new one from Auth0."
    heading = "Access token not accepted"

    def extra_headers(self) -> Headers:
        """Tell the caller, as RFC 6750 says, that its token was refused (or is needed)."""
        if self.error != "invalid_token":
            return Headers([("WWW-Authenticate", "Bearer")])
        description = _challenge_text(str(self.description))
        challenge = f'Bearer error="invalid_token", error_description="{description}"'
        return Headers([("WWW-Authenticate", challenge)])


class InsufficientApiScope(_ScopeGap, CallerError):
    """The caller's access token is valid but lacks API scopes (permissions) the route needs."""

    code = 403
    default_error = "insufficient_api_scope"
    default_remedy = "Get an access token with the missing scopes; grant them to the user in Auth0."
    heading = "More API permissions needed"
    body_fields = (("required_api_scopes", "required"), ("missing_api_scopes", "missing"))
    lacks = "The access token lacks the API scopes"

    def extra_headers(self) -> Headers:
        """Name the missing scopes in the challenge, as RFC 6750 section 3 allows."""
        scope = _challenge_text(" ".join(self.missing))
        challenge = f'Bearer error="insufficient_scope", scope="{scope}"'
        return Headers([("WWW-Authenticate", challenge)])


# -- the operator acts -----------------------------------------------------------------------
class Misconfigured(OperatorError):
    """Auth0 refused the exchange because the tenant or the app is set up wrongly."""

    code = 500
    default_error = "misconfigured"
    default_remedy = (
        "Run `flask token-vault doctor`: Token Vault must be enabled on the application and "
        "the connection, refresh-token rotation off and the MFA policy not 'Always'."
    )


class ApiClientMisconfigured(Misconfigured):
    """The API's Custom API Client is missing or wrong, so it cannot exchange callers' tokens.

    Answered 503: nothing crashed, and Auth0 (which a 502 would blame) answered correctly.
    """

    code = 503
    default_error = "api_client_misconfigured"
    default_remedy = (
        "Run `flask token-vault api-client enable`, then set TOKEN_VAULT_API_CLIENT_ID and "
        "TOKEN_VAULT_API_CLIENT_SECRET; `flask token-vault doctor` checks the set-up."
    )


class PrivilegedAccessDenied(Misconfigured):
    """Auth0 refused a background job's token: the client's privileged access does not allow it.

    ``cause`` says which part of the Privileged Worker set-up refused it, and ``remedy`` names
    the command that fixes that part; ``error`` is Auth0's code.
    """

    default_error = "privileged_access_denied"
    default_remedy = (
        "Run `flask token-vault doctor`: it checks the client's privileged access (the IP "
        "allowlist, the grants, each granted connection enabled for the app); `flask token-vault "
        "worker setup --grant CONNECTION=SCOPE,SCOPE --ip ADDRESS` sets it."
    )
    #: What fixes each cause (``{connection}`` is filled in).
    remedies: ClassVar[dict[str, str]] = {
        "no_privileged_access": "Give the client key Privileged Worker access: `flask "
        "token-vault worker setup --grant {connection}=SCOPE,SCOPE --ip ADDRESS`.",
        "ip_not_allowed": "Auth0 takes these requests only from the addresses in the client's "
        "ip_allowlist (from none while it is empty): run `flask token-vault worker setup --ip "
        "ADDRESS ...` with every address or CIDR range the jobs call Auth0 from, this "
        "machine's outgoing one included.",
        "connection_not_granted": "Grant the connection to the jobs: `flask token-vault worker "
        "setup --grant {connection}=SCOPE,SCOPE --ip ADDRESS` (give every connection they "
        "need: the command sets the whole list).",
        "scope_not_granted": "Ask for scopes within the grant, or widen it: `flask token-vault "
        "worker setup --grant {connection}=SCOPE,SCOPE --ip ADDRESS` (at most 20 scopes in "
        "all).",
        "connection_not_enabled": "Enable {connection} for the application: `flask token-vault "
        "worker setup` enables each granted connection (or Dashboard > Authentication > "
        "{connection} > Applications).",
        "client_key_refused": "Register the client key on the application: `flask token-vault "
        "client credentials add`, then `flask token-vault worker setup`.",
    }

    def __init__(
        self,
        description: str | None = None,
        *,
        cause: str = "unknown",
        connection: str | None = None,
        **kwargs: Any,
    ) -> None:
        #: Which part refused: ``no_privileged_access``, ``ip_not_allowed``,
        #: ``connection_not_granted``, ``scope_not_granted``, ``connection_not_enabled``,
        #: ``client_key_refused`` or ``unknown``.
        self.cause = cause
        advice = self.remedies.get(cause, self.default_remedy)
        kwargs.setdefault("remedy", advice.format(connection=connection or "CONNECTION"))
        super().__init__(description, connection=connection, **kwargs)


class ClientNotEligible(Misconfigured):
    """The application cannot use Token Vault as it is set up in Auth0."""

    default_error = "client_not_eligible"
    default_remedy = "Make the application a first-party, confidential, OIDC-conformant client."

    def __init__(self, client_id: str, problems: Iterable[str]) -> None:
        #: The client that was checked.
        self.client_id = client_id
        #: One sentence per problem found.
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__(
            f"The client {client_id} cannot use the Token Vault grant: {'; '.join(self.problems)}."
        )


# -- upstream failed -------------------------------------------------------------------------
class Auth0Unavailable(UpstreamError):
    """Auth0 could not be reached, timed out, failed, or answered something unreadable."""

    code = 503
    default_error = "auth0_unavailable"
    default_remedy = "Auth0 did not answer properly; try again in a moment."


class ProviderUnavailable(UpstreamError):
    """The provider's API could not be reached or did not answer in time."""

    code = 502
    default_error = "provider_unavailable"
    default_remedy = "The provider did not answer; try again in a moment."
    heading = "The provider did not answer"


class CacheUnavailable(UpstreamError):
    """The cache (``TOKEN_VAULT_CACHE``) failed, so what had to be recorded was not."""

    code = 503
    default_error = "cache_unavailable"
    default_remedy = "Check the cache (TOKEN_VAULT_CACHE) is reachable."


class ExchangeRejected(UpstreamError):
    """Auth0 rejected the exchange for a reason not covered by a more specific error."""

    code = 502
    default_error = "exchange_rejected"
    default_remedy = "Try again; if it persists, check the Auth0 tenant logs for this error code."
    heading = "Access could not be renewed"


class RateLimited(UpstreamError):
    """Auth0 rate-limited the request and waiting would hold the request too long (503)."""

    code = 503
    default_error = "too_many_requests"
    default_remedy = "Wait a moment and try again."
    heading = "Too many requests"
    body_fields = (("retry_after", "retry_after"),)
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


class MyAccountError(UpstreamError):
    """Auth0's My Account API (Connected Accounts) refused or failed a request."""

    code = 502
    default_error = "my_account_error"
    default_remedy = (
        "Try connecting again; if it persists, check that Connected Accounts is enabled on the "
        "connection and the My Account API is allowed for this application."
    )
    heading = "The account could not be connected"

    def __init__(
        self,
        description: str | None = None,
        *,
        error_type: str | None = None,
        title: str | None = None,
        detail: str | None = None,
        **kwargs: Any,
    ) -> None:
        #: The problem document's ``type`` URI, ``title`` and ``detail``.
        self.error_type = error_type
        self.title = title or ""
        self.detail = detail or ""
        super().__init__(description or detail, **kwargs)


# -- the Management API's answers, in whichever group must act on them ----------------------
class _ManagementAnswer(TokenVaultError):
    """What Auth0's Management API said: ``upstream_status``, ``error_code`` and ``message``."""

    def __init__(
        self,
        description: str | None = None,
        *,
        error_code: str | None = None,
        message: str | None = None,
        **kwargs: Any,
    ) -> None:
        #: Auth0's ``errorCode`` (or ``error``), or a code of ours such as ``timeout``.
        self.error_code = error_code or self.default_error
        #: Auth0's ``message``.
        self.message = message or ""
        super().__init__(description or message, error=self.error_code, **kwargs)


class ManagementError(_ManagementAnswer, UpstreamError):
    """Auth0's Management API refused or failed a request (502; 503 when it did not answer)."""

    code = 502
    default_error = "management_error"
    default_remedy = "Run `flask token-vault doctor` to check the tenant's set-up for this app."
    heading = "The account service failed"


class ManagementRateLimited(ManagementError, RateLimited):
    """The Management API rate-limited the request and the wait would exceed the deadline."""

    code = 503
    default_error = "management_rate_limited"
    default_remedy = RateLimited.default_remedy
    heading = RateLimited.heading


class ManagementNotFound(_ManagementAnswer, CallerError):
    """The Management API has no such user, connection, client or tokenset."""

    code = 404
    default_error = "not_found"
    default_remedy = "Check the id or name; `flask token-vault` lists what exists."


class ManagementForbidden(_ManagementAnswer, OperatorError):
    """The app's Management API token lacks the scope the request needs."""

    code = 500
    default_error = "management_forbidden"
    default_remedy = (
        "Authorize this application for the Auth0 Management API with the scopes it needs "
        "(Dashboard > Applications > APIs > Auth0 Management API > Machine To Machine "
        "Applications)."
    )


class TokensetsGone(_ManagementAnswer, OperatorError):
    """The tenant has no tokenset endpoints any more (Auth0 dropped them in 2026-07)."""

    code = 500
    default_error = "tokensets_gone"
    default_remedy = (
        "Use Connected Accounts: `flask token-vault accounts list USER_ID` (GET "
        "/api/v2/users/{id}/connected-accounts), or TOKEN_VAULT_CONNECT_FLOW = "
        "'connected_accounts' and my_connected_accounts() and disconnect() (My Account API, "
        "/me/v1/connected-accounts)."
    )
