"""Provider tokens for background work, with no session (layer: request-time API, beside tokens)."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial

from flask import Flask, current_app, has_app_context

from ._exchange import ProviderToken
from ._keys import audit_context_problem
from ._state import AppState, get_state
from ._tokens import Subject, obtain, sorted_scopes
from .errors import InvalidRequest

_MAX_USER_ID = 512


def worker_token(
    user_id: str,
    connection: str,
    scopes: Iterable[str] | None = None,
    *,
    audit_context: str | None = None,
    login_hint: str | None = None,
    org_id: str | None = None,
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

    ``audit_context`` is the business reason Auth0 requires and records in the tenant's logs,
    1 to 256 characters, e.g. ``"nightly calendar sync"`` (default:
    ``TOKEN_VAULT_WORKER_AUDIT_CONTEXT``). Keep personal data out of it: administrators and
    log streams see it. It is sent with the exchange a cache miss makes, never logged here.

    ``org_id`` is the Auth0 Organization the job acts in (``org_...``, e.g. the
    :attr:`User.org_id <flask_token_vault.User.org_id>` kept from the user's sign-in), carried
    in the subject token; Auth0 refuses it unless the user is a member. The provider token is
    the user's either way (a connected account belongs to the user), so it is cached as one.

    Raises :class:`~flask_token_vault.InvalidRequest` (before any call) for a missing or unfit
    ``audit_context`` or user id, the errors of
    :func:`~flask_token_vault.get_provider_token_set`, :class:`~flask_token_vault.Misconfigured`
    when the client's privileged access refuses the job (its ``remedy`` says which part), and
    :class:`~flask_token_vault.ExchangeRejected` when Auth0 refuses the subject token.
    """
    target, reason = job_start(app, user_id, audit_context, "worker_token()")
    if org_id is not None and not (isinstance(org_id, str) and org_id.startswith("org_")):
        raise InvalidRequest("An org_id is an Auth0 organization id ('org_...').")
    state = get_state(target)
    subject = worker_subject(state, user_id, reason, org_id)
    slot = subject.slot(connection, login_hint, sorted_scopes(scopes))
    return obtain(state, target, subject, slot, refresh=force_refresh).token


def job_app(app: Flask | None, what: str) -> Flask:
    """Return ``app``, else the current app; ``what`` names the caller in the error."""
    if app is not None:
        return app
    if not has_app_context():
        raise RuntimeError(
            f"{what} needs an app: pass app=..., or call it inside app.app_context()."
        )
    return current_app._get_current_object()  # type: ignore[attr-defined,no-any-return]


def job_start(
    app: Flask | None, user_id: str, audit_context: str | None, what: str
) -> tuple[Flask, str]:
    """Check what a job acts with, before any call; return its app and ``audit_context``."""
    target = job_app(app, what)
    if not isinstance(user_id, str) or not 0 < len(user_id) <= _MAX_USER_ID:
        raise InvalidRequest("A user id is a non-empty string (the user's Auth0 'sub').")
    return target, _audit_context(audit_context, get_state(target).settings.worker_audit_context)


def worker_subject(
    state: AppState, user_id: str, audit_context: str, org_id: str | None = None
) -> Subject:
    """Return a job's subject: asked with Auth0's Privileged Worker exchange for ``user_id``."""
    ask = partial(
        state.exchanger.privileged_exchange, user_id, audit_context=audit_context, org_id=org_id
    )
    # The web app's own client answers, as for a session: a job and a request share tokens.
    return Subject(user_id, "session", ask)


def _audit_context(given: str | None, default: str | None) -> str:
    """Return the job's ``audit_context``, or raise the error that says how to give one."""
    value = default if given is None else given
    if value is None:
        raise InvalidRequest(
            "A background token needs the reason for the access (Auth0's audit_context).",
            error="audit_context_required",
        )
    problem = audit_context_problem(value)
    if problem is not None:
        source = "audit_context" if given is not None else "TOKEN_VAULT_WORKER_AUDIT_CONTEXT"
        raise InvalidRequest(
            f"{source} {problem}.",
            error="invalid_audit_context",
        )
    return value
