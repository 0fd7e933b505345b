"""Describe injected faults and tell which fault names a request answers to.

A fault makes the emulator answer the next ``times`` matching requests badly: after sleeping
``delay`` seconds it answers ``status`` with ``body``, or (status 0) answers normally but late, or
(``drop``) closes the connection without answering.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from .constants import (
    CIBA_GRANT,
    GITHUB_API_PATH,
    GOOGLE_API_PATH,
    GRAPH_API_PATH,
    SLACK_API_PATH,
    TOKEN_VAULT_GRANT,
)

FAULT_ENDPOINTS = frozenset(
    {
        "authorize",
        "login",
        "token",
        "token:authorization_code",
        "token:refresh_token",
        "token:ciba",
        "bc-authorize",
        "token:exchange",
        "token:client_credentials",
        "userinfo",
        "discovery",
        "jwks",
        "logout",
        "revoke",
        "google",
        "microsoft",
        "slack",
        "github",
        "management",
        "my-account",
        "*",
    }
)

_GRANT_FAULT_NAMES = {
    "authorization_code": "token:authorization_code",
    "refresh_token": "token:refresh_token",  # nosec B105
    TOKEN_VAULT_GRANT: "token:exchange",
    "client_credentials": "token:client_credentials",
    CIBA_GRANT: "token:ciba",
}

_PATH_FAULT_NAMES = {
    "/authorize": "authorize",
    "/u/login": "login",
    "/userinfo": "userinfo",
    "/.well-known/openid-configuration": "discovery",
    "/.well-known/jwks.json": "jwks",
    "/v2/logout": "logout",
    "/oidc/logout": "logout",
    "/oauth/revoke": "revoke",
    "/bc-authorize": "bc-authorize",
}

CONTROL_PREFIX = "/__emulator"


@dataclass
class Fault:
    """Describe one injected fault (see the module docstring for the meaning of each field)."""

    endpoint: str
    status: int = 500
    body: Any = None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    times: int = 1
    error: str | None = None
    error_description: str | None = None
    drop: bool = False

    def __post_init__(self) -> None:
        """Check the fields, so a bad fault fails when added rather than when hit."""
        if not isinstance(self.status, int) or not isinstance(self.times, int):
            raise ValueError("status and times must be integers")
        if not isinstance(self.delay, (int, float)) or not isinstance(self.drop, bool):
            raise ValueError("delay must be a number of seconds and drop true or false")
        if not isinstance(self.content_type, str) or not isinstance(self.headers, dict):
            raise ValueError("content_type must be a string and headers an object")
        if self.endpoint not in FAULT_ENDPOINTS:
            known = ", ".join(sorted(FAULT_ENDPOINTS))
            raise ValueError(f"unknown fault endpoint {self.endpoint!r}; use one of: {known}")
        if self.status != 0 and not 100 <= self.status <= 599:
            raise ValueError("status must be 0 (answer normally) or an HTTP status 100-599")
        if self.times == 0 or self.times < -1:
            raise ValueError("times must be a positive count, or -1 for 'until cleared'")
        if self.delay < 0:
            raise ValueError("delay must not be negative")
        self.headers = {str(name): str(value) for name, value in self.headers.items()}

    @property
    def passes_through(self) -> bool:
        """Tell whether the request is answered normally after the delay."""
        return self.status == 0 and not self.drop

    def payload(self) -> bytes:
        """Return the body bytes of the faulty answer."""
        body = self.body
        if body is None and self.error is not None:
            body = {"error": self.error, "error_description": self.error_description or ""}
        if body is None:
            return b""
        if isinstance(body, bytes):
            return body
        if isinstance(body, str):
            return body.encode()
        return json.dumps(body).encode()

    def to_dict(self) -> dict[str, Any]:
        """Return the fault as a JSON-ready dict."""
        return asdict(self)


def fault_names(path: str, grant_type: str | None = None) -> list[str]:
    """Return the fault endpoint names a request to ``path`` answers to, most specific first.

    The control API (``/__emulator/...``) answers to none, so faults can always be cleared.
    """
    if path.startswith(CONTROL_PREFIX):
        return []
    names: list[str] = []
    if path == "/oauth/token":
        specific = _GRANT_FAULT_NAMES.get(grant_type or "")
        if specific:
            names.append(specific)
        names.append("token")
    elif path in _PATH_FAULT_NAMES:
        names.append(_PATH_FAULT_NAMES[path])
    elif path == GOOGLE_API_PATH or path.startswith(GOOGLE_API_PATH + "/"):
        names.append("google")
    elif path == GRAPH_API_PATH or path.startswith(GRAPH_API_PATH + "/"):
        names.append("microsoft")
    elif path.startswith(SLACK_API_PATH + "/"):
        names.append("slack")
    elif path.startswith(GITHUB_API_PATH + "/"):
        names.append("github")
    elif path.startswith("/api/v2/"):
        names.append("management")
    elif path.startswith(("/me/", "/connected-accounts/")):
        names.append("my-account")
    names.append("*")
    return names
