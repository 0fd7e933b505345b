"""Build the emulator's Flask app: its blueprints, faults, provider call counts and CORS."""

from __future__ import annotations

import socket
import time

from flask import Flask, Response, g, request

from . import (
    auth0,
    ciba,
    control,
    github_api,
    login,
    management,
    management_clients,
    my_account,
    providers,
    slack_api,
)
from .constants import TOKEN_VAULT_GRANT
from .faults import fault_names
from .state import EmulatorState
from .state.common import is_loopback_url
from .web import EXTENSION_KEY, current_state, request_params


def _drop_connection() -> bool:
    """Shut the client's socket so it gets no answer; tell whether that was possible."""
    sock = request.environ.get("werkzeug.socket")
    if not isinstance(sock, socket.socket):
        return False
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        return False
    return True


def apply_faults() -> Response | None:
    """Count token requests, then answer with the first matching fault, if any."""
    if request.method == "OPTIONS":
        return None  # a CORS preflight is not the call: it neither counts nor uses up a fault
    state = current_state()
    grant_type = None
    if request.path == "/oauth/token" and request.method == "POST":
        grant_type = request_params().get("grant_type", "")
        state.record_token_request(grant_type)
    fault = state.take_fault(fault_names(request.path, grant_type))
    if fault is None:
        return None
    if fault.delay:
        time.sleep(fault.delay)
    if fault.passes_through:
        return None
    if grant_type == TOKEN_VAULT_GRANT:
        state.record_exchange(None, None, ok=False)
    if fault.drop and _drop_connection():
        g.emulator_dropped = True
        return Response(b"", status=500)
    return Response(
        fault.payload(),
        status=fault.status or 500,
        headers=fault.headers,
        content_type=fault.content_type,
    )


def count_provider_calls(response: Response) -> Response:
    """Count calls to the fake provider APIs by status (``dropped`` for dropped connections)."""
    provider = request.path.split("/", 2)[1]
    if provider in ("google", "microsoft", "slack", "github"):
        status = "dropped" if g.get("emulator_dropped") else str(response.status_code)
        current_state().record_provider_call(provider, status)
    return response


#: Paths a single-page app calls from the browser (Auth0 answers them with CORS headers).
_CORS_PREFIXES = ("/oauth/token", "/me/v1/", "/.well-known/", "/userinfo")


def allow_loopback_origins(response: Response) -> Response:
    """Let pages on 127.0.0.1/localhost call the token endpoint and the My Account API.

    Auth0 allows the origins listed as a client's Allowed Web Origins; the emulator allows any
    loopback origin, the only ones a local app has.
    """
    origin = request.headers.get("Origin")
    if not origin or not request.path.startswith(_CORS_PREFIXES) or not is_loopback_url(origin):
        return response
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers.add("Vary", "Origin")
    if request.method == "OPTIONS":
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, DELETE, PATCH"
        response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
        response.headers["Access-Control-Max-Age"] = "600"
    return response


def create_app(state: EmulatorState) -> Flask:
    """Build the emulator's Flask app around a tenant state."""
    app = Flask(__name__)
    app.extensions[EXTENSION_KEY] = state
    app.register_blueprint(auth0.bp)
    app.register_blueprint(login.bp)
    app.register_blueprint(management.bp)
    app.register_blueprint(management_clients.bp)
    app.register_blueprint(my_account.bp)
    app.register_blueprint(providers.google)
    app.register_blueprint(providers.microsoft)
    app.register_blueprint(slack_api.bp)
    app.register_blueprint(github_api.bp)
    app.register_blueprint(control.bp)
    app.register_blueprint(ciba.bp)
    # A browser asks for it on every JSON document it opens; nothing to show, no 404 to log.
    app.add_url_rule("/favicon.ico", "favicon", lambda: Response(status=204))
    app.before_request(apply_faults)
    app.after_request(count_provider_calls)
    app.after_request(allow_loopback_origins)
    return app
