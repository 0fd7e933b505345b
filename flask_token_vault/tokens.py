"""The request-time token API (layer: request-time, above the per-app state).

:data:`current_user`, :data:`current_access_token`, :func:`get_provider_token`,
:func:`get_provider_token_set`, :func:`forget_provider_tokens` and :func:`reject_provider_token`
work inside a request of the app; they read the session through :mod:`flask_token_vault.session`
and fetch tokens through the app's cache and exchange.

One rule tells the two kinds of caller apart: a request that carries ``Authorization: Bearer``
is an API call. Its access token alone decides who calls: it is validated (once per request),
the session is not read at all (:data:`current_user` is ``None``), and a bad token is refused
with 401, never answered from a session cookie that came along. Its provider tokens come from
the access-token exchange with the API's Custom API Client, cached per user (``sub``),
connection, account hint and scopes, apart from the ones a session gets: Auth0 authorizes each
exchange for its own client, so an API call must not be served a token only the web app's
client was allowed to get. The user's cache generation is shared, so a logout, a disconnect or
:func:`forget_provider_tokens` drops both.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, cast

from flask import Request, current_app, has_request_context, request, session
from flask.sessions import SessionMixin
from werkzeug.local import LocalProxy

from . import signals
from ._state import AppState, get_state
from .bearer import AccessToken
from .cache import CachedToken, Slot
from .errors import (
    AccountNotConnected,
    InsufficientScope,
    InvalidAccessToken,
    LoginRequired,
    Misconfigured,
    RateLimited,
    TokenVaultError,
)
from .exchange import ACCESS_TOKEN_SUBJECT_TYPE, SUBJECT_TOKEN_TYPE, Exchanger, ProviderToken
from .session import User, end_session, read_user

__all__ = [
    "bearer_credential",
    "current_access_token",
    "current_user",
    "forget_provider_tokens",
    "get_provider_token",
    "get_provider_token_set",
    "is_api_call",
    "optional_access_token",
    "optional_user",
    "reject_provider_token",
    "require_access_token",
    "require_user",
]

log = logging.getLogger("flask_token_vault")
_MISSING: Any = object()


class _Memo(NamedTuple):
    """A token this request already holds: usable until ``until`` (monotonic), from ``slot``."""

    until: float
    slot: Slot
    token: ProviderToken


#: This request's tokens, by (connection, login hint).
_MemoTable = dict[tuple[str, str], list[_Memo]]


class _Request:
    """What the extension knows of one request, worked out once and kept on the request.

    The app's state, the ``Authorization: Bearer`` value, the validated caller or signed-in user,
    and the tokens already handed out: every later call in the request reads them from here.
    The class attributes are the defaults; a request sets only what it learns.
    """

    #: The validated access token of an API call, or why it was refused.
    caller: AccessToken | InvalidAccessToken | None = None
    #: The signed-in user, once read (``_MISSING`` before).
    user: User | None = _MISSING
    #: The tokens this request was given, by (connection, login hint); made on first use.
    memo: _MemoTable | None = None
    #: Auth0's rate limit, once this request met it.
    rate_limited: RateLimited | None = None
    #: The session object, once read (not the proxy).
    session: SessionMixin | None = None
    #: My Account API tokens given in this request, by (user, scopes); made on first use.
    my_account: dict[tuple[str, str], str] | None = None

    def __init__(self, state: AppState, authorization: str | None) -> None:
        self.state = state
        self.bearer = _bearer_of(authorization)

    def tokens(self) -> _MemoTable:
        """Return this request's memo of tokens (made on first use)."""
        if self.memo is None:
            self.memo = {}
        return self.memo

    def my_account_tokens(self) -> dict[tuple[str, str], str]:
        """Return this request's My Account API tokens (made on first use)."""
        if self.my_account is None:
            self.my_account = {}
        return self.my_account


def _bearer_of(header: str | None) -> str | None:
    if header is None:
        return None
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return rest.strip()


def request_state(current: Request | None = None) -> _Request:
    """Return this request's :class:`_Request` (made on first use); only inside a request.

    ``current`` is the request object, when the caller already holds it.
    """
    if current is None:
        current = request._get_current_object()  # type: ignore[attr-defined]
    found: _Request | None = current.__dict__.get("_token_vault")
    if found is None:
        found = _Request(get_state(), current.environ.get("HTTP_AUTHORIZATION"))
        current.__dict__["_token_vault"] = found
    return found


def bearer_credential() -> str | None:
    """Return the request's ``Authorization: Bearer`` token: ``None`` without one, ``""`` if empty.

    Only the ``Bearer`` scheme (any case) counts; another scheme (``Basic`` from a proxy, say)
    leaves the request a browser request.
    """
    return request_state().bearer


def is_api_call() -> bool:
    """Return whether this request is an API call: it carries ``Authorization: Bearer``."""
    return has_request_context() and request_state().bearer is not None


def caller_of(rq: _Request) -> AccessToken | None:
    """Return the request's validated access token (validated once), or ``None`` without one."""
    raw = rq.bearer
    if raw is None:
        return None
    found = rq.caller
    if isinstance(found, InvalidAccessToken):
        raise found
    if found is not None:
        return found
    try:
        if not raw:
            raise InvalidAccessToken("The Authorization header carries no access token.")
        token = rq.state.bearer.validate(raw)
    except InvalidAccessToken as exc:
        rq.caller = exc
        log.info("access token refused: %s", exc.description)
        raise
    rq.caller = token
    return token


def optional_access_token() -> AccessToken | None:
    """Return this API call's validated access token, or ``None`` when it is not an API call.

    Validated once per request. Raises :class:`~flask_token_vault.InvalidAccessToken` when the
    request carries a token that is not valid (never falling back to the session).
    """
    if not has_request_context():
        return None
    return caller_of(request_state())


#: The validated access token of this API call (``Authorization: Bearer``), or ``None``.
current_access_token: AccessToken | None = cast(
    "AccessToken | None", LocalProxy(optional_access_token)
)


def require_access_token() -> AccessToken:
    """Return this API call's access token; raise :class:`~flask_token_vault.InvalidAccessToken`."""
    token = optional_access_token()
    if token is None:
        raise InvalidAccessToken(
            "This route needs an access token for the API (Authorization: Bearer).",
            error="access_token_required",
        )
    return token


def user_of(rq: _Request) -> User | None:
    """Return the request's signed-in user (read once), or ``None``; never in an API call."""
    user = rq.user
    if user is not _MISSING:
        return user
    if rq.bearer is not None:
        user = None  # an API call never reads the session
    else:
        state = rq.state
        rq.session = session._get_current_object()  # type: ignore[attr-defined]
        user = read_user(state, rq.session)
        if user is not None and state.revocations.ended(user.sub, user.sid, user.logged_in_at):
            # The logout that recorded the end dropped the user's cached tokens already: a
            # replayed old cookie must not make every live session of theirs exchange again.
            end_session("ended by a back-channel logout")
            user = None
    rq.user = user
    return user


def optional_user() -> User | None:
    """Return the signed-in user of this request (read once per request), or ``None``.

    Always ``None`` in an API call: the session is not read for a request carrying a bearer.
    A session past its lifetime, or ended by a back-channel logout, reads as ``None`` and is
    removed from the cookie.
    """
    if not has_request_context():
        return None
    return user_of(request_state())


#: The signed-in :class:`~flask_token_vault.session.User`, or ``None``.
current_user: User | None = cast("User | None", LocalProxy(optional_user))


def require_user() -> User:
    """Return the signed-in user, or raise :class:`~flask_token_vault.LoginRequired`."""
    user = optional_user()
    if user is None:
        raise LoginRequired("Sign in to continue.")
    return user


def forget_user() -> None:
    """Forget this request's memo of the user and their tokens (after sign-in or sign-out)."""
    rq = request_state()
    rq.user = _MISSING
    rq.memo = None


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
    required = tuple(sorted(set(scopes))) if scopes else ()
    return token_set(request_state(), connection, required, login_hint, force_refresh)


def token_set(
    rq: _Request,
    connection: str,
    required: tuple[str, ...],
    login_hint: str | None,
    force_refresh: bool = False,
) -> ProviderToken:
    """Do what :func:`get_provider_token_set` does, with ``required`` already sorted."""
    state = rq.state
    caller = caller_of(rq) if rq.bearer is not None else None
    if caller is None:
        user = rq.user
        if user is _MISSING:
            user = user_of(rq)
        if user is None:
            raise LoginRequired("Sign in to continue.")
        sub = user.sub
    else:
        user, sub = None, caller.sub
    memo = rq.memo if rq.memo is not None else rq.tokens()
    memo_key = (connection, login_hint or "")
    slot_memo = memo.get(memo_key)
    if slot_memo is None:
        slot_memo = memo[memo_key] = []
    # Exchanging in this request is only needed when no earlier call left a usable token. The
    # monotonic clock: a step of the wall clock must not make an expired token look fresh.
    elif not force_refresh:
        now = state.clock.monotonic()
        for held in slot_memo:
            if held.token.has_scopes(required) and now < held.until:
                return held.token
    cache = state.cache
    # A plain tuple equal to the Slot (a NamedTuple hashes and compares as one): cheaper to make
    # on the warm path, where the near cache is all that is read.
    key = (sub, connection, login_hint, required, "session" if caller is None else "api")
    if not force_refresh:
        near = cache.near(key)  # type: ignore[arg-type]  # a plain tuple equal to the Slot
        if near is not None and near.token.has_scopes(required):
            slot_memo.append(_Memo(near.until, Slot(*key), near.token))
            return near.token
    slot = Slot(*key)
    exchanged: list[bool] = []
    exchanger: Exchanger
    subject: Callable[[], str]
    if caller is None:
        # The refresh token is decrypted only when an exchange needs it.
        exchanger, subject = state.exchanger, lambda: cast(User, user).refresh_token
        subject_type = SUBJECT_TOKEN_TYPE
    else:
        token_of_caller = caller.token
        exchanger, subject = state.api_exchanger, lambda: token_of_caller
        subject_type = ACCESS_TOKEN_SUBJECT_TYPE

    def produce() -> tuple[ProviderToken, float]:
        if rq.rate_limited is not None:
            # Auth0 already refused this request once: answer now rather than ask again.
            raise rq.rate_limited
        # "Not connected" is remembered for sessions only: a session's user connects through
        # this app, which forgets the answer then; an API's caller connects on its own, through
        # the My Account API, and must find its account at once.
        remember = caller is None
        generation: str | None = None
        if remember:
            absent, generation = cache.known_absent(sub, connection, login_hint)
            if absent and not force_refresh:
                raise AccountNotConnected(
                    f"No {connection} account is connected for this user.",
                    error="federated_connection_refresh_token_not_found",
                    connection=connection,
                )
        exchanged.append(True)
        try:
            return _exchange(state, exchanger, sub, subject(), subject_type, slot)
        except AccountNotConnected:
            if remember:
                cache.remember_absent(
                    sub, connection, login_hint, state.settings.not_connected_ttl, generation
                )
            raise
        except RateLimited as exc:
            rq.rate_limited = exc
            raise

    cached: CachedToken
    try:
        cached = cache.fetch_entry(slot, produce, refresh=force_refresh)
    except InvalidAccessToken:
        if caller is None or exchanged:
            raise
        # Another request of the same user led the exchange with its own access token and
        # Auth0 refused that one; this caller's token passed the checks here: ask with it.
        cached = cache.fetch_entry(slot, produce)
    if not cached.token.has_scopes(required) and cache.forget_local(slot):
        # A re-consent handled by another process may have stored a broader token.
        cached = cache.fetch_entry(slot, produce)
    token = cached.token
    if slot_memo:
        slot_memo[:] = [held for held in slot_memo if held.token is not token]
    slot_memo.append(_Memo(cached.until, slot, token))
    if not token.has_scopes(required):
        error = InsufficientScope(
            connection=connection, granted=token.scopes or (), required=required
        )
        signals.reconsent_required.send(
            current_app._get_current_object(),  # type: ignore[attr-defined]
            user_id=sub,
            connection=connection,
            required_scopes=error.union,
            reason=error.error,
        )
        raise error
    return token


def _exchange(
    state: AppState,
    exchanger: Exchanger,
    sub: str,
    subject_token: str,
    subject_type: str,
    slot: Slot,
) -> tuple[ProviderToken, float]:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    connection, login_hint, required = slot.connection, slot.login_hint, slot.scopes
    issued_at = state.clock.time()
    try:
        token = exchanger.exchange(
            subject_token,
            connection,
            login_hint=login_hint,
            scopes=required,
            subject_token_type=subject_type,
        )
    except TokenVaultError as exc:
        if isinstance(exc, InsufficientScope) and not exc.required:
            # Auth0's invalid_scope names no scopes: ask for the ones this call needs, so
            # the re-consent link cannot come out empty and send the user round in a loop.
            exc = InsufficientScope(
                exc.description, connection=connection, required=required, error=exc.error
            )
        if isinstance(exc, Misconfigured):
            log.warning(
                "exchange failed: connection=%s error=%s fix: %s", connection, exc.error, exc.remedy
            )
        else:
            log.info("exchange failed: connection=%s error=%s", connection, exc.error)
        signals.exchange_failed.send(app, user_id=sub, connection=connection, error=exc)
        if exc.error in ("reconsent_required", "federated_connection_refresh_token_flow_failed"):
            signals.reconsent_required.send(
                app,
                user_id=sub,
                connection=connection,
                required_scopes=required,
                reason=exc.error,
            )
        raise exc from None
    log.debug(
        "exchanged: connection=%s expires_in=%d scopes=%s",
        connection,
        token.expires_at - issued_at,
        " ".join(token.scopes or ("?",)),
    )
    signals.token_exchanged.send(
        app,
        user_id=sub,
        connection=connection,
        login_hint=login_hint,
        scopes=token.scopes,
        expires_in=token.expires_at - issued_at,
    )
    return token, issued_at


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
    required = tuple(sorted(set(scopes))) if scopes else ()
    return token_set(request_state(), connection, required, login_hint, force_refresh).access_token


def forget_provider_tokens(connection: str | None = None) -> None:
    """Drop the signed-in user's (or API caller's) cached provider tokens, everywhere.

    The user's cache generation changes, so every token cached for them (whatever the
    connection) is out of reach at once; ``connection`` narrows only this request's memo.
    Other processes' near caches let go within ``TOKEN_VAULT_LOCAL_CACHE_TTL`` seconds.
    """
    sub = _current_sub()
    if sub is None:
        return
    memo = request_state().tokens()
    for key in list(memo):
        if connection is None or key[0] == connection:
            del memo[key]
    get_state().cache.invalidate_user(sub)


def reject_provider_token(connection: str, access_token: str | ProviderToken) -> None:
    """Drop a token the provider refused (it answered 401), for every process of the app.

    Call it when your own call to the provider's API with a token from
    :func:`get_provider_token` comes back 401 (revoked, or expired earlier than Auth0 said);
    then ask :func:`get_provider_token` again for a new one.
    :class:`~flask_token_vault.ProviderSession` does this by itself. The token leaves this
    request's memo, this process's near cache and the shared cache (unless another process has
    already replaced it there); other processes' near caches let go of it within
    ``TOKEN_VAULT_LOCAL_CACHE_TTL`` seconds. A token this request did not get from the extension
    drops all of the user's cached tokens instead, as :func:`forget_provider_tokens` does.
    Works for a signed-in user and for an API caller alike.
    """
    sub = _current_sub()
    if sub is None:
        return
    rejected = access_token if isinstance(access_token, str) else access_token.access_token
    memo = request_state().tokens()
    slots: set[Slot] = set()
    for key, held in memo.items():
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
    rq = request_state()
    if rq.bearer is not None:
        try:
            caller = caller_of(rq)
        except InvalidAccessToken:
            return None
        return caller.sub if caller is not None else None
    user = user_of(rq)
    return user.sub if user is not None else None
