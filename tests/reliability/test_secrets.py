"""Secret hygiene: a whole run at DEBUG level leaks no token, refresh token, code or secret.

Everything the run produces is captured: every log record of every logger, every signal's
arguments, every error's message, repr and body, every response's headers and body (Location
and Set-Cookie included), the reprs of the extension's objects, and the cache's keys and values.
Then every secret the emulator issued during the run is searched for in all of it.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask, Response, jsonify

from flask_token_vault import (
    TokenVault,
    TokenVaultError,
    current_user,
    get_provider_token,
    get_provider_token_set,
    provider_session,
    signals,
)
from flask_token_vault.emulator import Emulator

from ..helpers import CAL_WRITE, browser_login, make_app, sign_in_via_page
from .figures import SECRET_SCAN


def test_no_secret_anywhere_in_a_full_run(emu: Emulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    captured: list[str] = []
    codes: list[str] = []
    app: Flask = make_app(emu, TOKEN_VAULT_HTTP_TIMEOUT=0.5, TOKEN_VAULT_DEADLINE=1.0)

    def on_signal(sender: Any, **kwargs: Any) -> None:
        captured.append(repr(sender) + repr(kwargs) + str(kwargs))

    for sig in (
        signals.token_exchanged,
        signals.exchange_failed,
        signals.reconsent_required,
        signals.logged_in,
        signals.logged_out,
    ):
        sig.connect(on_signal, app)

    @app.after_request
    def record(response: Response) -> Response:
        captured.append(str(response.headers))
        if not response.direct_passthrough:
            captured.append(response.get_data(as_text=True))
        return response

    @app.get("/reprs")
    def reprs() -> Any:
        state = TokenVault.state()
        token = get_provider_token_set("google-oauth2")
        session = provider_session("google-oauth2")
        answer = session.get(emu.google_api_base + "/calendar/v3/users/me/calendarList")
        objects = [
            state,
            state.settings,
            state.crypto,
            state.cache,
            state.exchanger,
            token,
            session,
            current_user,
            state.transport,
            state.management,
            answer.request.url,
        ]
        return jsonify([repr(o) + str(o) for o in objects])

    @app.get("/errors")
    def errors() -> Any:
        out = []
        for connection, scopes in (("windowslive", None), ("google-oauth2", [CAL_WRITE])):
            try:
                get_provider_token(connection, scopes)
            except TokenVaultError as exc:
                out.append(repr(exc) + str(exc) + str(exc.to_dict()))
        return jsonify(out)

    client = app.test_client()

    # Sign in on the emulator's page, keeping the codes that pass through the callback.
    real_get = client.get

    def get(path: str, *args: Any, **kwargs: Any) -> Any:
        if path.startswith("/auth/callback"):
            codes.extend(parse_qs(urlsplit(path).query).get("code", []))
        return real_get(path, *args, **kwargs)

    client.get = get  # type: ignore[method-assign]
    assert browser_login(client, "/calendar").status_code == 200
    assert client.get("/reprs").status_code == 200
    assert client.get("/errors").status_code == 200
    # Step up, force a provider 401 (renewal), an Auth0 outage, and a rate limit.
    step_up = client.get("/calendar/write")
    back = sign_in_via_page(client, emu.url + "/authorize?" + _authorize_query(client, step_up))
    assert back.status_code == 302
    emu.revoke_provider_tokens()
    assert client.get("/reprs").status_code == 200
    emu.add_fault("token:exchange", status=503, times=-1)
    client.get("/me", headers={"Accept": "application/json"})
    emu.clear_faults()
    emu.add_fault(
        "token:exchange", status=429, headers={"Retry-After": "60"}, error="too_many_requests"
    )
    client.get("/me", headers={"Accept": "application/json"})
    page = client.get("/auth/logout").get_data(as_text=True)
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    assert client.post("/auth/logout", data={"csrf_token": token}).status_code == 302

    store: Any = TokenVault.state(app).cache.store
    for key, value in list(store.cache._cache.items()):
        captured.append(key + repr(value))
    captured.extend(r.getMessage() + repr(r.args) for r in caplog.records)
    captured.extend(caplog.text.splitlines())

    secrets = [
        emu.client_secret,
        *emu.state.refresh_tokens,
        *emu.state.provider_tokens,
        *codes,
    ]
    assert len(secrets) >= 6 and codes, "the run must have issued tokens and codes"
    text = "\n".join(captured)
    hits = [s[:6] + "..." for s in secrets if s in text]
    SECRET_SCAN.update(secrets=len(secrets), chars=len(text), hits=len(hits))
    assert hits == []
    assert any(r.name == "flask_token_vault" for r in caplog.records), "our logs were captured"


def _authorize_query(client: Any, redirect: Any) -> str:
    """Follow a connect redirect from the app to the emulator and return its query string."""
    location = redirect.headers["Location"]
    answer = client.get(location)
    return str(urlsplit(answer.headers["Location"]).query)
