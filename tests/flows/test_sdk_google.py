"""google-api-python-client, with credentials from the vault, against the emulator's Calendar."""

from __future__ import annotations

import threading
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask, jsonify
from googleapiclient.discovery import build

from flask_token_vault import InsufficientScope, JobTokenSource, provider_token_required
from flask_token_vault.providers.google_auth import VaultCredentials
from flask_token_vault_emulator import Emulator
from flask_token_vault_pytest.testing import login_as
from tests.helpers.apps import CAL_READ, CAL_WRITE, alice_client, make_app
from tests.helpers.keys import keyed_config, register_client_key

EMAIL = "alice@example.com"
JOB = "nightly calendar sync"


def calendar_service(emu: Emulator, credentials: VaultCredentials) -> Any:
    """Build Google's Calendar client as its quick start does, pointed at the emulator."""
    return build(
        "calendar",
        "v3",
        credentials=credentials,
        static_discovery=True,
        cache_discovery=False,
        client_options={"api_endpoint": emu.google_api_base + "/calendar/v3/"},
    )


def google_app(emu: Emulator, **config: Any) -> Flask:
    """The test app with views that call Google through ``googleapiclient``."""
    app = make_app(emu, **config)

    @app.get("/sdk/calendars")
    @provider_token_required("google-oauth2", scopes=[CAL_READ])
    def calendars() -> Any:
        service = calendar_service(emu, VaultCredentials("google-oauth2", scopes=[CAL_READ]))
        found = service.calendarList().list().execute()
        return jsonify(ids=[item["id"] for item in found["items"]])

    @app.get("/sdk/write")
    @provider_token_required("google-oauth2", scopes=[CAL_READ])
    def write() -> Any:
        # The view asks for more than its decorator: the SDK call itself finds the gap.
        creds = VaultCredentials("google-oauth2", scopes=[CAL_READ, CAL_WRITE])
        calendar_service(emu, creds).calendarList().list().execute()
        return jsonify(ok=True)

    return app


def test_a_view_lists_calendars_through_google_s_client(emu: Emulator) -> None:
    client = alice_client(google_app(emu), emu)
    answer = client.get("/sdk/calendars")
    assert answer.status_code == 200
    assert answer.get_json() == {"ids": [EMAIL]}
    assert client.get("/sdk/calendars").status_code == 200
    assert emu.exchange_count() == 1  # the second request's credentials read the cache


def test_an_expired_token_is_renewed_once_for_many_threads(emu: Emulator) -> None:
    emu.set_provider_token_ttl("google-oauth2", 4)  # the vault renews after 3 s (a quarter early)
    app = google_app(emu)
    client = alice_client(app, emu)
    assert client.get("/sdk/calendars").status_code == 200
    time.sleep(3.2)
    cookie = client.get_cookie("session")
    assert cookie is not None
    statuses: list[int] = []

    def call() -> None:
        other = app.test_client()
        other.set_cookie("session", cookie.value)
        statuses.append(other.get("/sdk/calendars").status_code)

    threads = [threading.Thread(target=call) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 6
    assert emu.exchange_count() == 2


def test_a_scope_not_granted_becomes_a_consent_step(emu: Emulator) -> None:
    client = alice_client(google_app(emu), emu)
    answer = client.get("/sdk/write")
    assert answer.status_code == 302
    link = urlsplit(answer.headers["Location"])
    assert link.path == "/auth/connect/google-oauth2"
    query = parse_qs(link.query)
    assert CAL_WRITE in query["scope"][0].split() and query["next"] == ["/sdk/write"]


def test_a_token_google_refuses_is_dropped_and_the_call_retried(emu: Emulator) -> None:
    client = alice_client(google_app(emu), emu)
    assert client.get("/sdk/calendars").status_code == 200
    emu.revoke_provider_tokens(email=EMAIL, connection="google-oauth2")
    assert client.get("/sdk/calendars").status_code == 200  # 401, a new token, the same call
    assert emu.exchange_count() == 2
    assert client.get("/sdk/calendars").status_code == 200
    assert emu.exchange_count() == 2  # the renewed token was cached for the next request


def _job_tenant(emu: Emulator, scopes: tuple[str, ...] = (CAL_READ,)) -> str:
    credential = register_client_key(emu)
    emu.set_privileged_access(credential, {"google-oauth2": [CAL_READ, CAL_WRITE, "openid"]})
    emu.connect_account(EMAIL, "google-oauth2", list(scopes))
    return emu.user_id_for(EMAIL)


def test_a_job_calls_google_and_shares_one_exchange_across_threads(emu: Emulator) -> None:
    user_id = _job_tenant(emu)
    app = make_app(emu, **keyed_config())
    source = JobTokenSource(user_id, "google-oauth2", audit_context=JOB, app=app)
    found: list[Any] = []

    def call() -> None:
        service = calendar_service(emu, VaultCredentials(source, scopes=[CAL_READ]))
        found.append(service.calendarList().list().execute()["items"][0]["id"])

    threads = [threading.Thread(target=call) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert found == [EMAIL] * 6
    assert emu.exchange_count(user_id) == 1


def test_a_job_s_missing_scope_is_a_typed_error(emu: Emulator) -> None:
    user_id = _job_tenant(emu)
    app = make_app(emu, **keyed_config())
    source = JobTokenSource(user_id, "google-oauth2", audit_context=JOB, app=app)
    service = calendar_service(emu, VaultCredentials(source, scopes=[CAL_READ, CAL_WRITE]))
    with pytest.raises(InsufficientScope, match="calendar"):
        service.calendarList().list().execute()


def test_a_job_s_refused_token_is_dropped_for_requests_too(emu: Emulator) -> None:
    user_id = _job_tenant(emu)
    app = make_app(emu, **keyed_config())
    source = JobTokenSource(user_id, "google-oauth2", audit_context=JOB, app=app)
    service = calendar_service(emu, VaultCredentials(source, scopes=[CAL_READ]))
    service.calendarList().list().execute()
    emu.revoke_provider_tokens(email=EMAIL, connection="google-oauth2")
    assert service.calendarList().list().execute()["items"][0]["id"] == EMAIL
    assert emu.exchange_count(user_id) == 2
    # A new job (a new source and client) finds the renewed token in the shared cache.
    fresh = JobTokenSource(user_id, "google-oauth2", audit_context=JOB, app=app)
    calendar_service(
        emu, VaultCredentials(fresh, scopes=[CAL_READ])
    ).calendarList().list().execute()
    assert emu.exchange_count(user_id) == 2


def test_a_long_lived_client_renews_before_expiry_not_after_google_refuses(
    emu: Emulator,
) -> None:
    """The token's expiry reaches google.auth: a client kept past it renews first, no 401."""
    emu.set_provider_token_ttl("google-oauth2", 4)  # the vault renews after 3 s
    user_id = _job_tenant(emu)
    app = make_app(emu, **keyed_config())
    source = JobTokenSource(user_id, "google-oauth2", audit_context=JOB, app=app)
    service = calendar_service(emu, VaultCredentials(source, scopes=[CAL_READ]))
    service.calendarList().list().execute()
    time.sleep(4.2)  # past the token's own expiry
    service.calendarList().list().execute()
    assert emu.exchange_count(user_id) == 2
    assert emu.stats()["provider_calls"]["google"] == {"200": 2}  # never sent an expired token


def test_credentials_kept_past_their_request_never_send_that_users_token_for_another(
    emu: Emulator,
) -> None:
    """An app that builds its Google client once and reuses it leaks nothing across users."""
    app = make_app(emu)
    kept: dict[str, VaultCredentials] = {}

    @app.get("/kept")
    def kept_client() -> Any:
        creds = kept.setdefault("creds", VaultCredentials("google-oauth2", scopes=[CAL_READ]))
        return jsonify(calendar_service(emu, creds).calendarList().list().execute())

    alice = alice_client(app, emu)
    assert alice.get("/kept").get_json()["items"][0]["id"] == EMAIL
    bob = app.test_client()
    login_as(bob, emu, "bob@example.com", {"google-oauth2": [CAL_READ]})
    with pytest.raises(RuntimeError, match="another request's user"):
        bob.get("/kept")
