"""The Privileged Worker's rules as Auth0's page sets them, enforced by the emulator.

A subject token without ``audit_context`` (1 to 256 characters) is refused; an empty
``ip_allowlist`` refuses every request; a granted connection must also be enabled for the
client; each refusal has a description of its own, and the extension turns each into advice
that names the command fixing it; the Management API keeps Auth0's limits (10 addresses, 5
connections, 20 scopes).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from flask_token_vault import (
    ExchangeRejected,
    ManagementError,
    Misconfigured,
    PrivilegedAccessDenied,
    management_client,
)
from flask_token_vault._exchange import WORKER_REQUESTED_TOKEN_TYPE
from flask_token_vault._keys import ASSERTION_TYPE, ClientKey
from flask_token_vault_emulator import Emulator
from flask_token_vault_emulator.constants import JWT_TOKEN_TYPE, TOKEN_VAULT_GRANT
from tests.helpers import TIMEOUT
from tests.helpers.apps import CAL_READ, CAL_WRITE, make_app
from tests.helpers.keys import keyed_config, register_client_key, rsa_key_pem

from .test_worker import EMAIL, JOB, vault

KEY = ClientKey(rsa_key_pem().encode())


def _tenant(emu: Emulator, **access: Any) -> tuple[str, str]:
    """Register the key, give it access to Google (``access`` overrides), connect Alice."""
    credential = register_client_key(emu)
    emu.set_privileged_access(credential, {"google-oauth2": [CAL_READ]}, **access)
    emu.connect_account(EMAIL, "google-oauth2", [CAL_READ, CAL_WRITE])
    return credential, emu.user_id_for(EMAIL)


def _claims(emu: Emulator, user_id: str, **over: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": emu.client_id,
        "sub": user_id,
        "aud": emu.url + "/",
        "iat": now,
        "exp": now + 60,
        "jti": f"jti-{time.time_ns()}",
        "audit_context": JOB,
        **over,
    }
    return {k: v for k, v in claims.items() if v is not None}


def _exchange(emu: Emulator, claims: dict[str, Any], **params: str) -> requests.Response:
    """POST a Privileged Worker exchange as the client, with a subject token of ``claims``."""
    data = {
        "grant_type": TOKEN_VAULT_GRANT,
        "subject_token_type": JWT_TOKEN_TYPE,
        "subject_token": KEY.sign(claims, typ="token-vault-req+jwt"),
        "requested_token_type": WORKER_REQUESTED_TOKEN_TYPE,
        "connection": "google-oauth2",
        "client_id": emu.client_id,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": KEY.client_assertion(emu.client_id, emu.url + "/", time.time()),
        **params,
    }
    return requests.post(emu.url + "/oauth/token", data=data, timeout=TIMEOUT)


# -- audit_context ------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", [None, "", "x" * 257, 42])
def test_a_subject_token_without_a_fit_reason_is_refused(emu: Emulator, reason: Any) -> None:
    _, user_id = _tenant(emu)
    claims = _claims(emu, user_id)
    if reason is None:
        del claims["audit_context"]
    else:
        claims["audit_context"] = reason
    refused = _exchange(emu, claims)
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_grant"
    assert "audit_context" in refused.json()["error_description"]
    assert emu.privileged_access_log() == []


def test_a_reason_of_256_characters_is_accepted_by_the_emulator(emu: Emulator) -> None:
    _, user_id = _tenant(emu)
    assert _exchange(emu, _claims(emu, user_id, audit_context="x" * 256)).status_code == 200


def test_the_tenant_log_keeps_each_jobs_reason(emu: Emulator) -> None:
    _, user_id = _tenant(emu)
    app = make_app(emu, **keyed_config())
    vault.worker_token(user_id, "google-oauth2", [CAL_READ], audit_context=JOB, app=app)
    defaulted = make_app(emu, **keyed_config(TOKEN_VAULT_WORKER_AUDIT_CONTEXT="weekly digest"))
    vault.worker_token(user_id, "google-oauth2", [CAL_READ], app=defaulted, force_refresh=True)
    log = emu.privileged_access_log()
    assert [(entry.user_id, entry.connection) for entry in log] == [(user_id, "google-oauth2")] * 2
    assert [entry.audit_context for entry in log] == [JOB, "weekly digest"]


# -- ip_allowlist -------------------------------------------------------------------------------


def test_an_empty_allowlist_refuses_every_request(emu: Emulator) -> None:
    _, user_id = _tenant(emu, ip_allowlist=[])
    refused = _exchange(emu, _claims(emu, user_id))
    assert refused.status_code == 403
    assert refused.json()["error"] == "access_denied"
    assert "ip_allowlist is empty" in refused.json()["error_description"]


@pytest.mark.parametrize(
    ("allowlist", "status"),
    [(["203.0.113.0/24"], 403), (["203.0.113.7", "127.0.0.0/8"], 200), (["127.0.0.1"], 200)],
)
def test_the_callers_address_must_be_in_the_allowlist(
    emu: Emulator, allowlist: list[str], status: int
) -> None:
    _, user_id = _tenant(emu, ip_allowlist=allowlist)
    answer = _exchange(emu, _claims(emu, user_id))
    assert answer.status_code == status
    if status == 403:
        assert "not in the client's ip_allowlist" in answer.json()["error_description"]


# -- grants and the connection ------------------------------------------------------------------


def test_a_granted_connection_must_be_enabled_for_the_client(emu: Emulator) -> None:
    _, user_id = _tenant(emu)
    emu.state.connections["google-oauth2"].enabled_clients.remove(emu.client_id)
    refused = _exchange(emu, _claims(emu, user_id))
    assert refused.status_code == 400
    assert refused.json()["error_description"] == (
        "Connection 'google-oauth2' is not enabled for this client."
    )


def test_each_refusal_says_its_own_cause(emu: Emulator) -> None:
    """Seven ways to be refused, seven descriptions: advice can tell them apart."""
    credential, user_id = _tenant(emu)
    said: dict[str, str] = {}

    def refusal(cause: str, answer: requests.Response) -> None:
        assert answer.status_code in (400, 401, 403), (cause, answer.text)
        said[cause] = answer.json()["error_description"]

    grants = {"google-oauth2": [CAL_READ]}
    refusal("no reason", _exchange(emu, _claims(emu, user_id, audit_context=None)))
    refusal("not granted", _exchange(emu, _claims(emu, user_id), connection="windowslive"))
    refusal("scope", _exchange(emu, _claims(emu, user_id), scope=CAL_WRITE))
    refusal("unknown", _exchange(emu, _claims(emu, user_id), connection="nowhere"))
    emu.set_privileged_access(credential, {**grants, "nowhere": []})
    refusal("missing", _exchange(emu, _claims(emu, user_id), connection="nowhere"))
    emu.state.connections["google-oauth2"].enabled_clients.remove(emu.client_id)
    emu.set_privileged_access(credential, grants)
    refusal("not enabled", _exchange(emu, _claims(emu, user_id)))
    emu.set_privileged_access(credential, grants, ip_allowlist=["203.0.113.0/24"])
    refusal("address", _exchange(emu, _claims(emu, user_id)))
    emu.set_privileged_access(credential, grants, ip_allowlist=[])
    refusal("empty allowlist", _exchange(emu, _claims(emu, user_id)))
    emu.state.clients[emu.client_id].token_vault_privileged_access = None
    refusal("no access", _exchange(emu, _claims(emu, user_id)))
    assert said["unknown"] == said["not granted"].replace("windowslive", "nowhere")
    del said["unknown"]  # a connection outside the grants is "not granted", whatever it is
    assert len(set(said.values())) == len(said), said


# -- the Management API keeps Auth0's limits ----------------------------------------------------


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"ip_allowlist": [f"203.0.113.{i}" for i in range(11)]}, "at most 10"),
        ({"ip_allowlist": ["203.0.113.300"]}, "not an IP address"),
        ({"grants": [{"connection": f"c{i}", "scopes": ["s"]} for i in range(6)]}, "at most 5"),
        ({"grants": [{"connection": "c", "scopes": [f"s{i}" for i in range(21)]}]}, "at most 20"),
    ],
)
def test_privileged_access_beyond_auth0s_limits_is_refused(
    emu: Emulator, change: dict[str, Any], said: str
) -> None:
    credential = register_client_key(emu)
    app = make_app(emu, **keyed_config())
    block = {
        "credentials": [{"id": credential}],
        "ip_allowlist": ["127.0.0.1"],
        "grants": [{"connection": "google-oauth2", "scopes": [CAL_READ]}],
        **change,
    }
    with pytest.raises(ManagementError, match=said) as caught:
        management_client(app).set_privileged_access(block)
    assert caught.value.upstream_status == 400


# -- advice: each refusal names the part at fault and the command that fixes it ----------------


def _no_access(emu: Emulator, credential: str) -> None:
    emu.state.clients[emu.client_id].token_vault_privileged_access = None


def _empty_allowlist(emu: Emulator, credential: str) -> None:
    emu.set_privileged_access(credential, {"google-oauth2": [CAL_READ]}, ip_allowlist=[])


def _elsewhere(emu: Emulator, credential: str) -> None:
    emu.set_privileged_access(credential, {"google-oauth2": [CAL_READ]}, ["203.0.113.0/24"])


def _microsoft_only(emu: Emulator, credential: str) -> None:
    emu.set_privileged_access(credential, {"windowslive": ["User.Read"]})


def _disabled(emu: Emulator, credential: str) -> None:
    emu.state.connections["google-oauth2"].enabled_clients.remove(emu.client_id)


@pytest.mark.parametrize(
    ("arrange", "scopes", "cause", "advice"),
    [
        (_no_access, [CAL_READ], "no_privileged_access", "worker setup --grant google-oauth2="),
        (_empty_allowlist, [CAL_READ], "ip_not_allowed", "worker setup --ip ADDRESS"),
        (_elsewhere, [CAL_READ], "ip_not_allowed", "outgoing one"),
        (_microsoft_only, [CAL_READ], "connection_not_granted", "--grant google-oauth2="),
        (None, [CAL_WRITE], "scope_not_granted", "within the grant"),
        (_disabled, [CAL_READ], "connection_not_enabled", "enables each granted connection"),
    ],
)
def test_each_refusal_of_a_job_gets_its_own_advice(
    emu: Emulator, arrange: Any, scopes: list[str], cause: str, advice: str
) -> None:
    credential, user_id = _tenant(emu)
    if arrange is not None:
        arrange(emu, credential)
    app = make_app(emu, **keyed_config())
    with pytest.raises(PrivilegedAccessDenied) as caught:
        vault.worker_token(user_id, "google-oauth2", scopes, audit_context=JOB, app=app)
    refusal = caught.value
    assert isinstance(refusal, Misconfigured) and refusal.code == 500
    assert refusal.cause == cause
    assert advice in refusal.remedy and "flask token-vault" in refusal.remedy
    assert "rotation" not in refusal.remedy  # not the generic Token Vault advice
    assert refusal.to_dict()["remedy"] == refusal.remedy


def test_a_key_auth0_does_not_know_is_told_to_register_it(emu: Emulator) -> None:
    _, user_id = _tenant(emu)
    app = make_app(emu, **keyed_config(rsa_key_pem("unregistered")))
    with pytest.raises(PrivilegedAccessDenied) as caught:
        vault.worker_token(user_id, "google-oauth2", [CAL_READ], audit_context=JOB, app=app)
    assert caught.value.cause == "client_key_refused"
    assert "client credentials add" in caught.value.remedy


def test_a_refused_subject_token_says_what_to_check(emu: Emulator) -> None:
    _tenant(emu)
    app = make_app(emu, **keyed_config())
    with pytest.raises(ExchangeRejected) as caught:
        vault.worker_token("auth0|nobody", "google-oauth2", [CAL_READ], audit_context=JOB, app=app)
    assert not isinstance(caught.value, PrivilegedAccessDenied)
    assert "subject token" in caught.value.remedy and "clock" in caught.value.remedy
    assert "not a user of this tenant" in str(caught.value.description)
