"""Secret hygiene: a whole run at DEBUG level leaks no token, refresh token, code or secret.

Everything the run produces is captured: every log record of every logger, whatever reached
stdout and stderr (file descriptors 1 and 2, so a stray ``print`` too), every signal's arguments,
every error's message, repr and body, every response's headers and body (Location and Set-Cookie
included), the reprs of the extension's objects, and the cache's keys and values. Then every
secret the emulator issued during the run is searched for in all of it, whole and by every
12-character piece of it (a token's first characters in a log line are a leak too).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from blinker import NamedSignal
from cryptography.hazmat.primitives import serialization
from flask import Flask, Response, jsonify
from joserfc.jwk import ECKey, RSAKey

from flask_token_vault import (
    TokenVault,
    TokenVaultError,
    current_user,
    get_provider_token,
    get_provider_token_set,
    my_connected_accounts,
    provider_session,
    signals,
)
from flask_token_vault._keys import ClientKey, DPoPKey
from flask_token_vault_emulator import Emulator
from tests.helpers.apps import API_READ, CAL_READ, CAL_WRITE, make_api_app, make_app
from tests.helpers.browser import browser_login, sign_in_via_page
from tests.helpers.keys import ec_key_pem, keyed_config, register_client_key, rsa_key_pem
from tests.helpers.oauth import bearer

from .figures import KEY_SCAN, SECRET_SCAN

FRAGMENT = 12


def fragments(secret: str, public: list[str]) -> set[str]:
    """Return every ``FRAGMENT``-character piece of ``secret`` that no public value contains."""
    if len(secret) <= FRAGMENT:
        return {secret}
    pieces = {secret[i : i + FRAGMENT] for i in range(len(secret) - FRAGMENT + 1)}
    return {p for p in pieces if not any(p in value for value in public)}


def leaked(secrets: list[str], text: str, public: list[str]) -> list[str]:
    """Return a safe label for each secret found in ``text``, whole or by a fragment."""
    windows = {text[i : i + FRAGMENT] for i in range(len(text) - FRAGMENT + 1)}
    return [s[:4] + "..." for s in secrets if fragments(s, public) & windows or s in text]


def _record_signals_and_responses(
    app: Flask, captured: list[str], *watched: NamedSignal
) -> Callable[..., None]:
    """Add to ``captured`` what ``watched`` signals carry and each response's headers and body.

    Returns the signals' receiver: blinker holds receivers weakly, so the caller keeps it.
    """

    def on_signal(sender: Any, **kwargs: Any) -> None:
        captured.append(repr(sender) + repr(kwargs) + str(kwargs))

    for sig in watched:
        sig.connect(on_signal, app)

    @app.after_request
    def record(response: Response) -> Response:
        captured.append(str(response.headers))
        if not response.direct_passthrough:
            captured.append(response.get_data(as_text=True))
        return response

    return on_signal


def test_the_scan_finds_a_fragment_and_ignores_public_text() -> None:
    secret = "v1.emu.Zq8XkLmN0pQrStUvWxYz1234"
    assert leaked([secret], f"debug: token={secret[:12]} was used", []) == ["v1.e..."]
    assert leaked([secret], "nothing here", []) == []
    # "emulator-client-secret" shares "emulator-cli" with the public client id: not a leak.
    assert (
        leaked(["emulator-client-secret"], "client emulator-client-id", ["emulator-client-id"])
        == []
    )


def test_no_secret_anywhere_in_a_full_run(
    emu: Emulator, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    captured: list[str] = []
    codes: list[str] = []
    app: Flask = make_api_app(emu, TOKEN_VAULT_HTTP_TIMEOUT=0.5, TOKEN_VAULT_DEADLINE=1.0)
    _receiver = _record_signals_and_responses(  # kept: blinker holds receivers weakly
        app,
        captured,
        signals.token_exchanged,
        signals.exchange_failed,
        signals.reconsent_required,
        signals.logged_in,
        signals.logged_out,
    )

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
            state.api_exchanger,
            state.bearer,
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
    # API calls with Auth0 access tokens: served, refused, not connected, refused by Auth0.
    access_tokens = [
        emu.issue_access_token("alice@example.com", scope=API_READ),
        emu.issue_access_token("alice@example.com", scope=API_READ, claims={"exp": 1}),
        emu.issue_access_token("nobody@example.com", scope=API_READ),
        emu.issue_access_token("alice@example.com", scope="openid"),
    ]
    api = app.test_client()
    for access_token in access_tokens:
        api.get("/api/calendar", headers=bearer(access_token))
    emu.add_fault("token:exchange", status=401, error="invalid_grant")
    TokenVault.state(app).cache.invalidate_user(emu.user_id_for("alice@example.com"))
    api.get("/api/calendar", headers=bearer(access_tokens[0]))
    api.get("/api/calendar", headers=bearer(access_tokens[0]))
    # Sign out (the refresh token is revoked at Auth0 in the background), then a back-channel
    # logout for the session.
    issued = list(emu.state.refresh_tokens)
    sid = client.get("/whoami").get_json()["sid"]
    page = client.get("/auth/logout").get_data(as_text=True)
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    assert client.post("/auth/logout", data={"csrf_token": token}).status_code == 302
    assert TokenVault.state(app).wait_for_revocations()
    logout_token = emu.logout_token("alice@example.com", sid=sid)
    answer = client.post("/auth/backchannel-logout", data={"logout_token": logout_token})
    assert answer.status_code == 200

    store: Any = TokenVault.state(app).cache.store
    for key, value in store.items():
        captured.append(key + repr(value))
    captured.extend(r.getMessage() + repr(r.args) for r in caplog.records)
    captured.extend(caplog.text.splitlines())
    out, err = capfd.readouterr()
    captured.extend([out, err])

    secrets = [
        emu.client_secret,
        emu.api_client_secret,
        *access_tokens,
        *dict.fromkeys([*issued, *emu.state.refresh_tokens]),
        *emu.state.provider_tokens,
        *codes,
    ]
    assert len(secrets) >= 6 and codes, "the run must have issued tokens and codes"
    text = "\n".join(captured)
    public = [emu.client_id, emu.api_client_id, emu.url]
    hits = leaked(secrets, text, public)
    pieces = sum(len(fragments(s, public)) for s in secrets)
    SECRET_SCAN.update(secrets=len(secrets), fragments=pieces, chars=len(text), hits=len(hits))
    assert hits == []
    assert any(r.name == "flask_token_vault" for r in caplog.records), "our logs were captured"


def _authorize_query(client: Any, redirect: Any) -> str:
    """Follow a connect redirect from the app to the emulator and return its query string."""
    location = redirect.headers["Location"]
    answer = client.get(location)
    return str(urlsplit(answer.headers["Location"]).query)


def _key_material(pem: str) -> list[str]:
    """Return what would give a private key away: its PEM lines and its private JWK members."""
    lines = [line for line in pem.splitlines() if line and not line.startswith("-----")]
    key = ECKey.import_key(pem) if "EC" in type(load_pem(pem)).__name__ else RSAKey.import_key(pem)
    private = key.as_dict(private=True)
    return [*lines, *(str(private[m]) for m in ("d", "p", "q") if m in private)]


def load_pem(pem: str) -> Any:
    return serialization.load_pem_private_key(pem.encode(), password=None)


def test_no_key_or_assertion_anywhere_in_a_keyed_run(
    emu: Emulator,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Private keys, client assertions, DPoP proofs and subject tokens stay out of everything."""
    caplog.set_level(logging.DEBUG)
    sent: list[str] = []  # every assertion, proof and subject token the app signed

    def spy(cls: Any, name: str) -> None:
        real = getattr(cls, name)

        def recording(self: Any, *args: Any, **kwargs: Any) -> Any:
            value = real(self, *args, **kwargs)
            sent.append(value)
            return value

        monkeypatch.setattr(cls, name, recording)

    spy(ClientKey, "client_assertion")
    spy(ClientKey, "subject_token")
    spy(DPoPKey, "proof")
    credential = register_client_key(emu)
    emu.set_privileged_access(credential, {"google-oauth2": [CAL_READ]})
    emu.require_dpop_nonce()
    app = make_app(emu, **keyed_config(TOKEN_VAULT_DPOP_KEY=ec_key_pem()))
    captured: list[str] = []
    _receiver = _record_signals_and_responses(  # kept: blinker holds receivers weakly
        app, captured, signals.token_exchanged, signals.exchange_failed, signals.logged_in
    )

    @app.get("/accounts")
    def accounts() -> Any:
        return jsonify([a.connection for a in my_connected_accounts()])

    client = app.test_client()
    assert browser_login(client, "/calendar").status_code == 200
    assert client.get("/accounts").status_code == 200
    vault = TokenVault()
    user_id = emu.user_id_for("alice@example.com")
    TokenVault.state(app).cache.invalidate_user(user_id)
    assert vault.worker_token(
        user_id, "google-oauth2", [CAL_READ], audit_context="test job", app=app
    ).access_token
    for who, connection in (("auth0|nobody", "google-oauth2"), (user_id, "windowslive")):
        try:
            vault.worker_token(who, connection, [CAL_READ], audit_context="test job", app=app)
        except TokenVaultError as exc:
            captured.append(repr(exc) + str(exc) + str(exc.to_dict()) + exc.remedy)
    state = TokenVault.state(app)
    objects = [state, state.settings, state.exchanger, state.dpop, state.my_account]
    objects += [state.settings.client_key, state.settings.dpop_key, state.transport]
    captured.extend(repr(o) + str(o) for o in objects)
    result = app.test_cli_runner().invoke(
        args=["token-vault", "worker", "setup", "--ip", "127.0.0.1", "--yes"]
    )
    captured.append(result.output)
    store: Any = state.cache.store
    captured.extend(key + repr(value) for key, value in store.items())
    captured.extend(r.getMessage() + repr(r.args) for r in caplog.records)
    captured.extend(caplog.text.splitlines())
    captured.extend(capfd.readouterr())

    secrets = [*_key_material(rsa_key_pem()), *_key_material(ec_key_pem()), *sent]
    assert len(sent) >= 6, "the run must have signed assertions, proofs and subject tokens"
    text = "\n".join(captured)
    # A signed JWT's header and claims are public; its signature is what must not leak.
    pieces = [s.rsplit(".", 1)[-1] if s.count(".") == 2 else s for s in secrets]
    hits = leaked(pieces, text, [])
    KEY_SCAN.update(secrets=len(secrets), chars=len(text), hits=len(hits))
    assert hits == []
