"""The one place where the extension's errors become responses (layer: views, below the routes).

:func:`error_response` is the app's handler for every error; :func:`challenge` answers a view
that needs a sign-in or a connection.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeAlias

from flask import current_app, jsonify, make_response, redirect, render_template, request
from werkzeug.wrappers import Response

from ._my_account import CONNECT_SCOPE
from ._state import get_state
from ._tokens import is_api_call, optional_user
from ._urls import connect_url, current_path, login_url
from .errors import InsufficientScope, OperatorError, TokenVaultError, UpstreamError

log = logging.getLogger("flask_token_vault")


def wants_json() -> bool:
    """Return whether the current client prefers JSON to HTML (API calls, fetch calls)."""
    if is_api_call():
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def deny_framing(response: Response) -> Response:
    """Forbid other sites to frame the page (clickjacking of the sign-out and error pages).

    Headers the app set itself are kept.
    """
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Content-Security-Policy", "frame-ancestors 'none'")
    return response


def error_response(error: TokenVaultError) -> Response:
    """Turn an error into its response: JSON or an HTML page, with its status and headers.

    JSON goes to clients that prefer it and to every API call; the page is the template
    ``token_vault/error.html``, which an app can override with one of the same name.
    """
    response: Response
    if isinstance(error, OperatorError):
        # Whoever runs the app must act: the log says what and how, whatever the page shows.
        log.warning("%s: %s Fix: %s", error.error, error.description, error.remedy)
    if wants_json():
        response = jsonify(error.to_dict())
    else:
        home = get_state().settings.default_next
        retry = error.retry_url
        if retry is None and isinstance(error, UpstreamError) and _may_reload():
            retry = current_path()
        response = Response(
            render_template(
                "token_vault/error.html",
                error=error,
                title=error.page_title,
                home_url=home,
                retry_url=retry,
                # A visitor cannot fix the site's set-up; its details are for the log and debug.
                operator_only=isinstance(error, OperatorError)
                and not (current_app.debug or current_app.testing),
                login_url=None if optional_user() is not None else login_url(next=home),
            ),
            mimetype="text/html",
        )
    response.status_code = error.code or 500
    response.headers.extend(error.extra_headers())
    return deny_framing(response)


def _may_reload() -> bool:
    """Return whether loading this page again is a fair "try again" (not a callback, not a POST)."""
    return request.method == "GET" and request.blueprint != "token_vault"


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
    *,
    max_age: int | None = None,
) -> Response:
    """Answer a view that needs a sign-in or a connection.

    With ``max_age`` the sign-in asked for must be that recent (``fresh_login_required``).

    The app's unauthorized handler decides when it has one (and returns something); otherwise
    browsers are redirected to connect (or sign in) and come back, and JSON clients get a 401
    body naming what to do. An API call that needs an account connected gets the My Account
    API call that connects it, without asking the handler.
    """
    scopes = sorted(set(required))
    if connection is not None and is_api_call():
        # The caller is a program with no session here: it connects through the My Account
        # API itself, so neither a redirect nor the app's (browser-minded) handler fits. Its
        # request is not a signed link: it asks for every granted scope too, so none is lost.
        if isinstance(error, InsufficientScope):
            scopes = list(error.union)
        return _connect_it_yourself(error, connection, scopes, login_hint)
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
        login_url=login_url(next=here, max_age=max_age),
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
    if not wants_json():
        # Signing in through the connection also connects it: one trip to Auth0, not two.
        return redirect(found.url)
    fields: dict[str, Any] = {"login_url": login_url(next=here, max_age=max_age, _external=True)}
    if max_age is not None:
        fields["max_age"] = max_age
    if connection is not None:
        external = connect_url(connection, scopes, next=here, login_hint=login_hint, _external=True)
        fields.update(connection=connection, required_scopes=scopes, connect_url=external)
    return _challenge_json(error, **fields)


def _challenge_json(error: TokenVaultError, **fields: Any) -> Response:
    """Answer 401 with the error's JSON body plus ``fields``, and a Bearer challenge."""
    response = jsonify({**error.to_dict(), **fields})
    response.status_code = 401
    response.headers["WWW-Authenticate"] = f'Bearer error="{error.error}"'
    return response


def _connect_it_yourself(
    error: TokenVaultError, connection: str, scopes: list[str], login_hint: str | None
) -> Response:
    """Answer an API call with the My Account API call its front end makes to connect."""
    base = get_state().settings.base_url
    connect: dict[str, Any] = {"connection": connection}
    if scopes:
        connect["scopes"] = scopes  # the My Account API refuses an empty list
    if login_hint:
        connect["authorization_params"] = {"login_hint": login_hint}
    return _challenge_json(
        error,
        connection=connection,
        required_scopes=scopes,
        remedy=(
            f"Connect the {connection} account from the app that called: get a My Account "
            f"API token ({CONNECT_SCOPE}) and follow 'connect' (Connected "
            "Accounts), then call again."
        ),
        connect={
            "method": "POST",
            "url": base + "/me/v1/connected-accounts/connect",
            "audience": base + "/me/",
            "scope": CONNECT_SCOPE,
            "body": connect,
        },
    )
