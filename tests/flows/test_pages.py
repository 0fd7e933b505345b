"""The extension's own pages: the sign-out confirmation and the error page, and overriding them."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_token_vault import TokenVault, errors
from flask_token_vault.errors import TokenVaultError
from flask_token_vault_emulator import Emulator
from flask_token_vault_pytest.testing import login_as
from tests.docs.test_docs import error_classes
from tests.helpers.apps import make_app
from tests.helpers.browser import follow_to_emulator, form_fields, sign_in_via_page

# -- the error page -------------------------------------------------------------------------------


def test_denied_consent_shows_a_friendly_page_not_bad_request(
    client: FlaskClient, emu: Emulator
) -> None:
    answer = sign_in_via_page(client, follow_to_emulator(client, "/calendar"), action="deny")
    assert answer.status_code == 403  # refused, not a malformed request
    html = answer.get_data(as_text=True)
    assert "Bad Request" not in html
    assert "<title>Access not granted</title>" in html
    assert '<h1 id="error-title">Access not granted</h1>' in html
    assert "Access to your Google account was not granted." in html  # the connection named
    # "Try again" connects again and still comes back to the page the user wanted.
    retry = re.search(r'<a class="button" href="([^"]+)" id="retry">Try again</a>', html)
    assert retry is not None
    again = urlsplit(unescape(retry.group(1)))
    assert again.path == "/auth/connect/google-oauth2"
    assert parse_qs(again.query)["next"] == ["/calendar"]
    assert 'href="/" id="home"' in html  # a way on
    assert 'id="sign-in"' in html  # not signed in: offered
    assert "<style>" in html  # styled, not browser defaults


def test_error_page_of_a_signed_in_user_offers_no_sign_in(
    client: FlaskClient, emu: Emulator
) -> None:
    login_as(client, emu, "alice@example.com")
    answer = client.get("/auth/connect/github")
    assert answer.status_code == 400
    html = answer.get_data(as_text=True)
    assert '<h1 id="error-title">This link did not work</h1>' in html
    assert 'id="sign-in"' not in html


def test_json_clients_still_get_json(client: FlaskClient) -> None:
    answer = client.get("/auth/connect/github", headers={"Accept": "application/json"})
    assert answer.status_code == 400 and answer.get_json()["error"] == "invalid_request"


# Every class the package defines, built with what its constructor needs.
ERRORS: list[TokenVaultError] = [
    errors.LoginRequired(),
    errors.AccountNotConnected(),
    errors.ReconsentRequired(),
    errors.InsufficientScope(connection="c", granted=["a"], required=["b"]),
    errors.Misconfigured(),
    errors.ExchangeRejected(),
    errors.RateLimited(),
    errors.Auth0Unavailable(),
    errors.ProviderUnavailable(),
    errors.CacheUnavailable(),
    errors.InvalidRequest(),
    errors.CallbackError(),
    errors.ManagementError(),
    errors.ManagementNotFound(),
    errors.ManagementForbidden(),
    errors.ManagementRateLimited(),
    errors.ClientNotEligible("cid", ["it is public"]),
    errors.MyAccountError(),
    errors.TokensetsGone(),
    errors.InvalidAccessToken(),
    errors.InsufficientApiScope(granted=["read:a"], required=["read:b"]),
    errors.ApiClientMisconfigured(),
    errors.PrivilegedAccessDenied(cause="ip_not_allowed", connection="google-oauth2"),
    errors.TokenVaultInterrupt(
        connection="google-oauth2", scopes=["openid"], connect_url="/auth/connect/g", tool="t"
    ),
]


def test_every_error_class_is_listed_here() -> None:
    defined = {cls for cls in error_classes() if issubclass(cls, TokenVaultError)}
    assert defined - {TokenVaultError, *errors.GROUPS} == {type(error) for error in ERRORS}


@pytest.mark.parametrize("error", ERRORS, ids=lambda error: type(error).__name__)
def test_every_error_has_a_heading_for_people(error: TokenVaultError) -> None:
    title = error.page_title
    assert title != "Something went wrong"
    assert title != error.name  # not werkzeug's "Bad Request", "Unauthorized"...


# -- the sign-out page ----------------------------------------------------------------------------


def test_sign_out_page_is_styled_with_the_user_and_a_cancel(
    client: FlaskClient, emu: Emulator
) -> None:
    login_as(client, emu, "alice@example.com", name="Alice Liddell")
    html = client.get("/auth/logout?next=/calendar").get_data(as_text=True)
    assert "<style>" in html and "<h1>Sign out?</h1>" in html
    assert "Alice Liddell" in html and "alice@example.com" in html
    assert '<a class="button secondary" href="/calendar" id="cancel">Cancel</a>' in html
    assert form_fields(html)["csrf_token"]


@pytest.mark.parametrize(
    ("path", "headers", "cancel"),
    [
        ("/auth/logout", {"Referer": "http://localhost/me?tab=1"}, "/me?tab=1"),
        ("/auth/logout", {"Referer": "https://evil.example/phish"}, "/"),
        ("/auth/logout?next=https://evil.example/", {}, "/"),
        ("/auth/logout?next=//evil.example", {}, "/"),
        ("/auth/logout", {}, "/"),
    ],
)
def test_cancel_goes_back_only_to_this_site(
    client: FlaskClient, emu: Emulator, path: str, headers: dict[str, str], cancel: str
) -> None:
    login_as(client, emu, "alice@example.com")
    html = client.get(path, headers=headers).get_data(as_text=True)
    assert f'href="{cancel}" id="cancel"' in html


# -- overriding the templates ---------------------------------------------------------------------


def app_with_templates(emu: Emulator, folder: Path, files: dict[str, str]) -> Flask:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    app = Flask(__name__, template_folder=str(folder))
    app.config.update(make_app(emu).config)
    TokenVault(app)
    return app


def test_an_app_gives_every_page_its_layout_by_overriding_base(
    emu: Emulator, tmp_path: Path
) -> None:
    app = app_with_templates(
        emu,
        tmp_path,
        {
            "token_vault/base.html": (
                "<html><title>{% block title %}{% endblock %} | Acme</title>"
                '<div class="acme">{% block content %}{% endblock %}</div></html>'
            )
        },
    )
    client = app.test_client()
    login_as(client, emu, "alice@example.com")
    logout = client.get("/auth/logout").get_data(as_text=True)
    assert "<title>Sign out | Acme</title>" in logout and 'id="cancel"' in logout
    error = client.get("/auth/connect/github").get_data(as_text=True)
    assert "<title>This link did not work | Acme</title>" in error


def test_an_app_overrides_one_page(emu: Emulator, tmp_path: Path) -> None:
    app = app_with_templates(
        emu,
        tmp_path,
        {"token_vault/error.html": "{{ title }} / {{ error.error }} / {{ home_url }}"},
    )
    answer = app.test_client().get("/auth/connect/github")
    assert answer.get_data(as_text=True) == "This link did not work / invalid_request / /"
