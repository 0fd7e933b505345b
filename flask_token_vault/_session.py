"""What the extension keeps in Flask's session, and how it reads it back safely.

(Layer: request-time, above the per-app state.) The session holds one small dict under
``SESSION_KEY``: the tenant and client it was made for, the sign-in and last-request times, the
user's claims and the Auth0 refresh token *encrypted*, bound to the tenant, client and user.
Anything unexpected reads as "not signed in", never as an error.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, cast

from flask import current_app, session
from flask.sessions import SessionMixin

from . import signals
from ._clock import is_numeric_date
from ._crypto import InvalidToken
from ._state import AppState
from ._store import drop_oldest
from .errors import LoginRequired

log = logging.getLogger("flask_token_vault")

SESSION_KEY = "_token_vault"
#: How long after a connect round trip an empty vault means the tenant refused it (seconds).
CONNECT_GRACE = 300
_CONNECTED_KEY = "_token_vault_connected"
_MAX_CONNECTED = 5
_VERSION = 2
# The claims a record keeps, with the longest value kept of each.
_CLAIMS = {"sub": 512, "name": 512, "email": 512, "picture": 512, "sid": 256, "org_id": 64}
_MAX_SEALED = 4096
# ``seen`` is rewritten (and the cookie sent again) at most this often.
_SEEN_EVERY = 300.0


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
    #: When the user signed in to this app (epoch seconds).
    logged_in_at: float = 0.0
    #: When the user last authenticated at Auth0 (the ID token's ``auth_time``, epoch seconds;
    #: ``None`` when Auth0 gave none). An Auth0 session may sign the user in to the app without
    #: asking for a password again: this is when they last typed one.
    #: :func:`~flask_token_vault.fresh_login_required` compares it with ``max_age`` (``None``
    #: is never fresh: a silent sign-in says nothing of when the password was typed).
    auth_time: float | None = None
    #: Auth0's session id (the ID token's ``sid``), which a back-channel logout names.
    sid: str | None = None
    #: The Auth0 Organization the user signed in to (the ID token's ``org_id``), if any.
    org_id: str | None = None
    #: This sign-in's own id, the same in every copy of its cookie: a sign-out ends them all by
    #: it when Auth0 gave no ``sid``. A hash of the sealed refresh token, which is sealed once,
    #: with a random nonce, at sign-in and never rewritten.
    sign_in: str = field(default="", repr=False)
    # Opens the sealed refresh token each time, so it is never kept in clear (default: none).
    _refresh_token: Callable[[], str] = field(default=str, repr=False, compare=False)
    #: Flask-Login's names, so templates written for it work: a user here is signed in.
    is_authenticated: ClassVar[bool] = True
    is_active: ClassVar[bool] = True
    is_anonymous: ClassVar[bool] = False

    def get_id(self) -> str:
        """Return the user's id (Flask-Login's name for :attr:`sub`)."""
        return self.sub

    @property
    def refresh_token(self) -> str:
        """Return the decrypted Auth0 refresh token (never log it).

        It is decrypted here, when asked for, and not kept: a request served from the cache never
        decrypts it. Raises :class:`~flask_token_vault.LoginRequired` when it cannot be.
        """
        return self._refresh_token()

    def claims(self) -> dict[str, str]:
        """Return the user's claims as a dict."""
        out = {"sub": self.sub}
        for name in ("name", "email", "picture"):
            value = getattr(self, name)
            if value:
                out[name] = value
        return out


class AnonymousUser:
    """What :data:`~flask_token_vault.current_user` reads as when nobody is signed in: falsy.

    It answers Flask-Login's names (``is_authenticated`` and the rest) and the user's fields
    with ``None``, so ``{% if current_user.is_authenticated %}`` works in either case.
    """

    is_authenticated: ClassVar[bool] = False
    is_active: ClassVar[bool] = False
    is_anonymous: ClassVar[bool] = True
    sub = name = email = picture = sid = auth_time = org_id = None

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "AnonymousUser()"

    def get_id(self) -> None:
        """Return ``None``: nobody is signed in."""
        return None


ANONYMOUS = AnonymousUser()


def _binding(state: AppState, sub: str) -> str:
    """Return what the sealed refresh token is bound to: this tenant, this client, this user."""
    return json.dumps([state.settings.issuer, state.settings.client_id, sub])


def write_user(state: AppState, claims: Mapping[str, Any], refresh_token: str) -> User:
    """Replace the session's content with a freshly signed-in user.

    The whole session is cleared first so nothing from before the login survives (session
    fixation), then the record is written in one assignment.
    """
    record = make_record(state, claims, refresh_token)
    session.clear()
    # Server-side sessions (Flask-Session) keep their id across clear(): give them a new one,
    # or an id planted before the login would become the signed-in session.
    regenerate = getattr(current_app.session_interface, "regenerate", None)
    if callable(regenerate):
        regenerate(session)
    session[SESSION_KEY] = record
    return _to_user(record, lambda: refresh_token)


def make_record(state: AppState, claims: Mapping[str, Any], refresh_token: str) -> dict[str, Any]:
    """Return the session record for a user signed in now."""
    now = int(state.clock.time())
    settings = state.settings
    record: dict[str, Any] = {
        "v": _VERSION,
        "iss": settings.issuer,
        "aud": settings.client_id,
        "at": now,
        "seen": now,
    }
    for name, longest in _CLAIMS.items():
        value = claims.get(name)
        if isinstance(value, str) and value and len(value) <= longest:
            record[name] = value
    auth_time = claims.get("auth_time")
    # A time in the future proves nothing: it is left out, as when Auth0 sends none.
    if is_numeric_date(auth_time) and cast(float, auth_time) <= now + 120:
        record["auth_time"] = int(cast(float, auth_time))
    record["rt"] = state.crypto.seal_session(refresh_token, _binding(state, str(record["sub"])))
    return record


def _to_user(record: Mapping[str, Any], refresh_token: Callable[[], str]) -> User:
    return User(
        sub=record["sub"],
        name=record.get("name"),
        email=record.get("email"),
        picture=record.get("picture"),
        logged_in_at=float(record.get("at", 0)),
        auth_time=float(record["auth_time"]) if "auth_time" in record else None,
        sid=record.get("sid"),
        org_id=record.get("org_id"),
        sign_in=hashlib.sha256(str(record["rt"]).encode()).hexdigest()[:32],
        _refresh_token=refresh_token,
    )


def _opener(state: AppState, sealed: str, sub: str) -> Callable[[], str]:
    def open_refresh_token() -> str:
        try:
            return state.crypto.open_session(sealed, _binding(state, sub))
        except (InvalidToken, UnicodeError, ValueError):
            raise LoginRequired(
                "The session's refresh token cannot be read.",
                error="session_unreadable",
            ) from None

    return open_refresh_token


def _ours(state: AppState, record: dict[str, Any]) -> bool:
    """Return whether ``record`` is well formed and made for this tenant and client."""
    settings = state.settings
    sub, sealed = record.get("sub"), record.get("rt")
    return (
        record.get("v") == _VERSION
        and (record.get("iss"), record.get("aud")) == (settings.issuer, settings.client_id)
        and isinstance(sub, str)
        and bool(sub)
        and isinstance(sealed, str)
        and len(sealed) <= _MAX_SEALED
        and all(isinstance(record.get(name, ""), str) for name in _CLAIMS)
        and _is_time(record.get("at"))
        and ("auth_time" not in record or _is_time(record["auth_time"]))
    )


def _is_time(value: object) -> bool:
    # Finite and bounded: a NaN ``at`` or ``seen`` would never expire (every comparison with
    # NaN is false), a 400-digit one would raise in the arithmetic. Only a holder of
    # SECRET_KEY can write one; the session then reads as ended.
    return is_numeric_date(value)


#: Why a session ended, as :data:`~flask_token_vault.signals.session_ended` says it, and the log.
END_REASONS = {
    "lifetime": "absolute lifetime",
    "idle": "idle timeout",
    "backchannel": "ended by a back-channel logout",
    "logout": "signed out",
}


def end_session(reason: str, user_id: str) -> None:
    """Remove the user's record from the session (the rest of the session stays).

    ``reason`` is a key of :data:`END_REASONS`; :data:`~flask_token_vault.signals.session_ended`
    is sent with it, so audit logs see every end, not only sign-outs.
    """
    if SESSION_KEY in session:
        session.pop(SESSION_KEY, None)
        log.info("session ended: %s", END_REASONS[reason])
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        signals.session_ended.send(app, user_id=user_id, reason=reason)


def read_user(state: AppState, store: SessionMixin | None = None) -> User | None:
    """Return the signed-in user, or ``None`` for anything that is not a live record of ours.

    A record past its absolute or idle lifetime is removed from ``store`` (default: this
    request's session); a live one's ``seen`` time is renewed every few minutes.
    """
    if store is None:
        store = session
    record = store.get(SESSION_KEY)
    if not isinstance(record, dict):
        return None
    user = _known_user(state, record)
    if user is None or not _is_time(record.get("seen")):
        return None
    now, settings = state.clock.time(), state.settings
    idle = settings.session_idle_timeout
    if settings.session_lifetime and now - record["at"] >= settings.session_lifetime:
        end_session("lifetime", user.sub)
        return None
    if idle and now - record["seen"] >= idle:
        end_session("idle", user.sub)
        return None
    if idle and now - record["seen"] >= min(_SEEN_EVERY, idle / 10):
        store[SESSION_KEY] = {**record, "seen": int(now)}
    return user


def _known_user(state: AppState, record: dict[str, Any]) -> User | None:
    """Return the user of a record that is ours and sealed by a key we hold.

    A record is checked in full the first time this process sees it; the user read from it is
    then kept by its sealed refresh token, which names one sign-in (checking costs several times
    more than finding it).
    """
    sealed = record.get("rt")
    # What a kept record must still say for the user read from it to stand.
    get = record.get
    fields = (get("v"), get("iss"), get("aud"), get("sub"), get("at"), get("sid"), get("auth_time"))
    kept = state.sessions_seen.get(sealed) if isinstance(sealed, str) else None
    if kept is not None and kept[0] == fields:
        return cast(User, kept[1])
    # A value sealed by a key the app does not hold reads as signed out; the refresh token is
    # decrypted only when an exchange needs it (User.refresh_token).
    if not _ours(state, record) or not state.crypto.session_key_known(record["rt"]):
        return None
    user = _to_user(record, _opener(state, record["rt"], record["sub"]))
    with state.sessions_lock:
        if len(state.sessions_seen) >= state.settings.local_cache_max_users:
            drop_oldest(state.sessions_seen)  # a bound on memory, not an LRU
        state.sessions_seen[record["rt"]] = (fields, user)
    return user


def note_connected(connection: str) -> None:
    """Record that the browser just came back from connecting ``connection``.

    If the vault still holds no account there on the next view needing it, the tenant did not
    store one: connecting again would only go round in a loop (:func:`take_connected`).
    """
    raw = session.get(_CONNECTED_KEY)
    marks = {k: v for k, v in raw.items() if isinstance(v, int)} if isinstance(raw, dict) else {}
    marks.pop(connection, None)
    marks[connection] = int(time.time())
    while len(marks) > _MAX_CONNECTED:
        marks.pop(next(iter(marks)))
    session[_CONNECTED_KEY] = marks


def take_connected(connection: str, store: SessionMixin | None = None) -> bool:
    """Forget the mark of a connect round trip for ``connection``; return whether it was fresh.

    ``store`` is the session object, when the caller holds it already.
    """
    if store is None:
        store = session
    raw = store.get(_CONNECTED_KEY)
    if not isinstance(raw, dict) or connection not in raw:
        return False
    marks = dict(raw)
    at = marks.pop(connection)
    if marks:
        store[_CONNECTED_KEY] = marks
    else:
        store.pop(_CONNECTED_KEY, None)
    return isinstance(at, int) and 0 <= time.time() - at <= CONNECT_GRACE
