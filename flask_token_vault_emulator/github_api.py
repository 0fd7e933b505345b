"""Serve a fake GitHub REST API (``https://api.github.com``) that accepts Token Vault's tokens.

A call without a token, or with one GitHub would refuse (unknown, another provider's,
revoked or expired), gets GitHub's 401 ``Bad credentials``; a token without the scope an
endpoint needs gets GitHub's 404 (GitHub hides what a token may not see), with its
``X-Accepted-OAuth-Scopes`` header. ``Authorization: token ...`` and ``Bearer ...`` both work.
Endpoints: ``GET /user`` and ``GET /user/emails``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from .constants import GITHUB_API_PATH
from .fake_data import stable_number
from .providers import token_problem
from .state import ProviderToken
from .state.common import display_name_for
from .web import current_state, json_response

bp = Blueprint("github", __name__, url_prefix=GITHUB_API_PATH)

_DOCS = "https://docs.github.com/rest"
#: The scopes that let a token read the user's email addresses.
EMAIL_SCOPES = frozenset({"user", "user:email"})


class GithubError(Exception):
    """Stop handling a fake GitHub call and answer GitHub's error document."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        """Keep the HTTP status, GitHub's message and any headers."""
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@bp.errorhandler(GithubError)
def github_error(error: GithubError) -> Response:
    """Answer a fake GitHub error in GitHub's shape."""
    body = {"message": error.message, "documentation_url": _DOCS, "status": str(error.status)}
    return json_response(body, error.status, error.headers)


def _raw_token() -> str | None:
    """Return the token of ``Authorization: token ...`` or ``Bearer ...`` (GitHub takes both)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() not in ("token", "bearer") or not token.strip():
        return None
    return token.strip()


def _github_token(accepted: frozenset[str] | None = None) -> ProviderToken:
    """Return the call's valid GitHub token, holding one of ``accepted`` when given."""
    raw = _raw_token()
    if raw is None:
        raise GithubError(401, "Requires authentication")
    token, _ = token_problem(current_state(), "github", raw)
    if token is None:
        raise GithubError(401, "Bad credentials")
    if accepted is not None and accepted.isdisjoint(token.scopes):
        headers = {"X-Accepted-OAuth-Scopes": ", ".join(sorted(accepted))}
        raise GithubError(404, "Not Found", headers)
    return token


def _answer(body: Any, token: ProviderToken) -> Response:
    """Answer ``body`` with GitHub's header naming the token's scopes."""
    return json_response(body, 200, {"X-OAuth-Scopes": ", ".join(token.scopes)})


def _login(account: str) -> str:
    return account.split("@", 1)[0].replace(".", "-").replace("_", "-")


@bp.get("/user")
def user() -> Response:
    """Describe the signed-in user (any valid token)."""
    token = _github_token()
    login = _login(token.account)
    base = request.url_root.rstrip("/") + GITHUB_API_PATH
    return _answer(
        {
            "login": login,
            "id": int(stable_number(token.account, 8)),
            "node_id": "U_emu" + stable_number(token.account, 10),
            "type": "User",
            "site_admin": False,
            "name": display_name_for(token.account),
            "email": token.account if "user:email" in token.scopes else None,
            "url": f"{base}/users/{login}",
            "html_url": f"https://github.com/{login}",
            "public_repos": 3,
            "followers": 0,
            "following": 0,
        },
        token,
    )


@bp.get("/user/emails")
def user_emails() -> Response:
    """List the user's email addresses (needs ``user`` or ``user:email``)."""
    token = _github_token(EMAIL_SCOPES)
    email = {"email": token.account, "primary": True, "verified": True, "visibility": "private"}
    return _answer([email], token)
