"""Ask the user's approval before a sensitive action, from a tool, a view or a job.

(Layer: request-time API, above :mod:`._tools`.) The user is the one the code acts for: the
``user_id`` given, else the handle of :func:`~flask_token_vault.acting_for`, else the request's
caller or signed-in user. See :mod:`._ciba` for the protocol.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from flask import Flask, current_app, has_app_context, has_request_context

from ._ciba import Approval, Backchannel, PendingApproval
from ._state import get_state
from ._tokens import request_state
from ._tools import acting_handle
from .errors import LoginRequired


def start_approval(
    binding_message: str,
    *,
    authorization_details: Sequence[Mapping[str, Any]] | None = None,
    scopes: Iterable[str] = ("openid",),
    audience: str | None = None,
    requested_expiry: int | None = None,
    user_id: str | None = None,
    app: Flask | None = None,
) -> PendingApproval:
    """Ask Auth0 to put ``binding_message`` to the user (CIBA); return the pending request.

    ``authorization_details`` (Rich Authorization Requests) describe the action, e.g.
    ``[{"type": "calendar_event", "summary": "Lunch", "start": "..."}]``; the tenant's consent
    prompt shows them. Returns at once: :func:`wait_for_approval` (a tool, a job) or
    :func:`check_approval` (a view the page polls) gives the outcome. Raises
    :class:`~flask_token_vault.LoginRequired` when no user is known, and the errors of the
    token endpoint (:class:`~flask_token_vault.Misconfigured` when CIBA is not enabled for the
    client, for example).
    """
    target, sub = _who(user_id, app)
    return _backchannel(target).start(
        sub,
        binding_message,
        authorization_details=authorization_details,
        scopes=scopes,
        audience=audience,
        requested_expiry=requested_expiry,
    )


def wait_for_approval(
    pending: PendingApproval, *, deadline: float | None = None, app: Flask | None = None
) -> Approval:
    """Wait until the user answers ``pending``, it expires, or ``deadline`` seconds pass.

    The result's ``status`` is ``"approved"``, ``"denied"`` or ``"expired"`` (which includes a
    deadline passed first). Polling honours Auth0's ``interval`` and ``slow_down``.
    """
    return _backchannel(_app(app)).wait(pending, deadline=deadline)


def check_approval(pending: PendingApproval, *, app: Flask | None = None) -> Approval | None:
    """Ask once how ``pending`` stands: the :class:`Approval`, or ``None`` while it waits.

    For a view the page polls; call it no more often than ``pending.interval`` seconds.
    """
    outcome = _backchannel(_app(app)).poll(pending)
    return outcome if isinstance(outcome, Approval) else None


def request_approval(
    binding_message: str,
    *,
    authorization_details: Sequence[Mapping[str, Any]] | None = None,
    deadline: float | None = None,
    scopes: Iterable[str] = ("openid",),
    audience: str | None = None,
    requested_expiry: int | None = None,
    user_id: str | None = None,
    app: Flask | None = None,
) -> Approval:
    """Ask the user's approval and wait: :func:`start_approval`, then :func:`wait_for_approval`.

    For a tool before a sensitive action::

        if not request_approval("Create 'Lunch' on 2 May?", deadline=120).approved:
            return "The user did not approve."
    """
    target, sub = _who(user_id, app)
    pending = start_approval(
        binding_message,
        authorization_details=authorization_details,
        scopes=scopes,
        audience=audience,
        requested_expiry=requested_expiry,
        user_id=sub,
        app=target,
    )
    return wait_for_approval(pending, deadline=deadline, app=target)


def _who(user_id: str | None, app: Flask | None) -> tuple[Flask, str]:
    """Return the app and the user an approval is for."""
    handle = acting_handle()
    if user_id is None and handle is not None:
        return (app or handle.app()), handle.sub
    target = _app(app)
    if user_id is not None:
        return target, user_id
    if has_request_context():
        subject = request_state().subject  # the API caller, else the signed-in user
        return target, subject.sub
    raise LoginRequired("An approval is asked of a user: pass user_id=..., or use acting_for().")


def _app(app: Flask | None) -> Flask:
    if app is not None:
        return app
    if has_app_context():
        return current_app._get_current_object()  # type: ignore[attr-defined,no-any-return]
    handle = acting_handle()
    if handle is not None:
        return handle.app()
    raise RuntimeError("An approval needs the app: pass app=..., or use app.app_context().")


def _backchannel(app: Flask) -> Backchannel:
    return Backchannel(get_state(app).exchanger)
