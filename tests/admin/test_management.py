"""ManagementClient over real HTTP against the emulator's Management API."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from typing import Any

import pytest
import requests

from flask_token_vault import (
    ClientNotEligible,
    ManagementClient,
    ManagementError,
    ManagementForbidden,
    ManagementNotFound,
    ManagementRateLimited,
    Tokenset,
)
from flask_token_vault.admin.records import (
    REQUIRED_GRANT_TYPES,
    parse_timestamp,
)
from flask_token_vault_emulator import Emulator
from flask_token_vault_pytest.testing import FakeClock
from tests.helpers import TIMEOUT
from tests.helpers.apps import CAL_READ
from tests.helpers.oauth import (
    MANAGEMENT_RATE_LIMITED,
    access_token,
    client_credentials_requests,
    management_grant,
    management_token,
    vault_exchange,
)

# -- timestamps and typed objects -------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        1_700_000_000,
        1_700_000_000.0,
        "1700000000",
        1_700_000_000_000,
        "2023-11-14T22:13:20Z",
        "2023-11-14T22:13:20.000Z",
        "2023-11-14T22:13:20+00:00",
        "2023-11-14T23:13:20+01:00",
    ],
)
def test_parse_timestamp_reads_epoch_and_date_time(value: Any) -> None:
    assert parse_timestamp(value) == datetime(2023, 11, 14, 22, 13, 20, tzinfo=timezone.utc)


@pytest.mark.parametrize("value", [None, "", "yesterday", True, [], {}])
def test_parse_timestamp_gives_none_for_what_it_cannot_read(value: Any) -> None:
    assert parse_timestamp(value) is None


@pytest.mark.parametrize("style", ["epoch", "iso"])
def test_list_tokensets_returns_typed_tokensets_in_both_time_styles(
    emu: Emulator, mgmt: ManagementClient, style: str
) -> None:
    emu.set_tokenset_timestamps(style)
    before = datetime.now(timezone.utc).replace(microsecond=0)
    tokenset_id = emu.connect_account("ana@example.com", "google-oauth2", [CAL_READ])
    found = mgmt.list_legacy_tokensets(emu.user_id_for("ana@example.com"))
    assert [t.id for t in found] == [tokenset_id]
    tokenset = found[0]
    assert isinstance(tokenset, Tokenset)
    assert tokenset.connection == "google-oauth2"
    assert CAL_READ in tokenset.scopes
    assert tokenset.issued_at is not None and tokenset.issued_at >= before
    assert tokenset.expires_at is not None
    assert 3590 <= (tokenset.expires_at - tokenset.issued_at).total_seconds() <= 3601
    assert tokenset.last_used_at is None
    assert tokenset.to_dict()["issued_at"].endswith("Z")


def test_raw_answer_really_differs_between_time_styles(emu: Emulator) -> None:
    """The emulator switch changes the wire format, so both parsers above are exercised."""
    emu.connect_account("ben@example.com", "google-oauth2")
    token = management_token(emu)
    url = f"{emu.url}/api/v2/users/{emu.user_id_for('ben@example.com')}"
    url += "/federated-connections-tokensets"
    headers = {"Authorization": f"Bearer {token}"}
    epoch = requests.get(url, headers=headers, timeout=TIMEOUT).json()[0]
    emu.set_tokenset_timestamps("iso")
    iso = requests.get(url, headers=headers, timeout=TIMEOUT).json()[0]
    assert isinstance(epoch["issued_at"], int)
    assert isinstance(iso["issued_at"], str) and iso["issued_at"].endswith("Z")
    assert set(epoch) == {"id", "connection", "scope", "issued_at", "expires_at", "last_used_at"}


# -- the management token ---------------------------------------------------------------------


def test_management_token_is_fetched_once_and_shared(emu: Emulator, mgmt: ManagementClient) -> None:
    emu.connect_account("cai@example.com", "google-oauth2")
    user_id = emu.user_id_for("cai@example.com")
    for _ in range(3):
        mgmt.list_tokensets(user_id)
    mgmt.get_client()
    assert client_credentials_requests(emu) == 1


def test_management_token_is_renewed_shortly_before_it_expires(emu: Emulator) -> None:
    clock = FakeClock(running=True)
    mgmt = ManagementClient.from_credentials(emu.url, emu.client_id, emu.client_secret, clock=clock)
    mgmt.get_client()
    clock.offset = 86400 - 120  # two minutes left: still used
    mgmt.get_client()
    assert client_credentials_requests(emu) == 1
    clock.offset = 86400 - 30  # inside the leeway: renewed before Auth0 would refuse it
    mgmt.get_client()
    assert client_credentials_requests(emu) == 2


def test_a_token_auth0_no_longer_accepts_is_renewed_once(
    emu: Emulator, mgmt: ManagementClient, emulator_clock: FakeClock
) -> None:
    mgmt.get_client()
    emulator_clock.offset = 90_000  # Auth0's clock: the cached token has expired there
    assert mgmt.get_client()["client_id"] == emu.client_id
    assert client_credentials_requests(emu) == 2


def test_threads_share_one_token_request(emu: Emulator, mgmt: ManagementClient) -> None:
    import threading

    errors: list[BaseException] = []

    def call() -> None:
        try:
            mgmt.get_client()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert client_credentials_requests(emu) == 1


def test_refused_client_credentials_give_a_typed_error_without_the_secret(
    emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "a-wrong-secret-that-must-not-leak"
    mgmt = ManagementClient.from_credentials(emu.url, emu.client_id, secret)
    with pytest.raises(ManagementError) as raised:
        mgmt.get_client()
    assert raised.value.error_code == "invalid_client"
    assert raised.value.upstream_status == 401
    for text in (str(raised.value), repr(raised.value), repr(mgmt), caplog.text):
        assert secret not in text


def test_no_token_appears_in_logs_errors_or_urls(
    emu: Emulator, mgmt: ManagementClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    emu.add_fault("management", status=503, times=2)
    mgmt.get_client()
    with pytest.raises(ManagementNotFound) as raised:
        mgmt.list_tokensets("auth0|nobody")
    token = mgmt._access_token
    assert token
    for text in (caplog.text, str(raised.value), repr(raised.value), repr(mgmt)):
        assert token not in text
        assert emu.client_secret not in text
    assert "retrying" in caplog.text  # the retries were logged, without the token


# -- retries, rate limits and typed errors ----------------------------------------------------


def test_429_waits_for_retry_after_then_succeeds(
    emu: Emulator, mgmt: ManagementClient, sleeps: list[float]
) -> None:
    emu.add_fault(
        "management",
        status=429,
        body=MANAGEMENT_RATE_LIMITED,
        headers={"Retry-After": "1"},
    )
    assert mgmt.get_client()["client_id"] == emu.client_id
    assert sleeps == [1.0]


def test_429_beyond_the_deadline_raises_rate_limited_with_auth0_fields(
    emu: Emulator, mgmt: ManagementClient, sleeps: list[float]
) -> None:
    reset = int(time.time()) + 120
    emu.add_fault(
        "management",
        status=429,
        times=-1,
        body=MANAGEMENT_RATE_LIMITED,
        headers={"X-RateLimit-Reset": str(reset), "X-RateLimit-Remaining": "0"},
    )
    started = time.monotonic()
    with pytest.raises(ManagementRateLimited) as raised:
        mgmt.get_client()
    assert time.monotonic() - started < 3
    assert sleeps == []  # a two-minute wait does not fit in the five-second deadline
    error = raised.value
    assert error.upstream_status == 429 and error.error_code == "too_many_requests"
    assert error.message == "Global limit has been reached"
    assert error.retry_after is not None and 100 < error.retry_after <= 120
    assert error.code == 503 and error.extra_headers()["Retry-After"]


def test_transient_5xx_is_retried_within_the_deadline(
    emu: Emulator, mgmt: ManagementClient, sleeps: list[float]
) -> None:
    emu.add_fault("management", status=502, times=2)
    assert mgmt.get_client()["client_id"] == emu.client_id
    assert len(sleeps) == 2


def test_persistent_5xx_gives_a_typed_unavailable_error(
    emu: Emulator, mgmt: ManagementClient, sleeps: list[float]
) -> None:
    emu.add_fault("management", status=503, times=-1)
    with pytest.raises(ManagementError) as raised:
        mgmt.get_client()
    assert raised.value.upstream_status == 503 and raised.value.code == 503
    assert len(sleeps) == 3  # TOKEN_VAULT_MAX_RETRIES


def test_4xx_is_not_retried(emu: Emulator, mgmt: ManagementClient, sleeps: list[float]) -> None:
    with pytest.raises(ManagementNotFound) as raised:
        mgmt.list_tokensets("auth0|nobody")
    assert sleeps == []
    assert raised.value.upstream_status == 404
    assert raised.value.error_code == "inexistent_user"
    assert raised.value.message == "The user does not exist."


def test_missing_scope_gives_forbidden_with_auth0_message(emu: Emulator) -> None:
    emu.add_client("reader", "reader-secret", management_scopes=["read:clients"])
    mgmt = ManagementClient.from_credentials(emu.url, "reader", "reader-secret")
    assert mgmt.get_client("reader")["client_id"] == "reader"
    with pytest.raises(ManagementForbidden) as raised:
        mgmt.enable_token_vault("google-oauth2")
    error = raised.value
    assert error.upstream_status == 403 and error.error_code == "insufficient_scope"
    assert error.message == "Insufficient scope, expected any of: read:connections"
    assert "Management API" in error.remedy


def test_connection_timeout_is_a_typed_error(emu: Emulator, sleeps: list[float]) -> None:
    mgmt = ManagementClient.from_credentials(
        emu.url, emu.client_id, emu.client_secret, http_timeout=0.3, deadline=0.3
    )
    mgmt.get_client()  # the token first, without the fault
    emu.add_fault("management", status=0, delay=1.0, times=-1)
    with pytest.raises(ManagementError) as raised:
        mgmt.get_client()
    assert raised.value.error_code == "timeout" and raised.value.code == 503


# -- tokensets --------------------------------------------------------------------------------


def test_delete_tokenset_makes_the_exchange_answer_not_found(
    emu: Emulator, mgmt: ManagementClient
) -> None:
    emu.connect_account("dan@example.com", "google-oauth2", [CAL_READ])
    keep = emu.connect_account("dan@example.com", "windowslive", ["User.Read"])
    refresh_token = emu.issue_refresh_token("dan@example.com")
    user_id = emu.user_id_for("dan@example.com")
    assert vault_exchange(emu, refresh_token, "google-oauth2").status_code == 200
    google = next(t for t in mgmt.list_tokensets(user_id) if t.connection == "google-oauth2")
    assert google.id.startswith("cac_")  # read as a connected account
    # Deleted through the old endpoint, by the tokenset id of that account.
    assert mgmt.delete_tokenset(user_id, google.id) != google.id
    answer = vault_exchange(emu, refresh_token, "google-oauth2")
    assert answer.status_code == 401
    assert answer.json()["error"] == "federated_connection_refresh_token_not_found"
    assert [t.id for t in mgmt.list_legacy_tokensets(user_id)] == [keep]
    with pytest.raises(ManagementNotFound):
        mgmt.delete_tokenset(user_id, google.id)


# -- connections ------------------------------------------------------------------------------

OTHER_OPTIONS: dict[str, Any] = {
    "client_id": "github-client",
    "scope": ["repo", "read:user"],
    "upstream_params": {"screen_name": {"alias": "login_hint"}},
    "set_user_root_attributes": "on_each_login",
}


def test_enable_token_vault_by_name_keeps_every_other_option(
    emu: Emulator, mgmt: ManagementClient
) -> None:
    emu.add_connection("github", options=dict(OTHER_OPTIONS))
    assert mgmt.enable_token_vault("github") is True
    options = emu.state.connections["github"].options
    assert options == {**OTHER_OPTIONS, "federated_connections_access_tokens": {"active": True}}


def test_enable_token_vault_by_id(emu: Emulator, mgmt: ManagementClient) -> None:
    connection_id = emu.add_connection("gitlab", options={"scope": ["api"]})
    assert mgmt.enable_token_vault(connection_id) is True
    assert emu.state.connections["gitlab"].vault_active


def test_enable_token_vault_twice_changes_nothing_the_second_time(
    emu: Emulator, mgmt: ManagementClient
) -> None:
    emu.add_connection("github", options=dict(OTHER_OPTIONS))
    assert mgmt.enable_token_vault("github") is True
    connection = emu.state.connections["github"]
    first = dict(connection.options)
    options_object = connection.options
    assert mgmt.enable_token_vault("github") is False
    # No PATCH was sent: the very same options object is still in place.
    assert connection.options is options_object and connection.options == first


def test_emulator_patch_replaces_the_options_object(emu: Emulator, mgmt: ManagementClient) -> None:
    """A naive PATCH of only the vault switch would lose the other options, as on Auth0."""
    connection_id = emu.add_connection("github", options=dict(OTHER_OPTIONS))
    mgmt.request(
        "PATCH",
        f"/connections/{connection_id}",
        body={"options": {"federated_connections_access_tokens": {"active": True}}},
    )
    assert emu.state.connections["github"].options == {
        "federated_connections_access_tokens": {"active": True}
    }


def test_enable_connected_accounts_is_idempotent(emu: Emulator, mgmt: ManagementClient) -> None:
    connection = emu.state.connections["google-oauth2"]
    options_before = dict(connection.options)
    assert mgmt.enable_connected_accounts("google-oauth2") is True
    assert connection.connected_accounts == {"active": True}
    assert mgmt.enable_connected_accounts("google-oauth2") is False
    assert connection.options == options_before


def test_unknown_connection_is_not_found(emu: Emulator, mgmt: ManagementClient) -> None:
    with pytest.raises(ManagementNotFound, match="no connection named"):
        mgmt.enable_token_vault("nope")
    with pytest.raises(ManagementNotFound):
        mgmt.enable_token_vault("con_DoesNotExist0000")


# -- clients ----------------------------------------------------------------------------------


def test_enable_token_vault_grant_adds_the_grants_and_keeps_the_others(
    emu: Emulator, mgmt: ManagementClient
) -> None:
    client = emu.state.clients[emu.client_id]
    client.grant_types = ["client_credentials", "password"]
    assert mgmt.enable_token_vault_grant() is True
    assert client.grant_types == ["client_credentials", "password", *REQUIRED_GRANT_TYPES]
    grants = list(client.grant_types)
    assert mgmt.enable_token_vault_grant(emu.client_id) is False
    assert client.grant_types == grants


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("is_first_party", False, "not a first-party application"),
        ("token_endpoint_auth_method", "none", "not confidential"),
        ("oidc_conformant", False, "not OIDC conformant"),
    ],
)
def test_enable_token_vault_grant_refuses_an_ineligible_client(
    emu: Emulator, mgmt: ManagementClient, field: str, value: Any, message: str
) -> None:
    emu.add_client("spa", "spa-secret", grant_types=["authorization_code"])
    client = emu.state.clients["spa"]
    setattr(client, field, value)
    with pytest.raises(ClientNotEligible, match=message) as raised:
        mgmt.enable_token_vault_grant("spa")
    assert raised.value.problems and len(raised.value.problems) == 1
    assert client.grant_types == ["authorization_code"]


def test_every_problem_of_a_client_is_named(emu: Emulator, mgmt: ManagementClient) -> None:
    emu.add_client("bad", "bad-secret")
    client = emu.state.clients["bad"]
    client.is_first_party = False
    client.token_endpoint_auth_method = "none"
    client.oidc_conformant = False
    with pytest.raises(ClientNotEligible) as raised:
        mgmt.enable_token_vault_grant("bad")
    assert len(raised.value.problems) == 3
    text = str(raised.value)
    for part in ("first-party", "confidential", "OIDC conformant", "bad"):
        assert part in text


# -- connected accounts -----------------------------------------------------------------------


def test_list_connected_accounts_follows_every_page(emu: Emulator, mgmt: ManagementClient) -> None:
    for i in range(23):
        emu.connect_account("eve@example.com", "google-oauth2", [CAL_READ], account=f"e{i}@x.io")
    found = mgmt.list_connected_accounts(emu.user_id_for("eve@example.com"))
    assert len(found) == 23 and len({a.id for a in found}) == 23
    assert all(a.id.startswith("cac_") and a.connection == "google-oauth2" for a in found)
    assert all(a.access_type == "offline" and a.strategy == "google-oauth2" for a in found)
    assert found[0].created_at is not None and CAL_READ in found[0].scopes


def test_mfa_policy_is_read(emu: Emulator, mgmt: ManagementClient) -> None:
    assert mgmt.get_mfa_policies() == []
    emu.set_mfa_policy(True)
    assert mgmt.get_mfa_policies() == ["all-applications"]


# -- the emulator's control API for these endpoints -------------------------------------------


def test_control_api_drives_clients_time_style_mfa_and_tenant_restore(emu: Emulator) -> None:
    def control(path: str, body: dict[str, Any]) -> requests.Response:
        return requests.post(emu.url + "/__emulator/" + path, json=body, timeout=TIMEOUT)

    added = control(
        "clients",
        {"client_id": "ops", "client_secret": "ops-secret", "management_scopes": ["read:users"]},
    )
    assert added.status_code == 201
    token = management_grant(emu, client_id="ops", client_secret="ops-secret").json()
    assert token["scope"] == "read:users"
    assert control("tokenset-timestamps", {"style": "iso"}).status_code == 200
    assert emu.state.tokenset_timestamps == "iso"
    assert control("tokenset-timestamps", {"style": "rfc822"}).status_code == 400
    assert control("mfa-policy", {"always": True}).status_code == 200
    assert emu.state.mfa_policies == ["all-applications"]
    bad = control("clients", {"client_id": "x", "client_secret": "y", "grant_types": "no"})
    assert bad.status_code == 400 and "grant_types" in bad.json()["error"]
    assert control("restore-tenant", {}).status_code == 200
    assert emu.state.get_client("ops") is None and emu.state.mfa_policies == []


def test_management_api_needs_a_management_token(emu: Emulator) -> None:
    url = f"{emu.url}/api/v2/clients/{emu.client_id}"
    missing = requests.get(url, timeout=TIMEOUT)
    assert missing.status_code == 401
    assert missing.json() == {
        "statusCode": 401,
        "error": "Unauthorized",
        "message": "Missing authentication",
    }
    # A token for another audience (here, the user's userinfo) is refused.
    refresh_token = emu.issue_refresh_token("gus@example.com")
    user_token = access_token(emu, {"grant_type": "refresh_token", "refresh_token": refresh_token})
    wrong = requests.get(url, headers={"Authorization": f"Bearer {user_token}"}, timeout=TIMEOUT)
    assert wrong.status_code == 401 and wrong.json()["errorCode"] == "invalid_token"
