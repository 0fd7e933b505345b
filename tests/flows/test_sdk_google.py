"""google-api-python-client, with credentials from the vault, against the emulator's Calendar."""

from __future__ import annotations

import time
from typing import Any

import pytest
from flask import Flask, jsonify
from google.auth.transport.requests import Request

from flask_token_vault import InsufficientScope, JobTokenSource
from flask_token_vault.providers.google_auth import VaultCredentials
from flask_token_vault_emulator import Emulator
from flask_token_vault_pytest.testing import login_as
from tests.helpers.apps import CAL_READ, CAL_WRITE, alice_client, make_app
from tests.helpers.sdk import at_once, job_app
from tests.helpers.sdk_apps import calendar_service, google_app

EMAIL = "alice@example.com"
JOB = "nightly calendar sync"


def test_a_view_lists_calendars_through_google_s_client(emu: Emulator) -> None:
    client = alice_client(google_app(emu), emu)
    answer = client.get("/sdk/calendars")
    assert answer.status_code == 200
    assert answer.get_json() == {"ids": [EMAIL]}
    assert client.get("/sdk/calendars").status_code == 200
    assert emu.exchange_count() == 1  # the second request's credentials read the cache


def test_a_token_google_refuses_is_dropped_and_the_call_retried(emu: Emulator) -> None:
    client = alice_client(google_app(emu), emu)
    assert client.get("/sdk/calendars").status_code == 200
    emu.revoke_provider_tokens(email=EMAIL, connection="google-oauth2")
    assert client.get("/sdk/calendars").status_code == 200  # 401, a new token, the same call
    assert emu.exchange_count() == 2
    assert client.get("/sdk/calendars").status_code == 200
    assert emu.exchange_count() == 2  # the renewed token was cached for the next request


def _job_app(emu: Emulator) -> tuple[Flask, str]:
    return job_app(emu, "google-oauth2", [CAL_READ, CAL_WRITE, "openid"], [CAL_READ])


def _job_source(emu: Emulator) -> JobTokenSource:
    app, user_id = _job_app(emu)
    return JobTokenSource(user_id, "google-oauth2", audit_context=JOB, app=app)


def test_a_job_calls_google_and_shares_one_exchange_across_threads(emu: Emulator) -> None:
    source = _job_source(emu)
    found: list[Any] = []

    def call() -> None:
        service = calendar_service(emu, VaultCredentials(source, scopes=[CAL_READ]))
        found.append(service.calendarList().list().execute()["items"][0]["id"])

    at_once(call)
    assert found == [EMAIL] * 6
    assert emu.exchange_count(source.user_id) == 1


def test_a_job_s_missing_scope_is_a_typed_error(emu: Emulator) -> None:
    source = _job_source(emu)
    service = calendar_service(emu, VaultCredentials(source, scopes=[CAL_READ, CAL_WRITE]))
    with pytest.raises(InsufficientScope, match="calendar"):
        service.calendarList().list().execute()


def test_a_job_s_refused_token_is_dropped_for_requests_too(emu: Emulator) -> None:
    app, user_id = _job_app(emu)
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
    source = _job_source(emu)
    service = calendar_service(emu, VaultCredentials(source, scopes=[CAL_READ]))
    service.calendarList().list().execute()
    time.sleep(4.2)  # past the token's own expiry
    service.calendarList().list().execute()
    assert emu.exchange_count(source.user_id) == 2
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


def test_google_s_valid_and_expired_follow_the_token_s_renewal_time(emu: Emulator) -> None:
    """Code written to Google's quick start (``if not creds.valid: creds.refresh(...)``) works."""
    emu.set_provider_token_ttl("google-oauth2", 2)  # renewal time: 0.25 s before it expires
    creds = VaultCredentials(_job_source(emu), scopes=[CAL_READ])
    assert not creds.valid  # nothing taken yet
    creds.refresh(Request())
    assert creds.valid and not creds.expired and creds.expiry is not None
    time.sleep(2.1)
    assert creds.expired and not creds.valid
