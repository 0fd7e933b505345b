"""What the extension keeps in Flask's session, and how it reads it back safely.

The session holds one small dict under ``SESSION_KEY``: a format version, the user's claims
(``sub``, ``name``, ``email``, ``picture``) and the Auth0 refresh token *encrypted* with the
extension's session key. Anything unexpected (a tampered, truncated or foreign value, a value
encrypted with a key we no longer hold) reads as "not signed in", never as an error.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import current_app, session

from .crypto import Crypto, InvalidToken

__all__ = [
    "SESSION_KEY",
    "User",
    "forget_connected",
    "make_record",
    "note_connected",
    "read_user",
    "take_connected",
    "write_user",
]

SESSION_KEY = "_token_vault"
#: How long after a connect round trip an empty vault means the tenant refused it (seconds).
CONNECT_GRACE = 300
_CONNECTED_KEY = "_token_vault_connected"
_MAX_CONNECTED = 5
_VERSION = 1
_CLAIMS = ("sub", "name", "email", "picture")
_MAX_CLAIM = 512
_MAX_SEALED = 4096


@dataclass(frozen=True)
class User:
    """The signed-in user, as the session records them."""

    #: Auth0 user id (the ID token's ``sub``).
    sub: str
    #: Display name, when Auth0 gave one.
    name: str | None = None
    #: E-mail address, when Auth0 gave one.
    email: str | None = None
    #: Picture URL, when Auth0 gave one.
    picture: str | None = None
    #: When the user signed in (epoch seconds).
    logged_in_at: float = 0.0
    _refresh_token: str = field(default="", repr=False, compare=False)

    @property
    def refresh_token(self) -> str:
        """Return the decrypted Auth0 refresh token (never log it)."""
        return self._refresh_token

    def claims(self) -> dict[str, str]:
        """Return the user's claims as a dict."""
        out = {"sub": self.sub}
        for name in ("name", "email", "picture"):
            value = getattr(self, name)
            if value:
                out[name] = value
        return out


def write_user(crypto: Crypto, claims: Mapping[str, Any], refresh_token: str) -> User:
    """Replace the session's content with a freshly signed-in user.

    The whole session is cleared first so nothing from before the login survives (session
    fixation), then the claims and the encrypted refresh token are written in one assignment.
    """
    record = make_record(crypto, claims, refresh_token)
    session.clear()
    # Server-side sessions (Flask-Session) keep their id across clear(): give them a new one,
    # or an id planted before the login would become the signed-in session.
    regenerate = getattr(current_app.session_interface, "regenerate", None)
    if callable(regenerate):
        regenerate(session)
    session[SESSION_KEY] = record
    return _to_user(record, refresh_token)


def make_record(crypto: Crypto, claims: Mapping[str, Any], refresh_token: str) -> dict[str, Any]:
    """Return the session record for a user: their claims and the encrypted refresh token."""
    record: dict[str, Any] = {"v": _VERSION, "at": int(time.time())}
    for name in _CLAIMS:
        value = claims.get(name)
        if isinstance(value, str) and value and len(value) <= _MAX_CLAIM:
            record[name] = value
    record["rt"] = crypto.seal_session(refresh_token)
    return record


def _to_user(record: Mapping[str, Any], refresh_token: str) -> User:
    return User(
        sub=record["sub"],
        name=record.get("name"),
        email=record.get("email"),
        picture=record.get("picture"),
        logged_in_at=float(record.get("at", 0)),
        _refresh_token=refresh_token,
    )


def read_user(crypto: Crypto) -> User | None:
    """Return the signed-in user, or ``None`` for anything that is not a valid record of ours."""
    record = session.get(SESSION_KEY)
    if not isinstance(record, dict) or record.get("v") != _VERSION:
        return None
    sub, sealed = record.get("sub"), record.get("rt")
    if not isinstance(sub, str) or not sub or not isinstance(sealed, str):
        return None
    if len(sealed) > _MAX_SEALED:
        return None
    for name in ("name", "email", "picture"):
        if name in record and not isinstance(record[name], str):
            return None
    if not isinstance(record.get("at", 0), (int, float)):
        return None
    try:
        refresh_token = crypto.open_session(sealed)
    except (InvalidToken, UnicodeError, ValueError):
        return None
    return _to_user(record, refresh_token)


def note_connected(connection: str) -> None:
    """Record that the browser just came back from connecting ``connection``.

    The next view needing that connection checks it (:func:`take_connected`): if the vault still
    holds no account there, the tenant did not store one, and sending the browser to connect
    again would only go round in a loop.
    """
    raw = session.get(_CONNECTED_KEY)
    marks = {k: v for k, v in raw.items() if isinstance(v, int)} if isinstance(raw, dict) else {}
    marks.pop(connection, None)
    marks[connection] = int(time.time())
    while len(marks) > _MAX_CONNECTED:
        marks.pop(next(iter(marks)))
    session[_CONNECTED_KEY] = marks


def take_connected(connection: str) -> bool:
    """Forget the mark of a connect round trip for ``connection``; return whether it was fresh."""
    raw = session.get(_CONNECTED_KEY)
    if not isinstance(raw, dict) or connection not in raw:
        return False
    marks = dict(raw)
    at = marks.pop(connection)
    if marks:
        session[_CONNECTED_KEY] = marks
    else:
        session.pop(_CONNECTED_KEY, None)
    return isinstance(at, int) and 0 <= time.time() - at <= CONNECT_GRACE


def forget_connected(connection: str) -> None:
    """Forget the mark of a connect round trip for ``connection`` (after a disconnect)."""
    take_connected(connection)
