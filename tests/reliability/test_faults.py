"""Fault matrix: every call site against every network or server fault of the emulator.

For each cell: a typed error (or the provider's own answer, for provider calls) or a retry that
succeeds, within the configured deadline; the session unchanged; nothing cached from the
failure; and the next call after recovery succeeds.
"""

from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urlsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from flask_token_vault import TokenVault, TokenVaultError, management_client, provider_session
from flask_token_vault._accounts import my_account_token
from flask_token_vault._my_account import READ_SCOPE
from flask_token_vault_emulator import Emulator
from flask_token_vault_pytest.testing import login_as
from tests.helpers.apps import API_READ, CAL_READ, alice_client, make_api_app, make_app
from tests.helpers.browser import csrf, follow_to_emulator, session_cookie
from tests.helpers.oauth import bearer

from .figures import FAULT_TABLE

TIMEOUT = 0.5
DEADLINE = 1.0
SLACK = 0.6  # scheduling noise on a shared 2-core machine


def _oauth_error(status: int, error: str, **extra: Any) -> dict[str, Any]:
    """Return the fault of an OAuth error document (``{"error", "error_description"}``)."""
    return {"status": status, "error": error, **extra}


def _answer(status: int, body: str, content_type: str = "application/json") -> dict[str, Any]:
    """Return the fault of an answer with this raw body (broken JSON, say)."""
    return {"status": status, "body": body, "content_type": content_type}


def _html(status: int, page: str) -> dict[str, Any]:
    """Return the fault of an HTML page where JSON was expected (a proxy's, a crashed server's)."""
    return _answer(status, page, "text/html")


# name -> add_fault kwargs (None: simulated outside the emulator)
FAULTS: dict[str, dict[str, Any] | None] = {
    "connection refused": None,
    "connection dropped": {"drop": True},
    "read timeout": {"status": 0, "delay": TIMEOUT + 0.3},
    "slow past deadline": {"status": 503, "delay": DEADLINE * 0.7},
    "500": _oauth_error(500, "server_error"),
    "502": _html(502, "<html><h1>502 Bad Gateway</h1></html>"),
    "503": _oauth_error(503, "temporarily_unavailable"),
    "429 Retry-After": _oauth_error(429, "too_many_requests", headers={"Retry-After": "30"}),
    "malformed JSON": _answer(200, "{not json"),
    "HTML error page": _html(500, "<!doctype html><title>Oops</title>"),
    "truncated body": _answer(200, '{"access_token": "abc'),
    "wrong content type": _answer(200, '{"access_token": "x", "expires_in": 60}', "text/plain"),
}


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _app(emu: Emulator) -> Flask:
    return make_app(emu, TOKEN_VAULT_HTTP_TIMEOUT=TIMEOUT, TOKEN_VAULT_DEADLINE=DEADLINE)


def _live_tokens(app: Flask) -> list[str]:
    store: Any = TokenVault.state(app).cache.store  # the in-process MemoryStore
    return [k for k, _ in store.items() if "}:t:" in k]


def _record(site: str, fault: str, ok: bool, text: str) -> None:
    FAULT_TABLE[site][fault] = (ok, text)


def _typed(answer: Any) -> str | None:
    """Return the typed error code of an error answer, or None if it is not one of ours."""
    if answer.status_code < 400 or (answer.status_code == 500 and not answer.is_json):
        return None
    body = answer.get_json(silent=True) or {}
    return body.get("error") if isinstance(body, dict) else None


def _check(site: str, fault: str, run: Callable[[], tuple[bool, str]]) -> None:
    started = time.monotonic()
    ok, text = run()
    elapsed = time.monotonic() - started
    within = elapsed <= DEADLINE + SLACK
    _record(site, fault, ok and within, f"{text} {elapsed:.2f}s")
    assert ok, text
    assert within, f"{elapsed:.2f}s is past the {DEADLINE}s deadline"


class _HasSettings(Protocol):
    settings: Any


def _break(emu: Emulator, fault: str, endpoint: str, caller: _HasSettings) -> Callable[[], None]:
    """Make ``caller``'s calls to ``endpoint`` meet ``fault``; return what undoes it."""
    good = caller.settings
    spec = FAULTS[fault]
    if spec is None:
        # The emulator cannot refuse connections while it runs: point the caller elsewhere.
        caller.settings = dataclasses.replace(good, base_url=_closed_port_url())
    else:
        emu.add_fault(endpoint, times=-1, **spec)

    def repair() -> None:
        caller.settings = good
        emu.clear_faults()

    return repair


def _unavailable(answer: Any) -> tuple[bool, str]:
    """Say whether ``answer`` is a typed 429, 502 or 503 error, and what it was."""
    code = _typed(answer)
    ok = code is not None and answer.status_code in (429, 502, 503)
    return ok, f"{answer.status_code} {code}"


@pytest.mark.parametrize("fault", list(FAULTS))
def test_token_vault_exchange(emu: Emulator, fault: str) -> None:
    app = _app(emu)
    client = alice_client(app, emu)
    before = session_cookie(client)
    repair = _break(emu, fault, "token:exchange", TokenVault.state(app).exchanger)

    def run() -> tuple[bool, str]:
        return _unavailable(client.get("/calendar", headers={"Accept": "application/json"}))

    _check("exchange", fault, run)
    assert session_cookie(client) == before, "the session changed"
    assert _live_tokens(app) == [], "something was cached from the failure"
    repair()
    assert client.get("/calendar").status_code == 200


def _api_caller(emu: Emulator) -> tuple[Flask, FlaskClient, dict[str, str]]:
    """Build the API app; return it, a client and headers with alice's access token."""
    app = make_api_app(emu, TOKEN_VAULT_HTTP_TIMEOUT=TIMEOUT, TOKEN_VAULT_DEADLINE=DEADLINE)
    emu.connect_account("alice@example.com", "google-oauth2", [CAL_READ])
    headers = bearer(emu.issue_access_token("alice@example.com", scope=API_READ))
    return app, app.test_client(), headers


@pytest.mark.parametrize("fault", list(FAULTS))
def test_access_token_exchange(emu: Emulator, fault: str) -> None:
    app, client, headers = _api_caller(emu)
    assert client.get("/api/calendar", headers=headers).status_code == 200  # keys fetched
    TokenVault.state(app).cache.invalidate_user(emu.user_id_for("alice@example.com"))
    cached = _live_tokens(app)  # the first token, out of reach under the old generation
    repair = _break(emu, fault, "token:exchange", TokenVault.state(app).api_exchanger)

    def run() -> tuple[bool, str]:
        return _unavailable(client.get("/api/calendar", headers=headers))

    _check("access-token exchange", fault, run)
    assert _live_tokens(app) == cached, "something was cached from the failure"
    repair()
    assert client.get("/api/calendar", headers=headers).status_code == 200


@pytest.mark.parametrize("fault", list(FAULTS))
def test_jwks_fetch(emu: Emulator, fault: str) -> None:
    app, client, headers = _api_caller(emu)
    spec = FAULTS[fault]
    keys = TokenVault.state(app).tenant_keys
    good = keys.jwks_uri
    if spec is None:
        keys.jwks_uri = _closed_port_url() + "/.well-known/jwks.json"
    else:
        emu.add_fault("jwks", times=-1, **spec)

    def run() -> tuple[bool, str]:
        answer = client.get("/api/calendar", headers=headers)
        code = _typed(answer)
        # The token may be fine: without keys the API is unavailable, it is not a 401.
        return code == "jwks_unavailable" and answer.status_code == 503, (
            f"{answer.status_code} {code}"
        )

    _check("JWKS fetch", fault, run)
    assert emu.exchange_count() == 0
    keys.jwks_uri = good
    emu.clear_faults()
    TokenVault.state(app).clock.use(_Later(6.0))  # past the retry wait after a failed fetch
    assert client.get("/api/calendar", headers=headers).status_code == 200


class _Later:
    """The machine's clocks, ``offset`` seconds ahead."""

    def __init__(self, offset: float) -> None:
        self.offset = offset

    def time(self) -> float:
        return time.time() + self.offset

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@pytest.mark.parametrize("fault", list(FAULTS))
def test_login_callback_code_exchange(emu: Emulator, fault: str) -> None:
    app = _app(emu)
    client = app.test_client()
    emu.set_auto_login("alice@example.com")
    state = TokenVault.state(app)

    def callback_url() -> str:
        authorize = follow_to_emulator(client, "/calendar")
        answer = requests.get(authorize, allow_redirects=False, timeout=5)
        back = urlsplit(answer.headers["Location"])
        return back.path + "?" + back.query

    url = callback_url()
    repair = _break(emu, fault, "token:authorization_code", state.exchanger)

    def run() -> tuple[bool, str]:
        answer = client.get(url, headers={"Accept": "application/json"})
        code = _typed(answer)
        return code is not None and 400 <= answer.status_code < 600, (
            f"{answer.status_code} {code}"
        )

    _check("login callback", fault, run)
    with client.session_transaction() as session:
        assert "_token_vault" not in session, "a user was written from a failed login"
    repair()
    recovered = client.get(callback_url())
    assert recovered.status_code == 302 and recovered.headers["Location"] == "/calendar"


@pytest.mark.parametrize("fault", list(FAULTS))
def test_provider_api_via_provider_session(emu: Emulator, fault: str) -> None:
    app = _app(emu)
    base = {"url": emu.google_api_base}

    @app.get("/events")
    def events() -> Any:
        answer = provider_session("google-oauth2", [CAL_READ]).get(
            base["url"] + "/calendar/v3/users/me/calendarList"
        )
        return {"provider_status": answer.status_code}, 200

    client = alice_client(app, emu)
    assert client.get("/events").get_json() == {"provider_status": 200}
    before = session_cookie(client)
    spec = FAULTS[fault]
    if spec is None:
        base["url"] = _closed_port_url()
    else:
        emu.add_fault("google", times=-1, **spec)

    def run() -> tuple[bool, str]:
        answer = client.get("/events", headers={"Accept": "application/json"})
        body = answer.get_json(silent=True) or {}
        if "provider_status" in body:
            return True, f"answer passed to the app ({body['provider_status']})"
        code = _typed(answer)
        return code == "provider_unavailable" or code == "timeout" or (
            code == "connection_error"
        ), f"{answer.status_code} {code}"

    _check("provider API", fault, run)
    assert session_cookie(client) == before, "the session changed"
    base["url"] = emu.google_api_base
    emu.clear_faults()
    assert client.get("/events").get_json() == {"provider_status": 200}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_management_api(emu: Emulator, fault: str) -> None:
    app = _app(emu)
    client = management_client(app)
    user_id = emu.user_id_for("alice@example.com")
    emu.connect_account("alice@example.com", "google-oauth2", [CAL_READ])
    assert len(client.list_tokensets(user_id)) == 1  # the management token is now cached
    repair = _break(emu, fault, "management", client)

    def run() -> tuple[bool, str]:
        try:
            client.list_tokensets(user_id)
        except TokenVaultError as exc:
            return exc.code in (429, 502, 503), f"{exc.code} {exc.error}"
        return False, "no error"

    _check("management API", fault, run)
    repair()
    assert len(client.list_tokensets(user_id)) == 1


@pytest.mark.parametrize("fault", list(FAULTS))
def test_my_account_api(emu: Emulator, fault: str) -> None:
    app = _app(emu)
    account_client = TokenVault.state(app).my_account

    @app.get("/accounts")
    def accounts() -> Any:
        token = my_account_token([READ_SCOPE])
        return {"accounts": len(account_client.list_accounts(token))}

    client = alice_client(app, emu)
    assert client.get("/accounts").get_json() == {"accounts": 1}
    before = session_cookie(client)
    repair = _break(emu, fault, "my-account", account_client)

    def run() -> tuple[bool, str]:
        return _unavailable(client.get("/accounts", headers={"Accept": "application/json"}))

    _check("My Account API", fault, run)
    assert session_cookie(client) == before, "the session changed"
    repair()
    assert client.get("/accounts").get_json() == {"accounts": 1}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_logout_revocation(emu: Emulator, fault: str) -> None:
    """Signing out answers at once whatever /oauth/revoke does; the revocation runs behind."""
    app = _app(emu)
    client = app.test_client()
    login_as(client, emu, "alice@example.com")
    state = TokenVault.state(app)
    repair = _break(emu, fault, "revoke", state.exchanger)
    token = csrf(client)

    def run() -> tuple[bool, str]:
        started = time.monotonic()
        answer = client.post("/auth/logout", data={"csrf_token": token})
        took = time.monotonic() - started
        with client.session_transaction() as session:
            cleared = "_token_vault" not in session
        ok = answer.status_code == 302 and cleared and took < TIMEOUT
        return ok, f"{answer.status_code} signed out"

    _check("logout (revoke)", fault, run)
    assert state.wait_for_revocations(timeout=30)
    repair()


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_one_transient_failure_is_retried_and_succeeds(emu: Emulator, status: int) -> None:
    app = _app(emu)
    client = alice_client(app, emu)
    headers = {"Retry-After": "0"} if status == 429 else None
    emu.add_fault("token:exchange", status=status, times=1, headers=headers)
    assert client.get("/calendar").status_code == 200
    stats = emu.stats()["exchanges"]
    assert stats["succeeded"] == 1 and stats["failed"] == 1


def test_4xx_rejections_are_not_retried(emu: Emulator) -> None:
    app = _app(emu)
    client = alice_client(app, emu)
    emu.add_fault("token:exchange", status=403, error="unauthorized_client", times=-1)
    answer = client.get("/calendar", headers={"Accept": "application/json"})
    assert answer.status_code == 500 and answer.get_json()["error"] == "unauthorized_client"
    assert emu.stats()["exchanges"]["failed"] == 1
