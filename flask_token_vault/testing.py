"""Helpers for testing apps that use Flask-Token-Vault, against the bundled emulator."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from flask.testing import FlaskClient

from .extension import get_state
from .session import SESSION_KEY, make_record

if TYPE_CHECKING:
    from .emulator import Emulator

__all__ = ["login_as"]


def login_as(
    client: FlaskClient,
    emulator: Emulator,
    email: str = "alice@example.com",
    connections: Mapping[str, Iterable[str]] | None = None,
    *,
    name: str | None = None,
) -> str:
    """Sign ``client`` in as ``email`` with the given connected accounts, without a browser.

    ``connections`` maps a connection name to the scopes the user granted there, e.g.
    ``{"google-oauth2": ["https://www.googleapis.com/auth/calendar.readonly"]}``. The emulator
    records those accounts in its vault and issues a real refresh token, which is put in the
    client's session exactly as the login callback would. Returns the user's Auth0 user id.
    """
    for connection, scopes in (connections or {}).items():
        emulator.connect_account(email, connection, list(scopes))
    refresh_token = emulator.issue_refresh_token(email)
    user_id = emulator.user_id_for(email)
    crypto = get_state(client.application).crypto
    claims = {"sub": user_id, "email": email, "name": name or email.split("@")[0].title()}
    with client.session_transaction() as session:
        session.clear()
        session[SESSION_KEY] = make_record(crypto, claims, refresh_token)
    return user_id
