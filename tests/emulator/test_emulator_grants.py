"""The emulator's grants: refresh tokens and the Token Vault exchange."""

from __future__ import annotations

import pytest
import requests
from joserfc import jwt

from flask_token_vault_emulator import Emulator
from flask_token_vault_emulator.state import Connection
from flask_token_vault_pytest.testing import FakeClock
from tests.helpers import TIMEOUT
from tests.helpers.apps import CAL_READ
from tests.helpers.emulator import (
    CAL_EVENTS,
    google_get,
    login_code,
    provider_token,
)
from tests.helpers.oauth import (
    ACCESS_TOKEN_TYPE,
    FEDERATED_TOKEN_TYPE,
    TOKEN_VAULT_GRANT,
    assert_error,
    code_grant,
    keyset,
    token_request,
    vault_exchange,
)

# -- refresh grant -----------------------------------------------------------------------------


def test_refresh_grant_issues_new_tokens_but_keeps_the_refresh_token(emu: Emulator) -> None:
    refresh_token = code_grant(emu, login_code(emu)).json()["refresh_token"]
    answer = token_request(emu, {"grant_type": "refresh_token", "refresh_token": refresh_token})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert "refresh_token" not in body
    assert body["scope"] == "openid profile email offline_access"
    claims = jwt.decode(body["id_token"], keyset(emu)).claims
    assert "nonce" not in claims and claims["aud"] == emu.client_id
    narrowed = token_request(
        emu, {"grant_type": "refresh_token", "refresh_token": refresh_token, "scope": "openid"}
    )
    assert narrowed.json()["scope"] == "openid"
    wider = token_request(
        emu,
        {"grant_type": "refresh_token", "refresh_token": refresh_token, "scope": "openid admin"},
    )
    assert_error(wider, 400, "invalid_scope")


def test_refresh_grant_refuses_unknown_and_foreign_tokens(emu: Emulator) -> None:
    unknown = token_request(emu, {"grant_type": "refresh_token", "refresh_token": "v1.emu.nope"})
    body = assert_error(unknown, 403, "invalid_grant")
    assert body["error_description"] == "Unknown or invalid refresh token."
    emu.add_client("other-client", "other-secret")
    foreign = emu.issue_refresh_token("lee@example.com", client_id="other-client")
    answer = token_request(emu, {"grant_type": "refresh_token", "refresh_token": foreign})
    assert_error(answer, 403, "invalid_grant")


def test_userinfo_answers_for_emulator_access_tokens_only(emu: Emulator) -> None:
    access = code_grant(emu, login_code(emu, "mia@example.com")).json()["access_token"]
    answer = requests.get(
        emu.url + "/userinfo", headers={"Authorization": f"Bearer {access}"}, timeout=TIMEOUT
    )
    assert answer.status_code == 200
    assert answer.json() == {
        "sub": emu.user_id_for("mia@example.com"),
        "name": "Mia",
        "nickname": "mia",
        "updated_at": answer.json()["updated_at"],
        "email": "mia@example.com",
        "email_verified": True,
    }
    bad = requests.get(
        emu.url + "/userinfo", headers={"Authorization": "Bearer x.y.z"}, timeout=TIMEOUT
    )
    assert bad.status_code == 401
    assert requests.get(emu.url + "/userinfo", timeout=TIMEOUT).status_code == 401


def test_client_credentials_needs_an_audience(emu: Emulator) -> None:
    assert_error(token_request(emu, {"grant_type": "client_credentials"}), 403, "access_denied")
    audience = emu.url + "/api/v2/"
    answer = token_request(emu, {"grant_type": "client_credentials", "audience": audience})
    assert answer.status_code == 200
    claims = jwt.decode(answer.json()["access_token"], keyset(emu)).claims
    assert claims["aud"] == audience and claims["sub"] == emu.client_id + "@clients"
    assert "read:users" in answer.json()["scope"].split()


def test_token_endpoint_rejects_bad_client_credentials(emu: Emulator) -> None:
    body = {"grant_type": "client_credentials", "audience": "x", "client_secret": "wrong"}
    assert_error(token_request(emu, body), 401, "invalid_client")
    basic = requests.post(
        emu.url + "/oauth/token",
        data={"grant_type": "client_credentials", "audience": "x"},
        auth=(emu.client_id, "wrong"),
        timeout=TIMEOUT,
    )
    assert_error(basic, 401, "invalid_client")
    assert_error(token_request(emu, {"grant_type": "password"}), 400, "unsupported_grant_type")
    assert_error(token_request(emu, {}), 400, "invalid_request")


# -- Token Vault exchange ----------------------------------------------------------------------


@pytest.mark.parametrize(("as_json", "basic"), [(False, False), (True, False), (False, True)])
def test_exchange_succeeds_with_form_json_and_basic_auth(
    emu: Emulator, as_json: bool, basic: bool
) -> None:
    emu.connect_account("nora@example.com", "google-oauth2", [CAL_READ])
    refresh_token = emu.issue_refresh_token("nora@example.com")
    answer = vault_exchange(emu, refresh_token, as_json=as_json, basic=basic)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Cache-Control"] == "no-store"
    body = answer.json()
    assert set(body) == {"access_token", "expires_in", "scope", "token_type", "issued_token_type"}
    assert body["access_token"].startswith("ya29.emu.")
    assert body["expires_in"] == 3600 and body["token_type"] == "Bearer"
    assert body["issued_token_type"] == FEDERATED_TOKEN_TYPE
    assert body["scope"].split(" ") == ["openid", "email", "profile", CAL_READ]
    assert emu.exchange_count(emu.user_id_for("nora@example.com"), "google-oauth2") == 1


def test_exchange_for_microsoft_gives_graph_tokens(emu: Emulator) -> None:
    token = provider_token(emu, "owen@example.com", "windowslive", ("Calendars.Read",))
    assert token.startswith("EwB.emu.")
    assert emu.exchange_count(connection="windowslive") == 1
    assert emu.exchange_count(connection="google-oauth2") == 0


def test_scopes_merge_across_connects(emu: Emulator) -> None:
    code = login_code(emu, "pat@example.com", connection="google-oauth2", connection_scope=CAL_READ)
    refresh_token = code_grant(emu, code).json()["refresh_token"]
    login_code(emu, "pat@example.com", connection="google-oauth2", connection_scope=CAL_EVENTS)
    scopes = vault_exchange(emu, refresh_token).json()["scope"].split(" ")
    assert scopes == ["openid", "email", "profile", CAL_READ, CAL_EVENTS]

    emu.connect_account("pat@example.com", "google-oauth2", "")  # asks for nothing new
    assert vault_exchange(emu, refresh_token).json()["scope"].split(" ") == scopes


def test_connection_scope_may_be_space_separated(emu: Emulator) -> None:
    login_code(
        emu,
        "quinn@example.com",
        connection="google-oauth2",
        connection_scope=f"{CAL_READ} {CAL_EVENTS}",
    )
    [tokenset] = emu.state.tokensets_for(emu.user_id_for("quinn@example.com"))
    assert CAL_READ in tokenset.scopes and CAL_EVENTS in tokenset.scopes


def test_exchange_joins_scopes_with_the_connection_separator(emu: Emulator) -> None:
    emu.state.connections["github"] = Connection(
        name="github",
        strategy="github",
        options={"federated_connections_access_tokens": {"active": True}},
        default_scopes=["read:user"],
        scope_separator=",",
        enabled_clients=[emu.client_id],
    )
    try:
        emu.connect_account("ruth@example.com", "github", "repo,gist")
        answer = vault_exchange(emu, emu.issue_refresh_token("ruth@example.com"), "github")
        assert answer.json()["scope"] == "read:user,repo,gist"
    finally:
        del emu.state.connections["github"]


def test_login_hint_picks_the_account(emu: Emulator) -> None:
    emu.connect_account("sam@example.com", "google-oauth2", [CAL_READ], account="sam@work.example")
    emu.connect_account("sam@example.com", "google-oauth2", [], account="sam@home.example")
    refresh_token = emu.issue_refresh_token("sam@example.com")

    def account_of(answer: requests.Response) -> str:
        token = answer.json()["access_token"]
        email: str = google_get(emu, "/oauth2/v3/userinfo", token).json()["email"]
        return email

    assert account_of(vault_exchange(emu, refresh_token, login_hint="sam@work.example")) == (
        "sam@work.example"
    )
    assert account_of(vault_exchange(emu, refresh_token)) == "sam@home.example"  # most recent
    work = vault_exchange(emu, refresh_token, login_hint="sam@work.example").json()
    assert CAL_READ in work["scope"].split()
    home = vault_exchange(emu, refresh_token, login_hint="sam@home.example").json()
    assert CAL_READ not in home["scope"].split()
    unknown = vault_exchange(emu, refresh_token, login_hint="sam@elsewhere.example")
    assert_error(unknown, 401, "federated_connection_refresh_token_not_found")


def test_exchange_without_connected_account_is_401_not_found(emu: Emulator) -> None:
    refresh_token = emu.issue_refresh_token("tom@example.com")
    body = assert_error(
        vault_exchange(emu, refresh_token), 401, "federated_connection_refresh_token_not_found"
    )
    assert body["error_description"] == "Federated connection Refresh Token not found."
    assert emu.stats()["exchanges"]["failed"] == 1
    assert emu.exchange_count() == 0


def test_broken_provider_refresh_is_401_flow_failed(emu: Emulator) -> None:
    emu.connect_account("uma@example.com", "google-oauth2", [CAL_READ])
    refresh_token = emu.issue_refresh_token("uma@example.com")
    emu.break_provider_refresh("uma@example.com", "google-oauth2")
    assert_error(
        vault_exchange(emu, refresh_token), 401, "federated_connection_refresh_token_flow_failed"
    )
    emu.break_provider_refresh("uma@example.com", "google-oauth2", broken=False)
    assert vault_exchange(emu, refresh_token).status_code == 200
    with pytest.raises(ValueError, match="no connected account"):
        emu.break_provider_refresh("uma@example.com", "windowslive")


def test_exchange_refuses_bad_subject_tokens(emu: Emulator) -> None:
    emu.connect_account("vic@example.com", "google-oauth2", [CAL_READ])
    refresh_token = emu.issue_refresh_token("vic@example.com")
    assert_error(vault_exchange(emu, "v1.emu.made-up"), 401, "invalid_grant")
    access_type = vault_exchange(emu, refresh_token, subject_token_type=ACCESS_TOKEN_TYPE)
    assert (
        "Custom API Client"
        in assert_error(access_type, 400, "invalid_request")["error_description"]
    )
    assert_error(
        vault_exchange(emu, refresh_token, subject_token_type="urn:x"), 400, "invalid_request"
    )
    assert_error(
        vault_exchange(emu, refresh_token, requested_token_type="x"), 400, "invalid_request"
    )
    assert_error(vault_exchange(emu, refresh_token, subject_token=None), 400, "invalid_request")

    emu.add_client("second-client", "second-secret")
    foreign = emu.issue_refresh_token("vic@example.com", client_id="second-client")
    assert_error(vault_exchange(emu, foreign), 401, "invalid_grant")


def test_exchange_refuses_bad_connections(emu: Emulator) -> None:
    refresh_token = emu.issue_refresh_token("wes@example.com")
    assert_error(vault_exchange(emu, refresh_token, connection=None), 400, "invalid_request")
    assert_error(vault_exchange(emu, refresh_token, connection="myspace"), 400, "invalid_request")
    no_vault = vault_exchange(emu, refresh_token, connection="Username-Password-Authentication")
    assert_error(no_vault, 403, "access_denied")


@pytest.mark.parametrize("parameter", ["audience", "resource"])
def test_exchange_refuses_audience_and_resource(emu: Emulator, parameter: str) -> None:
    emu.connect_account("xena@example.com", "google-oauth2", [CAL_READ])
    refresh_token = emu.issue_refresh_token("xena@example.com")
    if parameter == "audience":
        answer = vault_exchange(emu, refresh_token, audience="https://api.example.com")
    else:
        answer = vault_exchange(emu, refresh_token, resource="https://api.example.com")
    assert parameter in assert_error(answer, 400, "invalid_request")["error_description"]


def test_exchange_is_refused_to_a_client_without_the_grant(emu: Emulator) -> None:
    emu.add_client(
        "no-vault-client", "no-vault-secret", grant_types=["authorization_code", "refresh_token"]
    )
    emu.connect_account("yan@example.com", "google-oauth2", [CAL_READ])
    refresh_token = emu.issue_refresh_token("yan@example.com", client_id="no-vault-client")
    answer = vault_exchange(
        emu, refresh_token, client_id="no-vault-client", client_secret="no-vault-secret"
    )
    body = assert_error(answer, 403, "unauthorized_client")
    assert (
        body["error_description"] == f"Grant type '{TOKEN_VAULT_GRANT}' not allowed for the client."
    )


def test_exchange_scope_parameter_narrows_or_is_refused(emu: Emulator) -> None:
    emu.connect_account("zoe@example.com", "google-oauth2", [CAL_READ, CAL_EVENTS])
    refresh_token = emu.issue_refresh_token("zoe@example.com")
    narrow = vault_exchange(emu, refresh_token, scope=CAL_READ)
    assert narrow.json()["scope"] == CAL_READ
    token = narrow.json()["access_token"]
    assert google_get(emu, "/calendar/v3/users/me/calendarList", token).status_code == 200
    created = requests.post(
        emu.google_api_base + "/calendar/v3/calendars/primary/events",
        headers={"Authorization": f"Bearer {token}"},
        json={"summary": "x", "start": {"dateTime": "2030-01-01T10:00:00Z"}},
        timeout=TIMEOUT,
    )
    assert created.status_code == 403  # the narrowed token has no write scope
    too_wide = vault_exchange(emu, refresh_token, scope=f"{CAL_READ} https://mail.google.com/")
    assert_error(too_wide, 400, "invalid_scope")


def test_provider_token_ttl_is_reported_and_enforced(
    emu: Emulator, emulator_clock: FakeClock
) -> None:
    emu.set_provider_token_ttl("google-oauth2", 120)
    emu.connect_account("abe@example.com", "google-oauth2", [CAL_READ])
    answer = vault_exchange(emu, emu.issue_refresh_token("abe@example.com"))
    assert answer.json()["expires_in"] == 120
    token = answer.json()["access_token"]
    assert google_get(emu, "/calendar/v3/users/me/calendarList", token).status_code == 200
    emulator_clock.advance(121)
    assert google_get(emu, "/calendar/v3/users/me/calendarList", token).status_code == 401


def test_reset_restores_the_default_provider_token_ttl(emu: Emulator) -> None:
    emu.set_provider_token_ttl("google-oauth2", 5)
    emu.reset()
    assert emu.state.provider_ttl("google-oauth2") == 3600
    with pytest.raises(ValueError, match="unknown connection"):
        emu.set_provider_token_ttl("myspace", 10)
