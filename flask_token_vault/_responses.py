"""The one place where the extension's errors become responses (layer: views, below the routes).

:func:`error_response` is the app's error handler for every
:class:`~flask_token_vault.TokenVaultError` (registered by ``init_app`` unless the app has its
own): a JSON body for clients that prefer JSON, else the ``token_vault/error.html`` page, which
an app can override with a template of the same name. :func:`challenge` answers a view that
needs a sign-in or a connection: a redirect for a browser, a 401 JSON body for an API client.
"""

from __future__ import annotations

from collections.abc import Iterable

from flask import jsonify, redirect, render_template, request
from werkzeug.wrappers import Response

from ._urls import connect_url, current_path, login_url
from .errors import InsufficientScope, TokenVaultError

__all__ = ["challenge", "error_response", "wants_json"]


def wants_json() -> bool:
    """Return whether the current client prefers JSON to HTML (API clients, fetch calls)."""
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def error_response(error: TokenVaultError) -> Response:
    """Turn an error into its response: JSON or an HTML page, with its status and headers."""
    response: Response
    if wants_json():
        response = jsonify(error.to_dict())
    else:
        response = Response(
            render_template("token_vault/error.html", error=error),
            mimetype="text/html",
        )
    response.status_code = error.code or 500
    response.headers.extend(error.extra_headers())
    return response


def challenge(
    error: TokenVaultError,
    connection: str,
    required: Iterable[str],
    login_hint: str | None = None,
) -> Response:
    """Turn a login/connect error into a redirect (browsers) or a 401 JSON body (API clients)."""
    scopes = sorted(set(required))
    if isinstance(error, InsufficientScope):
        scopes = list(error.union)
    here = current_path()
    if wants_json():
        body = error.to_dict()
        body.update(
            connection=connection,
            required_scopes=scopes,
            connect_url=connect_url(
                connection, scopes, next=here, login_hint=login_hint, _external=True
            ),
            login_url=login_url(next=here, _external=True),
        )
        response = jsonify(body)
        response.status_code = 401
        response.headers["WWW-Authenticate"] = f'Bearer error="{error.error}"'
        return response
    # Signing in through the connection also connects it: one trip to Auth0, not two.
    return redirect(connect_url(connection, scopes, next=here, login_hint=login_hint))
