"""Helpers for the emulator's own tests: its login page, codes, provider tokens and fake APIs."""

from __future__ import annotations

from html.parser import HTMLParser

import requests

from flask_token_vault_emulator import Emulator
from tests.helpers import TIMEOUT
from tests.helpers.apps import CAL_READ
from tests.helpers.oauth import (
    authorize_request,
    redirect_query,
    vault_exchange,
)

CAL_EVENTS = "https://www.googleapis.com/auth/calendar.events"


# -- helpers -----------------------------------------------------------------------------------


class LoginPage(HTMLParser):
    """Read the emulator's login page: title, form, inputs, buttons and listed scopes."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.title = ""
        self.form_action = ""
        self.fields: dict[str, str] = {}
        self.ids: set[str] = set()
        self.buttons: dict[str, tuple[str, str, str]] = {}
        self.lists: dict[str, list[str]] = {}
        self._in_title = False
        self._list: str | None = None
        self._button: str | None = None
        self._text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {name: value or "" for name, value in attrs}
        if "id" in attr:
            self.ids.add(attr["id"])
        if tag == "title":
            self._in_title = True
        elif tag == "form":
            self.form_action = attr.get("action", "")
        elif tag == "input" and "name" in attr:
            self.fields[attr["name"]] = attr.get("value", "")
        elif tag == "button":
            self._button = attr.get("id", "")
            self.buttons[self._button] = (attr.get("name", ""), attr.get("value", ""), "")
            self._text = []
        elif tag == "ul":
            self._list = attr.get("id", "")
            self.lists[self._list] = []
        elif tag == "li":
            self._text = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag == "li" and self._list is not None:
            self.lists[self._list].append("".join(self._text).strip())
        elif tag == "ul":
            self._list = None
        elif tag == "button" and self._button is not None:
            name, value, _ = self.buttons[self._button]
            self.buttons[self._button] = (name, value, "".join(self._text).strip())
            self._button = None

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        self._text.append(data)


def submit(emu: Emulator, page: LoginPage, **fields: str) -> requests.Response:
    data = dict(page.fields)
    data.update(fields)
    return requests.post(
        emu.url + page.form_action, data=data, allow_redirects=False, timeout=TIMEOUT
    )


def login_code(
    emu: Emulator,
    email: str = "alice@example.com",
    account: str = "",
    challenge: str | None = None,
    **params: str | None,
) -> str:
    """Go through the login page and return the authorization code."""
    if challenge is not None:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    page = LoginPage(authorize_request(emu, **params).text)
    fields = {"email": email, "action": "allow"}
    if "account" in page.fields:
        fields["account"] = account
    return redirect_query(submit(emu, page, **fields))["code"]


def provider_token(
    emu: Emulator,
    email: str,
    connection: str = "google-oauth2",
    scopes: tuple[str, ...] = (CAL_READ,),
) -> str:
    emu.connect_account(email, connection, scopes)
    answer = vault_exchange(emu, emu.issue_refresh_token(email), connection)
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


def google_get(emu: Emulator, path: str, token: str | None, **params: str) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(emu.google_api_base + path, headers=headers, params=params, timeout=TIMEOUT)


def graph_get(emu: Emulator, path: str, token: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(emu.graph_api_base + path, headers=headers, timeout=TIMEOUT)


def v2_logout(
    emu: Emulator, return_to: str, browser: requests.Session | None = None
) -> requests.Response:
    """Sign out at the emulator's /v2/logout, asking to be sent to ``return_to``."""
    return (browser or requests).get(
        emu.url + "/v2/logout",
        params={"client_id": emu.client_id, "returnTo": return_to},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
