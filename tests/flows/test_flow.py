"""The whole path: login with connection_scope, encrypted refresh token, exchange, provider API."""

from __future__ import annotations

import base64
import json
import zlib
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_token_vault import TokenVault, get_provider_token_set, provider_token_required
from flask_token_vault_emulator import Emulator
from flask_token_vault_emulator.state.tenant import Connection
from flask_token_vault_pytest.testing import login_as
from tests.helpers.apps import CAL_READ, CAL_WRITE, alice_client, holding_a_token, make_app
from tests.helpers.browser import browser_login, follow_to_emulator, sign_in_via_page


def _cookie_payload(client: FlaskClient) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None
    value = cookie.value
    compressed = value.startswith(".")
    payload = value.lstrip(".").split(".")[0]
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    return (zlib.decompress(raw) if compressed else raw).decode()


def test_new_visitor_logs_in_with_connection_scope_and_sees_calendar(
    client: FlaskClient, emu: Emulator
) -> None:
    authorize = follow_to_emulator(client, "/calendar")
    query = parse_qs(urlsplit(authorize).query)
    assert query["connection"] == ["google-oauth2"]
    assert CAL_READ in query["connection_scope"][0].split(",")
    assert query["access_type"] == ["offline"] and query["prompt"] == ["consent"]
    assert "offline_access" in query["scope"][0].split()
    assert query["code_challenge_method"] == ["S256"] and query["nonce"][0]

    back = sign_in_via_page(client, authorize, "alice@example.com")
    assert back.status_code == 302 and back.headers["Location"] == "/calendar"
    page = client.get("/calendar")
    assert page.status_code == 200, page.get_data(as_text=True)
    items = page.get_json()["items"]
    assert items and items[0]["id"] == "alice@example.com"
    assert emu.exchange_count(connection="google-oauth2") == 1


def test_refresh_token_is_not_readable_in_the_cookie(client: FlaskClient, emu: Emulator) -> None:
    browser_login(client, "/calendar")
    payload = _cookie_payload(client)
    session = json.loads(payload)
    assert session["_token_vault"]["sub"] == emu.user_id_for("alice@example.com")
    issued = [rt for rt in emu.state.refresh_tokens]
    assert issued, "the emulator issued a refresh token"
    for refresh_token in issued:
        assert refresh_token not in payload
        assert refresh_token not in client.get_cookie("session").value  # type: ignore[union-attr]


def test_second_call_in_request_and_next_request_reuse_the_token(
    client: FlaskClient, emu: Emulator
) -> None:
    browser_login(client, "/calendar")
    for _ in range(3):
        assert client.get("/calendar").status_code == 200
    # The decorator and the view share one exchange, and later requests hit the cache.
    assert emu.exchange_count() == 1


def test_async_view_is_supported(client: FlaskClient, emu: Emulator) -> None:
    browser_login(client, "/calendar")
    answer = client.get("/async-calendar")
    assert answer.status_code == 200 and answer.get_json()["token_length"] > 10


def test_not_logged_in_browser_is_sent_to_sign_in_through_the_connection(
    client: FlaskClient,
) -> None:
    answer = client.get("/calendar?week=2")
    assert answer.status_code == 302
    target = urlsplit(answer.headers["Location"])
    assert target.path == "/auth/connect/google-oauth2"
    query = parse_qs(target.query)
    assert query["next"] == ["/calendar?week=2"] and query["scope"] == [CAL_READ]


def test_not_logged_in_json_client_gets_401(client: FlaskClient) -> None:
    answer = client.get("/calendar", headers={"Accept": "application/json"})
    assert answer.status_code == 401
    body = answer.get_json()
    assert body["error"] == "login_required"
    assert body["connection"] == "google-oauth2"
    assert body["required_scopes"] == [CAL_READ]
    assert body["connect_url"].startswith("http://localhost/auth/connect/google-oauth2?")


def test_account_not_connected_redirects_to_connect(client: FlaskClient, emu: Emulator) -> None:
    browser_login(client, "/calendar")  # connects google only
    answer = client.get("/me")
    assert answer.status_code == 302
    target = urlsplit(answer.headers["Location"])
    assert target.path == "/auth/connect/windowslive"
    assert parse_qs(target.query)["scope"] == ["User.Read"]
    json_answer = client.get("/me", headers={"Accept": "application/json"})
    assert json_answer.status_code == 401
    body = json_answer.get_json()
    assert body["error"] == "federated_connection_refresh_token_not_found"
    assert body["connection"] == "windowslive" and body["required_scopes"] == ["User.Read"]
    assert "/auth/connect/windowslive?" in body["connect_url"]


def test_connecting_a_second_provider_then_calling_it(client: FlaskClient, emu: Emulator) -> None:
    browser_login(client, "/calendar")
    answer = browser_login(client, "/me")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_json()["mail"] == "alice@example.com"


def test_missing_scope_asks_for_granted_plus_required(client: FlaskClient, emu: Emulator) -> None:
    browser_login(client, "/calendar")
    answer = client.get("/calendar/write")
    assert answer.status_code == 302
    query = parse_qs(urlsplit(answer.headers["Location"]).query)
    asked = set(query["scope"][0].split())
    assert {CAL_READ, CAL_WRITE, "openid", "email", "profile"} <= asked
    body = client.get("/calendar/write", headers={"Accept": "application/json"}).get_json()
    assert body["error"] == "insufficient_scope"
    assert set(body["required_scopes"]) == asked
    # Consenting brings the user back with both scopes.
    callback = sign_in_via_page(client, follow_to_emulator(client, "/calendar/write"))
    assert callback.headers["Location"] == "/calendar/write"
    assert client.get("/calendar/write").get_json() == {"ok": True}


def test_tampered_cookie_reads_as_logged_out(client: FlaskClient, emu: Emulator) -> None:
    browser_login(client, "/calendar")
    cookie = client.get_cookie("session")
    assert cookie is not None
    client.set_cookie("session", cookie.value[:-3] + "AAA")
    answer = client.get("/calendar", headers={"Accept": "application/json"})
    assert answer.status_code == 401 and answer.get_json()["error"] == "login_required"


def test_cookie_from_another_secret_reads_as_logged_out(emu: Emulator) -> None:
    first = make_app(emu)
    other = make_app(emu, SECRET_KEY="another-secret-key-0123456789abcdef")
    client = first.test_client()
    browser_login(client, "/calendar")
    cookie = client.get_cookie("session")
    assert cookie is not None
    stranger = other.test_client()
    stranger.set_cookie("session", cookie.value)
    answer = stranger.get("/calendar", headers={"Accept": "application/json"})
    assert answer.status_code == 401


def test_session_signed_but_with_foreign_refresh_token_reads_as_logged_out(
    app: Flask, emu: Emulator
) -> None:
    client = app.test_client()
    with client.session_transaction() as session:
        session["_token_vault"] = {"v": 1, "sub": "auth0|x", "rt": "gAAAAA-not-ours", "at": 1}
    answer = client.get("/calendar", headers={"Accept": "application/json"})
    assert answer.status_code == 401


def test_logout_clears_session_and_goes_to_auth0(client: FlaskClient, emu: Emulator) -> None:
    browser_login(client, "/calendar")
    page = client.get("/auth/logout")
    assert page.status_code == 200 and b"csrf_token" in page.data
    token = page.get_data(as_text=True).split('name="csrf_token" value="')[1].split('"')[0]
    answer = client.post("/auth/logout", data={"csrf_token": token})
    assert answer.status_code == 302
    target = urlsplit(answer.headers["Location"])
    assert target.path == "/v2/logout"
    assert parse_qs(target.query)["client_id"] == [emu.client_id]
    assert client.get("/calendar", headers={"Accept": "application/json"}).status_code == 401


def test_logout_without_token_is_refused(client: FlaskClient, emu: Emulator) -> None:
    browser_login(client, "/calendar")
    answer = client.post("/auth/logout", data={})
    assert answer.status_code == 400 and b"csrf_failed" in answer.data
    assert client.get("/calendar").status_code == 200


@pytest.mark.parametrize(
    "next_value", ["//evil.example", "https://evil.example/", "/\\evil.example", "javascript:x"]
)
def test_login_refuses_offsite_next(client: FlaskClient, next_value: str) -> None:
    answer = client.get("/auth/login", query_string={"next": next_value})
    assert answer.status_code == 400


def test_login_refuses_unsigned_extra_scope(client: FlaskClient) -> None:
    answer = client.get(
        "/auth/connect/google-oauth2", query_string={"scope": "https://mail.google.com/"}
    )
    assert answer.status_code == 400
    assert b"not requested by this site" in answer.data


def test_login_refuses_unknown_connection(client: FlaskClient) -> None:
    assert client.get("/auth/connect/github").status_code == 400
    assert client.get("/auth/login?connection=github").status_code == 400


def test_forged_state_is_refused(client: FlaskClient, emu: Emulator) -> None:
    answer = client.get("/auth/callback?code=abc&state=forged")
    assert answer.status_code == 400 and b"state" in answer.data


def _start_sign_in(client: FlaskClient) -> dict[str, str]:
    """Start a sign-in; return the query of the authorize URL it sends the browser to."""
    query = parse_qs(urlsplit(client.get("/auth/login?next=/").headers["Location"]).query)
    return {name: values[0] for name, values in query.items()}


def test_a_pending_sign_in_is_encrypted_in_the_cookie(client: FlaskClient) -> None:
    query = _start_sign_in(client)
    payload = _cookie_payload(client)
    assert query["nonce"] not in payload and "verifier" not in payload
    assert query["code_challenge"] not in payload


def test_the_session_keeps_the_newest_three_pending_sign_ins(client: FlaskClient) -> None:
    states = [_start_sign_in(client)["state"] for _ in range(4)]

    def callback_error(state: str) -> str:
        # An answer from another issuer is refused only once its sign-in was found.
        answer = client.get(
            "/auth/callback",
            query_string={"state": state, "code": "c", "iss": "https://other.example/"},
            headers={"Accept": "application/json"},
        )
        return str(answer.get_json()["error"])

    assert [callback_error(state) for state in states] == [
        "state_mismatch",
        "issuer_mismatch",
        "issuer_mismatch",
        "issuer_mismatch",
    ]
    # Each answer took its sign-in out of the session, whatever it was.
    assert callback_error(states[3]) == "state_mismatch"


def test_denied_consent_is_a_clear_403(client: FlaskClient, emu: Emulator) -> None:
    authorize = follow_to_emulator(client, "/calendar")
    answer = sign_in_via_page(client, authorize, action="deny")
    assert answer.status_code == 403 and b"access_denied" in answer.data


def test_decorator_login_hint_picks_the_account_and_goes_into_the_connect_link(
    emu: Emulator,
) -> None:
    from flask import jsonify, request

    from flask_token_vault import get_provider_token, provider_token_required

    app = make_app(emu)

    @app.get("/work-calendar")
    @provider_token_required(
        "google-oauth2", scopes=[CAL_READ], login_hint=lambda: request.args.get("account")
    )
    def work_calendar() -> Any:
        token = get_provider_token("google-oauth2", login_hint=request.args.get("account"))
        return jsonify(length=len(token))

    client = alice_client(app, emu)
    emu.connect_account("alice@example.com", "google-oauth2", [CAL_READ], account="w@corp.example")
    assert client.get("/work-calendar?account=w@corp.example").status_code == 200
    missing = client.get("/work-calendar?account=other@corp.example")
    assert missing.status_code == 302
    query = parse_qs(urlsplit(missing.headers["Location"]).query)
    assert query["login_hint"] == ["other@corp.example"]
    authorize = client.get(missing.headers["Location"]).headers["Location"]
    assert parse_qs(urlsplit(authorize).query)["login_hint"] == ["other@corp.example"]
    assert emu.exchange_count() == 1


def test_login_asks_a_server_side_session_for_a_new_id(emu: Emulator) -> None:
    """Session interfaces that can regenerate their id (Flask-Session) are asked to on login."""
    from flask.sessions import SecureCookieSessionInterface, SessionMixin

    regenerated: list[bool] = []

    class RegeneratingInterface(SecureCookieSessionInterface):
        def regenerate(self, session: SessionMixin) -> None:
            regenerated.append(True)

    app = make_app(emu)
    app.session_interface = RegeneratingInterface()
    client = app.test_client()
    assert regenerated == []
    browser_login(client, "/calendar")
    assert regenerated == [True]  # one sign-in (through the connection), one new id


def test_the_code_exchange_is_sent_once_even_when_auth0_fails(
    client: FlaskClient, emu: Emulator
) -> None:
    """A code is redeemed once: a failed code exchange is reported, not sent again."""
    authorize = follow_to_emulator(client, "/calendar")
    emu.add_fault("token:authorization_code", status=503, times=1, error="temporarily_unavailable")
    answer = sign_in_via_page(client, authorize, "alice@example.com")
    assert answer.status_code == 503
    assert emu.stats()["token_requests"].get("authorization_code", 0) == 1  # asked once


# -- the provider's API base ---------------------------------------------------------------------


def test_provider_api_url_places_a_path_on_the_api_base(emu: Emulator) -> None:
    from flask_token_vault import ConfigurationError, provider_api_url

    app = make_app(
        emu,
        TOKEN_VAULT_CONNECTIONS={
            "google-oauth2": {"api_base": emu.google_api_base},
            "windowslive": {"api_base": emu.graph_api_base},
            "github": {},
            "gitlab": {"api_base": "https://gitlab.example.com/api/v4"},
        },
    )
    with app.app_context():
        assert (
            provider_api_url("google-oauth2", "/calendar/v3/x") == emu.url + "/google/calendar/v3/x"
        )
        assert provider_api_url("windowslive", "v1.0/me") == emu.url + "/microsoft/v1.0/me"
        assert provider_api_url("gitlab", "/user") == "https://gitlab.example.com/api/v4/user"
        assert provider_api_url("gitlab") == "https://gitlab.example.com/api/v4"
        with pytest.raises(ConfigurationError, match=r"\['github'\]\['api_base'\]: is not set"):
            provider_api_url("github", "/user")
        with pytest.raises(ConfigurationError, match="'dropbox' is not configured"):
            provider_api_url("dropbox", "/files")
        with pytest.raises(ValueError, match="a path"):
            provider_api_url("google-oauth2", "https://evil.example/steal")


def test_provider_session_takes_paths_on_the_api(emu: Emulator) -> None:
    from flask import jsonify

    from flask_token_vault import provider_session

    app = make_app(emu)

    @app.get("/events")
    def events() -> Any:
        google = provider_session("google-oauth2", [CAL_READ])
        answer = google.get("/calendar/v3/calendars/primary/events")
        return jsonify(status=answer.status_code, url=answer.url, items=answer.json()["items"])

    client = alice_client(app, emu)
    body = client.get("/events").get_json()
    assert body["status"] == 200 and body["items"]
    assert body["url"] == emu.url + "/google/calendar/v3/calendars/primary/events"


# -- a connect keeps the signed-in user ----------------------------------------------------------


def test_connect_while_signed_in_keeps_the_user(client: FlaskClient, emu: Emulator) -> None:
    """The demo's snag: "Connect Google" must not sign the app in as someone else."""
    import requests

    from tests.helpers.browser import back_to_app, form_fields

    browser = requests.Session()  # keeps the emulator's cookie, as a browser does
    signed_in = client.get("/auth/login?next=/")
    page = browser.get(signed_in.headers["Location"], timeout=10)
    fields = {**form_fields(page.text), "email": "casey@example.com", "action": "allow"}
    back_to_app(client, browser.post(emu.url + "/u/login", data=fields, allow_redirects=False))
    casey = emu.user_id_for("casey@example.com")

    connect = follow_to_emulator(client, "/calendar")
    page = browser.get(connect, timeout=10)
    assert "Connect Google" in page.text
    assert "Signed in as <strong>casey@example.com</strong>" in page.text
    fields = {**form_fields(page.text), "action": "allow"}
    answer = back_to_app(
        client, browser.post(emu.url + "/u/login", data=fields, allow_redirects=False)
    )
    assert answer.headers["Location"] == "/calendar"
    with client.session_transaction() as session:
        assert session["_token_vault"]["sub"] == casey
    assert client.get("/calendar").get_json()["items"][0]["id"] == "casey@example.com"


def test_a_connect_answered_for_another_user_is_refused(client: FlaskClient, emu: Emulator) -> None:
    """Whatever the identity provider does, the app does not switch users during a connect."""

    alice = login_as(client, emu, "alice@example.com")
    authorize = follow_to_emulator(client, "/calendar")
    # No emulator cookie here: the page lets anyone sign in, as Google would for another account.
    answer = sign_in_via_page(client, authorize, "mallory@example.com")
    assert answer.status_code == 400
    assert b"account_mismatch" in answer.data
    assert b"That account belongs to someone else" in answer.data
    with client.session_transaction() as session:
        assert session["_token_vault"]["sub"] == alice
    json_answer = client.get("/calendar", headers={"Accept": "application/json"})
    assert json_answer.get_json()["error"] == "federated_connection_refresh_token_not_found"


def test_signing_in_again_may_switch_users(client: FlaskClient, emu: Emulator) -> None:
    """A plain sign-in (not a connect) is how a user changes accounts: it is not refused."""

    login_as(client, emu, "alice@example.com")
    start = client.get("/auth/login?next=/")
    answer = sign_in_via_page(client, start.headers["Location"], "bob@example.com")
    assert answer.status_code == 302
    with client.session_transaction() as session:
        assert session["_token_vault"]["sub"] == emu.user_id_for("bob@example.com")


def test_a_refresh_token_sealed_with_another_key_reads_as_signed_out(emu: Emulator) -> None:
    other = make_app(emu, TOKEN_VAULT_ENCRYPTION_KEYS=["another-encryption-key-0123456789"])
    client = alice_client(other, emu)
    app = make_app(emu)  # the same SECRET_KEY signs the cookie; other keys encrypt
    mine = app.test_client()
    mine.set_cookie("session", client.get_cookie("session").value)  # type: ignore[union-attr]
    answer = mine.get("/calendar", headers={"Accept": "application/json"})
    assert answer.status_code == 401 and answer.get_json()["error"] == "login_required"


def test_the_refresh_token_is_decrypted_only_when_an_exchange_needs_it(
    app: Flask, emu: Emulator
) -> None:
    client, sub = holding_a_token(app, emu)
    with client.session_transaction() as session:
        record = dict(session["_token_vault"])
        sealed = record["rt"]
        middle = len(sealed) // 2  # past the key id: the value still names our key
        record["rt"] = (
            sealed[:middle] + ("A" if sealed[middle] != "A" else "B") + sealed[middle + 1 :]
        )
        session["_token_vault"] = record
    # A warm request is served without opening the refresh token...
    assert client.get("/calendar").status_code == 200
    # ...and a cold one, which must exchange it, finds out and asks to sign in again.
    TokenVault.state(app).cache.invalidate_user(sub)
    answer = client.get("/calendar", headers={"Accept": "application/json"})
    assert answer.status_code == 401 and answer.get_json()["error"] == "session_unreadable"
    assert emu.exchange_count() == 1


def test_scopes_auth0_reports_joined_by_commas_count_one_by_one(emu: Emulator) -> None:
    """Auth0 joins a provider's granted scopes with the connection's separator (GitHub: ",")."""
    emu.state.connections["github"] = Connection(
        name="github",
        strategy="github",
        options={"federated_connections_access_tokens": {"active": True}},
        scope_separator=",",
        enabled_clients=[emu.client_id],
    )
    connections = {
        "google-oauth2": {"scopes": ["openid"], "api_base": emu.google_api_base},
        "windowslive": {"scopes": ["User.Read"], "api_base": emu.graph_api_base},
        "github": {"scopes": ["read:user"]},
    }
    app = make_app(emu, TOKEN_VAULT_CONNECTIONS=connections)

    @app.get("/repos")
    @provider_token_required("github", ["read:user", "repo"])
    def repos() -> Any:
        return {"scopes": list(get_provider_token_set("github").scopes or ())}

    client = app.test_client()
    login_as(client, emu, "alice@example.com", {"github": ["read:user", "repo"]})
    answer = client.get("/repos", headers={"Accept": "application/json"})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert sorted(answer.get_json()["scopes"]) == ["read:user", "repo"]
