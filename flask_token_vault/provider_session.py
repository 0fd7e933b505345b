"""A ``requests.Session`` that carries the user's provider token and renews it once on a 401."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterable
from typing import Any

import requests

from .errors import ProviderUnavailable
from .exchange import _retry_after
from .extension import get_provider_token_set, get_state

__all__ = ["ProviderSession", "provider_session"]

log = logging.getLogger("flask_token_vault")


class ProviderSession(requests.Session):
    """HTTP session for one provider connection, used inside a request of the signed-in user.

    Every request carries ``Authorization: Bearer <provider token>`` and a timeout. When the
    provider answers 401 (the token was revoked or expired early), the cached token is dropped,
    one new exchange is made and the request is sent once more.

    Idempotent requests (GET, HEAD, OPTIONS, PUT, DELETE) that fail to connect, time out, or get
    502/503/504 or a 429 are retried with backoff inside ``TOKEN_VAULT_DEADLINE``; a request that
    still cannot reach the provider raises :class:`~flask_token_vault.ProviderUnavailable`. Any
    other answer of the provider is returned as it is, for the app to read.
    """

    IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
    RETRY_STATUS = frozenset({429, 502, 503, 504})

    def __init__(
        self,
        connection: str,
        scopes: Iterable[str] | None = None,
        login_hint: str | None = None,
        *,
        timeout: float | None = None,
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
        settings = get_state().settings
        deadline = time.monotonic() + settings.deadline
        token = get_provider_token_set(self.connection, self.scopes, self.login_hint)
        response = self._send(token.access_token, method, url, deadline, args, kwargs)
        if response.status_code != 401:
            return response
        log.info("provider answered 401; renewing the token once: connection=%s", self.connection)
        response.close()
        fresh = get_provider_token_set(
            self.connection, self.scopes, self.login_hint, force_refresh=True
        )
        return self._send(fresh.access_token, method, url, deadline, args, kwargs)

    def _send(
        self,
        access_token: str,
        method: str,
        url: str,
        deadline: float,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> requests.Response:
        headers = dict(kwargs.get("headers") or {})
        headers["Authorization"] = f"Bearer {access_token}"
        retryable = method.upper() in self.IDEMPOTENT
        attempt = 0
        while True:
            attempt += 1
            remaining = deadline - time.monotonic()
            call = {**kwargs, "headers": headers}
            per_try = kwargs.get("timeout") or self.timeout or get_state().settings.http_timeout
            call["timeout"] = min(float(per_try), max(remaining, 0.05))
            failure: ProviderUnavailable | None = None
            response: requests.Response | None = None
            wait: float | None = None
            try:
                response = super().request(method, url, *args, **call)
            except requests.RequestException as exc:
                failure = ProviderUnavailable(
                    f"The {self.connection} API could not be reached ({type(exc).__name__}).",
                    error="timeout" if isinstance(exc, requests.Timeout) else "connection_error",
                    connection=self.connection,
                )
            else:
                if not retryable or response.status_code not in self.RETRY_STATUS:
                    return response
                if response.status_code == 429:
                    wait = _retry_after(response, time.time())
            if wait is None:
                wait = random.uniform(0, min(2.0, 0.1 * 2**attempt))  # noqa: S311  # nosec B311
            if not retryable or attempt > 3 or wait >= deadline - time.monotonic():
                if response is not None:
                    return response
                if failure is not None:
                    raise failure
            if response is not None:
                response.close()
            time.sleep(wait)


def provider_session(
    connection: str,
    scopes: Iterable[str] | None = None,
    login_hint: str | None = None,
    *,
    timeout: float | None = None,
) -> ProviderSession:
    """Return a :class:`ProviderSession` for the signed-in user at ``connection``."""
    return ProviderSession(connection, scopes, login_hint, timeout=timeout)
