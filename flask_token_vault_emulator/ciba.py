"""Serve Auth0's Client-Initiated Backchannel Authentication (CIBA): the endpoint, its grant.

``POST /bc-authorize`` (client authentication as at the token endpoint) takes ``login_hint`` as
Auth0 documents it, the JSON ``{"format": "iss_sub", "iss": "<issuer>", "sub": "<user id>"}``,
a ``binding_message`` (at most 64 characters), ``scope`` with ``openid``, optional
``authorization_details`` (a JSON array of objects with a ``type``) and ``requested_expiry``;
it answers ``{"auth_req_id", "expires_in", "interval"}``. The token endpoint's grant
``urn:openid:params:grant-type:ciba`` answers 400 ``authorization_pending`` until the user acts,
``slow_down`` to a poll sooner than ``interval`` after the last, ``access_denied`` once denied,
``expired_token`` once expired, and the tokens (with ``authorization_details``) once approved.

The user acts on a small page (``GET /ciba``, the "phone" of the demo) or through control calls
(:meth:`Emulator.approve_ciba <flask_token_vault_emulator.Emulator.approve_ciba>` and
``POST /__emulator/ciba/<id>`` with ``{"action": "approve"}``).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, redirect, render_template_string, request
from werkzeug.wrappers import Response

from .constants import CIBA_GRANT
from .state import Client, EmulatorState
from .state.common import split_scopes
from .token_request import authenticate_client, missing, required
from .web import NO_STORE_HEADERS, OAuthError, current_state, json_response, request_params

#: Seconds a request lives unless ``requested_expiry`` says otherwise (Auth0's default).
DEFAULT_EXPIRY = 300
#: The polling interval the emulator asks for, unless a test sets another.
DEFAULT_INTERVAL = 5
_MAX_BINDING = 64

bp = Blueprint("ciba", __name__)


@dataclass
class CibaRequest:
    """One backchannel authorization request, as the tenant keeps it."""

    auth_req_id: str
    client_id: str
    user_id: str
    binding_message: str
    scope: list[str]
    audience: str | None
    authorization_details: list[dict[str, Any]]
    expires_at: float
    interval: int
    #: ``pending``, ``approved``, ``denied``, or ``redeemed`` once the tokens were given.
    status: str = "pending"
    last_poll: float | None = None
    polls: list[float] = field(default_factory=list)

    def public(self, now: float) -> dict[str, Any]:
        """Return what the control API and the approval page show of it."""
        return {
            "auth_req_id": self.auth_req_id,
            "user_id": self.user_id,
            "binding_message": self.binding_message,
            "authorization_details": self.authorization_details,
            "status": "expired"
            if self.status == "pending" and now >= self.expires_at
            else self.status,
            "polls": len(self.polls),
        }


def requests_of(state: EmulatorState) -> dict[str, CibaRequest]:
    """Return the state's CIBA requests (kept on the state, emptied by its ``reset``)."""
    return state.ciba_requests


def decide(state: EmulatorState, auth_req_id: str, action: str) -> CibaRequest:
    """Approve, deny or expire a pending request (what the user's phone would do)."""
    with state.lock:
        found = requests_of(state).get(auth_req_id)
        if found is None:
            raise KeyError(auth_req_id)
        if action == "approve":
            found.status = "approved"
        elif action == "deny":
            found.status = "denied"
        elif action == "expire":
            found.expires_at = state.now()
        else:
            raise ValueError("action is approve, deny or expire")
        return found


def _login_hint(state: EmulatorState, raw: str) -> str:
    try:
        hint = json.loads(raw)
    except ValueError:
        hint = None
    if not isinstance(hint, dict) or hint.get("format") != "iss_sub":
        raise OAuthError(400, "invalid_request", "login_hint must be JSON in the iss_sub format.")
    if hint.get("iss") != state.issuer:
        raise OAuthError(400, "invalid_request", "login_hint's iss is not this tenant.")
    user = state.user_by_id(str(hint.get("sub")))
    if user is None:
        raise OAuthError(400, "unknown_user_id", "No such user.")
    return user.user_id


def _details(raw: str | None) -> list[dict[str, Any]]:
    if not raw:
        return []
    try:
        details = json.loads(raw)
    except ValueError:
        details = None
    if not isinstance(details, list) or not all(
        isinstance(item, dict) and isinstance(item.get("type"), str) for item in details
    ):
        raise OAuthError(
            400, "invalid_authorization_details", "authorization_details must be a JSON array."
        )
    return details


@bp.post("/bc-authorize")
def bc_authorize() -> Response:
    """Start a backchannel authorization request for a user."""
    state = current_state()
    params = request_params()
    try:
        client = authenticate_client(state, params)
        if CIBA_GRANT not in client.grant_types:
            raise OAuthError(403, "unauthorized_client", "CIBA is not enabled for this client.")
        user_id = _login_hint(state, required(params, "login_hint"))
        message = required(params, "binding_message")
        if len(message) > _MAX_BINDING:
            raise OAuthError(400, "invalid_binding_message", "binding_message is too long.")
        scope = split_scopes(params.get("scope"))
        if "openid" not in scope:
            raise missing("scope (with openid)")
        expiry = int(params.get("requested_expiry") or DEFAULT_EXPIRY)
        if not 1 <= expiry <= 300:
            raise OAuthError(400, "invalid_request", "requested_expiry is 1 to 300 seconds.")
        details = _details(params.get("authorization_details"))
    except ValueError:
        return OAuthError(400, "invalid_request", "requested_expiry is a number.").response()
    except OAuthError as error:
        return error.response()
    found = CibaRequest(
        auth_req_id=secrets.token_urlsafe(24),
        client_id=client.client_id,
        user_id=user_id,
        binding_message=message,
        scope=scope,
        audience=params.get("audience") or None,
        authorization_details=details,
        expires_at=state.now() + expiry,
        interval=state.ciba_interval,
    )
    with state.lock:
        requests_of(state)[found.auth_req_id] = found
    body = {"auth_req_id": found.auth_req_id, "expires_in": expiry, "interval": found.interval}
    return json_response(body, 200, NO_STORE_HEADERS)


def grant_ciba(state: EmulatorState, client: Client, params: dict[str, str]) -> dict[str, Any]:
    """Answer the CIBA grant: pending, slow down, denied, expired, or the tokens."""
    auth_req_id = required(params, "auth_req_id")
    now = state.now()
    with state.lock:
        found = requests_of(state).get(auth_req_id)
        if found is None or found.client_id != client.client_id or found.status == "redeemed":
            raise OAuthError(400, "invalid_grant", "Unknown or already used auth_req_id.")
        too_soon = found.last_poll is not None and now - found.last_poll < found.interval
        found.last_poll = now
        found.polls.append(now)
        if found.status == "denied":
            raise OAuthError(400, "access_denied", "The user denied the request.")
        if now >= found.expires_at:
            raise OAuthError(400, "expired_token", "The request has expired.")
        if found.status == "pending":
            if too_soon:
                raise OAuthError(400, "slow_down", "Poll no more often than the interval.")
            raise OAuthError(400, "authorization_pending", "The user has not answered yet.")
        found.status = "redeemed"
    user = state.user_by_id(found.user_id)
    if user is None:
        raise OAuthError(400, "invalid_grant", "The user no longer exists.")
    audience = found.audience or state.base_url + "/userinfo"
    token = state.issue_access_token_for(
        user.email,
        audience,
        " ".join(found.scope),
        client_id=client.client_id,
        expires_in=3600,
        claims=None,
    )
    answer: dict[str, Any] = {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": " ".join(found.scope),
    }
    if found.authorization_details:
        answer["authorization_details"] = found.authorization_details
    return answer


@bp.get("/__emulator/ciba")
def control_list() -> Response:
    """List every backchannel request (control API), oldest first."""
    return json_response(listing(current_state()))


@bp.post("/__emulator/ciba/<auth_req_id>")
def control_act(auth_req_id: str) -> Response:
    """Approve, deny or expire a request (control API): ``{"action": "approve"}``."""
    body = request.get_json(silent=True) or {}
    try:
        found = decide(current_state(), auth_req_id, str(body.get("action", "")))
    except KeyError:
        return json_response({"error": "no such request"}, 404)
    except ValueError as exc:
        return json_response({"error": str(exc)}, 400)
    return json_response(found.public(current_state().now()))


def listing(state: EmulatorState) -> list[dict[str, Any]]:
    """Return every backchannel request as the control API shows it, oldest first."""
    now = state.now()
    with state.lock:
        return [found.public(now) for found in requests_of(state).values()]


_PAGE = """<!doctype html>
<title>Approve requests</title>
<h1>Requests waiting for your approval</h1>
{% for item in pending %}
<form method="post" action="{{ url_for('ciba.act', auth_req_id=item.auth_req_id) }}">
  <p class="binding-message">{{ item.binding_message }}</p>
  {% for detail in item.authorization_details %}<pre>{{ detail | tojson }}</pre>{% endfor %}
  <button name="action" value="approve">Approve</button>
  <button name="action" value="deny">Deny</button>
</form>
{% else %}<p>Nothing is waiting.</p>{% endfor %}
"""


@bp.get("/ciba")
def page() -> str:
    """Show the pending requests with Approve and Deny buttons (the user's phone, in the demo)."""
    shown = listing(current_state())
    return render_template_string(_PAGE, pending=[r for r in shown if r["status"] == "pending"])


@bp.post("/ciba/<auth_req_id>")
def act(auth_req_id: str) -> Response:
    """Approve or deny one request from the page."""
    try:
        decide(current_state(), auth_req_id, request.form.get("action", ""))
    except (KeyError, ValueError):
        return Response("No such request or action.", status=400, mimetype="text/plain")
    return redirect("/ciba", code=303)
