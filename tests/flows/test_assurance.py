"""Authentication Assurance: a My Account API that wants a second factor, and the step-up."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import requests
from flask import Flask
from flask.testing import FlaskClient

from flask_token_vault_emulator import Emulator
from flask_token_vault_pytest.testing import FakeClock
from tests.helpers import TIMEOUT
from tests.helpers.browser import follow_to_emulator, through_emulator
from tests.helpers.connected_accounts import ca_app, turn_on_connected_accounts

EMAIL = "alice@example.com"
MFA = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"


def signed_in_without_mfa(emu: Emulator) -> tuple[Flask, FlaskClient]:
    turn_on_connected_accounts(emu)
    emu.set_tenant_features(assurance_policy=True)
    emu.set_auto_login(EMAIL)
    app = ca_app(emu)
    client = app.test_client()
    through_emulator(client, follow_to_emulator(client, "/auth/login?next=/"))
    return app, client


def test_a_json_call_gets_a_typed_error_with_the_step_up_link(emu: Emulator) -> None:
    _, client = signed_in_without_mfa(emu)
    answer = client.get("/accounts", headers={"Accept": "application/json"})
    assert answer.status_code == 401, answer.get_data(as_text=True)
    body = answer.get_json()
    assert body["error"] == "unmet_authentication_requirements"
    query = parse_qs(urlsplit(body["retry_url"]).query)
    assert query["acr_values"] == [MFA] and query["next"] == ["/accounts"]


def test_a_browser_connect_steps_up_then_connects(emu: Emulator) -> None:
    _, client = signed_in_without_mfa(emu)
    connect = "/auth/connect/google-oauth2?next=/"
    step_up = client.get(connect)
    assert step_up.status_code == 302
    assert urlsplit(step_up.headers["Location"]).path == "/auth/login"
    authorize = follow_to_emulator(client, connect)
    query = parse_qs(urlsplit(authorize).query)
    assert query["acr_values"] == [MFA] and query["prompt"] == ["login"]
    back = through_emulator(client, authorize)
    # Signed in again with a second factor, the browser goes back to the connect...
    assert back.status_code == 302 and back.headers["Location"] == connect
    # ...which the My Account API now allows: on to the consent page and back, connected.
    through_emulator(client, follow_to_emulator(client, connect))
    accounts = client.get("/accounts").get_json()
    assert [a["connection"] for a in accounts] == ["google-oauth2"]


def test_a_step_up_without_a_second_factor_is_refused(emu: Emulator) -> None:
    """Were Auth0 to skip the second factor, the callback would not take the sign-in."""
    _, client = signed_in_without_mfa(emu)
    authorize = follow_to_emulator(client, "/auth/connect/google-oauth2?next=/")
    weakened = authorize.replace("acr_values=", "ignored=")
    answer = through_emulator(client, weakened)
    assert answer.status_code == 400 and b"step_up_failed" in answer.data


# -- the emulator ------------------------------------------------------------------------------


def _me_token(emu: Emulator, refresh_token: str) -> requests.Response:
    return requests.post(
        emu.url + "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "audience": emu.url + "/me/",
            "scope": "read:me:connected_accounts",
            "client_id": emu.client_id,
            "client_secret": emu.client_secret,
        },
        timeout=TIMEOUT,
    )


def test_the_emulators_policy_wants_a_second_factor_within_15_minutes(
    emu: Emulator, emulator_clock: FakeClock
) -> None:
    emu.set_tenant_features(assurance_policy=True)
    plain = emu.issue_refresh_token(EMAIL)
    refused = _me_token(emu, plain)
    assert refused.status_code == 403
    assert refused.json()["error"] == "unmet_authentication_requirements"
    sid = emu.session_id_of(plain)
    assert sid is not None
    emu.state.browser_sessions[sid].mfa_at = emu.state.now()
    assert _me_token(emu, plain).status_code == 200
    emulator_clock.advance(901)
    assert _me_token(emu, plain).json()["error"] == "unmet_authentication_requirements"
    emu.set_tenant_features(assurance_policy=False)
    assert _me_token(emu, plain).status_code == 200
