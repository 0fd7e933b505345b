"""Provider tokens for background work, with no session (layer: request-time API, beside tokens)."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial

from flask import Flask, current_app, has_app_context

from ._exchange import ProviderToken
from ._state import get_state
from ._tokens import Subject, obtain, sorted_scopes
from .errors import InvalidRequest

_MAX_USER_ID = 512


def worker_token(
    user_id: str,
    connection: str,
    scopes: Iterable[str] | None = None,
    *,
    login_hint: str | None = None,
    app: Flask | None = None,
    force_refresh: bool = False,
) -> ProviderToken:
    """Return a user's provider token with no session: for background jobs and commands.

    Works wherever an app is at hand (a Celery or RQ task, a ``flask`` command, a thread): pass
    ``app`` or call it inside ``app.app_context()``. ``user_id`` is the Auth0 user id (the
    ``sub`` of the user's ID token). Auth0's Privileged Worker exchange answers (it needs
    ``AUTH0_CLIENT_PRIVATE_KEY`` and ``flask token-vault worker setup``), through the app's
    cache: a token cached by a web request serves a job and the other way round, and however
    many jobs ask at once, across processes sharing the cache, one exchange is made.

    Raises the errors of :func:`~flask_token_vault.get_provider_token_set`, and
    :class:`~flask_token_vault.ExchangeRejected` when Auth0 refuses the subject token.
    """
    if app is None and not has_app_context():
        raise RuntimeError(
            "worker_token() needs an app: pass app=..., or call it inside app.app_context()."
        )
    target: Flask = app if app is not None else current_app._get_current_object()  # type: ignore[attr-defined]
    if not isinstance(user_id, str) or not 0 < len(user_id) <= _MAX_USER_ID:
        raise InvalidRequest("A user id is a non-empty string (the user's Auth0 'sub').")
    state = get_state(target)
    ask = partial(state.exchanger.privileged_exchange, user_id)
    # The web app's own client answers, as for a session: a job and a request share tokens.
    subject = Subject(user_id, "session", ask)
    slot = subject.slot(connection, login_hint, sorted_scopes(scopes))
    return obtain(state, target, subject, slot, refresh=force_refresh).token
