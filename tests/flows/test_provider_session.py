"""ProviderSession keeps what the app sets on it, against the emulator's fake Google API."""

from __future__ import annotations

from typing import Any

import requests
from requests.adapters import HTTPAdapter

from flask_token_vault import provider_session
from flask_token_vault._state import get_state
from flask_token_vault_emulator import Emulator
from tests.helpers.apps import CAL_READ, alice_client, make_app

CALENDARS = "/calendar/v3/users/me/calendarList"


class Noting(HTTPAdapter):
    """A real adapter that keeps each request it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        self.sent.append(request)
        return super().send(request, *args, **kwargs)


class ApiKey(requests.auth.AuthBase):
    """Sign each request with a key header, as some provider APIs ask beside the token."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["X-Api-Key"] = "key-1"
        return request


def _sent_through_the_app_s_adapter(emu: Emulator) -> tuple[list[int], list[Any]]:
    """Call the calendar list twice from a view; return the statuses and what the adapter sent."""
    app = make_app(emu)
    adapter = Noting()
    statuses: list[int] = []

    @app.get("/calendars")
    def calendars() -> Any:
        with provider_session("google-oauth2", [CAL_READ]) as google:
            google.headers["X-Goog-User-Project"] = "demo-project"
            google.headers["Authorization"] = "Bearer not-the-provider-token"
            google.auth = ApiKey()
            google.mount(emu.google_api_base, adapter)
            statuses.append(google.get(CALENDARS).status_code)
        return "ok"

    client = alice_client(app, emu)
    assert client.get("/calendars").status_code == 200
    emu.revoke_provider_tokens(email="alice@example.com", connection="google-oauth2")
    assert client.get("/calendars").status_code == 200
    return statuses, adapter.sent


def test_the_app_s_headers_auth_and_adapter_carry_the_provider_token(emu: Emulator) -> None:
    statuses, sent = _sent_through_the_app_s_adapter(emu)
    assert statuses == [200, 200]
    # Then a revoked token: a 401, one renewal, and the same call again, all through the adapter.
    assert len(sent) == 3 and emu.exchange_count() == 2
    for request in sent:
        assert request.url == emu.google_api_base + CALENDARS
        assert request.headers["X-Goog-User-Project"] == "demo-project"
        assert request.headers["X-Api-Key"] == "key-1"
        assert request.headers["Authorization"].startswith("Bearer ")
        assert request.headers["Authorization"] != "Bearer not-the-provider-token"
    first, revoked, renewed = (r.headers["Authorization"] for r in sent)
    assert first == revoked != renewed


def test_a_request_s_own_options_apply_through_the_app_s_pool(emu: Emulator) -> None:
    app = make_app(emu)

    @app.get("/pool")
    def pool() -> Any:
        google = provider_session("google-oauth2", [CAL_READ])
        url = emu.google_api_base + CALENDARS
        shared = google.get_adapter(url) is get_state().transport.http.get_adapter(url)
        answer = google.get(CALENDARS, headers={"X-Request-Id": "r-1"}, auth=ApiKey())
        return {
            "shared": shared,
            "status": answer.status_code,
            "request_id": answer.request.headers.get("X-Request-Id"),
            "api_key": answer.request.headers.get("X-Api-Key"),
            "user_agent": answer.request.headers.get("User-Agent"),
            "cookies": len(google.cookies),
        }

    body = alice_client(app, emu).get("/pool").get_json()
    assert body == {
        "shared": True,
        "status": 200,
        "request_id": "r-1",
        "api_key": "key-1",
        "user_agent": "Flask-Token-Vault",
        "cookies": 0,
    }
