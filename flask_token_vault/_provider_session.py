"""A ``requests.Session`` that carries the user's provider token and renews it once on a 401.

(Layer: request-time, above :mod:`flask_token_vault._tokens`; sends through the app's transport.)
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any, cast

import requests
from requests.adapters import BaseAdapter

from ._http import RETRIED_BY_PROVIDER_CALLS, Failure, isolate
from ._state import get_state
from ._tokens import get_provider_token_set, reject_provider_token, sorted_scopes
from .errors import ConfigurationError, ProviderUnavailable


class ProviderSession(requests.Session):
    """HTTP session for one provider connection, used inside a request of the signed-in user.

    Every request carries ``Authorization: Bearer <provider token>`` and a timeout, and goes
    through the app's transport (pooled connections, no cookie jar). When the provider answers
    401, the token is dropped for every process (:func:`~flask_token_vault.reject_provider_token`)
    and the request is sent once more with a new one.

    Idempotent requests (GET, HEAD, OPTIONS, PUT, DELETE) that fail to connect, time out, or get
    502/503/504 or a 429 are retried with backoff inside ``TOKEN_VAULT_DEADLINE``; a request that
    still cannot reach the provider raises :class:`~flask_token_vault.ProviderUnavailable`. Any
    other answer of the provider is returned as it is, for the app to read.

    A URL without a scheme, such as ``"/calendar/v3/users/me/calendarList"``, is a path on the
    connection's ``api_base`` (see :func:`provider_api_url`).

    What the app sets on the session applies as on any ``requests.Session`` (``headers``,
    ``auth``, ``params``, ``verify``, ``proxies``, ``hooks``, mounted adapters), except that
    ``Authorization`` is always the provider token (an ``auth`` runs after it is set, on each
    try) and no cookie is kept.
    """

    IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

    def __init__(
        self,
        connection: str,
        scopes: Iterable[str] | None = None,
        login_hint: str | None = None,
        *,
        timeout: float | None = None,
    ) -> None:
        super().__init__()
        # A session may outlive the request that made it: it must not carry one user's cookies
        # to the next. requests' own adapters go, so unmounted URLs use the app's pool.
        isolate(self)
        self.adapters.clear()
        self.connection = connection
        self.scopes = sorted_scopes(scopes)
        self.login_hint = login_hint
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"ProviderSession({self.connection!r})"

    def get_adapter(self, url: str) -> BaseAdapter:
        """Return the adapter the app mounted for ``url``, else the one of the app's pool."""
        try:
            return super().get_adapter(url)
        except requests.exceptions.InvalidSchema:
            return get_state().transport.http.get_adapter(url)

    def _credential(self) -> str:
        token = get_provider_token_set(self.connection, self.scopes, self.login_hint)
        return f"Bearer {token.access_token}"

    def _unreachable(self, failure: Failure) -> ProviderUnavailable:
        return ProviderUnavailable(
            f"The {self.connection} API could not be reached ({failure.reason or failure.kind}).",
            error=failure.kind,
            connection=self.connection,
        )

    def request(  # type: ignore[override]
        self, method: str, url: str, *args: Any, **kwargs: Any
    ) -> requests.Response:
        """Send a request with the bearer token; on a 401, renew the token and retry once."""
        if args:
            raise TypeError("pass the request's options by name (params=, json=, headers=...)")
        if not url.lower().startswith(("https://", "http://")):
            url = provider_api_url(self.connection, url)
        idempotent = method.upper() in self.IDEMPOTENT
        timeout = kwargs.pop("timeout", None) or self.timeout
        if isinstance(timeout, tuple):  # requests' (connect, read): one bound for the try
            timeout = max(t for t in timeout if t is not None)
        send = super().request
        if "auth" in kwargs:  # requests' auth= of this request: the transport's auth is the token
            send = functools.partial(send, auth=kwargs.pop("auth"))
        return cast(
            requests.Response,
            get_state().transport.send(
                method,
                url,
                error=self._unreachable,
                what=f"{self.connection} API call",
                auth=self._credential,
                # A 401: drop the token (this logs it); the next try fetches a new one.
                renew=lambda refused: reject_provider_token(
                    self.connection, refused.removeprefix("Bearer ")
                ),
                retry_status=RETRIED_BY_PROVIDER_CALLS if idempotent else frozenset(),
                retry_errors=idempotent,
                timeout=float(timeout) if timeout else None,
                http=send,
                **kwargs,
            ),
        )


def provider_session(
    connection: str,
    scopes: Iterable[str] | None = None,
    login_hint: str | None = None,
    *,
    timeout: float | None = None,
) -> ProviderSession:
    """Return a :class:`ProviderSession` for the signed-in user at ``connection``."""
    return ProviderSession(connection, scopes, login_hint, timeout=timeout)


def provider_api_url(connection: str, path: str = "") -> str:
    """Return ``path`` on the API of ``connection``: its ``api_base`` joined with ``path``.

    ``api_base`` comes from ``TOKEN_VAULT_CONNECTIONS`` (Google and Microsoft have defaults;
    point it at a local stand-in to run offline). Raises
    :class:`~flask_token_vault.ConfigurationError` when the connection is not configured or
    has no ``api_base``.
    """
    settings = get_state().settings
    key = "TOKEN_VAULT_CONNECTIONS"
    conn = settings.connections.get(connection)
    if conn is None:
        raise ConfigurationError(
            key,
            f"{connection!r} is not configured; add it (with its scopes and api_base) "
            f"to use its API. Configured: {sorted(settings.connections)!r}.",
        )
    if conn.api_base is None:
        raise ConfigurationError(
            f"{key}[{connection!r}]['api_base']",
            "is not set: give the provider API's base URL, e.g. 'https://api.example.com'.",
        )
    if path.lower().startswith(("https://", "http://", "//")):
        raise ValueError("provider_api_url takes a path on the API, not a whole URL")
    return conn.api_base + "/" + path.lstrip("/") if path else conn.api_base
