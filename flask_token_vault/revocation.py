"""Records of ended sessions, and of logout tokens already used (layer: core, above the store).

A back-channel logout names an Auth0 session (``sid``) or a user (``sub``). It is recorded in the
app's store (Redis in production) as *when* it happened, under an HMAC of the name: every
session of that ``sid`` (or, without one, of that ``sub``) signed in at or before that time ends
on its next request, in whichever process serves it. Sessions signed in later are not touched.

Reading the records costs one round trip per request of a signed-in user. With an in-process
store the answer is exact; with a shared one, each process may keep a "still alive" answer for
``local_ttl`` seconds (the near cache of :mod:`flask_token_vault.cache`), so a logout reaches
every process within that time. Records expire once no session they could end can be alive.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from ._clock import Clock
from .crypto import Crypto
from .store import Store, StoreUnavailable

__all__ = ["SessionRevocations"]

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
    ) -> None:
        self.store = store
        self.crypto = crypto
        self.clock = clock
        self.namespace = namespace
        self.record_ttl = max(1, int(record_ttl))
        self.local_ttl = local_ttl
        # (sub, sid) -> until when (monotonic) "not ended" may be answered without a read.
        self._alive: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SessionRevocations({self.store!r})"

    def _key(self, kind: str, value: str) -> str:
        return f"tv:r:{kind}:" + self.crypto.keyed_hash("ended", self.namespace, kind, value)

    def end(self, *, sid: str | None = None, sub: str | None = None) -> None:
        """Record that the session ``sid`` (or every session of ``sub``) ended now.

        Raises what the store raises: the caller answers that the logout was not recorded.
        """
        now = repr(self.clock.time()).encode()
        if sid:
            self.store.set(self._key("sid", sid), now, self.record_ttl)
        elif sub:
            self.store.set(self._key("sub", sub), now, self.record_ttl)
        with self._lock:
            self._alive.clear()

    def ended(self, sub: str, sid: str | None, signed_in_at: float) -> bool:
        """Return whether a session of ``sub`` (with ``sid``) signed in then has been ended.

        A store that cannot be read answers "not ended" (logged): an outage of the cache must
        not sign everybody out.
        """
        near = (sub, sid or "")
        if self.store.shared and self.local_ttl > 0:
            until = self._alive.get(near)
            if until is not None and self.clock.monotonic() < until:
                return False
        keys = [self._key("sub", sub)]
        if sid:
            keys.append(self._key("sid", sid))
        try:
            values = self.store.get_many(keys)
        except Exception as exc:  # an outage must not take every session down
            if not isinstance(exc, StoreUnavailable):  # the breaker logged once already
                log.warning("session revocation check failed (%s)", type(exc).__name__)
            return False
        for raw in values:
            when = _time(raw)
            if when is not None and signed_in_at <= when:
                return True
        if self.store.shared and self.local_ttl > 0:
            with self._lock:
                if len(self._alive) >= _MAX_NEAR:
                    self._alive.clear()
                self._alive[near] = self.clock.monotonic() + self.local_ttl
        return False

    def first_use(self, jti: str, ttl: float) -> bool:
        """Record a logout token's ``jti``; return ``False`` when it was seen before (a replay)."""
        key = "tv:j:" + self.crypto.keyed_hash("logout-jti", self.namespace, jti)
        return self.store.add(key, b"1", max(1.0, ttl))


def _time(raw: Any) -> float | None:
    if not isinstance(raw, bytes):
        return None
    try:
        return float(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None
