"""The test app, built against the emulator, and what tests do with it once it runs."""

from __future__ import annotations

from typing import Any

import requests
from flask import Flask, jsonify
from flask.testing import FlaskClient

from flask_token_vault import (
    AccountNotConnected,
    ProviderToken,
    TokenVault,
    current_access_token,
    current_user,
    get_provider_token,
    get_provider_token_set,
    login_required,
    provider_token_required,
)
from flask_token_vault._cache import Slot
from flask_token_vault_pytest.testing import FakeClock, login_as
from tests.helpers import TIMEOUT

CAL_READ = "https://www.googleapis.com/auth/calendar.readonly"
CAL_WRITE = "https://www.googleapis.com/auth/calendar.events"
API_READ = "read:calendar"


def make_app(emu: Any, **config: Any) -> Flask:
    """Build a small app using the extension against the emulator, with a few provider routes."""
    app = Flask(__name__)
    app.config.update(
        TESTING=True,
        SECRET_KEY="test-secret-key-0123456789abcdef",
        AUTH0_DOMAIN=emu.url,
        AUTH0_CLIENT_ID=emu.client_id,
        AUTH0_CLIENT_SECRET=emu.client_secret,
        TOKEN_VAULT_CONNECTIONS={
            "google-oauth2": {
                "scopes": ["openid", "email", "profile"],
                "api_base": emu.google_api_base,
            },
            "windowslive": {"scopes": ["User.Read"], "api_base": emu.graph_api_base},
        },
    )
    app.config.update(config)
    TokenVault(app)

    @app.get("/")
    def index() -> str:
        return "home"

    @app.get("/whoami")
    def whoami() -> Any:
        if not current_user:
            return jsonify(sub=None, sid=None)
        return jsonify(sub=current_user.sub, sid=getattr(current_user, "sid", None))

    @app.get("/calendar")
    @provider_token_required("google-oauth2", scopes=[CAL_READ])
    def calendar() -> Any:
        return _provider_json(emu.google_api_base + "/calendar/v3/users/me/calendarList", "google")

    @app.get("/calendar/write")
    @provider_token_required("google-oauth2", scopes=[CAL_READ, CAL_WRITE])
    def calendar_write() -> Any:
        return jsonify(ok=True)

    @app.get("/async-calendar")
    @provider_token_required("google-oauth2", scopes=[CAL_READ])
    async def async_calendar() -> Any:
        return jsonify(token_length=len(get_provider_token("google-oauth2")))

    @app.get("/me")
    @provider_token_required("windowslive", scopes=["User.Read"])
    def me() -> Any:
        return _provider_json(emu.graph_api_base + "/v1.0/me", "microsoft")

    return app


def make_api_app(emu: Any, **config: Any) -> Flask:
    """Build :func:`make_app` as an API too: the emulator's API and its Custom API Client.

    ``/api/calendar`` needs the API scope ``read:calendar`` and a Google token with the calendar
    scope, and answers Google's calendar list with the caller's ``sub``; ``/api/open`` needs no
    API scope (a session or an access token will do) and answers who called; ``/api/whoami`` is
    only ``login_required``.
    """
    settings: dict[str, Any] = {
        "AUTH0_AUDIENCE": emu.api_identifier,
        "TOKEN_VAULT_API_CLIENT_ID": emu.api_client_id,
        "TOKEN_VAULT_API_CLIENT_SECRET": emu.api_client_secret,
    }
    settings.update(config)
    app = make_app(emu, **{k: v for k, v in settings.items() if v is not None})

    @app.get("/api/calendar")
    @provider_token_required("google-oauth2", scopes=[CAL_READ], api_scopes=[API_READ])
    def api_calendar() -> Any:
        token = get_provider_token("google-oauth2", [CAL_READ])
        url = emu.google_api_base + "/calendar/v3/users/me/calendarList"
        answer = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT)
        caller = current_access_token
        return jsonify(sub=caller.sub if caller else None, calendars=answer.json())

    @app.get("/api/whoami")
    @login_required
    def api_whoami() -> Any:
        caller, user = current_access_token, current_user
        return jsonify(bearer=caller.sub if caller else None, session=user.sub if user else None)

    @app.get("/api/open")
    @provider_token_required("google-oauth2", scopes=[CAL_READ])
    def api_open() -> Any:
        caller = current_access_token
        user = current_user
        return jsonify(
            bearer=caller.sub if caller else None,
            session=user.sub if user else None,
            token_length=len(get_provider_token("google-oauth2", [CAL_READ])),
        )

    return app


def _provider_json(url: str, provider: str) -> Any:
    connection = "google-oauth2" if provider == "google" else "windowslive"
    token = get_provider_token(connection)
    answer = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT)
    return jsonify(answer.json()), answer.status_code


def cached_token(
    app: Flask,
    user_id: str,
    connection: str = "google-oauth2",
    scopes: tuple[str, ...] = (),
    login_hint: str | None = None,
) -> ProviderToken | None:
    """Return the token the app's cache holds for this slot (near cache, then store)."""
    slot = Slot(user_id, connection, login_hint, tuple(sorted(scopes)))
    return TokenVault.state(app).cache.get(slot)


def alice_client(app: Flask, emu: Any, grants: dict[str, list[str]] | None = None) -> FlaskClient:
    """Return a test client of ``app`` signed in as alice, who connected ``grants``' accounts.

    By default she connected Google, with calendar read.
    """
    client = app.test_client()
    login_as(client, emu, "alice@example.com", grants or {"google-oauth2": [CAL_READ]})
    return client


def holding_a_token(
    app: Flask, emu: Any, email: str = "alice@example.com", path: str = "/calendar"
) -> tuple[FlaskClient, str]:
    """Sign ``email`` in (Google connected, calendar read) and fetch ``path`` once.

    The app then holds the user's Google token. Returns the client and the user id.
    """
    client = app.test_client()
    user_id = login_as(client, emu, email, {"google-oauth2": [CAL_READ]})
    assert client.get(path).status_code == 200
    return client, user_id


def app_clock(app: Flask) -> FakeClock:
    """Give ``app`` a running fake clock (real time plus what the test advances) and return it."""
    clock = FakeClock(running=True)
    TokenVault.state(app).set_clock(clock)
    return clock


class SharedClock(FakeClock):
    """An app's clock whose waits pass at once, and move the emulator's clock as far."""

    def __init__(self, emulator_clock: FakeClock) -> None:
        super().__init__()
        self.emulator_clock = emulator_clock

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` at once, on this clock and on the emulator's."""
        super().sleep(seconds)
        self.emulator_clock.advance(seconds)


def add_overview(app: Flask) -> Flask:
    """Add a page that shows each connection, as the example app's home page does."""

    @app.get("/overview")
    def overview() -> Any:
        found = {}
        for name in ("google-oauth2", "windowslive"):
            try:
                found[name] = bool(get_provider_token_set(name).access_token)
            except AccountNotConnected:
                found[name] = False
        return jsonify(found)

    return app


def exchange_requests(emu: Any) -> int:
    """Return how many Token Vault exchanges (of any subject) the emulator was asked for."""
    token_requests = emu.stats()["token_requests"]
    return sum(n for grant, n in token_requests.items() if "token-exchange" in grant)


def overview_under_rate_limit(app: Flask, emu: Any) -> tuple[Any, FakeClock]:
    """Load :func:`add_overview`'s page for alice, two accounts connected, while Auth0 answers 429.

    Returns the JSON answer and the app's clock (whose ``sleeps`` say how long it waited).
    """
    clock = app_clock(app)
    client = app.test_client()
    grants = {"google-oauth2": [CAL_READ], "windowslive": ["User.Read"]}
    login_as(client, emu, "alice@example.com", grants)
    emu.add_fault(
        "token:exchange",
        status=429,
        error="too_many_requests",
        headers={"Retry-After": "2"},
        times=-1,
    )
    return client.get("/overview", headers={"Accept": "application/json"}), clock
