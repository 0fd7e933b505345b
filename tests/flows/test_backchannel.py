"""Back-channel logout: Auth0's logout token ends the sessions it names, in every process."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from flask_wtf.csrf import CSRFProtect

from flask_token_vault import TokenVault, current_user, management_client
from flask_token_vault._session import SESSION_KEY
from flask_token_vault.admin.cli import cli
from flask_token_vault_emulator import Emulator
from flask_token_vault_emulator.signing import SigningKey, b64url_encode
from flask_token_vault_pytest.testing import emulator_config, login_as
from tests.helpers.apps import CAL_READ, app_clock, cached_token, make_app
from tests.helpers.browser import csrf, whoami
from tests.helpers.oauth import hs256_with_public_key
from tests.helpers.servers import LiveServer

JSON = {"Accept": "application/json"}
ALICE = "alice@example.com"
ROUTE = "/auth/backchannel-logout"


def _post(client: FlaskClient, token: str | None) -> Any:
    data = {} if token is None else {"logout_token": token}
    return client.post(ROUTE, data=data, headers={"Accept": "application/json"})


def _signed_in(app: Flask, emu: Emulator, email: str = ALICE) -> tuple[FlaskClient, str]:
    client = app.test_client()
    login_as(client, emu, email, {"google-oauth2": [CAL_READ]})
    (sid,) = emu.sessions_for(email)[-1:]
    return client, sid


def test_login_keeps_the_sid_of_the_id_token(client: FlaskClient, emu: Emulator) -> None:
    emu.set_auto_login(ALICE)
    answer = client.get("/auth/login?next=/")
    back = requests.get(answer.headers["Location"], allow_redirects=False, timeout=5)
    location = back.headers["Location"]
    assert client.get(location[location.index("/auth/") :]).status_code == 302
    with client.session_transaction() as session:
        sid = session[SESSION_KEY]["sid"]
    assert sid in emu.sessions_for(ALICE)
    assert client.get("/whoami").get_json()["sid"] == sid


def test_a_logout_token_for_the_sid_ends_that_session(app: Flask, emu: Emulator) -> None:
    client, sid = _signed_in(app, emu)
    assert client.get("/calendar").status_code == 200
    answer = _post(app.test_client(), emu.logout_token(ALICE, sid=sid))
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    assert whoami(client) is None
    with client.session_transaction() as session:
        assert SESSION_KEY not in session


def test_only_the_named_session_ends(app: Flask, emu: Emulator) -> None:
    laptop, laptop_sid = _signed_in(app, emu)
    phone, _ = _signed_in(app, emu)
    assert _post(app.test_client(), emu.logout_token(ALICE, sid=laptop_sid)).status_code == 200
    assert whoami(laptop) is None
    assert whoami(phone) == emu.user_id_for(ALICE)


def test_a_logout_token_with_only_sub_ends_every_session_of_the_user(
    app: Flask, emu: Emulator
) -> None:
    clock = app_clock(app)
    laptop, _ = _signed_in(app, emu)
    phone, _ = _signed_in(app, emu)
    bob, _ = _signed_in(app, emu, "bob@example.com")
    assert _post(app.test_client(), emu.logout_token(ALICE)).status_code == 200
    assert whoami(laptop) is None and whoami(phone) is None
    assert whoami(bob) == emu.user_id_for("bob@example.com")
    # A sign-in after the logout is a new session, which the old logout does not end.
    clock.advance(1)  # the session records sign-in times in whole seconds
    again, _ = _signed_in(app, emu)
    assert whoami(again) == emu.user_id_for(ALICE)


def test_the_users_cached_provider_tokens_are_dropped(app: Flask, emu: Emulator) -> None:
    client, sid = _signed_in(app, emu)
    user_id = emu.user_id_for(ALICE)
    assert client.get("/calendar").status_code == 200
    assert cached_token(app, user_id, scopes=(CAL_READ,)) is not None
    assert _post(app.test_client(), emu.logout_token(ALICE, sid=sid)).status_code == 200
    assert cached_token(app, user_id, scopes=(CAL_READ,)) is None


def test_a_replayed_logout_token_is_refused(app: Flask, emu: Emulator) -> None:
    _, sid = _signed_in(app, emu)
    token = emu.logout_token(ALICE, sid=sid)
    assert _post(app.test_client(), token).status_code == 200
    answer = _post(app.test_client(), token)
    assert answer.status_code == 400
    assert answer.get_json()["error"] == "invalid_logout_token"
    assert "already used" in answer.get_json()["error_description"]


def _claims(emu: Emulator, sid: str) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": emu.issuer,
        "aud": emu.client_id,
        "iat": now,
        "exp": now + 120,
        "jti": "jti-" + sid,
        "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
        "sid": sid,
        "sub": emu.user_id_for(ALICE),
    }


def _none(claims: dict[str, Any]) -> str:
    parts = [b64url_encode(json.dumps(p).encode()) for p in ({"alg": "none"}, claims)]
    return ".".join(parts) + "."


#: Name -> how to make the bad token from the emulator and the session's sid.
BAD_TOKENS: dict[str, Callable[[Emulator, str], str | None]] = {
    "missing": lambda e, s: None,
    "empty": lambda e, s: "",
    "garbage": lambda e, s: "not.a.jwt",
    "oversized": lambda e, s: "a" * 9000,
    "non-ASCII": lambda e, s: "é.é.é",
    "another issuer": lambda e, s: e.logout_token(ALICE, sid=s, iss="https://evil.example/"),
    "another audience": lambda e, s: e.logout_token(ALICE, sid=s, aud="another-client"),
    "audience list without us": lambda e, s: e.logout_token(ALICE, sid=s, aud=["a", "b"]),
    "expired": lambda e, s: e.logout_token(
        ALICE, sid=s, iat=int(time.time()) - 900, exp=int(time.time()) - 600
    ),
    "issued in the future": lambda e, s: e.logout_token(ALICE, sid=s, iat=int(time.time()) + 900),
    "no iat": lambda e, s: e.logout_token(ALICE, sid=s, iat=None),
    "no exp": lambda e, s: e.logout_token(ALICE, sid=s, exp=None),
    "exp a year ahead": lambda e, s: e.logout_token(
        ALICE, sid=s, exp=int(time.time()) + 366 * 86400
    ),
    "no events": lambda e, s: e.logout_token(ALICE, sid=s, events=None),
    "another event": lambda e, s: e.logout_token(
        ALICE, sid=s, events={"http://schemas.openid.net/event/other": {}}
    ),
    "event not an object": lambda e, s: e.logout_token(
        ALICE, sid=s, events={"http://schemas.openid.net/event/backchannel-logout": "x"}
    ),
    "with a nonce (an ID token)": lambda e, s: e.logout_token(ALICE, sid=s, nonce="n"),
    "neither sid nor sub": lambda e, s: e.logout_token(None, sid=None),
    "no jti": lambda e, s: e.logout_token(ALICE, sid=s, jti=None),
    "signed with another key": lambda e, s: SigningKey().sign(_claims(e, s)),
    "another key, same kid": lambda e, s: _same_kid(e).sign(_claims(e, s)),
    "alg none": lambda e, s: _none(_claims(e, s)),
    "alg HS256 with the public key": lambda e, s: hs256_with_public_key(e, _claims(e, s)),
}


def _same_kid(emu: Emulator) -> SigningKey:
    other = SigningKey()
    other.kid = emu.state.signing_key.kid
    return other


@pytest.mark.parametrize("case", list(BAD_TOKENS))
def test_a_bad_logout_token_is_a_400_and_ends_nothing(app: Flask, emu: Emulator, case: str) -> None:
    client, sid = _signed_in(app, emu)
    answer = _post(app.test_client(), BAD_TOKENS[case](emu, sid))
    assert answer.status_code == 400, answer.get_data(as_text=True)
    body = answer.get_json()
    assert body["error"] in ("invalid_logout_token", "invalid_request"), body
    assert whoami(client) == emu.user_id_for(ALICE)


def test_an_unreadable_key_set_is_a_503_not_a_500(app: Flask, emu: Emulator) -> None:
    emu.add_fault("jwks", status=200, body={"keys": "not a list"}, times=-1)
    answer = _post(app.test_client(), emu.logout_token(ALICE))
    assert answer.status_code == 503 and answer.get_json()["error"] == "jwks_unavailable"


def test_every_process_sharing_redis_ends_the_session(emu: Emulator, redis_url: str) -> None:
    config = {"TOKEN_VAULT_CACHE": redis_url, "TOKEN_VAULT_LOCAL_CACHE_TTL": 0}
    one, two = make_app(emu, **config), make_app(emu, **config)
    client, sid = _signed_in(one, emu)
    assert whoami(client) is not None
    # The same browser on the other process (same SECRET_KEY, same cookie).
    other = two.test_client()
    other.set_cookie("session", client.get_cookie("session").value)  # type: ignore[union-attr]
    assert whoami(other) == emu.user_id_for(ALICE)
    assert _post(one.test_client(), emu.logout_token(ALICE, sid=sid)).status_code == 200
    assert whoami(other) is None


def test_a_near_cached_answer_lets_go_within_the_local_ttl(emu: Emulator, redis_url: str) -> None:
    one = make_app(emu, TOKEN_VAULT_CACHE=redis_url)
    two = make_app(emu, TOKEN_VAULT_CACHE=redis_url, TOKEN_VAULT_LOCAL_CACHE_TTL=5)
    clock = app_clock(two)
    client, sid = _signed_in(one, emu)
    other = two.test_client()
    other.set_cookie("session", client.get_cookie("session").value)  # type: ignore[union-attr]
    assert whoami(other) is not None
    assert _post(one.test_client(), emu.logout_token(ALICE, sid=sid)).status_code == 200
    clock.advance(5.1)
    assert whoami(other) is None


def test_a_cache_outage_is_a_503_not_a_500(emu: Emulator) -> None:
    app = make_app(emu, TOKEN_VAULT_CACHE="redis://127.0.0.1:1/0")
    answer = _post(app.test_client(), emu.logout_token(ALICE))
    assert answer.status_code == 503 and answer.get_json()["error"] == "cache_unavailable"


def test_the_emulator_delivers_the_logout_token_to_the_registered_url(
    app: Flask, emu: Emulator
) -> None:
    """Auth0 (the emulator) posts the token itself; the open session ends on its next request."""
    with LiveServer(app) as live:
        url = live.url + ROUTE
        with app.app_context():
            assert management_client().add_backchannel_logout_url(url) is True
        assert emu.state.clients[emu.client_id].backchannel_logout_urls == [url]
        emu.set_auto_login(ALICE)
        browser = requests.Session()
        assert browser.get(live.url + "/auth/login?next=/whoami", timeout=5).json()["sub"]
        (delivery,) = emu.backchannel_logout(ALICE)
        assert delivery.status == 200 and delivery.url == url and delivery.sid
        assert browser.get(live.url + "/whoami", timeout=5).json()["sub"] is None


def test_logging_out_at_the_emulator_sends_the_logout_token(app: Flask, emu: Emulator) -> None:
    with LiveServer(app) as live:
        emu.set_backchannel_logout_urls([live.url + ROUTE])
        emu.set_auto_login(ALICE)
        browser = requests.Session()
        assert browser.get(live.url + "/auth/login?next=/whoami", timeout=5).json()["sub"]
        sid = browser.get(live.url + "/whoami", timeout=5).json()["sid"]
        # Signed out at Auth0 (another app of the tenant, or Auth0's own logout page).
        browser.get(emu.url + "/v2/logout", timeout=5)
        assert [(d.sid, d.status) for d in emu.backchannel_deliveries] == [(sid, 200)]
        assert browser.get(live.url + "/whoami", timeout=5).json()["sub"] is None
        assert emu.sessions_for(ALICE) == []


def test_the_route_sets_no_cookie_and_reads_no_session(app: Flask, emu: Emulator) -> None:
    answer = _post(app.test_client(), emu.logout_token(ALICE))
    assert answer.status_code == 200
    assert "Set-Cookie" not in answer.headers


def test_add_backchannel_logout_url_keeps_other_logout_settings(app: Flask, emu: Emulator) -> None:
    initiators = {"mode": "custom", "selected_initiators": ["rp-logout", "idp-logout"]}
    emu.state.clients[emu.client_id].oidc_logout = {
        "backchannel_logout_urls": ["https://old.example/logout"],
        "backchannel_logout_initiators": initiators,
    }
    with app.app_context():
        client = management_client()
        assert client.add_backchannel_logout_url("https://app.example/auth/backchannel-logout")
        assert not client.add_backchannel_logout_url("https://app.example/auth/backchannel-logout")
        with pytest.raises(ValueError, match="https"):
            client.add_backchannel_logout_url("http://app.example/logout")
    assert emu.state.clients[emu.client_id].oidc_logout == {
        "backchannel_logout_urls": [
            "https://old.example/logout",
            "https://app.example/auth/backchannel-logout",
        ],
        "backchannel_logout_initiators": initiators,
    }


def test_the_cli_registers_the_url_from_the_external_url(emu: Emulator) -> None:
    app = make_app(emu, TOKEN_VAULT_EXTERNAL_URL="https://app.example.com")
    runner = app.test_cli_runner()
    result = runner.invoke(cli, ["setup", "--only", "backchannel"])
    assert result.exit_code == 0, result.output
    assert "[changed]" in result.output
    assert "added https://app.example.com/auth/backchannel-logout" in result.output
    result = runner.invoke(cli, ["setup", "--only", "backchannel"])
    assert "[unchanged]" in result.output
    assert emu.state.clients[emu.client_id].backchannel_logout_urls == [
        "https://app.example.com/auth/backchannel-logout"
    ]


def test_the_cli_takes_a_url_or_says_what_it_needs(app: Flask, emu: Emulator) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(cli, ["setup", "--only", "backchannel"])
    assert result.exit_code != 0 and "TOKEN_VAULT_EXTERNAL_URL" in result.output
    result = runner.invoke(cli, ["setup", "--only", "backchannel", "--base-url", "ftp://x/y"])
    assert result.exit_code != 0 and "--base-url" in result.output
    result = runner.invoke(
        cli, ["setup", "--only", "backchannel", "--base-url", "http://x.example"]
    )
    assert result.exit_code != 0 and "https" in result.output
    url = "http://127.0.0.1:5000/auth/backchannel-logout"
    result = runner.invoke(cli, ["setup", "--only", "backchannel", "--base-url", url[:21]])
    assert result.exit_code == 0, result.output
    assert emu.state.clients[emu.client_id].backchannel_logout_urls == [url]


def test_state_has_the_tenant_keys(app: Flask) -> None:
    keys = TokenVault.state(app).tenant_keys.jwks()
    assert keys["keys"] and TokenVault.state(app).tenant_keys.jwks() is keys


def test_flask_wtfs_csrf_protection_lets_logout_tokens_through(emu: Emulator) -> None:
    """Auth0 posts logout tokens without a form token: an app-wide CSRFProtect lets them in."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="test-secret-key-0123456789abcdef",
        TOKEN_VAULT_CONNECTIONS=["google-oauth2"],
        **emulator_config(emu),
    )
    CSRFProtect(app)  # set up first, as apps usually do
    TokenVault(app)

    @app.get("/who")
    def who() -> Any:
        return {"sub": current_user.sub if current_user else None}

    client, sid = _signed_in(app, emu)
    assert client.get("/who").get_json()["sub"] is not None
    assert _post(app.test_client(), emu.logout_token(ALICE, sid=sid)).status_code == 200
    assert client.get("/who").get_json()["sub"] is None
    # The sign-out form carries the extension's own token, which CSRFProtect lets through too.
    other, _ = _signed_in(app, emu, "bob@example.com")
    # So do both disconnect forms: the views check the token (a wrong one is refused by them).
    for path in ("/auth/disconnect/google-oauth2", "/auth/disconnect/account/cac_unknown"):
        forged = other.post(path, data={"csrf_token": "forged"}, headers=JSON)
        assert forged.status_code == 400 and forged.get_json()["error"] == "csrf_failed"
        answer = other.post(path, data={"csrf_token": csrf(other)}, headers=JSON)
        assert answer.status_code in (200, 404) and "csrf" not in answer.get_data(as_text=True)
    assert other.post("/auth/logout", data={"csrf_token": csrf(other)}).status_code == 302
    assert other.get("/who").get_json()["sub"] is None
