"""Connect links: which scopes they carry, signed for one user until an expiry, and checked.

(Layer: core, Flask-free.) Scopes configured for the connection need no signature: anyone may ask
for them. Any other must be declared by the app, and the link then carries ``exp`` and ``sig``, a
keyed hash over the connection, the scopes, the user it was made for (``""``: a visitor) and the
expiry: it cannot be edited, used by someone else, or used after it expires.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterable, Mapping

from ._clock import Clock
from ._config import Settings
from ._connection_options import is_valid_scope
from ._crypto import Crypto
from .errors import InvalidRequest

log = logging.getLogger("flask_token_vault")

#: The error of a signed link that does not verify for whoever (if anyone) is signed in.
LINK_INVALID = "connect_link_invalid"
#: The attribute a decorated view carries: ``(connection, scopes)`` for each of its decorators.
#: It names the connections to check and declares the scopes signed into connect links (and
#: the scope sets provider tokens are cached under).
REQUIRES_ATTR = "_token_vault_requires"
_MAX_SCOPES = 50
_REFUSED = "These scopes were not requested by this site for you."
_REMEDY = "Use the site's own 'connect' link; scope lists in links cannot be edited."
#: Scopes declared by agent tools (``token_vault_tool``), by connection: like those of views,
#: they are known once the module defining the tools is imported, in every process.
_TOOL_SCOPES: dict[str, set[str]] = {}


def declare_scopes(connection: str, scopes: Iterable[str]) -> None:
    """Declare scopes some code of the app (an agent's tool) needs for ``connection``."""
    _TOOL_SCOPES.setdefault(connection, set()).update(scopes)


class ConnectLinks:
    """Sign and check the scope lists of one app's connect links."""

    def __init__(self, settings: Settings, crypto: Crypto, clock: Clock) -> None:
        self._settings = settings
        self._crypto = crypto
        self._clock = clock
        self._declared: tuple[int, dict[str, set[str]]] = (-1, {})

    def declared(self, connection: str, views: Mapping[str, object]) -> frozenset[str]:
        """Return the scopes the app declares for ``connection``: the only ones a link may sign.

        They are its configured ``scopes`` and ``optional_scopes`` and those its ``views``
        require, never scopes Auth0 reports as granted elsewhere.
        """
        count, found = self._declared
        if count != len(views):  # views are added, not replaced: recounted when there are more
            found = {}
            for view in list(views.values()):
                for name, scopes in getattr(view, REQUIRES_ATTR, ()):
                    found.setdefault(name, set()).update(scopes)
            self._declared = (len(views), found)
        conn = self._settings.connections.get(connection)
        configured = (*conn.scopes, *conn.optional_scopes) if conn is not None else ()
        tools = _TOOL_SCOPES.get(connection, ())
        return frozenset((*found.get(connection, ()), *tools, *configured))

    def _configured(self, connection: str) -> frozenset[str]:
        conn = self._settings.connections.get(connection)
        return frozenset(conn.scopes if conn is not None else ())

    def sign(self, connection: str, scopes: Iterable[str], user: str = "", expires: int = 0) -> str:
        """Return the signature of a link: its connection, scopes, user and expiry."""
        return self._crypto.keyed_hash(
            "connect-scope/v2", connection, " ".join(sorted(set(scopes))), user, str(int(expires))
        )[:32]

    def query(
        self, connection: str, scopes: Iterable[str], user: str, declared: frozenset[str]
    ) -> dict[str, str]:
        """Return the query of a link asking for ``scopes``, signed for ``user`` when needed.

        Scopes outside ``declared`` are left out, and logged.
        """
        wanted = sorted(set(scopes) & declared)
        dropped = set(scopes) - declared
        if dropped:
            log.warning(
                "connect link for %s: left out scopes the app does not declare: %s",
                connection,
                " ".join(sorted(dropped)),
            )
        if not wanted:
            return {}
        params = {"scope": " ".join(wanted)}
        if not set(wanted) <= self._configured(connection):
            expires = int(self._clock.time() + self._settings.connect_link_lifetime)
            params["exp"] = str(expires)
            params["sig"] = self.sign(connection, wanted, user, expires)
        return params

    def check(
        self,
        connection: str,
        raw: str | None,
        args: Mapping[str, str],
        user: str | None,
        declared: frozenset[str],
    ) -> tuple[str, ...]:
        """Return the scopes ``raw`` asks for (``None``: none) if configured or signed for ``user``.

        ``args`` holds the link's ``sig`` and ``exp``. Raise
        :class:`~flask_token_vault.InvalidRequest`, with :data:`LINK_INVALID` when the signature
        fits neither ``user`` nor a visitor.
        """
        if raw is None:
            return ()
        scopes = tuple(dict.fromkeys(s for s in raw.replace(",", " ").split(" ") if s))
        if len(scopes) > _MAX_SCOPES or not all(is_valid_scope(s) for s in scopes):
            raise InvalidRequest("The requested scopes are malformed.")
        if set(scopes) <= self._configured(connection):
            return scopes
        sig, expires = args.get("sig", ""), args.get("exp", "")
        if (
            not sig
            or not (expires.isascii() and expires.isdigit())
            or len(expires) > 12
            or not set(scopes) <= declared
        ):
            raise InvalidRequest(_REFUSED, remedy=_REMEDY)
        # Bytes: compare_digest refuses str with non-ASCII characters, which visitors can send.
        sent = sig.encode("utf-8", "replace")
        signers = ("",) if user is None else (user, "")
        if not any(
            hmac.compare_digest(self.sign(connection, scopes, who, int(expires)).encode(), sent)
            for who in signers
        ):
            raise InvalidRequest(_REFUSED, error=LINK_INVALID, remedy=_REMEDY)
        if int(expires) <= self._clock.time():
            raise InvalidRequest(
                "This connect link has expired.",
                error="link_expired",
                remedy="Go back to the page, reload it and use its link again.",
            )
        return scopes
