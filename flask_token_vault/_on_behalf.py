"""A portable "on behalf of" handle: a user's provider tokens away from the request.

(Layer: request-time API, beside :mod:`._tokens` and :mod:`._worker`.) An agent's tools run in
the view, in a generator streaming the answer, in a thread pool or in a queued job; there is no
request context in most of these. :func:`on_behalf`, called in the request, captures who the
user is and how their tokens are obtained, and the handle then asks through the very same
:func:`~flask_token_vault._tokens.obtain` as views: one cache, one exchange per user however
many tools ask at once.

What the handle holds of a credential is sealed with the app's keys (the session's refresh
token stays as the session sealed it; an API caller's access token is sealed here), bound to
this tenant, client and user: a handle's ``sub`` cannot be edited to reach another user, and
neither its ``repr`` nor its pickle carries a usable secret.
"""

from __future__ import annotations

import hmac
import json
import threading
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from flask import Flask, current_app, has_app_context, has_request_context, request

from ._cache import Slot
from ._crypto import InvalidToken
from ._exchange import ProviderToken
from ._session import SESSION_KEY, User, _opener
from ._state import AppState, get_state
from ._tokens import Subject, api_subject, obtain, request_state, session_subject, sorted_scopes
from ._urls import safe_next
from ._worker import _audit_context, job_start, worker_subject
from .errors import InvalidAccessToken, InvalidRequest, LoginRequired

Kind = Literal["session", "api", "worker"]
#: The most slots a handle remembers, to drop the right one when a provider refuses a token.
_MAX_REMEMBERED = 64


class OnBehalf:
    """Who a tool acts for, and how their provider tokens are obtained; safe to pass around.

    Take one in a request with :func:`on_behalf` (or ``vault.on_behalf()``), then hand it to a
    thread, a ``stream_with_context`` generator or a queued job. Use :meth:`token` for a
    provider token and :meth:`source` for an object provider SDK adapters take.

    Outside a request it needs the app: the one it was taken in, else (after a pickle, in a
    job) the current app (``with app.app_context():``).
    """

    __slots__ = (
        "_app",
        "_audit",
        "_expires_at",
        "_kind",
        "_lock",
        "_logged_in_at",
        "_mac",
        "_root",
        "_sealed",
        "_sid",
        "_sign_in",
        "_slots",
        "return_to",
        "sub",
    )

    def __init__(
        self,
        *,
        sub: str,
        kind: Kind,
        app: Flask | None,
        sealed: str = "",
        sid: str | None = None,
        logged_in_at: float = 0.0,
        sign_in: str = "",
        expires_at: float = 0.0,
        audit_context: str | None = None,
        root: str = "/",
        return_to: str | None = None,
    ) -> None:
        #: The Auth0 user id the handle acts for.
        self.sub = sub
        self._kind: Kind = kind
        self._app = app
        self._sealed = sealed
        self._sid = sid
        self._logged_in_at = logged_in_at
        self._sign_in = sign_in
        self._expires_at = expires_at
        self._audit = audit_context
        self._root = root
        #: The path of this app the user comes back to after connecting (an interrupt's link).
        self.return_to = return_to
        self._slots: dict[str, Slot] = {}
        self._lock = threading.Lock()
        # What the handle says of its user is signed by the app's keys: an edited field (its
        # sub, kind, sign-in) voids it, wherever the handle was kept meanwhile.
        self._mac = "" if app is None else self._expected_macs(get_state(app))[0]

    def _expected_macs(self, state: AppState) -> tuple[str, ...]:
        return state.crypto.keyed_hashes(
            "on-behalf/v1",
            self._kind,
            self.sub,
            self._sealed,
            self._sid or "",
            repr(float(self._logged_in_at)),
            self._sign_in,
            repr(float(self._expires_at)),
            self._audit or "",
            self._root,
            self.return_to or "",
        )

    def __repr__(self) -> str:
        return f"OnBehalf(sub={self.sub!r}, via={self._kind!r})"

    def __getstate__(self) -> dict[str, Any]:
        # The app and the lock stay behind; what is sealed stays sealed.
        return {
            name: getattr(self, name)
            for name in self.__slots__
            if name not in ("_app", "_lock", "_slots")
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            object.__setattr__(self, name, value)
        self._app, self._slots, self._lock = None, {}, threading.Lock()

    @property
    def via(self) -> Kind:
        """How tokens are obtained: ``"session"``, ``"api"`` or ``"worker"``."""
        return self._kind

    @property
    def app_root(self) -> str:
        """The URL root (scheme, host, script root) of the request the handle was taken in."""
        return self._root

    def app(self) -> Flask:
        """Return the app the handle works for: its own, else the current one."""
        if self._app is not None:
            return self._app
        if has_app_context():
            return current_app._get_current_object()  # type: ignore[attr-defined,no-any-return]
        raise RuntimeError(
            "This handle was restored outside the app: use it inside app.app_context()."
        )

    def token(
        self,
        connection: str,
        scopes: Iterable[str] | None = None,
        *,
        login_hint: str | None = None,
        force_refresh: bool = False,
    ) -> ProviderToken:
        """Return the user's provider token for ``connection`` carrying ``scopes``.

        Through the app's cache and single flight, exactly as
        :func:`~flask_token_vault.get_provider_token_set` in a view. Raises
        :class:`~flask_token_vault.LoginRequired` once the user's session has ended (sign-out,
        back-channel logout, absolute lifetime), :class:`~flask_token_vault.InvalidAccessToken`
        once an API caller's token has expired, and the errors of
        :func:`~flask_token_vault.get_provider_token_set`.
        """
        app = self.app()
        state = get_state(app)
        subject = self._subject(state)
        slot = subject.slot(connection, login_hint, sorted_scopes(scopes))
        found = obtain(state, app, subject, slot, refresh=force_refresh).token
        with self._lock:
            if len(self._slots) >= _MAX_REMEMBERED:
                self._slots.pop(next(iter(self._slots)))
            self._slots[found.access_token] = slot
        return found

    def reject(self, connection: str, access_token: str | ProviderToken) -> None:
        """Drop a token the provider refused (it answered 401), for every process of the app."""
        rejected = access_token if isinstance(access_token, str) else access_token.access_token
        with self._lock:
            slot = self._slots.pop(rejected, None)
        known = [slot] if slot is not None and slot.connection == connection else []
        get_state(self.app()).cache.reject(self.sub, connection, rejected, known)

    def source(self, connection: str, *, login_hint: str | None = None) -> OnBehalfSource:
        """Return the user's tokens for ``connection`` as a token source for SDK adapters."""
        return OnBehalfSource(self, connection, login_hint)

    def _subject(self, state: AppState) -> Subject:
        sent = self._mac.encode() if isinstance(self._mac, str) else b""
        if not any(hmac.compare_digest(sent, mac.encode()) for mac in self._expected_macs(state)):
            raise LoginRequired(
                "This on-behalf handle was altered or made by another app: take a new one in "
                "a request.",
                error="session_ended",
            )
        if self._kind == "worker":
            # Checked when the handle was made; the reason travels with it into the job.
            reason = _audit_context(self._audit, state.settings.worker_audit_context)
            return worker_subject(state, self.sub, reason)
        if self._kind == "api":
            if state.clock.time() >= self._expires_at:
                raise InvalidAccessToken(
                    "The caller's access token this work was started with has expired.",
                    error="invalid_token",
                )
            return api_subject(state, self.sub, self._open(state, _api_binding(state, self.sub)))
        if self._session_ended(state):
            raise LoginRequired("The user's session has ended.", error="session_ended")
        return session_subject(state, self.sub, _opener(state, self._sealed, self.sub))

    def _session_ended(self, state: AppState) -> bool:
        lifetime = state.settings.session_lifetime
        if lifetime and state.clock.time() - self._logged_in_at >= lifetime:
            return True
        return state.revocations.ended(self.sub, self._sid, self._logged_in_at, self._sign_in)

    def _open(self, state: AppState, binding: str) -> str:
        try:
            return state.crypto.open_session(self._sealed, binding)
        except (InvalidToken, UnicodeError, ValueError):
            raise InvalidAccessToken(
                "The caller's access token this work was started with cannot be read.",
                error="invalid_token",
            ) from None


class OnBehalfSource:
    """One connection's tokens of an :class:`OnBehalf` handle, for provider SDK adapters.

    It has the shape of :class:`~flask_token_vault._sources.TokenSource`: ``connection``,
    ``token(scopes, force_refresh=...)`` and ``reject(access_token)``.
    """

    __slots__ = ("_handle", "_login_hint", "connection")

    def __init__(self, handle: OnBehalf, connection: str, login_hint: str | None = None) -> None:
        #: The connection whose tokens this source gives.
        self.connection = connection
        self._handle = handle
        self._login_hint = login_hint

    def __repr__(self) -> str:
        return f"OnBehalfSource({self._handle!r}, connection={self.connection!r})"

    def token(self, scopes: Sequence[str] = (), *, force_refresh: bool = False) -> ProviderToken:
        """Return the user's token for this connection carrying ``scopes``."""
        return self._handle.token(
            self.connection, scopes, login_hint=self._login_hint, force_refresh=force_refresh
        )

    def reject(self, access_token: str) -> None:
        """Drop a token the provider refused, so the next :meth:`token` gets another."""
        self._handle.reject(self.connection, access_token)


def _api_binding(state: AppState, sub: str) -> str:
    """Return what a handle's sealed access token is bound to: purpose, tenant, client, user."""
    return json.dumps(["on-behalf/api", state.settings.issuer, state.settings.client_id, sub])


def on_behalf(
    *,
    user_id: str | None = None,
    audit_context: str | None = None,
    app: Flask | None = None,
    return_to: str | None = None,
) -> OnBehalf:
    """Return a handle on the current user's provider tokens, to use away from the request.

    In a request, without arguments: the API caller (``Authorization: Bearer``), else the
    signed-in user; raises :class:`~flask_token_vault.LoginRequired` when there is neither.
    With ``user_id`` (a job, a command): the Privileged Worker path of
    :func:`~flask_token_vault.TokenVault.worker_token`, which needs ``audit_context`` (or
    ``TOKEN_VAULT_WORKER_AUDIT_CONTEXT``), checked here so a bad one fails before the job runs.

    ``return_to`` is a path of this app (the assistant's page) where the user comes back after
    connecting an account through a :class:`~flask_token_vault.TokenVaultInterrupt`'s link.
    """
    if return_to is not None and safe_next(return_to) is None:
        raise InvalidRequest("return_to must be a path on this site.")
    if user_id is not None:
        target, reason = job_start(app, user_id, audit_context, "on_behalf(user_id=...)")
        return OnBehalf(
            sub=user_id, kind="worker", app=target, audit_context=reason, return_to=return_to
        )
    if not has_request_context():
        raise RuntimeError(
            "on_behalf() without user_id needs a request: take the handle in the view and "
            "pass it on, or give user_id=... and audit_context=... in a job."
        )
    rq = request_state()
    root = request.host_url.rstrip("/") + request.script_root + "/"
    caller = rq.caller
    if caller is not None:
        state = rq.state
        sealed = state.crypto.seal_session(caller.token, _api_binding(state, caller.sub))
        return OnBehalf(
            sub=caller.sub,
            kind="api",
            app=rq.app,
            sealed=sealed,
            expires_at=caller.expires_at,
            root=root,
            return_to=return_to,
        )
    user: User | None = rq.user
    record = rq.session.get(SESSION_KEY) if rq.session is not None else None
    if user is None or not isinstance(record, dict):
        raise LoginRequired("Sign in to continue.")
    return OnBehalf(
        sub=user.sub,
        kind="session",
        app=rq.app,
        sealed=str(record["rt"]),
        sid=user.sid,
        logged_in_at=user.logged_in_at,
        sign_in=user.sign_in,
        root=root,
        return_to=return_to,
    )
