"""A ``requests.Session`` that carries the user's provider token and renews it once on a 401."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import requests

from .extension import get_provider_token_set

__all__ = ["ProviderSession", "provider_session"]

log = logging.getLogger("flask_token_vault")
DEFAULT_TIMEOUT = 10.0


class ProviderSession(requests.Session):
    """HTTP session for one provider connection, used inside a request of the signed-in user.

    Every request carries ``Authorization: Bearer <provider token>`` and a timeout. When the
    provider answers 401 (the token was revoked or expired early), the cached token is dropped,
    one new exchange is made and the request is sent once more.
    """

    def __init__(
        self,
        connection: str,
        scopes: Iterable[str] | None = None,
        login_hint: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__()
        self.connection = connection
        self.scopes = tuple(sorted(set(scopes or ())))
        self.login_hint = login_hint
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"ProviderSession({self.connection!r})"

    def request(  # type: ignore[override]
        self, method: str, url: str, *args: Any, **kwargs: Any
    ) -> requests.Response:
        """Send a request with the bearer token; on a 401, renew the token and retry once."""
        kwargs.setdefault("timeout", self.timeout)
        token = get_provider_token_set(self.connection, self.scopes, self.login_hint)
        response = self._send_with(token.access_token, method, url, *args, **kwargs)
        if response.status_code != 401:
            return response
        log.info("provider answered 401; renewing the token once: connection=%s", self.connection)
        response.close()
        fresh = get_provider_token_set(
            self.connection, self.scopes, self.login_hint, force_refresh=True
        )
        return self._send_with(fresh.access_token, method, url, *args, **kwargs)

    def _send_with(
        self, access_token: str, method: str, url: str, *args: Any, **kwargs: Any
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        headers["Authorization"] = f"Bearer {access_token}"
        kwargs["headers"] = headers
        return super().request(method, url, *args, **kwargs)


def provider_session(
    connection: str,
    scopes: Iterable[str] | None = None,
    login_hint: str | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> ProviderSession:
    """Return a :class:`ProviderSession` for the signed-in user at ``connection``."""
    return ProviderSession(connection, scopes, login_hint, timeout=timeout)
