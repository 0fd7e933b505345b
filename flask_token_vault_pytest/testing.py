"""Helpers for testing apps that use Flask-Token-Vault, against the bundled emulator."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from flask.testing import FlaskClient

from flask_token_vault._session import SESSION_KEY, make_record
from flask_token_vault._state import get_state

if TYPE_CHECKING:
    from flask_token_vault._config import Settings
    from flask_token_vault_emulator import Emulator, Fault


REFRESH_FLOW_FAILED = "federated_connection_refresh_token_flow_failed"

# What Auth0 says alongside each error, so an injected failure reads like a real one.
_DESCRIPTIONS = {
    REFRESH_FLOW_FAILED: "Failed to refresh the federated connection access token.",
    "federated_connection_refresh_token_not_found": "Federated connection Refresh Token not found.",  # nosec B105
    "invalid_grant": "Unknown or invalid refresh token.",
    "access_denied": "Token Vault is not enabled for this client.",
    "too_many_requests": "Global limit has been reached.",
}


class FakeClock:
    """A clock for tests that the test moves; sleeping moves it instead of waiting.

    Frozen by default: time stands still until :meth:`advance`. With ``running=True`` it follows
    the machine's clocks plus :attr:`offset` (useful for a server that must keep working, such
    as the emulator: ``Emulator(clock=clock)``). Give it to an app with
    ``TokenVault.state(app).set_clock(clock)``, or to a
    :class:`~flask_token_vault.ManagementClient` with ``from_credentials(..., clock=clock)``:
    token expiry, near-cache lifetimes, lock waits and retry back-offs all read it. Calling it
    returns the wall-clock time. :attr:`sleeps` records every wait asked for.
    """

    def __init__(self, start: float | None = None, *, running: bool = False) -> None:
        self._running = running
        self._start = time.time() if start is None else start
        #: Seconds added to the wall clock.
        self.offset = 0.0
        self._mono_offset = 0.0
        #: Every ``sleep`` asked for, in order.
        self.sleeps: list[float] = []

    def __repr__(self) -> str:
        return f"FakeClock(offset={self.offset:g}, running={self._running})"

    def __call__(self) -> float:
        """Return the wall-clock time (so the clock also serves where a function is asked)."""
        return self.time()

    def time(self) -> float:
        """Return the wall-clock time, epoch seconds."""
        return (time.time() if self._running else self._start) + self.offset

    def monotonic(self) -> float:
        """Return the monotonic time, seconds."""
        return (time.monotonic() if self._running else 1_000.0) + self._mono_offset

    def sleep(self, seconds: float) -> None:
        """Record the wait and move the clock forward by it, without waiting."""
        self.sleeps.append(seconds)
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        """Move wall and monotonic time forward by ``seconds``."""
        self.offset += seconds
        self._mono_offset += seconds

    def step_wall(self, seconds: float) -> None:
        """Step only the wall clock, as an NTP correction does (negative goes back)."""
        self.offset += seconds

    def reset(self) -> None:
        """Go back to where the clock started, and forget the recorded sleeps."""
        self.offset = 0.0
        self._mono_offset = 0.0
        self.sleeps.clear()


def login_as(
    client: FlaskClient,
    emulator: Emulator,
    email: str = "alice@example.com",
    connections: Mapping[str, Iterable[str]] | None = None,
    *,
    name: str | None = None,
) -> str:
    """Sign ``client`` in as ``email`` with the given connected accounts, without a browser.

    ``connections`` maps a connection name to the scopes the user granted there, e.g.
    ``{"google-oauth2": ["https://www.googleapis.com/auth/calendar.readonly"]}``. The emulator
    records those accounts in its vault and issues a real refresh token in a new Auth0 session,
    which is put in the client's session exactly as the login callback would (with the
    session's ``sid``, so :meth:`Emulator.backchannel_logout
    <flask_token_vault_emulator.Emulator.backchannel_logout>` can end it). Returns the user's
    Auth0 user id.
    """
    state = get_state(client.application)
    _check_app_uses(state.settings, emulator)
    for connection, scopes in (connections or {}).items():
        emulator.connect_account(email, connection, list(scopes))
    refresh_token = emulator.issue_refresh_token(email)
    user_id = emulator.user_id_for(email)
    claims: dict[str, Any] = {"sub": user_id, "email": email}
    claims["name"] = name or email.split("@")[0].title()
    # The emulator's new Auth0 session is an authentication now, as a password typed now.
    claims["auth_time"] = int(state.clock.time())
    sid = emulator.session_id_of(refresh_token)
    if sid is not None:
        claims["sid"] = sid
    with client.session_transaction() as session:
        session.clear()
        session[SESSION_KEY] = make_record(state, claims, refresh_token)
    return user_id


def _same_server(url: str, emulator_url: str) -> bool:
    """Return whether ``url`` reaches the emulator (``localhost`` and ``127.0.0.1`` alike)."""
    a, b = urlsplit(url), urlsplit(emulator_url)
    loopback = {"127.0.0.1", "localhost", "::1"}
    same_host = a.hostname == b.hostname or {a.hostname, b.hostname} <= loopback
    return a.scheme == b.scheme and a.port == b.port and same_host


def _check_app_uses(settings: Settings, emulator: Emulator) -> None:
    """Refuse to sign a client in to an app that would not ask ``emulator`` for its tokens."""
    if not _same_server(settings.base_url, emulator.url):
        raise RuntimeError(
            f"login_as: the app does not point at this emulator (AUTH0_DOMAIN is "
            f"{settings.base_url!r}, not {emulator.url!r}), so the user signed in here would be "
            "unknown to the app's Auth0. Give the app the emulator's settings before TokenVault "
            "reads them: build it from token_vault_app_config, or, for an app that reads "
            "os.environ when imported, import it after token_vault_environ."
        )


def emulator_config(emulator: Emulator) -> dict[str, str]:
    """Return the config keys that point an app at ``emulator``.

    The ``AUTH0_*`` keys, and ``GOOGLE_API_BASE`` and ``MICROSOFT_GRAPH_API_BASE``: the
    emulator's fake Google and Microsoft Graph APIs, for the app to put in its connections'
    ``api_base`` (the extension reads no key of that name: the app decides where its calls go).
    Use it as ``app.config.update(emulator_config(emulator))``; the emulator must be started.
    """
    return emulator.app_config()


def fail_next_exchange(
    emulator: Emulator,
    error: str = REFRESH_FLOW_FAILED,
    status: int = 401,
    times: int = 1,
    *,
    description: str | None = None,
) -> Fault:
    """Make the emulator's next ``times`` Token Vault exchanges fail with ``error``.

    The answer is what Auth0 sends: ``status`` with ``{"error", "error_description"}``. The
    default, ``federated_connection_refresh_token_flow_failed`` with 401, is what Auth0 answers
    when the provider no longer accepts the stored refresh token, and the extension turns it into
    :class:`~flask_token_vault.ReconsentRequired`. ``times=-1`` fails every exchange until
    ``emulator.clear_faults()`` or ``emulator.reset()``. Other requests are not affected.
    Returns the emulator's fault record.
    """
    return emulator.add_fault(
        "token:exchange",
        status=status,
        times=times,
        error=error,
        error_description=description or _DESCRIPTIONS.get(error, f"Injected failure: {error}."),
    )


class LoginAs(Protocol):
    """The type of the ``token_vault_login_as`` fixture: :func:`login_as` bound to an emulator."""

    def __call__(
        self,
        client: FlaskClient,
        email: str = "alice@example.com",
        connections: Mapping[str, Iterable[str]] | None = None,
        *,
        name: str | None = None,
    ) -> str:
        """Sign ``client`` in as ``email`` with these connected accounts; return the user id."""


class FailNextExchange(Protocol):
    """The type of the ``token_vault_fail_next_exchange`` fixture, bound to an emulator."""

    def __call__(
        self,
        error: str = REFRESH_FLOW_FAILED,
        status: int = 401,
        times: int = 1,
        *,
        description: str | None = None,
    ) -> Fault:
        """Make the next ``times`` exchanges fail with ``error``; return the fault record."""
