"""Round trips to Auth0 the browser has not come back from yet: sign-ins and connections.

(Layer: request-time, above the per-app state.) Each keeps, sealed in the session under its
``state`` (Flask's cookie is signed, not encrypted), what finishing needs: the PKCE verifier, the
nonce, the page to go back to. authlib's state storage is not used: it keeps the verifier
unencrypted and expires records by ``time.time()`` rather than the app's clock.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Literal

from flask import current_app, session
from flask.sessions import SecureCookieSessionInterface

from ._crypto import InvalidToken
from ._state import AppState
from .errors import CallbackError

log = logging.getLogger("flask_token_vault")

Kind = Literal["login", "connect"]

_KEY = "_token_vault_pending"
_MAX_PENDING = 3
# What a round trip may keep of its ``next`` (longer: the default page).
_MAX_NEXT = 1024
# The session cookie's value is kept below this: browsers keep 4096 bytes per cookie, name and
# attributes included, and drop a bigger one without a word.
_COOKIE_BUDGET = 3500
_MAX_STATE = 256

#: Each kind of round trip: what to call it, and how long it lives (seconds).
_KINDS: dict[Kind, tuple[str, float]] = {"login": ("sign-in", 3600), "connect": ("connection", 900)}


def begin(state: AppState, kind: Kind, state_param: str, record: dict[str, Any]) -> None:
    """Keep ``record`` (JSON) until the browser comes back with ``state_param``.

    The session keeps the newest few, and drops the oldest while the cookie would not fit in what
    browsers keep: a cookie the browser drops would leave the visitor unable to sign in.
    """
    if len(record["next"]) > _MAX_NEXT:
        log.info("the page to go back to is too long to keep; going to the default page after")
        record = {**record, "next": state.settings.default_next}
    record = {**record, "kind": kind, "at": state.clock.time()}
    started = sorted(
        (opened["at"], key, sealed)
        for key, sealed in _pending().items()
        if (opened := _open(state, key, sealed)) is not None and not _expired(state, opened)
    )
    pending = {key: sealed for _, key, sealed in started[-(_MAX_PENDING - 1) :]}
    pending[state_param] = state.crypto.seal_session(json.dumps(record), _context(state_param))
    session[_KEY] = pending
    while len(pending) > 1 and _cookie_size() > _COOKIE_BUDGET:
        del pending[next(iter(pending))]  # oldest first; the one just added stays


def take(state: AppState, kind: Kind, state_param: str | None) -> dict[str, Any]:
    """Take the round trip ``state_param`` names out of the session and return its record.

    Raise :class:`~flask_token_vault.CallbackError` when there is none of ``kind`` (a forged,
    replayed or dropped ``state``) or it has expired.
    """
    noun = _KINDS[kind][0]
    if not state_param or len(state_param) > _MAX_STATE:
        raise CallbackError(f"The {noun} answer carries no state.", error="missing_state")
    pending = _pending()
    sealed = pending.pop(state_param, None)
    if sealed is not None:
        if pending:
            session[_KEY] = pending
        else:
            session.pop(_KEY, None)
    record = _open(state, state_param, sealed)
    if record is None or record["kind"] != kind:
        raise CallbackError(
            f"The {noun} answer does not match a {noun} started here (state mismatch).",
            error="state_mismatch",
        )
    if _expired(state, record):
        raise CallbackError(
            f"The {noun} took too long and has expired.",
            error="link_expired",
        )
    return record


def _pending() -> dict[str, Any]:
    """Return a copy of the session's sealed round trips, by ``state``."""
    pending = session.get(_KEY)
    return dict(pending) if isinstance(pending, dict) else {}


def _context(state_param: str) -> str:
    # Sealed under its state: a record cannot answer for another round trip.
    return "round-trip:" + state_param


def _open(state: AppState, state_param: str, sealed: object) -> dict[str, Any] | None:
    """Return a sealed round trip's record, or ``None`` when it is not one of ours."""
    if not isinstance(sealed, str):
        return None
    try:
        record = json.loads(state.crypto.open_session(sealed, _context(state_param)))
    except (InvalidToken, ValueError):
        return None
    valid = (
        isinstance(record, dict)
        and record.get("kind") in _KINDS
        and isinstance(record.get("at"), (int, float))
    )
    return record if valid else None


def _expired(state: AppState, record: dict[str, Any]) -> bool:
    return bool(state.clock.time() - record["at"] > _KINDS[record["kind"]][1])


def _cookie_size() -> int:
    """Return the size the session cookie would have now (0 for server-side sessions)."""
    interface = current_app.session_interface
    if not isinstance(interface, SecureCookieSessionInterface):
        return 0
    serializer = interface.get_signing_serializer(current_app)
    if serializer is None:
        return 0
    return len(serializer.dumps(dict(session)))
