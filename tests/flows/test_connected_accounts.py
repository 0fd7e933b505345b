"""Connected Accounts in the web flow (My Account API), and disconnecting from the app."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import SplitResult, parse_qs, urlsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from flask_token_vault import (
    InvalidRequest,
    TokenVault,
    connect_url,
    disconnect,
    my_connectable_connections,
    my_connected_accounts,
)
from flask_token_vault_emulator import Emulator
from flask_token_vault_pytest.testing import login_as
from tests.helpers import TIMEOUT
from tests.helpers.apps import (
    CAL_READ,
    CAL_WRITE,
    app_clock,
    cached_token,
    holding_a_token,
    make_app,
)
from tests.helpers.browser import (
    back_to_app,
    cookie_payload,
    csrf,
    emulator_redirect,
    follow_to_emulator,
    form_fields,
    through_emulator,
)
from tests.helpers.oauth import access_token, bearer, my_account_access_token, token_request


def ca_app(emu: Emulator, **config: Any) -> Flask:
    config.setdefault("TOKEN_VAULT_CONNECT_FLOW", "connected_accounts")
    # The extra scope is declared (optional): only declared scopes go into signed links.
    config.setdefault(
        "TOKEN_VAULT_CONNECTIONS",
        {
            "google-oauth2": {
                "scopes": ["openid", "email", "profile"],
                "optional_scopes": ["https://extra.example/scope"],
            },
            "windowslive": {"scopes": ["User.Read"]},
        },
    )
    app = make_app(emu, **config)

    @app.get("/accounts")
    def accounts() -> Any:
        return [a.to_dict() for a in my_connected_accounts()]

    @app.get("/signed-connect")
    def signed_connect() -> str:
        return connect_url("google-oauth2", [CAL_READ, "https://extra.example/scope"], next="/")

    @app.post("/drop/<connection>")
    def drop(connection: str) -> Any:
        return {"removed": disconnect(connection)}

    return app


def turn_on_connected_accounts(emu: Emulator, *names: str) -> None:
    for name in names or ("google-oauth2", "windowslive"):
        emu.state.connections[name].connected_accounts = {"active": True}


def signed_in(
    emu: Emulator,
    email: str,
    grants: dict[str, list[str]] | None = None,
    *,
    auto_login: bool = True,
    consent: bool = True,
) -> tuple[Flask, FlaskClient]:
    """Turn Connected Accounts on and sign ``email`` in to a new app (auto-login at Auth0)."""
    turn_on_connected_accounts(emu)
    app = ca_app(emu)
    client = app.test_client()
    login_as(client, emu, email, grants)
    if auto_login:
        emu.set_auto_login(email, consent=consent)
    return app, client


def connect_callback(client: FlaskClient, path: str) -> SplitResult:
    """Visit ``path`` until the app asks to connect; return where the emulator sends the user."""
    return urlsplit(emulator_redirect(follow_to_emulator(client, path)))


def complete_by_hand(
    emu: Emulator, session: Any, back: SplitResult, email: str, code_verifier: str
) -> requests.Response:
    """Complete the pending ``session`` at the My Account API directly, with ``code_verifier``."""
    token = my_account_access_token(emu, email, "create:me:connected_accounts")
    return requests.post(
        emu.url + "/me/v1/connected-accounts/complete",
        json={
            "auth_session": session.auth_session,
            "connect_code": parse_qs(back.query)["connect_code"][0],
            "redirect_uri": session.redirect_uri,
            "code_verifier": code_verifier,
        },
        headers=bearer(token),
        timeout=TIMEOUT,
    )


# -- the whole flow ---------------------------------------------------------------------------


def test_connect_complete_exchange_list_delete(emu: Emulator) -> None:
    app = ca_app(emu)
    with app.app_context():
        from flask_token_vault import management_client

        assert management_client().enable_connected_accounts("google-oauth2") is True
    client = app.test_client()
    user_id = login_as(client, emu, "gia@example.com")
    emu.set_auto_login("gia@example.com")

    # connect: the decorator sends the browser to connect, which asks the My Account API.
    consent = follow_to_emulator(client, "/calendar?week=3")
    target = urlsplit(consent)
    assert target.path == "/connected-accounts/connect"
    assert "ticket" in parse_qs(target.query)
    (session,) = emu.state.connect_sessions.values()
    assert session.connection == "google-oauth2" and CAL_READ in session.scopes
    assert session.redirect_uri == "http://localhost/auth/connect/callback"
    # What the app keeps of the pending connection is encrypted in its cookie.
    payload = cookie_payload(client)
    assert session.auth_session not in payload and "verifier" not in payload

    # complete: Auth0 sends the browser back with a connect_code; the app finishes the job.
    done = through_emulator(client, consent)
    assert done.status_code == 302 and done.headers["Location"] == "/calendar?week=3"

    # exchange: the vault now holds the account.
    page = client.get("/calendar?week=3")
    assert page.status_code == 200, page.get_data(as_text=True)
    assert page.get_json()["items"][0]["id"] == "gia@example.com"
    assert emu.exchange_count(user_id, "google-oauth2") == 1

    # list: through the My Account API, and the Management API sees the same account.
    listed = client.get("/accounts").get_json()
    assert [a["connection"] for a in listed] == ["google-oauth2"]
    assert listed[0]["id"].startswith("cac_") and CAL_READ in listed[0]["scopes"]
    assert emu.state.tokensets_for(user_id)[0].account_id == listed[0]["id"]

    # delete: the disconnect button removes it from the vault and from the app's cache.
    answer = client.post(
        "/auth/disconnect/google-oauth2",
        data={"csrf_token": csrf(client)},
        headers={"Accept": "application/json"},
    )
    assert answer.status_code == 200 and answer.get_json() == {
        "connection": "google-oauth2",
        "removed": 1,
    }
    assert client.get("/accounts").get_json() == []
    gone = client.get("/calendar", headers={"Accept": "application/json"})
    assert gone.status_code == 401
    assert gone.get_json()["error"] == "federated_connection_refresh_token_not_found"


def test_consent_page_by_hand_with_another_account(emu: Emulator) -> None:
    _, client = signed_in(emu, "hal@example.com", auto_login=False)
    consent = follow_to_emulator(client, "/calendar")
    page = requests.get(consent, timeout=TIMEOUT)
    assert page.status_code == 200 and "Connect Google" in page.text
    fields = form_fields(page.text)
    # The user is the one the app signed in; the page only asks which Google account.
    assert "Signed in as <strong>hal@example.com</strong>" in page.text
    assert "email" not in fields and "account" in fields
    fields.update(account="hal.work@example.com", action="allow")
    answer = requests.post(
        emu.url + "/u/login", data=fields, allow_redirects=False, timeout=TIMEOUT
    )
    done = back_to_app(client, answer)
    assert done.headers["Location"] == "/calendar"
    assert client.get("/calendar").get_json()["items"][0]["id"] == "hal.work@example.com"
    # The ticket was used up: the page cannot be submitted twice.
    again = requests.post(emu.url + "/u/login", data=fields, timeout=TIMEOUT)
    assert again.status_code == 400


def test_denying_at_the_consent_page_is_a_clear_error(emu: Emulator) -> None:
    _, client = signed_in(emu, "ida@example.com", consent=False)
    consent = follow_to_emulator(client, "/calendar")
    answer = through_emulator(client, consent)
    assert answer.status_code == 403 and b"access_denied" in answer.data
    assert b'href="/auth/connect/google-oauth2?next=%2Fcalendar" id="retry"' in answer.data
    assert emu.state.tokensets_for(emu.user_id_for("ida@example.com")) == []


def test_a_forged_or_replayed_callback_is_refused(emu: Emulator) -> None:
    _, client = signed_in(emu, "jo@example.com")
    back = connect_callback(client, "/calendar")
    query = parse_qs(back.query)
    forged = client.get(
        back.path, query_string={"connect_code": query["connect_code"][0], "state": "forged"}
    )
    assert forged.status_code == 400 and b"state_mismatch" in forged.data
    assert client.get(back.path + "?" + back.query).status_code == 302
    replay = client.get(back.path + "?" + back.query)
    assert replay.status_code == 400 and b"state_mismatch" in replay.data
    assert len(emu.state.tokensets_for(emu.user_id_for("jo@example.com"))) == 1


def test_a_wrong_code_verifier_is_refused_by_auth0(emu: Emulator) -> None:
    """The emulator checks PKCE: a completion with another verifier gets a 400 problem."""
    _, client = signed_in(emu, "kai@example.com")
    back = connect_callback(client, "/calendar")
    (session,) = emu.state.connect_sessions.values()
    verifier = "not-the-verifier-" + "x" * 40
    answer = complete_by_hand(emu, session, back, "kai@example.com", verifier)
    assert answer.status_code == 400
    assert answer.json()["detail"] == "The code_verifier does not match the code_challenge."
    assert emu.state.tokensets_for(emu.user_id_for("kai@example.com")) == []


def test_a_connection_left_pending_too_long_is_refused(emu: Emulator) -> None:
    app, client = signed_in(emu, "kit@example.com")
    clock = app_clock(app)
    back = connect_callback(client, "/calendar")
    clock.advance(901)
    late = client.get(back.path + "?" + back.query, headers={"Accept": "application/json"})
    assert late.status_code == 400 and late.get_json()["error"] == "link_expired"
    assert emu.state.tokensets_for(emu.user_id_for("kit@example.com")) == []


def test_a_sign_in_state_does_not_finish_a_connection(emu: Emulator) -> None:
    _, client = signed_in(emu, "lev@example.com")
    back = connect_callback(client, "/calendar")
    authorize = client.get("/auth/login?next=/").headers["Location"]
    sign_in_state = parse_qs(urlsplit(authorize).query)["state"][0]
    code = parse_qs(back.query)["connect_code"][0]
    crossed = client.get(back.path, query_string={"connect_code": code, "state": sign_in_state})
    assert crossed.status_code == 400 and b"state_mismatch" in crossed.data
    assert client.get(back.path + "?" + back.query).status_code == 302


# -- the connect route's rules in this flow ---------------------------------------------------


def test_reconsent_asks_for_granted_plus_required_through_connected_accounts(
    emu: Emulator,
) -> None:
    _, client = signed_in(emu, "lea@example.com", {"google-oauth2": [CAL_READ]})
    consent = follow_to_emulator(client, "/calendar/write")
    assert urlsplit(consent).path == "/connected-accounts/connect"
    (session,) = emu.state.connect_sessions.values()
    assert {CAL_READ, CAL_WRITE} <= set(session.scopes)
    done = through_emulator(client, consent)
    assert done.headers["Location"] == "/calendar/write"
    assert client.get("/calendar/write").get_json() == {"ok": True}


def test_not_signed_in_connect_goes_through_login_first(emu: Emulator) -> None:
    app = ca_app(emu)
    answer = app.test_client().get("/auth/connect/google-oauth2?next=/calendar")
    assert answer.status_code == 302
    target = urlsplit(answer.headers["Location"])
    assert target.path == "/auth/login"
    assert parse_qs(target.query)["next"] == ["/auth/connect/google-oauth2?next=/calendar"]


def test_unsigned_scopes_outside_the_configuration_are_refused(emu: Emulator) -> None:
    _, client = signed_in(emu, "max@example.com", auto_login=False)
    answer = client.get("/auth/connect/google-oauth2?scope=https://extra.example/scope")
    assert answer.status_code == 400
    assert emu.state.connect_sessions == {}
    signed = client.get("/signed-connect").get_data(as_text=True)
    assert client.get(signed).status_code == 302
    (session,) = emu.state.connect_sessions.values()
    assert "https://extra.example/scope" in session.scopes


def test_without_a_my_account_policy_the_error_says_what_to_enable(emu: Emulator) -> None:
    emu.state.clients[emu.client_id].my_account_scopes = []
    _, client = signed_in(emu, "ned@example.com", auto_login=False)
    answer = client.get("/auth/connect/google-oauth2", headers={"Accept": "application/json"})
    assert answer.status_code == 500
    body = answer.get_json()
    assert body["error"] == "access_denied"
    assert "Multi-Resource Refresh Token" in body["remedy"]
    assert "My Account API token" in body["error_description"]


def test_connected_accounts_off_on_the_connection_is_a_typed_error(emu: Emulator) -> None:
    app = ca_app(emu)
    client = app.test_client()
    login_as(client, emu, "ola@example.com")
    answer = client.get("/auth/connect/google-oauth2", headers={"Accept": "application/json"})
    assert answer.status_code == 400
    body = answer.get_json()
    assert body["error"] == "connected_accounts_disabled"
    assert "Connected Accounts is not enabled" in body["error_description"]


def test_a_connect_drops_the_cached_tokens_of_that_connection(emu: Emulator) -> None:
    turn_on_connected_accounts(emu)
    app = ca_app(emu)
    client, user_id = holding_a_token(app, emu, "pia@example.com")
    assert cached_token(app, user_id, scopes=(CAL_READ,)) is not None
    emu.set_auto_login("pia@example.com")
    consent = follow_to_emulator(client, "/auth/connect/google-oauth2?next=/calendar")
    through_emulator(client, consent)
    assert cached_token(app, user_id, scopes=(CAL_READ,)) is None


# -- disconnecting in the default (authorize) flow --------------------------------------------


def test_disconnect_button_deletes_the_tokenset_and_the_cached_token(emu: Emulator) -> None:
    app = make_app(emu)
    client = app.test_client()
    user_id = login_as(
        client, emu, "quinn@example.com", {"google-oauth2": [CAL_READ], "windowslive": []}
    )
    assert client.get("/calendar").status_code == 200
    assert cached_token(app, user_id, scopes=(CAL_READ,)) is not None
    answer = client.post(
        "/auth/disconnect/google-oauth2", data={"csrf_token": csrf(client), "next": "/settings"}
    )
    assert answer.status_code == 302 and answer.headers["Location"] == "/settings"
    assert cached_token(app, user_id, scopes=(CAL_READ,)) is None
    assert [t.connection for t in emu.state.tokensets_for(user_id)] == ["windowslive"]
    body = client.get("/calendar", headers={"Accept": "application/json"}).get_json()
    assert body["error"] == "federated_connection_refresh_token_not_found"


def test_disconnect_needs_the_form_token(emu: Emulator) -> None:
    app = make_app(emu)
    client = app.test_client()
    user_id = login_as(client, emu, "ray@example.com", {"google-oauth2": [CAL_READ]})
    answer = client.post("/auth/disconnect/google-oauth2", data={"csrf_token": "forged"})
    assert answer.status_code == 400 and b"csrf_failed" in answer.data
    assert len(emu.state.tokensets_for(user_id)) == 1


def test_disconnect_refuses_connections_the_site_does_not_offer(emu: Emulator) -> None:
    app = make_app(emu)
    client = app.test_client()
    login_as(client, emu, "sam@example.com", {"google-oauth2": [CAL_READ]})
    answer = client.post("/auth/disconnect/github", data={"csrf_token": csrf(client)})
    assert answer.status_code == 400


def test_disconnect_signed_out_is_login_required(emu: Emulator) -> None:
    app = make_app(emu)
    client = app.test_client()
    with client.session_transaction() as session:
        session["_token_vault_csrf"] = "t" * 43
    answer = client.post(
        "/auth/disconnect/google-oauth2",
        data={"csrf_token": "t" * 43},
        headers={"Accept": "application/json"},
    )
    assert answer.status_code == 401 and answer.get_json()["error"] == "login_required"


def test_disconnect_helper_counts_what_it_removed(emu: Emulator) -> None:
    app = ca_app(emu, TOKEN_VAULT_CONNECT_FLOW="authorize")
    client = app.test_client()
    login_as(client, emu, "tia@example.com", {"google-oauth2": [CAL_READ]})
    emu.connect_account("tia@example.com", "google-oauth2", account="tia.work@example.com")
    assert client.post("/drop/windowslive").get_json() == {"removed": 0}
    assert client.post("/drop/google-oauth2").get_json() == {"removed": 2}
    assert emu.state.tokensets_for(emu.user_id_for("tia@example.com")) == []


def test_disconnect_without_management_access_is_a_typed_error(emu: Emulator) -> None:
    emu.add_client("no-mgmt", "no-mgmt-secret", management_scopes=["read:clients"])
    app = make_app(emu, AUTH0_CLIENT_ID="no-mgmt", AUTH0_CLIENT_SECRET="no-mgmt-secret")
    client = app.test_client()
    emu.connect_account("uma@example.com", "google-oauth2", [CAL_READ])
    refresh_token = emu.issue_refresh_token("uma@example.com", client_id="no-mgmt")
    from flask_token_vault._session import SESSION_KEY, make_record

    with client.session_transaction() as session:
        session[SESSION_KEY] = make_record(
            TokenVault.state(app), {"sub": emu.user_id_for("uma@example.com")}, refresh_token
        )
    answer = client.post(
        "/auth/disconnect/google-oauth2",
        data={"csrf_token": csrf(client)},
        headers={"Accept": "application/json"},
    )
    assert answer.status_code == 500
    body = answer.get_json()
    assert body["error"] == "insufficient_scope" and body["upstream_status"] == 403
    assert "Management API" in body["remedy"]
    assert json.dumps(body).find(refresh_token) == -1


def test_my_account_api_checks_audience_and_scope(emu: Emulator) -> None:
    refresh = {
        "grant_type": "refresh_token",
        "refresh_token": emu.issue_refresh_token("val@example.com"),
    }
    url = emu.url + "/me/v1/connected-accounts/accounts"
    login_token = access_token(emu, refresh)
    wrong = requests.get(url, headers=bearer(login_token), timeout=TIMEOUT)
    assert wrong.status_code == 401 and wrong.json()["title"] == "Unauthorized"
    read_only = access_token(
        emu, {**refresh, "audience": emu.url + "/me/", "scope": "read:me:connected_accounts"}
    )
    listed = requests.get(url, headers=bearer(read_only), timeout=TIMEOUT)
    assert listed.status_code == 200 and listed.json() == {"accounts": []}
    refused = requests.delete(url + "/cac_abc", headers=bearer(read_only), timeout=TIMEOUT)
    assert refused.status_code == 403
    assert (
        refused.json()["detail"] == "The access token lacks the scope delete:me:connected_accounts."
    )
    other = token_request(
        emu, {**refresh, "audience": "https://api.example.com/", "scope": "read:things"}
    )
    assert other.status_code == 403 and other.json()["error"] == "access_denied"


# -- the connect request's scopes -------------------------------------------------------------


def test_connect_without_configured_scopes_sends_no_scopes_field(emu: Emulator) -> None:
    turn_on_connected_accounts(emu)
    # Google configured too: the test app's views need it.
    app = ca_app(emu, TOKEN_VAULT_CONNECTIONS={"windowslive": {}, "google-oauth2": {}})
    client = app.test_client()
    login_as(client, emu, "wes@example.com")
    answer = client.get("/auth/connect/windowslive")
    assert answer.status_code == 302, answer.get_data(as_text=True)
    (session,) = emu.state.connect_sessions.values()
    assert session.scopes_sent is False and session.scopes == []


def test_the_emulator_refuses_an_empty_scopes_list_as_auth0_does(emu: Emulator) -> None:
    turn_on_connected_accounts(emu)
    token = my_account_access_token(emu, "xia@example.com", "create:me:connected_accounts")
    body = {
        "connection": "google-oauth2",
        "redirect_uri": "http://localhost/auth/connect/callback",
        "state": "s" * 20,
        "code_challenge": "c" * 43,
        "code_challenge_method": "S256",
    }
    for scopes, status in (([], 400), (["x"] * 101, 400), (["openid"], 201)):
        answer = requests.post(
            emu.url + "/me/v1/connected-accounts/connect",
            json={**body, "scopes": scopes},
            headers=bearer(token),
            timeout=TIMEOUT,
        )
        assert answer.status_code == status, answer.text
        if status == 400:
            problem = answer.json()
            assert problem["validation_errors"][0]["field"] == "scopes"
            assert set(problem) == {"type", "status", "title", "detail", "validation_errors"}


def test_connect_with_101_scopes_fails_before_any_http_call(emu: Emulator) -> None:
    turn_on_connected_accounts(emu)
    many = [f"https://example.com/scope/{i}" for i in range(101)]
    app = ca_app(
        emu, TOKEN_VAULT_CONNECTIONS={"google-oauth2": {"scopes": many}, "windowslive": {}}
    )
    client = app.test_client()
    login_as(client, emu, "yan@example.com")
    # A fault any request to Auth0 would use up: it must still be there afterwards.
    emu.add_fault("*", status=503, times=1)
    answer = client.get("/auth/connect/google-oauth2", headers={"Accept": "application/json"})
    assert answer.status_code == 400
    body = answer.get_json()
    assert body["error"] == "too_many_scopes" and "101 scopes" in body["error_description"]
    assert len(emu.state.faults) == 1
    assert emu.stats()["token_requests"] == {}
    # The client refuses it too, before calling the API.
    with pytest.raises(InvalidRequest, match="at most 100"):
        TokenVault.state(app).my_account.connect(
            "not-a-token",
            connection="google-oauth2",
            redirect_uri="http://localhost/auth/connect/callback",
            state="s",
            code_challenge="c",
            scopes=many,
        )
    assert len(emu.state.faults) == 1


# -- connections the user can connect ---------------------------------------------------------


def test_my_connectable_connections_follows_every_page(emu: Emulator) -> None:
    turn_on_connected_accounts(emu)
    for i in range(23):
        emu.add_connection(f"extra-{i:02d}", default_scopes=["read"])
        emu.state.connections[f"extra-{i:02d}"].connected_accounts = {"active": True}
    emu.add_connection("not-offered")  # Connected Accounts off: not listed
    app = ca_app(emu)

    @app.get("/connectable")
    def connectable() -> Any:
        return [c.to_dict() for c in my_connectable_connections()]

    client = app.test_client()
    login_as(client, emu, "zed@example.com")
    listed = client.get("/connectable").get_json()
    names = [c["name"] for c in listed]
    assert len(names) == 25 and names == sorted(names)
    assert "not-offered" not in names and "Username-Password-Authentication" not in names
    google = next(c for c in listed if c["name"] == "google-oauth2")
    assert google == {
        "name": "google-oauth2",
        "strategy": "google-oauth2",
        "scopes": ["openid", "email", "profile"],
    }


def test_the_connections_listing_pages_and_checks_its_scope(emu: Emulator) -> None:
    turn_on_connected_accounts(emu)
    url = emu.url + "/me/v1/connected-accounts/connections"
    read = my_account_access_token(emu, "amy@example.com", "read:me:connected_accounts")
    first = requests.get(url, params={"take": "1"}, headers=bearer(read), timeout=TIMEOUT).json()
    assert [c["name"] for c in first["connections"]] == ["google-oauth2"]
    second = requests.get(
        url,
        params={"take": "1", "from": first["next"]},
        headers=bearer(read),
        timeout=TIMEOUT,
    ).json()
    assert [c["name"] for c in second["connections"]] == ["windowslive"] and "next" not in second
    create = my_account_access_token(emu, "amy@example.com", "create:me:connected_accounts")
    refused = requests.get(url, headers=bearer(create), timeout=TIMEOUT)
    assert refused.status_code == 403 and refused.json()["status"] == 403


# -- the My Account API's answers -------------------------------------------------------------


def test_completing_twice_is_a_409_conflict(emu: Emulator) -> None:
    _, client = signed_in(emu, "bo@example.com")
    back = connect_callback(client, "/calendar")
    (session,) = emu.state.connect_sessions.values()
    assert client.get(back.path + "?" + back.query).status_code == 302  # the app completes it
    again = complete_by_hand(emu, session, back, "bo@example.com", "v" * 43)
    assert again.status_code == 409
    assert again.json() == {
        "type": "https://auth0.com/api-errors/conflict",
        "status": 409,
        "title": "Conflict",
        "detail": "This connected account request was already completed.",
    }


def test_every_my_account_error_is_the_problem_document(emu: Emulator) -> None:
    token = my_account_access_token(emu, "cy@example.com", "create:me:connected_accounts")
    auth = bearer(token)
    base = emu.url + "/me/v1/connected-accounts"
    answers = {
        404: requests.get(base + "/nowhere", headers=auth, timeout=TIMEOUT),
        405: requests.put(base + "/connect", headers=auth, timeout=TIMEOUT),
        415: requests.post(base + "/connect", data="x=1", headers=auth, timeout=TIMEOUT),
        401: requests.get(base + "/accounts", timeout=TIMEOUT),
    }
    for status, answer in answers.items():
        assert answer.status_code == status, answer.text
        assert answer.headers["Content-Type"].startswith("application/json")
        problem = answer.json()
        assert set(problem) == {"type", "status", "title", "detail"}
        assert problem["status"] == status and problem["type"].startswith("https://")


# -- a tenant that refuses the chosen flow: a clear error, not a loop -------------------------


def test_sign_in_flow_on_a_connected_accounts_tenant_stops_with_the_fix(emu: Emulator) -> None:
    """The tenant stores nothing at sign-in: the second trip to connect is an error page."""
    for connection in emu.state.connections.values():
        connection.options = {}
        connection.connected_accounts = {"active": True}
    emu.set_auto_login("dee@example.com")
    app = make_app(emu)
    client = app.test_client()
    authorize = follow_to_emulator(client, "/calendar")
    assert parse_qs(urlsplit(authorize).query)["connection"] == ["google-oauth2"]
    done = through_emulator(client, authorize)
    assert done.headers["Location"] == "/calendar"
    page = client.get("/calendar")
    assert page.status_code == 500
    assert b"connect_not_stored" in page.data
    assert b"TOKEN_VAULT_CONNECT_FLOW = &#39;connected_accounts&#39;" in page.data
    as_json = client.get("/calendar", headers={"Accept": "application/json"})
    # The mark is used up: the next visit may try connecting again.
    assert as_json.status_code == 401


def test_a_connect_that_stores_the_account_clears_the_mark(emu: Emulator) -> None:
    _, client = signed_in(emu, "eve@example.com")
    consent = follow_to_emulator(client, "/calendar")
    through_emulator(client, consent)
    assert "_token_vault_connected" in cookie_payload(client)
    assert client.get("/calendar").status_code == 200
    assert "_token_vault_connected" not in cookie_payload(client)
    # Disconnected later: connecting again is offered, no error.
    assert client.post("/drop/google-oauth2").get_json() == {"removed": 1}
    assert client.get("/calendar").status_code == 302


def test_connect_refused_by_the_tenant_names_the_fix(emu: Emulator) -> None:
    app = ca_app(emu)  # Connected Accounts is off on the default tenant's connections
    client = app.test_client()
    login_as(client, emu, "fay@example.com")
    body = client.get("/calendar/write", headers={"Accept": "application/json"}).get_json()
    connect = client.get(body["connect_url"], headers={"Accept": "application/json"})
    assert connect.status_code == 400
    remedy = connect.get_json()["remedy"]
    assert "flask token-vault setup" in remedy and "'authorize'" in remedy
