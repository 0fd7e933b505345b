"""Connect links: only scopes the app declares are signed, for one user, until an expiry."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask import Flask
from flask.testing import FlaskClient

from flask_token_vault import TokenVault, connect_url
from flask_token_vault_emulator import Emulator
from flask_token_vault_pytest.testing import login_as
from tests.helpers.apps import CAL_READ, CAL_WRITE, alice_client, app_clock, make_app

GMAIL = "https://mail.google.com/"


def _link(client: FlaskClient, path: str = "/calendar/write") -> str:
    body = client.get(path, headers={"Accept": "application/json"}).get_json()
    return str(body["connect_url"])


def _scopes(url: str) -> set[str]:
    return set(parse_qs(urlsplit(url).query).get("scope", [""])[0].split())


def _relative(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + "?" + parts.query


def test_a_scope_granted_elsewhere_is_not_signed_into_the_link(
    client: FlaskClient, emu: Emulator
) -> None:
    """Alice consented to Gmail in another app: this app's link must not ask for it."""
    login_as(client, emu, "alice@example.com", {"google-oauth2": [CAL_READ, GMAIL]})
    link = _link(client)
    assert GMAIL not in _scopes(link)
    assert {CAL_READ, CAL_WRITE} <= _scopes(link)
    body = client.get("/calendar/write", headers={"Accept": "application/json"}).get_json()
    assert GMAIL not in body["required_scopes"]
    redirect = client.get("/calendar/write").headers["Location"]
    assert GMAIL not in _scopes(redirect)
    # And the link that is made works for her.
    assert client.get(_relative(link)).status_code == 302


def test_a_signed_link_for_an_undeclared_scope_is_refused(app: Flask, client: FlaskClient) -> None:
    with app.test_request_context():
        state = TokenVault.state(app)
        sig = state.links.sign("google-oauth2", [GMAIL], "", 2_000_000_000)
    answer = client.get(
        "/auth/connect/google-oauth2",
        query_string={"scope": GMAIL, "exp": "2000000000", "sig": sig},
    )
    assert answer.status_code == 400
    assert "not requested" in answer.get_data(as_text=True)


def test_undeclared_scopes_given_to_connect_url_are_left_out(app: Flask, emu: Emulator) -> None:
    with app.test_request_context():
        url = connect_url("google-oauth2", [CAL_WRITE, GMAIL], next="/")
    assert _scopes(url) == {CAL_WRITE}


def test_optional_scopes_are_declared(emu: Emulator) -> None:
    app = make_app(
        emu,
        TOKEN_VAULT_CONNECTIONS={
            "google-oauth2": {"scopes": ["openid"], "optional_scopes": [GMAIL]},
            "windowslive": {"scopes": ["User.Read"]},
        },
    )
    client = app.test_client()
    login_as(client, emu, "alice@example.com")
    with app.test_request_context():
        assert GMAIL in TokenVault.state(app).declared_scopes("google-oauth2")
    link = _made_for(client, app, [GMAIL])
    assert _scopes(link) == {GMAIL}
    assert client.get(_relative(link)).status_code == 302


def _made_for(client: FlaskClient, app: Flask, scopes: list[str]) -> str:
    """Return a connect link made during one of ``client``'s requests (so bound to its user)."""
    made: dict[str, str] = {}

    @app.get("/make-link")
    def make_link() -> Any:
        made["url"] = connect_url("google-oauth2", scopes, next="/")
        return "ok"

    client.get("/make-link")
    return made["url"]


def test_a_link_works_only_for_the_user_it_was_made_for(app: Flask, emu: Emulator) -> None:
    alice = app.test_client()
    login_as(alice, emu, "alice@example.com", {"google-oauth2": [CAL_READ]})
    link = _relative(_link(alice))
    mallory = app.test_client()
    login_as(mallory, emu, "mallory@example.com", {"google-oauth2": [CAL_READ]})
    answer = mallory.get(link)
    assert answer.status_code == 400
    assert answer.get_json() is None and "not requested" in answer.get_data(as_text=True)
    assert alice.get(link).status_code == 302


def test_a_link_handed_to_a_visitor_sends_them_to_sign_in_first(app: Flask, emu: Emulator) -> None:
    alice = app.test_client()
    login_as(alice, emu, "alice@example.com", {"google-oauth2": [CAL_READ]})
    link = _relative(_link(alice))
    visitor = app.test_client()
    answer = visitor.get(link)
    assert answer.status_code == 302
    assert urlsplit(answer.headers["Location"]).path == "/auth/login"
    # Signed in as someone else, the link is refused rather than asking for Alice's scopes.
    login_as(visitor, emu, "mallory@example.com")
    assert visitor.get(link).status_code == 400


def test_a_link_made_for_a_visitor_works_before_and_after_sign_in(
    client: FlaskClient, emu: Emulator
) -> None:
    answer = client.get("/calendar")  # not signed in: connect through Google, then come back
    link = answer.headers["Location"]
    assert "sig=" in link and "exp=" in link
    assert urlsplit(client.get(link).headers["Location"]).path == "/authorize"
    login_as(client, emu, "alice@example.com")
    assert urlsplit(client.get(link).headers["Location"]).path == "/authorize"


def test_a_link_expires(app: Flask, emu: Emulator) -> None:
    clock = app_clock(app)
    client = alice_client(app, emu)
    link = _relative(_link(client))
    clock.advance(3599)
    assert client.get(link).status_code == 302
    clock.advance(2)
    answer = client.get(link, headers={"Accept": "application/json"})
    assert answer.status_code == 400 and answer.get_json()["error"] == "link_expired"


def test_the_expiry_cannot_be_edited(app: Flask, emu: Emulator) -> None:
    client = alice_client(app, emu)
    link = _relative(_link(client))
    query = parse_qs(urlsplit(link).query)
    edited = link.replace("exp=" + query["exp"][0], "exp=" + str(int(query["exp"][0]) + 86400))
    assert client.get(edited).status_code == 400


def test_configured_scopes_need_no_signature(client: FlaskClient) -> None:
    answer = client.get("/auth/connect/google-oauth2", query_string={"scope": "openid email"})
    assert answer.status_code == 302
