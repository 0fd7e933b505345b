"""The one place where the extension's errors become responses (layer: views, below the routes).

:func:`error_response` is the app's error handler for every
:class:`~flask_token_vault.TokenVaultError` (registered by ``init_app`` unless the app has its
own): a JSON body for clients that prefer JSON and for every API call (a request carrying
``Authorization: Bearer``), else the ``token_vault/error.html`` page, which an app can override
with a template of the same name. :func:`challenge` answers a view that needs a sign-in or a
connection: the app's ``unauthorized_handler`` when it registered one, else a redirect for a
browser and a 401 JSON body for a JSON client; an API call gets a 401 JSON body saying how its
front end connects the account through the My Account API.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeAlias

from flask import jsonify, make_response, redirect, render_template, request
from werkzeug.wrappers import Response

from ._state import get_state
from ._tokens import is_api_call, optional_user
from ._urls import connect_url, current_path, login_url
from .errors import (
    AccountNotConnected,
    Auth0Unavailable,
    CallbackError,
    CallerError,
    ExchangeRejected,
    InsufficientApiScope,
    InsufficientScope,
    InvalidAccessToken,
    LoginRequired,
    ManagementError,
    MyAccountError,
    OperatorError,
    ProviderUnavailable,
    RateLimited,
    ReconsentRequired,
    TokenVaultError,
    UpstreamError,
)

#: The My Account API scope a front end needs to connect an account.
MY_ACCOUNT_CONNECT_SCOPE = "create:me:connected_accounts"


def wants_json() -> bool:
    """Return whether the current client prefers JSON to HTML (API calls, fetch calls)."""
    if is_api_call():
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


# Headings for people: an error page never shows a bare "400 Bad Request". The most specific
# match wins: the error code, then the class (walking up its bases).
_TITLES_BY_CODE = {
    "access_denied": "Access not granted",
    "link_expired": "This link has expired",
    "account_mismatch": "That account belongs to someone else",
    "csrf_failed": "This form could not be accepted",
}
_TITLES_BY_CLASS: tuple[tuple[type[TokenVaultError], str], ...] = (
    (LoginRequired, "Please sign in"),
    (AccountNotConnected, "Account not connected"),
    (InsufficientScope, "More access needed"),
    (ReconsentRequired, "Please connect your account again"),
    (CallbackError, "The sign-in was not completed"),
    (InvalidAccessToken, "Access token not accepted"),
    (InsufficientApiScope, "More API permissions needed"),
    (CallerError, "This link did not work"),
    (OperatorError, "This site is not set up correctly"),
    (RateLimited, "Too many requests"),
    (Auth0Unavailable, "Sign-in is unavailable right now"),
    (ProviderUnavailable, "The provider did not answer"),
    (MyAccountError, "The account could not be connected"),
    (ManagementError, "The account service failed"),
    (ExchangeRejected, "Access could not be renewed"),
    (UpstreamError, "Please try again in a moment"),
)


def error_title(error: TokenVaultError) -> str:
    """Return a short heading for people describing ``error`` (the error page's title)."""
    by_code = _TITLES_BY_CODE.get(error.error)
    if by_code is not None:
        return by_code
    for cls, title in _TITLES_BY_CLASS:
        if isinstance(error, cls):
            return title
    return "Something went wrong"


def deny_framing(response: Response) -> Response:
    """Forbid other sites to frame the page (clickjacking of the sign-out and error pages).

    Headers the app set itself are kept.
    """
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Content-Security-Policy", "frame-ancestors 'none'")
    return response


def error_response(error: TokenVaultError) -> Response:
    """Turn an error into its response: JSON or an HTML page, with its status and headers."""
    response: Response
    if wants_json():
        response = jsonify(error.to_dict())
    else:
        settings = get_state().settings
        signed_in = optional_user() is not None
        response = Response(
            render_template(
                "token_vault/error.html",
                error=error,
                title=error_title(error),
                home_url=settings.default_next,
                login_url=None if signed_in else login_url(next=settings.default_next),
            ),
            mimetype="text/html",
        )
    response.status_code = error.code or 500
    response.headers.extend(error.extra_headers())
    return deny_framing(response)


@dataclass(frozen=True)
class Challenge:
    """What a view needs before it can run: a sign-in, a connected account, or more scopes.

    An app's :meth:`~flask_token_vault.TokenVault.unauthorized_handler` receives one.
    """

    #: Why: :class:`~flask_token_vault.LoginRequired`,
    #: :class:`~flask_token_vault.AccountNotConnected`,
    #: :class:`~flask_token_vault.ReconsentRequired` or
    #: :class:`~flask_token_vault.InsufficientScope`.
    error: TokenVaultError
    #: The connection the view needs, or ``None`` for :func:`~flask_token_vault.login_required`.
    connection: str | None
    #: The scopes to ask for when connecting: those granted before plus those the view needs.
    required_scopes: tuple[str, ...]
    #: The page to come back to afterwards (path and query of this request).
    next: str
    #: Where to sign in, coming back to :attr:`next`.
    login_url: str
    #: Where to connect :attr:`connection` with :attr:`required_scopes`, coming back to
    #: :attr:`next` (``None`` when no connection is needed). Signing in through it also signs in.
    connect_url: str | None

    @property
    def url(self) -> str:
        """Return where the default response sends a browser: connect if needed, else sign in."""
        return self.connect_url or self.login_url


#: What :meth:`~flask_token_vault.TokenVault.unauthorized_handler` accepts: a function of a
#: :class:`Challenge` returning a response (anything a view may return), or ``None`` for the
#: default response.
UnauthorizedHandler: TypeAlias = Callable[[Challenge], Any]


def challenge(
    error: TokenVaultError,
    connection: str | None,
    required: Iterable[str] = (),
    login_hint: str | None = None,
) -> Response:
    """Answer a view that needs a sign-in or a connection.

    The app's unauthorized handler decides when it has one (and returns something); otherwise
    browsers are redirected to connect (or sign in) and come back, and API clients get a 401
    JSON body naming what to do. An API call (``Authorization: Bearer``) that needs an account
    connected gets the My Account API call that connects it (:func:`connect_instructions`),
    without asking the handler.
    """
    scopes = sorted(set(required))
    if connection is not None and is_api_call():
        # The caller is a program with no session here: it connects through the My Account
        # API itself, so neither a redirect nor the app's (browser-minded) handler fits. Its
        # request is not a signed link: it asks for every granted scope too, so none is lost.
        if isinstance(error, InsufficientScope):
            scopes = list(error.union)
        return _api_challenge(error, connection, scopes, login_hint)
    if isinstance(error, InsufficientScope) and connection is not None:
        # Granted scopes the app never declared (consented elsewhere) are not signed into a
        # link that could be handed on: only the app's own are asked again.
        declared = get_state().declared_scopes(connection)
        scopes = [scope for scope in error.union if scope in declared or scope in scopes]
    here = current_path()
    found = Challenge(
        error=error,
        connection=connection,
        required_scopes=tuple(scopes),
        next=here,
        login_url=login_url(next=here),
        connect_url=(
            connect_url(connection, scopes, next=here, login_hint=login_hint)
            if connection is not None
            else None
        ),
    )
    handler = get_state().hooks.unauthorized
    if handler is not None:
        answer = handler(found)
        if answer is not None:
            return make_response(answer)
    if wants_json():
        body = error.to_dict()
        if connection is not None:
            body.update(
                connection=connection,
                required_scopes=scopes,
                connect_url=connect_url(
                    connection, scopes, next=here, login_hint=login_hint, _external=True
                ),
            )
        body["login_url"] = login_url(next=here, _external=True)
        response = jsonify(body)
        response.status_code = 401
        response.headers["WWW-Authenticate"] = f'Bearer error="{error.error}"'
        return response
    # Signing in through the connection also connects it: one trip to Auth0, not two.
    return redirect(found.url)


def connect_instructions(
    connection: str, scopes: Iterable[str], login_hint: str | None = None
) -> dict[str, Any]:
    """Return how a front end connects ``connection`` itself: the My Account API's connect call.

    An API call has no session to send through this app's connect route; the single-page app
    that made it connects the account with a My Account API token of its own (audience
    ``https://{domain}/me/``, scope ``create:me:connected_accounts``), then calls again.
    """
    base = get_state().settings.base_url
    body: dict[str, Any] = {"connection": connection}
    wanted = sorted(set(scopes))
    if wanted:
        body["scopes"] = wanted  # the My Account API refuses an empty list
    if login_hint:
        body["authorization_params"] = {"login_hint": login_hint}
    return {
        "method": "POST",
        "url": base + "/me/v1/connected-accounts/connect",
        "audience": base + "/me/",
        "scope": MY_ACCOUNT_CONNECT_SCOPE,
        "body": body,
    }


def _api_challenge(
    error: TokenVaultError, connection: str, scopes: list[str], login_hint: str | None
) -> Response:
    body = error.to_dict()
    body.update(
        connection=connection,
        required_scopes=scopes,
        remedy=(
            f"Connect the {connection} account from the app that called: get a My Account API "
            f"token ({MY_ACCOUNT_CONNECT_SCOPE}) and follow 'connect' (Connected Accounts), "
            "then call again."
        ),
        connect=connect_instructions(connection, scopes, login_hint),
    )
    response = jsonify(body)
    response.status_code = 401
    response.headers["WWW-Authenticate"] = f'Bearer error="{error.error}"'
    return response
