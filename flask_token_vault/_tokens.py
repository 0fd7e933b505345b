"""The request-time token API (layer: request-time, above the per-app state).

A request that carries ``Authorization: Bearer`` is an API call: its access token alone decides
who calls, the session is not read, and a bad token is refused with 401, never answered from a
session cookie that came along. Its provider tokens come from exchanging the access token with
the API's Custom API Client, cached apart from a session's (Auth0 authorizes each exchange for
its own client) but under the same cache generation of the user, so a logout, a disconnect or
:func:`forget_provider_tokens` drops both.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, NamedTuple, Protocol, cast

from flask import Flask, Request, current_app, has_request_context, request, session
from flask.sessions import SessionMixin
from werkzeug.local import LocalProxy

from . import signals
from ._bearer import AccessToken
from ._cache import CachedToken, Slot
from ._exchange import ACCESS_TOKEN_SUBJECT_TYPE, ProviderToken
from ._session import ANONYMOUS, AnonymousUser, User, end_session, read_user
from ._state import AppState, get_state
from .errors import (
    AccountNotConnected,
    InsufficientScope,
    InvalidAccessToken,
    LoginRequired,
    Misconfigured,
    RateLimited,
    TokenVaultError,
)

log = logging.getLogger("flask_token_vault")
_UNREAD: Any = object()
#: Where a request's :class:`_Request` is kept on the request.
_KEY = "_token_vault"


class Ask(Protocol):
    """Ask Auth0 for a subject's provider token (one of the :class:`Exchanger` grants)."""

    def __call__(
        self, connection: str, *, login_hint: str | None, scopes: tuple[str, ...]
    ) -> ProviderToken: ...


class Subject(NamedTuple):
    """Whom a provider token is for, and how Auth0 is asked for one."""

    sub: str
    #: Which client's exchange answers (:attr:`Slot.via`): Auth0 authorizes each exchange for
    #: its own client, so a token one client got never serves the other.
    via: str
    #: Asks Auth0 for a token; called only on a cache miss.
    ask: Ask
    #: Whether Auth0's "not connected" answer is remembered for a while.
    remembers_absent: bool = False

    def slot(self, connection: str, login_hint: str | None, scopes: tuple[str, ...]) -> Slot:
        """Return the cache slot of this subject's token for ``connection``."""
        return Slot(self.sub, connection, login_hint, scopes, self.via)


class _Memo(NamedTuple):
    """A token this request already holds: usable until ``until`` (monotonic), from ``slot``."""

    until: float
    slot: Slot
    token: ProviderToken


class _Request:
    """What the extension knows of one request, worked out once and kept on the request."""

    def __init__(self, app: Flask, current: Request) -> None:
        #: The app, the sender of signals.
        self.app = app
        self.state = get_state(app)
        #: The ``Authorization: Bearer`` value: ``None`` without one, ``""`` if empty.
        self.bearer = _bearer_of(current.environ.get("HTTP_AUTHORIZATION"))
        #: The tokens this request was given, by (connection, login hint).
        self.memo: dict[tuple[str, str], list[_Memo]] = {}
        #: Auth0's rate limit, once this request met it.
        self.rate_limited: RateLimited | None = None
        #: My Account API tokens given in this request, by (user, scopes).
        self.my_account: dict[tuple[str, str], str] = {}
        # Worked out on first use (functools.cached_property costs several µs a time on 3.11).
        self._caller: AccessToken | InvalidAccessToken | None = _UNREAD
        self._user: User | None = _UNREAD
        self._subject: Subject | None = None
        #: The session object (not the proxy), once the user was read.
        self.session: SessionMixin | None = None

    @property
    def caller(self) -> AccessToken | None:
        """The access token of an API call (see :func:`optional_access_token`), validated once."""
        if self._caller is _UNREAD:
            self._caller = self._validate()
        if isinstance(self._caller, InvalidAccessToken):
            raise self._caller
        return self._caller

    def _validate(self) -> AccessToken | InvalidAccessToken | None:
        if self.bearer is None:
            return None
        try:
            if not self.bearer:
                raise InvalidAccessToken("The Authorization header carries no access token.")
            return self.state.bearer.validate(self.bearer)
        except InvalidAccessToken as exc:
            log.info("access token refused: %s", exc.description)
            return exc

    @property
    def user(self) -> User | None:
        """The signed-in user (see :func:`optional_user`), read once."""
        if self._user is _UNREAD:
            self._user = None if self.bearer is not None else self._read_user()
        return self._user

    def _read_user(self) -> User | None:
        self.session = session._get_current_object()  # type: ignore[attr-defined]
        user = read_user(self.state, self.session)
        if user is not None and self.state.revocations.ended(
            user.sub, user.sid, user.logged_in_at, user.sign_in
        ):
            # The logout that recorded the end dropped the user's cached tokens already: a
            # replayed old cookie must not make every live session of theirs exchange again.
            end_session("backchannel", user.sub)
            return None
        return user

    @property
    def subject(self) -> Subject:
        """Whom this request's provider tokens are for: the API caller, else the user."""
        if self._subject is None:
            self._subject = self._subject_now()
        return self._subject

    def _subject_now(self) -> Subject:
        caller = self.caller
        if caller is not None:
            return api_subject(self.state, caller.sub, caller.token)
        user = self.user
        if user is None:
            raise LoginRequired("Sign in to continue.")
        return session_subject(self.state, user.sub, lambda: user.refresh_token)

    def forget_user(self) -> None:
        """Forget the user and their tokens (after a sign-in or a sign-out)."""
        self._user, self._subject, self.memo = _UNREAD, None, {}


def api_subject(state: AppState, sub: str, access_token: str) -> Subject:
    """Return an API caller's subject: asked with its access token, at the API's client."""
    # "Not connected" is not remembered: an API's caller connects on its own, through the
    # My Account API, and must find its account at once.
    ask = partial(
        state.api_exchanger.exchange, access_token, subject_token_type=ACCESS_TOKEN_SUBJECT_TYPE
    )
    return Subject(sub, "api", ask)


def session_subject(state: AppState, sub: str, refresh_token: Callable[[], str]) -> Subject:
    """Return a session user's subject: asked with the refresh token ``refresh_token()`` opens."""

    def ask(connection: str, *, login_hint: str | None, scopes: tuple[str, ...]) -> ProviderToken:
        # The refresh token is decrypted only when an exchange needs it.
        return state.exchanger.exchange(
            refresh_token(), connection, login_hint=login_hint, scopes=scopes
        )

    # A session's user connects through this app, which forgets "not connected" then.
    return Subject(sub, "session", ask, remembers_absent=True)


def _bearer_of(header: str | None) -> str | None:
    if header is None:
        return None
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return rest.strip()


def request_state(current: Request | None = None) -> _Request:
    """Return the :class:`_Request` of ``current`` (default: this request), made on first use."""
    # The request's own dict and objects, not the proxies: bench/hot_path.py measures each
    # lookup through a proxy (``g``, ``request``, ``session``) at 1 to 3 µs, several per request.
    if current is None:
        current = request._get_current_object()  # type: ignore[attr-defined]
    found: _Request | None = current.__dict__.get(_KEY)
    if found is None:
        found = current.__dict__[_KEY] = _Request(current_app._get_current_object(), current)  # type: ignore[attr-defined]
    return found


def is_api_call() -> bool:
    """Return whether this request is an API call: it carries ``Authorization: Bearer``."""
    return has_request_context() and request_state().bearer is not None


def optional_access_token() -> AccessToken | None:
    """Return this API call's validated access token, or ``None`` when it is not an API call.

    Raises :class:`~flask_token_vault.InvalidAccessToken`, every time it is asked, when the
    request carries a token that is not valid.
    """
    return request_state().caller if has_request_context() else None


#: The validated access token of this API call (``Authorization: Bearer``), or ``None``.
current_access_token: AccessToken | None = cast(
    "AccessToken | None", LocalProxy(optional_access_token)
)


def optional_user() -> User | None:
    """Return the signed-in user of this request (read once per request), or ``None``.

    Always ``None`` in an API call. A session past its lifetime, or ended by a back-channel
    logout, reads as ``None`` and is removed from the cookie.
    """
    return request_state().user if has_request_context() else None


def _user_or_anonymous() -> User | AnonymousUser:
    return optional_user() or ANONYMOUS


#: The signed-in :class:`~flask_token_vault._session.User`; when nobody is, a falsy stand-in
#: with Flask-Login's ``is_authenticated`` (``False``), typed as ``None`` for ``if current_user:``.
current_user: User | None = cast("User | None", LocalProxy(_user_or_anonymous))


def require_user() -> User:
    """Return the signed-in user, or raise :class:`~flask_token_vault.LoginRequired`."""
    user = optional_user()
    if user is None:
        raise LoginRequired("Sign in to continue.")
    return user


def forget_user() -> None:
    """Forget this request's memo of the user and their tokens (after sign-in or sign-out)."""
    request_state().forget_user()


def sorted_scopes(scopes: Iterable[str] | None) -> tuple[str, ...]:
    """Return ``scopes`` as the cache and the exchange take them: sorted, each once."""
    return tuple(sorted(set(scopes))) if scopes else ()


def get_provider_token_set(
    connection: str,
    scopes: Iterable[str] | None = None,
    login_hint: str | None = None,
    *,
    force_refresh: bool = False,
) -> ProviderToken:
    """Return the signed-in user's provider token for ``connection`` with its expiry and scopes.

    Looks in this request's memo, then the cache, and exchanges the user's refresh token at
    Auth0 only when neither has a usable token (one exchange however many callers ask at once).
    In an API call (``Authorization: Bearer``) the caller's validated access token is exchanged
    instead, with the API's Custom API Client; one user's many access tokens share one cached
    provider token. Raises :class:`~flask_token_vault.InsufficientScope` when ``scopes`` are
    required but not granted, :class:`~flask_token_vault.LoginRequired` without a signed-in
    user, :class:`~flask_token_vault.InvalidAccessToken` for a bad access token.
    """
    return token_set(request_state(), connection, sorted_scopes(scopes), login_hint, force_refresh)


def get_provider_token(
    connection: str,
    scopes: Iterable[str] | None = None,
    login_hint: str | None = None,
    *,
    force_refresh: bool = False,
) -> str:
    """Return the signed-in user's access token at the provider behind ``connection``.

    See :func:`get_provider_token_set` for the lookup order and errors.
    """
    found = get_provider_token_set(connection, scopes, login_hint, force_refresh=force_refresh)
    return found.access_token


def token_set(
    rq: _Request,
    connection: str,
    required: tuple[str, ...],
    login_hint: str | None,
    force_refresh: bool = False,
) -> ProviderToken:
    """Do what :func:`get_provider_token_set` does, with ``required`` already sorted."""
    subject = rq.subject
    held = rq.memo.setdefault((connection, login_hint or ""), [])
    if not force_refresh:
        # The monotonic clock: a step of the wall clock must not make an expired token look fresh.
        now = rq.state.clock.monotonic()
        for memo in held:
            if now < memo.until and memo.token.has_scopes(required):
                return memo.token
    slot = subject.slot(connection, login_hint, required)
    cached = obtain(rq.state, rq.app, subject, slot, refresh=force_refresh, request=rq)
    held[:] = [memo for memo in held if memo.token is not cached.token]
    held.append(_Memo(cached.until, slot, cached.token))
    return cached.token


def obtain(
    state: AppState,
    app: Flask,
    subject: Subject,
    slot: Slot,
    *,
    refresh: bool = False,
    request: _Request | None = None,
) -> CachedToken:
    """Return ``subject``'s token for ``slot``: the one way every caller obtains a token.

    The near cache, then the shared cache, then one exchange at Auth0 however many threads and
    processes ask at once; ``refresh`` skips the caches. ``request`` is the request asking
    (``None`` for a job): once Auth0 rate-limited it, it does not ask again.
    """
    cache = state.cache
    near = None if refresh else cache.near(slot)
    if near is not None and near.token.has_scopes(slot.scopes):
        return near  # the warm path: no closure, no lock, no store round trip
    exchanged = False

    def produce() -> tuple[ProviderToken, float]:
        nonlocal exchanged
        if request is not None and request.rate_limited is not None:
            raise request.rate_limited  # Auth0 refused this request once: do not ask again
        generation: str | None = None
        if subject.remembers_absent:
            absent, generation = cache.known_absent(slot.sub, slot.connection, slot.login_hint)
            if absent and not refresh:
                raise AccountNotConnected(
                    f"No {slot.connection} account is connected for this user.",
                    error="federated_connection_refresh_token_not_found",
                    connection=slot.connection,
                )
        exchanged = True
        try:
            return _exchange(state, app, subject, slot)
        except AccountNotConnected:
            if subject.remembers_absent:
                ttl = state.settings.not_connected_ttl
                cache.remember_absent(slot.sub, slot.connection, slot.login_hint, ttl, generation)
            raise
        except RateLimited as exc:
            if request is not None:
                request.rate_limited = exc
            raise

    try:
        cached = cache.fetch_entry(slot, produce, refresh=refresh)
    except InvalidAccessToken:
        if exchanged:
            raise
        # Another request of the same user led the exchange with its own access token and
        # Auth0 refused that one; this caller's token passed the checks here: ask with it.
        cached = cache.fetch_entry(slot, produce)
    if not cached.token.has_scopes(slot.scopes) and cache.forget_local(slot):
        # A re-consent handled by another process may have stored a broader token.
        cached = cache.fetch_entry(slot, produce)
    if not cached.token.has_scopes(slot.scopes):
        error = InsufficientScope(
            connection=slot.connection, granted=cached.token.scopes or (), required=slot.scopes
        )
        _reconsent(app, slot, error.union, error.error)
        raise error
    return cached


def _exchange(
    state: AppState, app: Flask, subject: Subject, slot: Slot
) -> tuple[ProviderToken, float]:
    """Ask Auth0 for the token of ``slot``; log and signal the answer."""
    connection = slot.connection
    issued_at = state.clock.time()
    try:
        token = subject.ask(connection, login_hint=slot.login_hint, scopes=slot.scopes)
    except TokenVaultError as exc:
        if isinstance(exc, InsufficientScope) and not exc.required:
            # Auth0's invalid_scope names no scopes: ask for the ones this call needs, so
            # the re-consent link cannot come out empty and send the user round in a loop.
            exc = InsufficientScope(
                exc.description, connection=connection, required=slot.scopes, error=exc.error
            )
        if isinstance(exc, Misconfigured):
            log.warning(
                "exchange failed: connection=%s error=%s fix: %s", connection, exc.error, exc.remedy
            )
        else:
            log.info("exchange failed: connection=%s error=%s", connection, exc.error)
        signals.exchange_failed.send(app, user_id=slot.sub, connection=connection, error=exc)
        if exc.error in ("reconsent_required", "federated_connection_refresh_token_flow_failed"):
            _reconsent(app, slot, slot.scopes, exc.error)
        raise exc from None
    expires_in = token.expires_at - issued_at
    log.debug(
        "exchanged: connection=%s expires_in=%d scopes=%s",
        connection,
        expires_in,
        " ".join(token.scopes or ("?",)),
    )
    signals.token_exchanged.send(
        app,
        user_id=slot.sub,
        connection=connection,
        login_hint=slot.login_hint,
        scopes=token.scopes,
        expires_in=expires_in,
    )
    return token, issued_at


def _reconsent(app: Flask, slot: Slot, scopes: tuple[str, ...], reason: str) -> None:
    """Send :data:`~flask_token_vault.signals.reconsent_required` for ``slot``'s user."""
    signals.reconsent_required.send(
        app, user_id=slot.sub, connection=slot.connection, required_scopes=scopes, reason=reason
    )


def forget_provider_tokens(connection: str | None = None) -> None:
    """Drop the signed-in user's (or API caller's) cached provider tokens, everywhere.

    The user's cache generation changes, so every token cached for them (whatever the
    connection) is out of reach at once; ``connection`` narrows only this request's memo.
    Other processes' near caches let go within ``TOKEN_VAULT_LOCAL_CACHE_TTL`` seconds.
    """
    sub = _current_sub()
    if sub is None:
        return
    memo = request_state().memo
    for key in list(memo):
        if connection is None or key[0] == connection:
            del memo[key]
    get_state().cache.invalidate_user(sub)


def reject_provider_token(connection: str, access_token: str | ProviderToken) -> None:
    """Drop a token the provider refused (it answered 401), for every process of the app.

    Call it when the provider answers 401 to a token from :func:`get_provider_token` (revoked,
    or expired earlier than Auth0 said), then ask :func:`get_provider_token` again;
    :class:`~flask_token_vault.ProviderSession` does this by itself. Other processes' near
    caches let go of the token within ``TOKEN_VAULT_LOCAL_CACHE_TTL`` seconds. A token this
    request did not get from the extension drops all of the user's cached tokens instead.
    """
    sub = _current_sub()
    if sub is None:
        return
    rejected = access_token if isinstance(access_token, str) else access_token.access_token
    slots: set[Slot] = set()
    for key, held in request_state().memo.items():
        if key[0] != connection:
            continue
        slots.update(h.slot for h in held if h.token.access_token == rejected)
        held[:] = [h for h in held if h.token.access_token != rejected]
    log.info("provider refused a token; dropping it: connection=%s", connection)
    get_state().cache.reject(sub, connection, rejected, slots)


def _current_sub() -> str | None:
    """Return the user of this request: the API caller's, else the signed-in one's."""
    if not has_request_context():
        return None
    try:
        return request_state().subject.sub
    except (InvalidAccessToken, LoginRequired):
        return None
