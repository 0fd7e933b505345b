"""Provider tokens for background jobs: the Privileged Worker exchange, with no session."""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from typing import Any

import pytest
import requests
from flask import Flask, has_request_context

from flask_token_vault import (
    AccountNotConnected,
    ConfigurationError,
    ExchangeRejected,
    InsufficientScope,
    InvalidRequest,
    Misconfigured,
    TokenVault,
)
from flask_token_vault._exchange import WORKER_REQUESTED_TOKEN_TYPE
from flask_token_vault._keys import ASSERTION_TYPE, ClientKey
from flask_token_vault_emulator import Emulator
from flask_token_vault_emulator.constants import JWT_TOKEN_TYPE, TOKEN_VAULT_GRANT
from tests.helpers import TIMEOUT
from tests.helpers.apps import CAL_READ, CAL_WRITE, make_app
from tests.helpers.browser import browser_login
from tests.helpers.keys import keyed_config, register_client_key, rsa_key_pem

EMAIL = "alice@example.com"
JOB = "nightly calendar sync"  # the audit_context: why the job needs the token
vault = TokenVault()  # what a task module imports; the app is given to each call


def _worker_tenant(emu: Emulator, scopes: tuple[str, ...] = (CAL_READ,)) -> str:
    """Set up the client key, privileged access to Google, and Alice's account; return her id."""
    credential = register_client_key(emu)
    emu.set_privileged_access(credential, {"google-oauth2": [*scopes, "openid"]})
    emu.connect_account(EMAIL, "google-oauth2", [CAL_READ, CAL_WRITE])
    return emu.user_id_for(EMAIL)


def _calendar(emu: Emulator, token: str) -> int:
    return requests.get(
        emu.google_api_base + "/calendar/v3/users/me/calendarList",
        headers={"Authorization": f"Bearer {token}"},
        timeout=TIMEOUT,
    ).status_code


def test_a_worker_job_gets_a_token_with_no_session(emu: Emulator) -> None:
    user_id = _worker_tenant(emu)
    app = make_app(emu, **keyed_config())
    assert not has_request_context()
    token = vault.worker_token(user_id, "google-oauth2", [CAL_READ], audit_context=JOB, app=app)
    assert token.has_scopes([CAL_READ]) and token.connection == "google-oauth2"
    assert _calendar(emu, token.access_token) == 200
    # A second job (here: inside the app's context, as a task runner sets it) reads the cache.
    with app.app_context():
        again = vault.worker_token(user_id, "google-oauth2", [CAL_READ], audit_context=JOB)
    assert again.access_token == token.access_token
    assert emu.exchange_count(user_id) == 1


def test_a_request_and_a_job_share_the_cache(emu: Emulator) -> None:
    user_id = _worker_tenant(emu)
    app = make_app(emu, **keyed_config())
    assert browser_login(app.test_client(), "/calendar", EMAIL).status_code == 200
    token = vault.worker_token(user_id, "google-oauth2", [CAL_READ], audit_context=JOB, app=app)
    assert _calendar(emu, token.access_token) == 200
    assert emu.exchange_count(user_id) == 1


def test_jobs_asking_at_once_cost_one_exchange(emu: Emulator) -> None:
    user_id = _worker_tenant(emu)
    app = make_app(emu, **keyed_config())
    barrier = threading.Barrier(8)
    tokens: list[str] = []

    def job() -> None:
        barrier.wait()
        tokens.append(
            vault.worker_token(
                user_id, "google-oauth2", [CAL_READ], audit_context=JOB, app=app
            ).access_token
        )

    threads = [threading.Thread(target=job) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(tokens)) == 1 and len(tokens) == 8
    assert emu.exchange_count(user_id) == 1


def _subject_request(emu: Emulator, subject: str) -> requests.Response:
    key = ClientKey(rsa_key_pem().encode())
    return requests.post(
        emu.url + "/oauth/token",
        data={
            "grant_type": TOKEN_VAULT_GRANT,
            "subject_token_type": JWT_TOKEN_TYPE,
            "subject_token": subject,
            "requested_token_type": WORKER_REQUESTED_TOKEN_TYPE,
            "connection": "google-oauth2",
            "client_id": emu.client_id,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": key.client_assertion(emu.client_id, emu.url + "/", time.time()),
        },
        timeout=TIMEOUT,
    )


def test_a_replayed_subject_token_is_refused(emu: Emulator) -> None:
    user_id = _worker_tenant(emu)
    subject = ClientKey(rsa_key_pem().encode()).subject_token(
        emu.client_id, emu.url + "/", user_id, time.time(), audit_context=JOB
    )
    assert _subject_request(emu, subject).status_code == 200
    replay = _subject_request(emu, subject)
    assert replay.status_code == 401
    assert replay.json()["error"] == "invalid_grant"
    assert "already used" in replay.json()["error_description"]


def test_a_stale_subject_token_is_refused(emu: Emulator) -> None:
    user_id = _worker_tenant(emu)
    subject = ClientKey(rsa_key_pem().encode()).subject_token(
        emu.client_id, emu.url + "/", user_id, time.time() - 61, audit_context=JOB
    )
    stale = _subject_request(emu, subject)
    assert stale.status_code == 401
    assert "older than 60 seconds" in stale.json()["error_description"]


@pytest.mark.parametrize(
    ("header", "said"),
    [({"typ": "JWT"}, "typ"), ({"aud": "https://elsewhere.example/"}, "aud")],
)
def test_the_emulator_checks_the_subject_token(
    emu: Emulator, header: dict[str, str], said: str
) -> None:
    user_id = _worker_tenant(emu)
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": emu.client_id,
        "sub": user_id,
        "aud": header.get("aud", emu.url + "/"),
        "iat": now,
        "jti": f"j{now}",
        "audit_context": JOB,
    }
    subject = ClientKey(rsa_key_pem().encode()).sign(
        claims, typ=header.get("typ", "token-vault-req+jwt")
    )
    refused = _subject_request(emu, subject)
    assert refused.status_code == 401
    assert said in refused.json()["error_description"]


def test_an_unknown_user_is_a_typed_refusal(emu: Emulator) -> None:
    _worker_tenant(emu)
    app = make_app(emu, **keyed_config())
    with pytest.raises(ExchangeRejected, match="background") as caught:
        vault.worker_token("auth0|nobody", "google-oauth2", [CAL_READ], audit_context=JOB, app=app)
    assert caught.value.error == "invalid_grant"


def test_a_user_without_the_account_is_told_to_connect(emu: Emulator) -> None:
    _worker_tenant(emu)
    emu.state.ensure_user("bob@example.com")
    app = make_app(emu, **keyed_config())
    with pytest.raises(AccountNotConnected):
        vault.worker_token(
            emu.user_id_for("bob@example.com"), "google-oauth2", audit_context=JOB, app=app
        )


def test_scopes_beyond_the_privileged_grant_are_misconfiguration(emu: Emulator) -> None:
    user_id = _worker_tenant(emu)
    app = make_app(emu, **keyed_config())
    with pytest.raises(Misconfigured, match="Privileged access") as caught:
        vault.worker_token(user_id, "google-oauth2", [CAL_WRITE], audit_context=JOB, app=app)
    assert caught.value.error == "access_denied"


def test_scopes_the_user_never_granted_need_a_new_consent(emu: Emulator) -> None:
    user_id = _worker_tenant(emu, scopes=(CAL_READ, "https://mail.google.com/"))
    app = make_app(emu, **keyed_config())
    with pytest.raises(InsufficientScope) as caught:
        vault.worker_token(
            user_id, "google-oauth2", ["https://mail.google.com/"], audit_context=JOB, app=app
        )
    assert caught.value.required == ("https://mail.google.com/",)


def test_a_connection_without_privileged_access_is_misconfiguration(emu: Emulator) -> None:
    user_id = _worker_tenant(emu)
    emu.connect_account(EMAIL, "windowslive", ["User.Read"])
    app = make_app(emu, **keyed_config())
    with pytest.raises(Misconfigured):
        vault.worker_token(user_id, "windowslive", ["User.Read"], audit_context=JOB, app=app)


def test_background_tokens_need_the_client_key(emu: Emulator) -> None:
    app = make_app(emu)
    with pytest.raises(Misconfigured, match="client key") as caught:
        vault.worker_token(emu.user_id_for(EMAIL), "google-oauth2", audit_context=JOB, app=app)
    assert "AUTH0_CLIENT_PRIVATE_KEY" in caught.value.remedy


def test_background_tokens_need_an_app() -> None:
    with pytest.raises(RuntimeError, match="needs an app"):
        vault.worker_token("auth0|x", "google-oauth2")


def test_a_flask_command_can_fetch_a_token(emu: Emulator) -> None:
    user_id = _worker_tenant(emu)
    app: Flask = make_app(emu, **keyed_config())

    @app.cli.command("sync")
    def sync() -> None:
        token = vault.worker_token(user_id, "google-oauth2", [CAL_READ], audit_context=JOB)
        print("status", _calendar(emu, token.access_token))

    result = app.test_cli_runner().invoke(args=["sync"])
    assert result.exit_code == 0, result.output
    assert "status 200" in result.output


# -- audit_context: why the job takes the token (Auth0 requires it and logs it) ----------------


def _token_vault_requests(emu: Emulator) -> int:
    return int(emu.stats()["token_requests"].get(TOKEN_VAULT_GRANT, 0))


def test_a_job_that_gives_no_reason_is_stopped_before_any_call(emu: Emulator) -> None:
    user_id = _worker_tenant(emu)
    app = make_app(emu, **keyed_config())
    with pytest.raises(InvalidRequest, match="audit_context") as caught:
        vault.worker_token(user_id, "google-oauth2", [CAL_READ], app=app)
    assert caught.value.error == "audit_context_required"
    assert "TOKEN_VAULT_WORKER_AUDIT_CONTEXT" in caught.value.remedy
    assert "audit_context=" in caught.value.remedy
    assert _token_vault_requests(emu) == 0


@pytest.mark.parametrize(
    ("reason", "said"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("x" * 257, "at most 256"),
        ("sync\nfor bob@example.com", "one line"),
        (42, "string"),
    ],
)
def test_an_unfit_reason_is_refused_before_any_call(emu: Emulator, reason: Any, said: str) -> None:
    user_id = _worker_tenant(emu)
    app = make_app(emu, **keyed_config())
    with pytest.raises(InvalidRequest, match=said) as caught:
        vault.worker_token(user_id, "google-oauth2", [CAL_READ], audit_context=reason, app=app)
    assert caught.value.error == "invalid_audit_context"
    assert "bob@" not in str(caught.value) + caught.value.remedy  # the value is never quoted
    assert _token_vault_requests(emu) == 0


def test_a_reason_of_256_characters_is_accepted(emu: Emulator) -> None:
    user_id = _worker_tenant(emu)
    app = make_app(emu, **keyed_config())
    token = vault.worker_token(
        user_id, "google-oauth2", [CAL_READ], audit_context="x" * 256, app=app
    )
    assert token.access_token


def test_the_app_wide_reason_serves_jobs_that_give_none(emu: Emulator) -> None:
    user_id = _worker_tenant(emu)
    app = make_app(emu, **keyed_config(TOKEN_VAULT_WORKER_AUDIT_CONTEXT=JOB))
    token = vault.worker_token(user_id, "google-oauth2", [CAL_READ], app=app)
    assert _calendar(emu, token.access_token) == 200


def test_an_unfit_app_wide_reason_stops_the_app(emu: Emulator) -> None:
    with pytest.raises(ConfigurationError, match=r"^TOKEN_VAULT_WORKER_AUDIT_CONTEXT: .*256"):
        make_app(emu, **keyed_config(TOKEN_VAULT_WORKER_AUDIT_CONTEXT="x" * 300))


def test_the_subject_token_carries_the_reason() -> None:
    subject = ClientKey(rsa_key_pem().encode()).subject_token(
        "client", "https://tenant.example/", "auth0|alice", time.time(), audit_context=JOB
    )
    claims = json.loads(base64.urlsafe_b64decode(subject.split(".")[1] + "=="))
    assert claims["audit_context"] == JOB
    assert claims["sub"] == "auth0|alice"
    with pytest.raises(ValueError, match="audit_context"):
        ClientKey(rsa_key_pem().encode()).subject_token(
            "client", "https://tenant.example/", "auth0|alice", time.time(), audit_context=""
        )


def test_the_reason_is_never_logged(emu: Emulator, caplog: pytest.LogCaptureFixture) -> None:
    """It is for Auth0's tenant logs only: the app's logs, with user ids in them, never show it."""
    caplog.set_level(logging.DEBUG)
    user_id = _worker_tenant(emu)
    app = make_app(emu, **keyed_config())
    reason = "reason-7f3a9c nightly sync"
    vault.worker_token(user_id, "google-oauth2", [CAL_READ], audit_context=reason, app=app)
    with pytest.raises(ExchangeRejected):
        vault.worker_token("auth0|nobody", "google-oauth2", audit_context=reason, app=app)
    assert caplog.records  # the run did log (exchanges, the refusal)
    assert "7f3a9c" not in caplog.text
    assert all("7f3a9c" not in repr(r.args) for r in caplog.records)
