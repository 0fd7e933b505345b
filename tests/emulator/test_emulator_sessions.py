"""The emulator's Auth0 sessions: sid, /oauth/revoke, back-channel logout tokens, oidc_logout."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from flask import Flask, request
from joserfc import jwt

from flask_token_vault_emulator import Emulator
from tests.helpers import TIMEOUT
from tests.helpers.oauth import keyset, management_token, token_request
from tests.helpers.servers import LiveServer

ALICE = "alice@example.com"
EVENT = "http://schemas.openid.net/event/backchannel-logout"


def _receiver() -> tuple[Flask, list[str]]:
    """A tiny app that records the logout tokens posted to it."""
    app = Flask(__name__)
    received: list[str] = []

    @app.post("/logout")
    def logout() -> tuple[str, int]:
        received.append(request.form["logout_token"])
        return "", 200

    return app, received


def _claims(emu: Emulator, token: str) -> dict[str, Any]:
    keys = keyset(emu)
    return dict(jwt.decode(token, keys, algorithms=["RS256"]).claims)


def _revoke(emu: Emulator, **data: str) -> requests.Response:
    return requests.post(emu.url + "/oauth/revoke", data=data, timeout=TIMEOUT)


def test_revoke_a_refresh_token(emu: Emulator) -> None:
    token = emu.issue_refresh_token(ALICE)
    answer = _revoke(emu, client_id=emu.client_id, client_secret=emu.client_secret, token=token)
    assert answer.status_code == 200 and answer.content == b""
    assert not emu.refresh_token_active(token)
    # The exchange with it then fails, as Auth0's does.
    exchange = token_request(emu, {"grant_type": "refresh_token", "refresh_token": token})
    assert exchange.status_code == 403 and exchange.json()["error"] == "invalid_grant"


def test_revoke_answers_like_auth0(emu: Emulator) -> None:
    token = emu.issue_refresh_token(ALICE)
    unknown = _revoke(emu, client_id=emu.client_id, client_secret=emu.client_secret, token="x")
    assert unknown.status_code == 200  # RFC 7009: an unknown token is not an error
    missing = _revoke(emu, client_id=emu.client_id, client_secret=emu.client_secret)
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
    wrong = _revoke(emu, client_id=emu.client_id, client_secret="wrong", token=token)
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    emu.add_client("other", "other-secret")
    other = _revoke(emu, client_id="other", client_secret="other-secret", token=token)
    assert other.status_code == 200 and emu.refresh_token_active(token)
    assert emu.stats()["revocations"] == 2  # authenticated requests naming a token


def test_discovery_names_revocation_and_back_channel_logout(emu: Emulator) -> None:
    document = requests.get(emu.url + "/.well-known/openid-configuration", timeout=5).json()
    assert document["revocation_endpoint"] == emu.url + "/oauth/revoke"
    assert document["backchannel_logout_supported"] is True
    assert document["backchannel_logout_session_supported"] is True


def test_a_connect_in_the_same_browser_keeps_the_sid(emu: Emulator) -> None:
    emu.set_auto_login(ALICE)
    browser = requests.Session()
    params = {
        "client_id": emu.client_id,
        "redirect_uri": "http://127.0.0.1:9/cb",
        "response_type": "code",
        "scope": "openid offline_access",
        "state": "s",
    }
    answer = browser.get(emu.url + "/authorize", params=params, allow_redirects=False)
    assert answer.status_code == 302
    (sid,) = emu.sessions_for(ALICE)
    assert browser.cookies.get("auth0") == sid
    # Connecting Google while signed in goes on in the same Auth0 session.
    connect = {**params, "connection": "google-oauth2"}
    answer = browser.get(emu.url + "/authorize", params=connect, allow_redirects=False)
    assert answer.status_code == 302
    assert emu.sessions_for(ALICE) == [sid]
    browser.get(emu.url + "/v2/logout", timeout=TIMEOUT)
    assert emu.sessions_for(ALICE) == []
    assert browser.cookies.get("auth0") is None


def test_logout_tokens_are_what_auth0_sends(emu: Emulator) -> None:
    app, received = _receiver()
    with LiveServer(app) as live:
        emu.set_backchannel_logout_urls([live.url + "/logout"])
        emu.issue_refresh_token(ALICE)
        (sid,) = emu.sessions_for(ALICE)
        (delivery,) = emu.backchannel_logout(ALICE)
    assert delivery.status == 200 and delivery.sid == sid
    claims = _claims(emu, received[0])
    assert claims["iss"] == emu.issuer and claims["aud"] == emu.client_id
    assert claims["sub"] == emu.user_id_for(ALICE) and claims["sid"] == sid
    assert claims["events"] == {EVENT: {}} and "nonce" not in claims
    assert claims["exp"] - claims["iat"] == 120 and claims["jti"]
    assert emu.sessions_for(ALICE) == []


def test_a_user_without_a_session_gets_a_token_naming_only_sub(emu: Emulator) -> None:
    app, received = _receiver()
    with LiveServer(app) as live:
        emu.set_backchannel_logout_urls([live.url + "/logout"])
        answer = requests.post(
            emu.url + "/__emulator/backchannel-logout", json={"email": ALICE}, timeout=TIMEOUT
        )
    assert answer.status_code == 200
    assert [d["status"] for d in answer.json()["deliveries"]] == [200]
    claims = _claims(emu, received[0])
    assert claims["sub"] == emu.user_id_for(ALICE) and "sid" not in claims


def test_an_unreachable_url_is_recorded_not_retried(emu: Emulator) -> None:
    emu.set_backchannel_logout_urls(["http://127.0.0.1:9/logout"])
    emu.issue_refresh_token(ALICE)
    (delivery,) = emu.backchannel_logout(ALICE)
    assert delivery.status == 0 and delivery.error
    assert emu.stats()["backchannel_deliveries"][0]["error"] == delivery.error


def test_an_unknown_sid_is_a_400_from_the_control_api(emu: Emulator) -> None:
    answer = requests.post(
        emu.url + "/__emulator/backchannel-logout",
        json={"email": ALICE, "sid": "nope"},
        timeout=TIMEOUT,
    )
    assert answer.status_code == 400 and "no Auth0 session" in answer.json()["error"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"backchannel_logout_urls": ["http://app.example.com/logout"]}, "https"),
        ({"backchannel_logout_urls": "https://x"}, "backchannel_logout_urls"),
        ({"other": 1}, "Additional properties"),
        ("not an object", "object"),
    ],
)
def test_the_client_patch_checks_oidc_logout(emu: Emulator, value: Any, message: str) -> None:
    answer = requests.patch(
        f"{emu.url}/api/v2/clients/{emu.client_id}",
        json={"oidc_logout": value},
        headers={"Authorization": "Bearer " + management_token(emu)},
        timeout=TIMEOUT,
    )
    assert answer.status_code == 400 and message in answer.json()["message"]


def test_the_client_patch_replaces_oidc_logout_whole(emu: Emulator) -> None:
    headers = {"Authorization": "Bearer " + management_token(emu)}
    url = f"{emu.url}/api/v2/clients/{emu.client_id}"
    first = {
        "backchannel_logout_urls": ["https://a.example/logout"],
        "backchannel_logout_initiators": {"mode": "all"},
    }
    assert requests.patch(url, json={"oidc_logout": first}, headers=headers, timeout=5).ok
    second = {"backchannel_logout_urls": ["https://b.example/logout"]}
    assert requests.patch(url, json={"oidc_logout": second}, headers=headers, timeout=5).ok
    assert requests.get(url, headers=headers, timeout=5).json()["oidc_logout"] == second
