"""Connected Accounts: what the user can connect, the My Account API's answers, a refused flow."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from flask_token_vault import (
    my_connectable_connections,
)
from flask_token_vault_emulator import Emulator
from flask_token_vault_pytest.testing import login_as
from tests.helpers import TIMEOUT
from tests.helpers.apps import (
    make_app,
)
from tests.helpers.browser import (
    cookie_payload,
    follow_to_emulator,
    through_emulator,
)
from tests.helpers.connected_accounts import (
    ca_app,
    complete_by_hand,
    connect_callback,
    signed_in,
    turn_on_connected_accounts,
)
from tests.helpers.oauth import bearer, my_account_access_token

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
