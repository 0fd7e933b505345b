"""When something is wrong: each error names the real cause and the fix, on the page and in the log.

A developer meets these in their first hours (a wrong secret, Auth0 down, a denied consent); each
test reproduces one as a user would and checks what they are told.
"""

from __future__ import annotations

import logging

import pytest
from flask import render_template_string

from flask_token_vault import current_user
from flask_token_vault_emulator import Emulator
from flask_token_vault_pytest.testing import login_as
from services.redis_servers import free_port
from tests.helpers.apps import CAL_READ, make_app
from tests.helpers.browser import sign_in_via_page

WRONG_SECRET = "not-the-secret-auth0-holds-0123"


def _sign_in_with_wrong_secret(emu: Emulator, **config: object) -> tuple[int, str]:
    app = make_app(emu, AUTH0_CLIENT_SECRET=WRONG_SECRET, **config)
    client = app.test_client()
    answer = sign_in_via_page(client, client.get("/auth/login").headers["Location"])
    return answer.status_code, answer.get_data(as_text=True)


def test_a_wrong_client_secret_is_named_in_the_log_and_hidden_from_visitors(
    emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "flask_token_vault")
    status, html = _sign_in_with_wrong_secret(emu, TESTING=False)
    # The app's own credentials were refused: a new sign-in cannot help, the operator must act.
    assert status == 500
    assert "the link you followed is stale" not in html
    assert "AUTH0_CLIENT_SECRET" not in html and "server's log" in html
    assert "invalid_client" in html  # the code, to quote to whoever runs the site
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("AUTH0_CLIENT_SECRET" in w and "token-vault doctor" in w for w in warnings)
    assert WRONG_SECRET not in caplog.text


def test_in_debug_the_page_names_the_refused_credentials(emu: Emulator) -> None:
    status, html = _sign_in_with_wrong_secret(emu, DEBUG=True, TESTING=False)
    assert status == 500
    assert "AUTH0_CLIENT_SECRET" in html and "token-vault doctor" in html
    assert WRONG_SECRET not in html


def test_an_outage_during_the_code_exchange_is_an_outage_with_a_retry(emu: Emulator) -> None:
    app = make_app(emu)
    client = app.test_client()
    location = client.get("/auth/login").headers["Location"]
    emu.add_fault(
        "token:authorization_code",
        status=503,
        body="<h1>Service Unavailable</h1>",
        content_type="text/html",
    )
    answer = sign_in_via_page(client, location)
    assert answer.status_code == 503
    html = answer.get_data(as_text=True)
    assert "malformed_answer" not in html and "http_503" in html
    assert "Sign-in is unavailable" not in html


def test_an_outage_on_an_app_page_offers_to_try_that_page_again(emu: Emulator) -> None:
    app = make_app(emu)
    client = app.test_client()
    login_as(client, emu, "olive@example.com", {"google-oauth2": [CAL_READ]})
    emu.add_fault("token:exchange", status=503, error="temporarily_unavailable", times=-1)
    answer = client.get("/calendar?week=2", headers={"Accept": "text/html"})
    assert answer.status_code == 503
    html = answer.get_data(as_text=True)
    assert '<a class="button" href="/calendar?week=2" id="retry">Try again</a>' in html
    assert "Sign-in is unavailable" not in html  # the user is signed in; Auth0 is what failed


def test_current_user_answers_flask_logins_names_when_nobody_is_signed_in(
    emu: Emulator,
) -> None:
    app = make_app(emu)
    template = (
        "{% if current_user.is_authenticated %}in:{{ current_user.get_id() }}"
        "{% else %}out{% endif %}"
    )
    client = app.test_client()

    @app.get("/who")
    def who() -> str:
        return render_template_string(template, current_user=current_user)

    assert client.get("/who").get_data(as_text=True) == "out"
    with app.test_request_context("/"):
        assert not current_user
        assert current_user.is_anonymous  # type: ignore[union-attr]
    sub = login_as(client, emu, "pat@example.com")
    assert client.get("/who").get_data(as_text=True) == f"in:{sub}"


def test_a_client_that_never_signed_in_is_asked_to_sign_in_not_to_sign_in_again(
    emu: Emulator,
) -> None:
    client = make_app(emu).test_client()
    body = client.get("/calendar", headers={"Accept": "application/json"}).get_json()
    assert body["error"] == "login_required"
    assert "again" not in body["remedy"].split(",")[0]
    assert body["remedy"] == "Sign in, then try again."


def test_signing_in_with_nothing_at_the_local_domain_is_a_styled_503(emu: Emulator) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    client = make_app(emu, AUTH0_DOMAIN=down).test_client()
    answer = client.get("/auth/login")  # not a redirect to a page that cannot load
    assert answer.status_code == 503
    html = answer.get_data(as_text=True)
    assert "<style>" in html
    assert f"Nothing answers at {down}: is the local Auth0 server running?" in html
