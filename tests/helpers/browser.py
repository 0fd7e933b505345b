"""What a browser does: follow redirects through the emulator, fill its pages, hold cookies."""

from __future__ import annotations

import base64
import re
import zlib
from typing import Any
from urllib.parse import urlsplit

import requests
from flask import Flask
from flask.testing import FlaskClient

from flask_token_vault import TokenVault
from tests.helpers import TIMEOUT

_INPUT = re.compile(r"<input\b[^>]*>", re.I)
_ATTR = re.compile(r'(\w+)="([^"]*)"')


def form_fields(html: str) -> dict[str, str]:
    """Return the name -> value of every input in an HTML page."""
    fields: dict[str, str] = {}
    for tag in _INPUT.findall(html):
        attrs = dict(_ATTR.findall(tag))
        if "name" in attrs:
            fields[attrs["name"]] = attrs.get("value", "")
    return fields


def csrf(client: FlaskClient) -> str:
    """Return the session's form token, as the sign-out page shows it."""
    return form_fields(client.get("/auth/logout").get_data(as_text=True))["csrf_token"]


def follow_to_emulator(client: FlaskClient, path: str) -> str:
    """GET ``path`` on the app and follow its redirects until one leaves for the emulator."""
    response = client.get(path)
    for _ in range(5):
        assert response.status_code == 302, response.get_data(as_text=True)
        location = response.headers["Location"]
        if location.startswith("http"):
            return location
        response = client.get(location)
    raise AssertionError("no redirect to the emulator")


def back_to_app(client: FlaskClient, emulator_answer: requests.Response) -> Any:
    """Follow the emulator's redirect back into the app (the test client's ``localhost``)."""
    assert emulator_answer.status_code == 302, emulator_answer.text
    back = urlsplit(emulator_answer.headers["Location"])
    assert back.netloc == "localhost", emulator_answer.headers["Location"]
    return client.get(back.path + "?" + back.query)


def emulator_redirect(url: str) -> str:
    """Let the emulator answer ``url`` (auto-login on) and return where it sends the browser."""
    answer = requests.get(url, allow_redirects=False, timeout=TIMEOUT)
    assert answer.status_code == 302, answer.text
    return str(answer.headers["Location"])


def through_emulator(client: FlaskClient, url: str) -> Any:
    """Let the emulator answer ``url`` (auto-login on) and follow its redirect into the app."""
    return back_to_app(client, requests.get(url, allow_redirects=False, timeout=TIMEOUT))


def sign_in_via_page(
    client: FlaskClient,
    authorize_url: str,
    email: str = "alice@example.com",
    action: str = "allow",
    account: str = "",
) -> Any:
    """Fill the emulator's login page like a person would and bring the answer back to the app."""
    page = requests.get(authorize_url, timeout=TIMEOUT)
    assert page.status_code == 200, page.text
    fields = form_fields(page.text)
    fields.update(email=email, name=email.split("@")[0].title(), action=action)
    if "account" in fields or account:
        fields["account"] = account
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(authorize_url))
    answer = requests.post(origin + "/u/login", data=fields, allow_redirects=False, timeout=TIMEOUT)
    return back_to_app(client, answer)


def browser_login(
    client: FlaskClient, path: str, email: str = "alice@example.com", account: str = ""
) -> Any:
    """Visit ``path``, go through login/connect on the emulator's page, return the final answer."""
    callback = sign_in_via_page(client, follow_to_emulator(client, path), email, account=account)
    assert callback.status_code == 302, callback.get_data(as_text=True)
    return client.get(callback.headers["Location"])


def session_cookie(client: FlaskClient) -> str | None:
    """Return the value of the client's session cookie, if it has one."""
    cookie = client.get_cookie("session")
    return cookie.value if cookie is not None else None


def held_cookie(client: FlaskClient) -> str:
    """Return the value of the client's session cookie, which it must have."""
    value = session_cookie(client)
    assert value is not None, "the client holds no session cookie"
    return value


def cookie_payload(client: FlaskClient) -> str:
    """Return the decoded (signed, not encrypted) payload of the session cookie."""
    value = held_cookie(client)
    payload = value.lstrip(".").split(".")[0]
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    return (zlib.decompress(raw) if value.startswith(".") else raw).decode()


def whoami(client: FlaskClient) -> str | None:
    """Return the ``sub`` the app sees signed in for ``client``, or ``None``."""
    answer = client.get("/whoami")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    sub = answer.get_json()["sub"]
    return sub if isinstance(sub, str) else None


def log_out(app: Flask, client: FlaskClient, timeout: float = 30.0) -> None:
    """Sign out with the page's form (its CSRF token); wait for the app's revocations at Auth0."""
    answer = client.post("/auth/logout", data={"csrf_token": csrf(client)})
    assert answer.status_code == 302, answer.get_data(as_text=True)
    assert TokenVault.state(app).wait_for_revocations(timeout=timeout)


def client_with_cookie(app: Flask, cookie: str | None) -> FlaskClient:
    """Return a new client of ``app`` holding session cookie ``cookie``: another tab, or a thief."""
    client = app.test_client()
    client.set_cookie("session", cookie or "")
    return client
