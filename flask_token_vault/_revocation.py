"""Records of ended sessions, and of logout tokens already used (layer: core, above the store).

A back-channel logout names an Auth0 session (``sid``) or a user (``sub``); a sign-out names the
Auth0 session, or, when Auth0 gave none, the sign-in itself (every copy of one cookie shares
it). It is recorded in the app's store (Redis in production) as *when* it happened, under an
HMAC of the name: every session of that ``sid`` (or sign-in, or ``sub``) signed in at or before
that time ends on its next request, in whichever process serves it. Sessions signed in later
are not touched.

Each process keeps what it read (the latest end recorded for a sid or a user, compared with each
session's own sign-in time): with an in-process store until a logout is recorded here (exact,
and no read at all on most requests); with a shared one for ``local_ttl`` seconds (as the near
cache of :mod:`flask_token_vault._cache` does), so a logout reaches every process within that
time at the cost of one round trip per user and process every ``local_ttl``.
Records expire once no session they could end can be alive.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any

from ._clock import Clock
from ._crypto import Crypto
from ._store import PendingWrites, Store, StoreUnavailable, in_slot

log = logging.getLogger("flask_token_vault")

_MAX_NEAR = 10_000


class SessionRevocations:
    """Record ended Auth0 sessions and used logout tokens in the app's store."""

    def __init__(
        self,
        store: Store,
        crypto: Crypto,
        clock: Clock,
        *,
        namespace: str,
        record_ttl: float,
        local_ttl: float = 5.0,
        replica_wait: float = 0.0,
    ) -> None:
        self.store = store
        self.crypto = crypto
        self.clock = clock
        self.namespace = namespace
        self.record_ttl = max(1, int(record_ttl))
        self.local_ttl = local_ttl
        # (sub, "sid" or "sign_in", its value) -> (epoch, until when on the monotonic clock it
        # may be used, the latest end recorded for them or -inf): the answer for any session of
        # theirs, without a read. The epoch moves on at every logout recorded by this process.
        self._known: dict[tuple[str, str, str], tuple[int, float, float]] = {}
        self._epoch = 0
        self._lock = threading.Lock()
        #: Seconds an end waits for one replica to hold it (``WAIT``), where the store has one.
        self.replica_wait = replica_wait
        # Ends the store has not taken yet (key -> when): every request of this process checks
        # them, and they are written again until the store takes them.
        self._pending = PendingWrites(
            clock,
            "logouts",
            lambda key, value: self.store.set_replicated(
                key, value, self.record_ttl, self.replica_wait
            ),
        )

    def __repr__(self) -> str:
        return f"SessionRevocations({self.store!r})"

    def _key(self, kind: str, value: str) -> str:
        """Return the record of a user (in the user's hash slot), an Auth0 session or a sign-in."""
        tag = {"sub": "user", "sid": "session", "sign_in": "sign-in"}[kind]
        return in_slot(self.crypto.keyed_hash(tag, self.namespace, value), "r")

    def end(
        self,
        *,
        sid: str | None = None,
        sub: str | None = None,
        sign_in: str | None = None,
        at: float | None = None,
    ) -> bool:
        """Record that a session ended at ``at`` (now): the first of these that is given names it.

        The Auth0 session ``sid``; else the ``sign_in`` (:attr:`User.sign_in
        <flask_token_vault.User.sign_in>`: every copy of one sign-in's cookie); else every
        session of ``sub``.

        Returns whether the store holds it (and one replica, where the store has replicas).
        When it does not, the end is not lost: this process refuses the sessions from now on,
        and writes it again on later requests until the store takes it; other processes see
        it once it is there.
        """
        for kind, value in (("sid", sid), ("sign_in", sign_in), ("sub", sub)):
            if value:
                key = self._key(kind, value)
                break
        else:
            return True
        when = self.clock.time() if at is None else at
        with self._lock:
            kept = _time(self._pending.items.get(key))
            self._pending.put(key, repr(max(when, kept or when)).encode())
            self._epoch += 1
            self._known.clear()
        return self._pending.flush()

    def ended(
        self, sub: str, sid: str | None, signed_in_at: float, sign_in: str | None = None
    ) -> bool:
        """Return whether a session of ``sub`` (``sid``, ``sign_in``) signed in then has ended.

        Read: the user's record, and the session's own, under Auth0's ``sid`` or, for a session
        without one, under its ``sign_in`` (where :meth:`end` puts a sign-out of each).
        A store that cannot be read answers "not ended" (logged): an outage of the cache must
        not sign everybody out.
        """
        if self._pending.due():
            self._pending.flush()
        own = ("sid", sid) if sid else ("sign_in", sign_in) if sign_in else None
        near = (sub, *(own or ("", "")))
        known = self._known.get(near)
        if known is not None and known[0] == self._epoch and self.clock.monotonic() < known[1]:
            # The latest end recorded for this session or user: any session signed in before
            # it ended, whichever session's request put it here.
            return signed_in_at <= known[2]
        epoch = self._epoch  # taken before the read: a logout during it makes the answer stale
        keys = [self._key("sub", sub)]
        if own is not None:
            keys.append(self._key(*own))
        waiting = _latest(self._pending.items.get(key) for key in keys)
        try:
            values = self.store.get_many(keys)
        except Exception as exc:  # an outage must not take every session down
            if not isinstance(exc, StoreUnavailable):  # the breaker logged once already
                log.warning("session revocation check failed (%s)", type(exc).__name__)
            return signed_in_at <= waiting  # but the ends this process knows of still hold
        latest = max(waiting, _latest(values))
        if not self.store.shared or self.local_ttl > 0:
            # In-process: exact until this process records a logout. Shared: for local_ttl.
            life = self.local_ttl if self.store.shared else float("inf")
            with self._lock:
                if len(self._known) >= _MAX_NEAR:
                    self._known.clear()
                self._known[near] = (epoch, self.clock.monotonic() + life, latest)
        return signed_in_at <= latest

    def first_use(self, jti: str, ttl: float) -> bool:
        """Record a logout token's ``jti``; return ``False`` when it was seen before (a replay)."""
        key = in_slot(self.crypto.keyed_hash("logout-jti", self.namespace, jti), "j")
        return self.store.add(key, b"1", max(1.0, ttl))


def _latest(raws: Iterable[Any]) -> float:
    """Return the latest of the recorded times (``-inf`` for none)."""
    return max((when for when in map(_time, raws) if when is not None), default=float("-inf"))


def _time(raw: Any) -> float | None:
    try:
        return float(raw)  # the store holds bytes: float() reads them as ASCII
    except (TypeError, ValueError):
        return None
