"""A ``google.auth`` credentials object whose refresh asks the vault.

Install with ``pip install "Flask-Token-Vault[google]"``. Google's quick start builds a service
with credentials from a local OAuth flow; with the vault, only the credentials change::

    from googleapiclient.discovery import build
    from flask_token_vault.providers.google_auth import VaultCredentials

    creds = VaultCredentials("google-oauth2", scopes=[CALENDAR_READONLY])
    service = build("calendar", "v3", credentials=creds)

The same object serves ``google-cloud-*`` clients and ``gspread``: they all take a
:class:`google.auth.credentials.Credentials` and call :meth:`~VaultCredentials.refresh`
when it expires and when Google answers 401.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterable
from typing import Any

from google.auth import credentials as google_credentials

from .._sources import TokenSource, renew_at
from ._bound import SourceBound

_EPOCH = datetime.datetime(1970, 1, 1)


class VaultCredentials(SourceBound, google_credentials.Credentials):
    """Google credentials for one user, renewed through Auth0 Token Vault.

    ``source`` is a :class:`~flask_token_vault.TokenSource`, or a connection name (usually
    ``"google-oauth2"``) for the current request's user; make the object in the view that
    uses it. ``scopes`` are required of the token: one the user has not granted raises
    :class:`~flask_token_vault.InsufficientScope` from the SDK call, which
    :func:`~flask_token_vault.provider_token_required` and the app's ``unauthorized_handler``
    turn into a consent step.

    The token's expiry is carried to ``google.auth`` (a little early, as the vault's cache
    renews it), so the library refreshes in time. A refresh while the token has not expired
    means Google refused it (401): the token is then dropped for every process
    (:meth:`TokenSource.reject <flask_token_vault.TokenSource.reject>`) and a new one asked
    for.
    """

    def __init__(
        self,
        source: TokenSource | str,
        scopes: Iterable[str] = (),
        *,
        login_hint: str | None = None,
        quota_project_id: str | None = None,
    ) -> None:
        super().__init__(source, scopes, login_hint=login_hint)
        self._quota_project_id = quota_project_id
        self._renew_at = 0.0

    @property
    def requires_scopes(self) -> bool:
        """``False``: the scopes are fixed when the credentials are made."""
        return False

    @property
    def expired(self) -> bool:
        """Whether the token has reached the time to renew it (the vault's, not Google's)."""
        return self.expiry is not None and time.time() >= self._renew_at

    @property
    def token_state(self) -> Any:
        """``FRESH`` until the renewal time, then ``INVALID``: never a background refresh.

        A refresh in google-auth's own thread would run outside the request (and its user).
        """
        if self.token is None or self.expired:
            return google_credentials.TokenState.INVALID
        return google_credentials.TokenState.FRESH

    def before_request(self, request: Any, method: str, url: str, headers: Any) -> None:
        """Ask the source before each call (a memo read), then sign the call as google.auth does.

        A client kept past the request it was made in must not send that user's token for
        another: the source refuses another user, and a token renewed elsewhere is picked up.
        """
        if self.token is not None and not self.expired:
            found = self.source.token(self.scopes)
            if found.access_token != self.token:  # the same token keeps its renewal time
                self._take(found)
        super().before_request(request, method, url, headers)  # type: ignore[no-untyped-call]

    def _take(self, found: Any) -> None:
        self.token = found.access_token
        # Kept twice: as epoch seconds for this object's checks on every call, and as the naive
        # UTC ``expiry`` google.auth's own code reads.
        self._renew_at = renew_at(found, time.time())
        self.expiry = _EPOCH + datetime.timedelta(seconds=self._renew_at)

    def refresh(self, request: Any) -> None:
        """Take a token from the vault; drop the current one first if Google refused it."""
        if self.token is not None and not self.expired:
            # Still fresh by its expiry, yet asked to refresh: google.auth does that after a 401.
            self.source.reject(self.token)
        self._take(self.source.token(self.scopes))
