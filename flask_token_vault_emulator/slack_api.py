"""Serve a fake Slack Web API (``https://slack.com/api/``) that accepts Token Vault's Slack tokens.

Slack answers almost every call with HTTP 200 and ``{"ok": false, "error": ...}`` when it
fails; so does this stand-in: ``not_authed`` without a token, ``invalid_auth`` for a token it
never issued (or another provider's), ``token_revoked`` and ``token_expired``, and
``missing_scope`` (with ``needed`` and ``provided``) when the token lacks a scope. Methods:
``auth.test``, ``conversations.list`` (with Slack's cursor paging) and ``chat.postMessage``.
"""

from __future__ import annotations

import base64
import binascii
import time
from typing import Any

from flask import Blueprint, Response, request

from .constants import SLACK_API_PATH
from .fake_data import stable_number
from .providers import token_problem
from .state import ProviderToken
from .web import bearer_token, current_state, json_response, request_params

bp = Blueprint("slack", __name__, url_prefix=SLACK_API_PATH + "/api")

#: The error Slack names for each reason a token is refused.
_REFUSALS = {
    "missing": "not_authed",
    "invalid": "invalid_auth",
    "revoked": "token_revoked",
    "expired": "token_expired",
}
#: The public channels every account's workspace has, by name.
_CHANNELS = ("general", "random", "engineering", "design", "announcements")


class SlackError(Exception):
    """Stop handling a fake Slack call and answer ``{"ok": false, "error": ...}``."""

    def __init__(self, error: str, status: int = 200, **extra: str) -> None:
        """Keep Slack's error code, the HTTP status and any extra members."""
        super().__init__(error)
        self.error = error
        self.status = status
        self.extra = extra


@bp.errorhandler(SlackError)
def slack_error(error: SlackError) -> Response:
    """Answer a fake Slack error in Slack's shape."""
    return json_response({"ok": False, "error": error.error, **error.extra}, error.status)


def _params() -> dict[str, str]:
    """Return the call's arguments: query string, then form or JSON body (Slack takes both)."""
    found = dict(request.args.items())
    if request.method == "POST":
        found.update(request_params())
    return found


def _slack_token(needed: str | None = None) -> ProviderToken:
    """Return the call's valid Slack token, holding ``needed`` when a scope is needed."""
    state = current_state()
    raw = bearer_token() or _params().get("token")
    if raw is None:
        raise SlackError("not_authed")
    token, problem = token_problem(state, "slack", raw)
    if token is None:
        raise SlackError(_REFUSALS[problem])
    if needed is not None and needed not in token.scopes:
        raise SlackError("missing_scope", needed=needed, provided=",".join(token.scopes))
    return token


def _ids(account: str) -> dict[str, str]:
    """Return the stable Slack ids of an account: its workspace and its user."""
    domain = account.split("@", 1)[-1]
    return {"team_id": "T" + stable_number(domain, 9), "user_id": "U" + stable_number(account, 9)}


def _ok(body: dict[str, Any], token: ProviderToken) -> Response:
    """Answer ``ok`` with Slack's scope headers."""
    headers = {"X-OAuth-Scopes": ",".join(token.scopes)}
    return json_response({"ok": True, **body}, 200, headers)


@bp.route("/auth.test", methods=["GET", "POST"])
def auth_test() -> Response:
    """Tell who the token belongs to (any valid token; Slack needs no scope here)."""
    token = _slack_token()
    ids = _ids(token.account)
    domain = token.account.split("@", 1)[-1].split(".")[0]
    return _ok(
        {
            "url": f"https://{domain}.slack.com/",
            "team": domain.capitalize(),
            "user": token.account.split("@", 1)[0],
            **ids,
            "is_enterprise_install": False,
        },
        token,
    )


def _cursor(offset: int) -> str:
    return base64.b64encode(f"offset:{offset}".encode()).decode()


def _offset(cursor: str) -> int:
    if not cursor:
        return 0
    try:
        kind, _, number = base64.b64decode(cursor, validate=True).decode().partition(":")
        if kind == "offset" and number.isdigit():
            return int(number)
    except (binascii.Error, UnicodeDecodeError):
        pass
    raise SlackError("invalid_cursor")


@bp.route("/conversations.list", methods=["GET", "POST"])
def conversations_list() -> Response:
    """List the workspace's public channels (needs ``channels:read``); ``limit``/``cursor``."""
    token = _slack_token("channels:read")
    params = _params()
    try:
        limit = int(params.get("limit") or 100)
    except ValueError:
        raise SlackError("invalid_limit") from None
    limit = min(max(limit, 1), 1000)
    start = _offset(params.get("cursor", ""))
    team = _ids(token.account)["team_id"]
    channels = [
        {
            "id": "C" + stable_number(f"{team}/{name}", 9),
            "name": name,
            "is_channel": True,
            "is_private": False,
            "is_archived": False,
            "is_general": name == "general",
            "context_team_id": team,
        }
        for name in _CHANNELS
    ]
    page = channels[start : start + limit]
    following = _cursor(start + limit) if start + limit < len(channels) else ""
    return _ok({"channels": page, "response_metadata": {"next_cursor": following}}, token)


@bp.post("/chat.postMessage")
def chat_post_message() -> Response:
    """Accept a message (needs ``chat:write``) and echo it as Slack does; nothing is kept."""
    token = _slack_token("chat:write")
    params = _params()
    channel, text = params.get("channel"), params.get("text")
    if not channel:
        raise SlackError("channel_not_found")
    if not text and not params.get("blocks"):
        raise SlackError("no_text")
    ts = f"{time.time():.6f}"
    message = {"type": "message", "text": text or "", "user": _ids(token.account)["user_id"]}
    return _ok({"channel": channel, "ts": ts, "message": {**message, "ts": ts}}, token)


@bp.route("/<path:method>", methods=["GET", "POST"])
def unknown_method(method: str) -> Response:
    """Answer a method this stand-in does not serve as Slack answers an unknown one."""
    raise SlackError("unknown_method", 404)
