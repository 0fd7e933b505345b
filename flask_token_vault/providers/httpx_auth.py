"""An ``httpx.Auth`` that signs each request with a provider token from the vault.

Install with ``pip install "Flask-Token-Vault[httpx]"``::

    from flask_token_vault.providers.httpx_auth import VaultAuth

    with httpx.Client(auth=VaultAuth("google-oauth2", scopes=[CALENDAR])) as google:
        google.get("https://www.googleapis.com/calendar/v3/users/me/calendarList")

Works with ``httpx.Client`` and ``httpx.AsyncClient`` alike.
"""

from __future__ import annotations

from collections.abc import Generator

import httpx

from ._bound import SourceBound


class VaultAuth(SourceBound, httpx.Auth):
    """Send ``Authorization: Bearer <provider token>``; on a 401, drop the token and retry once.

    ``source`` is a :class:`~flask_token_vault.TokenSource`, or a connection name for the
    current request's user (made in the view, for that request). ``scopes`` are required of
    the token: one not granted raises :class:`~flask_token_vault.InsufficientScope` before
    anything is sent. The token is asked for on every request (a warm call reads this
    request's memo), so it is renewed when the vault renews it.
    """

    # A retry after a 401 sends the body again: httpx must keep it.
    requires_request_body = True

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Sign ``request``; after a 401, reject the token and send it once more, re-signed."""
        access_token = self.source.token(self.scopes).access_token
        request.headers["Authorization"] = "Bearer " + access_token
        response = yield request
        if response.status_code == 401:
            self.source.reject(access_token)
            access_token = self.source.token(self.scopes).access_token
            request.headers["Authorization"] = "Bearer " + access_token
            yield request
