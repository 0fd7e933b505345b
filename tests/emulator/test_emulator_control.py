"""The emulator's provider APIs, faults, control API, logout and life cycle."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from typing import Any

import pytest
import requests

from flask_token_vault_emulator import Emulator
from tests.helpers import TIMEOUT
from tests.helpers.apps import CAL_READ
from tests.helpers.emulator import (
    CAL_EVENTS,
    google_get,
    graph_get,
    provider_token,
    v2_logout,
)
from tests.helpers.oauth import (
    TOKEN_VAULT_GRANT,
    assert_error,
    authorize_request,
    token_request,
    vault_exchange,
)

# -- provider APIs -----------------------------------------------------------------------------


def test_google_calendar_list_and_events(emu: Emulator) -> None:
    token = provider_token(emu, "bea@example.com")
    calendars = google_get(emu, "/calendar/v3/users/me/calendarList", token)
    assert calendars.status_code == 200
    body = calendars.json()
    assert body["kind"] == "calendar#calendarList"
    assert body["items"][0]["id"] == "bea@example.com" and body["items"][0]["primary"] is True

    events = google_get(emu, "/calendar/v3/calendars/primary/events", token).json()
    assert events["kind"] == "calendar#events"
    assert 3 <= len(events["items"]) <= 5
    first = events["items"][0]
    assert {"id", "summary", "start", "end", "htmlLink"} <= set(first)
    again = google_get(emu, "/calendar/v3/calendars/bea%40example.com/events", token).json()
    assert again["items"] == events["items"]  # deterministic, and the email works as calendarId
    limited = google_get(emu, "/calendar/v3/calendars/primary/events", token, maxResults="2")
    assert len(limited.json()["items"]) == 2
    future = google_get(
        emu, "/calendar/v3/calendars/primary/events", token, timeMin="2999-01-01T00:00:00Z"
    )
    assert future.json()["items"] == []
    other = google_get(emu, "/calendar/v3/calendars/someone@example.com/events", token)
    assert other.status_code == 404


def test_google_created_event_shows_up_in_listings(emu: Emulator) -> None:
    token = provider_token(emu, "cal@example.com", scopes=(CAL_EVENTS,))
    created = requests.post(
        emu.google_api_base + "/calendar/v3/calendars/primary/events",
        headers={"Authorization": f"Bearer {token}"},
        json={
            "summary": "Launch party",
            "start": {"dateTime": "2031-06-01T18:00:00Z"},
            "end": {"dateTime": "2031-06-01T21:00:00Z"},
        },
        timeout=TIMEOUT,
    )
    assert created.status_code == 200, created.text
    assert created.json()["summary"] == "Launch party"
    listed = google_get(
        emu, "/calendar/v3/calendars/primary/events", token, timeMin="2031-01-01T00:00:00Z"
    ).json()["items"]
    assert [event["id"] for event in listed] == [created.json()["id"]]
    assert listed[0]["start"]["dateTime"] == "2031-06-01T18:00:00Z"
    missing_end = requests.post(
        emu.google_api_base + "/calendar/v3/calendars/primary/events",
        headers={"Authorization": f"Bearer {token}"},
        json={"summary": "x", "start": {"dateTime": "2031-06-01T18:00:00Z"}},
        timeout=TIMEOUT,
    )
    assert missing_end.status_code == 400


def test_google_answers_401_and_403_in_its_own_shape(emu: Emulator) -> None:
    no_token = google_get(emu, "/calendar/v3/users/me/calendarList", None)
    assert no_token.status_code == 401
    error = no_token.json()["error"]
    assert error["code"] == 401 and error["status"] == "UNAUTHENTICATED"
    assert error["message"] == "Request had invalid authentication credentials."
    assert google_get(emu, "/calendar/v3/users/me/calendarList", "ya29.fake").status_code == 401

    basic = provider_token(emu, "dan@example.com", scopes=())
    lacking = google_get(emu, "/calendar/v3/users/me/calendarList", basic)
    assert lacking.status_code == 403
    assert lacking.json()["error"] == {
        "code": 403,
        "message": "Request had insufficient authentication scopes.",
        "errors": lacking.json()["error"]["errors"],
        "status": "PERMISSION_DENIED",
    }
    assert google_get(emu, "/oauth2/v3/userinfo", basic).json()["email"] == "dan@example.com"

    graph_token = provider_token(emu, "dan@example.com", "windowslive", ("Calendars.Read",))
    assert google_get(emu, "/oauth2/v3/userinfo", graph_token).status_code == 401


def test_graph_me_and_events(emu: Emulator) -> None:
    token = provider_token(emu, "eve@example.com", "windowslive", ("Calendars.Read",))
    me = graph_get(emu, "/v1.0/me", token)
    assert me.status_code == 200
    body = me.json()
    assert body["mail"] == body["userPrincipalName"] == "eve@example.com"
    assert body["id"] and body["displayName"] == "Eve" and body["jobTitle"]
    events = graph_get(emu, "/v1.0/me/events", token)
    assert events.status_code == 200
    assert events.json()["value"] and "subject" in events.json()["value"][0]


def test_graph_answers_401_and_403_in_its_own_shape(emu: Emulator) -> None:
    no_token = graph_get(emu, "/v1.0/me", None)
    assert no_token.status_code == 401
    assert no_token.json()["error"]["code"] == "InvalidAuthenticationToken"
    google_token = provider_token(emu, "fay@example.com")
    assert graph_get(emu, "/v1.0/me", google_token).status_code == 401

    user_read_only = provider_token(emu, "fay@example.com", "windowslive", ())
    assert graph_get(emu, "/v1.0/me", user_read_only).status_code == 200
    denied = graph_get(emu, "/v1.0/me/events", user_read_only)
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "Authorization_RequestDenied"
    assert denied.json()["error"]["message"] == "Insufficient privileges to complete the operation."


def test_revoked_provider_tokens_get_401_until_a_new_exchange(emu: Emulator) -> None:
    emu.connect_account("gus@example.com", "google-oauth2", [CAL_READ])
    refresh_token = emu.issue_refresh_token("gus@example.com")
    token = vault_exchange(emu, refresh_token).json()["access_token"]
    other = provider_token(emu, "hal@example.com")
    assert emu.revoke_provider_tokens(email="gus@example.com") == 1
    assert google_get(emu, "/calendar/v3/users/me/calendarList", token).status_code == 401
    assert google_get(emu, "/calendar/v3/users/me/calendarList", other).status_code == 200
    fresh = vault_exchange(emu, refresh_token).json()["access_token"]
    assert fresh != token
    assert google_get(emu, "/calendar/v3/users/me/calendarList", fresh).status_code == 200


# -- faults ------------------------------------------------------------------------------------


def test_fault_answers_status_and_body_for_the_given_times(emu: Emulator) -> None:
    emu.connect_account("ida@example.com", "google-oauth2", [CAL_READ])
    refresh_token = emu.issue_refresh_token("ida@example.com")
    emu.add_fault("token:exchange", status=503, body={"error": "temporarily_unavailable"}, times=2)
    for _ in range(2):
        answer = vault_exchange(emu, refresh_token)
        assert answer.status_code == 503
        assert answer.json() == {"error": "temporarily_unavailable"}
    assert vault_exchange(emu, refresh_token).status_code == 200
    stats = emu.stats()["exchanges"]
    assert (stats["succeeded"], stats["failed"], stats["total"]) == (1, 2, 3)


def test_fault_matches_by_grant_type(emu: Emulator) -> None:
    emu.add_fault("token:refresh_token", status=500)
    audience = {"grant_type": "client_credentials", "audience": "https://api.example.com"}
    assert token_request(emu, audience).status_code == 200  # another grant: untouched
    emu.connect_account("jay@example.com", "google-oauth2", [CAL_READ])
    refresh_token = emu.issue_refresh_token("jay@example.com")
    refresh = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    assert token_request(emu, refresh, as_json=True).status_code == 500


def test_fault_with_retry_after_and_oauth_error(emu: Emulator) -> None:
    emu.add_fault(
        "token",
        status=429,
        headers={"Retry-After": "1"},
        error="too_many_requests",
        error_description="Global limit has been reached",
    )
    answer = token_request(emu, {"grant_type": "client_credentials", "audience": "x"})
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "1"
    assert answer.json() == {
        "error": "too_many_requests",
        "error_description": "Global limit has been reached",
    }


def test_fault_with_a_raw_body(emu: Emulator) -> None:
    emu.add_fault("token", status=200, body='{"access_tok')
    truncated = token_request(emu, {"grant_type": "client_credentials", "audience": "x"})
    assert truncated.status_code == 200 and truncated.text == '{"access_tok'
    emu.add_fault(
        "discovery", status=502, body="<html>Bad gateway</html>", content_type="text/html"
    )
    page = requests.get(emu.url + "/.well-known/openid-configuration", timeout=TIMEOUT)
    assert page.status_code == 502 and page.headers["Content-Type"].startswith("text/html")
    assert page.text == "<html>Bad gateway</html>"


def test_fault_delay_slows_a_normal_answer(emu: Emulator) -> None:
    emu.add_fault("jwks", status=0, delay=0.3)
    started = time.monotonic()
    answer = requests.get(emu.url + "/.well-known/jwks.json", timeout=TIMEOUT)
    assert answer.status_code == 200 and answer.json()["keys"]
    assert time.monotonic() - started >= 0.3
    emu.add_fault("jwks", status=0, delay=1.0)
    with pytest.raises(requests.Timeout):
        requests.get(emu.url + "/.well-known/jwks.json", timeout=0.2)


def test_fault_drop_closes_the_connection(emu: Emulator) -> None:
    emu.add_fault("userinfo", drop=True)
    with pytest.raises(requests.ConnectionError):
        requests.get(emu.url + "/userinfo", timeout=TIMEOUT)
    assert requests.get(emu.url + "/userinfo", timeout=TIMEOUT).status_code == 401


def test_fault_until_cleared_and_wildcard_spare_the_control_api(emu: Emulator) -> None:
    emu.add_fault("*", status=500, times=-1)
    for _ in range(3):
        assert requests.get(emu.url + "/.well-known/jwks.json", timeout=TIMEOUT).status_code == 500
    stats = requests.get(emu.url + "/__emulator/stats", timeout=TIMEOUT)
    assert stats.status_code == 200
    cleared = requests.delete(emu.url + "/__emulator/faults", timeout=TIMEOUT)
    assert cleared.status_code == 200
    assert requests.get(emu.url + "/.well-known/jwks.json", timeout=TIMEOUT).status_code == 200


def test_provider_faults(emu: Emulator) -> None:
    token = provider_token(emu, "kay@example.com")
    emu.add_fault("google", status=503, body={"error": {"code": 503}})
    assert google_get(emu, "/calendar/v3/users/me/calendarList", token).status_code == 503
    assert google_get(emu, "/calendar/v3/users/me/calendarList", token).status_code == 200
    assert emu.stats()["provider_calls"]["google"] == {"503": 1, "200": 1}


def test_faults_over_the_control_api(emu: Emulator) -> None:
    added = requests.post(
        emu.url + "/__emulator/faults",
        json={"endpoint": "authorize", "status": 500, "body": "down", "content_type": "text/plain"},
        timeout=TIMEOUT,
    )
    assert added.status_code == 201
    listed = requests.get(emu.url + "/__emulator/faults", timeout=TIMEOUT).json()["faults"]
    assert [fault["endpoint"] for fault in listed] == ["authorize"]
    assert authorize_request(emu).text == "down"
    bad = requests.post(
        emu.url + "/__emulator/faults", json={"endpoint": "nowhere"}, timeout=TIMEOUT
    )
    assert bad.status_code == 400 and "unknown fault endpoint" in bad.json()["error"]
    with pytest.raises(ValueError, match="unknown fault endpoint"):
        emu.add_fault("nowhere")


# -- stats, reset and control API --------------------------------------------------------------


def test_stats_count_exchanges_requests_and_provider_calls(emu: Emulator) -> None:
    token = provider_token(emu, "lou@example.com")
    provider_token(emu, "lou@example.com")
    provider_token(emu, "max@example.com", "windowslive", ())
    vault_exchange(emu, emu.issue_refresh_token("ned@example.com"))  # not connected: fails
    google_get(emu, "/calendar/v3/users/me/calendarList", token)
    google_get(emu, "/calendar/v3/users/me/calendarList", "nope")

    stats = requests.get(emu.url + "/__emulator/stats", timeout=TIMEOUT).json()
    assert stats == emu.stats()
    assert stats["exchanges"]["total"] == 4 and stats["exchanges"]["failed"] == 1
    assert {
        (row["user_id"], row["connection"], row["count"])
        for row in stats["exchanges"]["by_user_connection"]
    } == {
        (emu.user_id_for("lou@example.com"), "google-oauth2", 2),
        (emu.user_id_for("max@example.com"), "windowslive", 1),
    }
    assert stats["token_requests"] == {TOKEN_VAULT_GRANT: 4}
    assert stats["provider_calls"]["google"] == {"200": 1, "401": 1}
    assert stats["users"] == 3 and stats["tokensets"] == 2
    assert emu.exchange_count(user_id=emu.user_id_for("lou@example.com")) == 2
    assert emu.exchange_count() == 3


def test_reset_forgets_everything_but_the_tenant_config(emu: Emulator) -> None:
    emu.add_client("kept-client", "kept-secret")
    try:
        token = provider_token(emu, "oli@example.com")
        refresh_token = emu.issue_refresh_token("oli@example.com")
        emu.set_auto_login("oli@example.com")
        emu.add_fault("jwks", times=-1)
        reset = requests.post(emu.url + "/__emulator/reset", timeout=TIMEOUT)
        assert reset.status_code == 200
        assert emu.stats()["users"] == 0 and emu.stats()["tokensets"] == 0
        assert emu.stats()["exchanges"]["total"] == 0
        assert emu.auto_login is None
        assert requests.get(emu.url + "/.well-known/jwks.json", timeout=TIMEOUT).status_code == 200
        assert_error(vault_exchange(emu, refresh_token), 401, "invalid_grant")
        assert google_get(emu, "/calendar/v3/users/me/calendarList", token).status_code == 401
        assert emu.state.get_client("kept-client") is not None
        assert set(emu.state.connections) >= {"google-oauth2", "windowslive"}
    finally:
        del emu.state.clients["kept-client"]


def test_control_api_drives_accounts_tokens_ttl_and_revocation(emu: Emulator) -> None:
    def control(path: str, body: dict[str, Any]) -> requests.Response:
        return requests.post(emu.url + "/__emulator/" + path, json=body, timeout=TIMEOUT)

    connected = control(
        "accounts",
        {"email": "pia@example.com", "connection": "google-oauth2", "scopes": [CAL_READ]},
    )
    assert connected.status_code == 200
    assert connected.json()["tokenset_id"].startswith("fcts_")
    assert connected.json()["user_id"] == emu.user_id_for("pia@example.com")
    issued = control("refresh-tokens", {"email": "pia@example.com"})
    refresh_token = issued.json()["refresh_token"]
    ttl = control("provider-token-ttl", {"connection": "google-oauth2", "seconds": 60})
    assert ttl.status_code == 200
    answer = vault_exchange(emu, refresh_token)
    assert answer.json()["expires_in"] == 60
    token = answer.json()["access_token"]

    revoked = control("revoke-provider-tokens", {"email": "pia@example.com"})
    assert revoked.json() == {"revoked": 1}
    assert google_get(emu, "/calendar/v3/users/me/calendarList", token).status_code == 401
    broken = control(
        "break-provider-refresh", {"email": "pia@example.com", "connection": "google-oauth2"}
    )
    assert broken.status_code == 200
    assert_error(
        vault_exchange(emu, refresh_token), 401, "federated_connection_refresh_token_flow_failed"
    )

    user = requests.get(emu.url + "/__emulator/users/pia@example.com", timeout=TIMEOUT).json()
    assert [t["connection"] for t in user["tokensets"]] == ["google-oauth2"]

    assert control("accounts", {"email": "pia@example.com"}).status_code == 400
    assert (
        control("accounts", {"email": "pia@example.com", "connection": "nope"}).status_code == 400
    )
    assert (
        control("provider-token-ttl", {"connection": "google-oauth2", "seconds": "x"}).status_code
        == 400
    )


# -- logout ------------------------------------------------------------------------------------


def test_logout_redirects_to_allowed_return_urls_only(emu: Emulator) -> None:
    back = v2_logout(emu, "http://localhost:5000/")
    assert back.status_code == 302 and back.headers["Location"] == "http://localhost:5000/"
    stranger = v2_logout(emu, "https://evil.example.com/")
    assert stranger.status_code == 200 and "Logged out" in stranger.text
    oidc = requests.get(
        emu.url + "/oidc/logout",
        params={
            "client_id": emu.client_id,
            "post_logout_redirect_uri": "http://127.0.0.1:5000/bye",
            "state": "s1",
        },
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert (
        oidc.status_code == 302 and oidc.headers["Location"] == "http://127.0.0.1:5000/bye?state=s1"
    )


# -- life cycle and CLI ------------------------------------------------------------------------


def test_start_is_idempotent_and_stop_frees_the_port() -> None:
    emulator = Emulator()
    with pytest.raises(RuntimeError):
        _ = emulator.url
    assert emulator.start() is emulator
    url = emulator.url
    assert emulator.start() is emulator and emulator.url == url
    assert requests.get(url + "/.well-known/jwks.json", timeout=TIMEOUT).status_code == 200
    emulator.stop()
    assert not emulator.running
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/.well-known/jwks.json", timeout=TIMEOUT)
    emulator.stop()  # a second stop is harmless


def test_command_line_prints_the_settings_and_stops_on_ctrl_c() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "flask_token_vault_emulator", "--port", "0", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 20)
        assert ready, "the emulator printed nothing"
        first = process.stdout.readline()
        assert first.startswith("Auth0 Token Vault emulator running at http://127.0.0.1:")
        url = first.rsplit(" ", 1)[1].strip()
        rest = [process.stdout.readline().rstrip("\n") for _ in range(13)]
        assert "emulator-client-id" in "\n".join(rest) and "emulator-client-secret" in "\n".join(
            rest
        )
        # The exact value to paste: with http://, since a bare host:port would mean https.
        assert f"  export AUTH0_DOMAIN={url}" in rest
        assert "  export AUTH0_CLIENT_ID=emulator-client-id" in rest
        assert not any(line.strip().startswith("domain:") for line in rest)
        discovery = requests.get(url + "/.well-known/openid-configuration", timeout=TIMEOUT)
        assert discovery.json()["issuer"] == url + "/"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
