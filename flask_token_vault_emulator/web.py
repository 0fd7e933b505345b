"""Share request and response helpers between the emulator's blueprints."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, cast
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from flask import Response, current_app, g, redirect, render_template, request
from werkzeug.wrappers import Response as RedirectResponse

from .state import EmulatorState

EXTENSION_KEY = "token_vault_emulator"

NO_STORE_HEADERS = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class ErrorAnswer(Exception):
    """Stop handling a request and answer an error document; each API has its own format.

    A subclass per format (OAuth, the Management API's, My Account's problem documents)
    builds its body in ``response``.
    """

    def __init__(self, status: int, text: str, headers: Mapping[str, str] | None = None) -> None:
        """Keep the answer's HTTP status and extra headers; ``text`` says what went wrong."""
        super().__init__(f"{status} {text}")
        self.status = status
        self.headers = dict(headers or {})


class OAuthError(ErrorAnswer):
    """Stop handling a request and answer an OAuth error document."""

    def __init__(
        self, status: int, error: str, description: str, headers: Mapping[str, str] | None = None
    ) -> None:
        """Describe the error answer: HTTP status, ``error`` code and ``error_description``."""
        super().__init__(status, f"{error}: {description}", headers)
        self.error = error
        self.description = description

    def response(self) -> Response:
        """Return the JSON error answer (never cached)."""
        body = {"error": self.error, "error_description": self.description}
        return json_response(body, self.status, {**NO_STORE_HEADERS, **self.headers})


def current_state() -> EmulatorState:
    """Return the tenant state of the emulator serving the current request."""
    return cast(EmulatorState, current_app.extensions[EXTENSION_KEY])


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """Return ``body`` as an application/json answer."""
    return Response(
        json.dumps(body), status=status, headers=dict(headers or {}), mimetype="application/json"
    )


def html_page(title: str, message: str, status: int = 200, *, fix: str | None = None) -> Response:
    """Return a small HTML page with a title, a message and, when given, a command to run."""
    html = render_template("page.html", title=title, message=message, fix=fix)
    return Response(html, status=status, mimetype="text/html")


def _param_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def request_params() -> dict[str, str]:
    """Return the body parameters of a form-encoded or JSON request (JSON nulls left out)."""
    cached = g.get("emulator_params")
    if isinstance(cached, dict):
        return cached
    params: dict[str, str] = {}
    if request.is_json:
        data = request.get_json(silent=True)
        if isinstance(data, dict):
            params = {str(k): _param_text(v) for k, v in data.items() if v is not None}
    else:
        params = dict(request.form.items())
    g.emulator_params = params
    return params


def json_body() -> dict[str, Any]:
    """Return the request's JSON object body, or an empty dict when there is none."""
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else {}


def bearer_token() -> str | None:
    """Return the token of an ``Authorization: Bearer`` header, or None."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def access_denied(redirect_uri: str, state: str | None, description: str) -> RedirectResponse:
    """Send the browser back to ``redirect_uri`` with ``error=access_denied``: the user said no."""
    params = {"error": "access_denied", "error_description": description, "state": state}
    return redirect(with_query(redirect_uri, params))


def with_query(url: str, params: Mapping[str, str | None]) -> str:
    """Return ``url`` with ``params`` (None values left out) added to its query string."""
    parts = urlsplit(url)
    extra = urlencode({k: v for k, v in params.items() if v is not None}, quote_via=quote)
    query = "&".join(part for part in (parts.query, extra) if part)
    return urlunsplit(parts._replace(query=query))
