"""Answers trusted less: cookie size, odd answers, discovery, Host, framing, keys, rate limits."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.wrappers import Response

from flask_token_vault import (
    ConfigurationError,
    TokenVault,
)
from flask_token_vault_emulator import Emulator
from flask_token_vault_emulator.signing import b64url_encode
from flask_token_vault_pytest.testing import login_as
from tests.helpers.apps import (
    CAL_READ,
    add_overview,
    app_clock,
    exchange_requests,
    make_app,
    overview_under_rate_limit,
)
from tests.helpers.browser import browser_login, csrf, follow_to_emulator, whoami

ALICE = "alice@example.com"
BROWSER_COOKIE_LIMIT = 4096
# Werkzeug warns (an error in this suite) past this many bytes of Set-Cookie header.
WERKZEUG_COOKIE_LIMIT = 4093


def _session_cookie_header(answer: Any) -> int:
    """Return the length of the Set-Cookie header for the session (0 when none was sent)."""
    sizes = [len(h) for h in answer.headers.getlist("Set-Cookie") if h.startswith("session=")]
    return max(sizes, default=0)


def _code_and_state(url: str) -> tuple[str, str]:
    answer = requests.get(url, allow_redirects=False, timeout=5)
    query = parse_qs(urlsplit(answer.headers["Location"]).query)
    return query["code"][0], query["state"][0]


# -- 5. the session cookie always fits -----------------------------------------------------------


def _long_next(length: int) -> str:
    # Random text does not compress, as a real search query would not.
    return "/search?q=" + secrets.token_urlsafe(length)[: length - 10]


def test_long_next_values_never_lock_a_visitor_out(client: FlaskClient, emu: Emulator) -> None:
    """Two sign-ins with a 1750-character next, then a third: every cookie fits, the third works.

    A cookie past the limit is dropped by the browser without a word: the third sign-in's
    state would be lost and the visitor could not sign in until the others expired.
    """
    for _ in range(2):
        answer = client.get("/auth/login", query_string={"next": _long_next(1750)})
        assert answer.status_code == 302
        assert _session_cookie_header(answer) <= WERKZEUG_COOKIE_LIMIT
    emu.set_auto_login(ALICE)
    answer = client.get("/calendar")  # signs in through Google, then comes back
    assert _session_cookie_header(answer) <= WERKZEUG_COOKIE_LIMIT
    answer = client.get(answer.headers["Location"])
    assert _session_cookie_header(answer) <= WERKZEUG_COOKIE_LIMIT
    code, state = _code_and_state(answer.headers["Location"])
    answer = client.get(f"/auth/callback?code={code}&state={state}")
    assert answer.status_code == 302 and answer.headers["Location"] == "/calendar"
    assert whoami(client) == emu.user_id_for(ALICE)


def test_pending_sign_ins_are_pruned_by_size_keeping_the_newest(
    client: FlaskClient, emu: Emulator
) -> None:
    login_as(client, emu, ALICE)  # the user's own record is in the cookie too
    for _ in range(6):
        answer = client.get("/auth/login", query_string={"next": _long_next(1000)})
        assert _session_cookie_header(answer) < BROWSER_COOKIE_LIMIT
    wanted = _long_next(1000)
    emu.set_auto_login(ALICE)
    answer = client.get("/auth/login", query_string={"next": wanted})
    code, state = _code_and_state(answer.headers["Location"])
    answer = client.get(f"/auth/callback?code={code}&state={state}")
    assert answer.status_code == 302 and answer.headers["Location"] == wanted


def test_a_next_too_long_to_keep_lands_on_the_default_page(
    client: FlaskClient, emu: Emulator
) -> None:
    emu.set_auto_login(ALICE)
    answer = client.get("/auth/login", query_string={"next": _long_next(2000)})
    assert _session_cookie_header(answer) < BROWSER_COOKIE_LIMIT
    code, state = _code_and_state(answer.headers["Location"])
    answer = client.get(f"/auth/callback?code={code}&state={state}")
    assert answer.status_code == 302 and answer.headers["Location"] == "/"


def test_pending_connected_accounts_connections_are_pruned_by_size(emu: Emulator) -> None:
    for name in ("google-oauth2", "windowslive"):
        emu.state.connections[name].connected_accounts = {"active": True}
    app = make_app(emu, TOKEN_VAULT_CONNECT_FLOW="connected_accounts")
    client = app.test_client()
    login_as(client, emu, ALICE)
    for _ in range(6):
        answer = client.get("/auth/connect/google-oauth2", query_string={"next": _long_next(1000)})
        assert answer.status_code == 302
        assert _session_cookie_header(answer) < BROWSER_COOKIE_LIMIT
    assert whoami(client) == emu.user_id_for(ALICE)


# -- 6. odd answers from Auth0 are malformed answers, not 500s -------------------------------------

ODD_EXPIRES_IN = ["Infinity", "-Infinity", "NaN", "1e400", "1" + "0" * 400, '"soon"', "0", "-5"]


@pytest.mark.parametrize("expires_in", ODD_EXPIRES_IN)
def test_an_odd_expires_in_is_a_malformed_answer(
    client: FlaskClient, emu: Emulator, expires_in: str
) -> None:
    login_as(client, emu, ALICE, {"google-oauth2": [CAL_READ]})
    body = '{"access_token": "ya29.x", "token_type": "Bearer", "expires_in": ' + expires_in + "}"
    emu.add_fault("token:exchange", status=200, body=body)
    answer = client.get("/calendar", headers={"Accept": "application/json"})
    assert answer.status_code == 503, answer.get_data(as_text=True)
    assert answer.get_json()["error"] == "malformed_answer"


@pytest.mark.parametrize("opening", ["[", '{"a":'])
def test_a_deeply_nested_exchange_answer_is_a_malformed_answer(
    client: FlaskClient, emu: Emulator, opening: str
) -> None:
    login_as(client, emu, ALICE, {"google-oauth2": [CAL_READ]})
    closing = "]" if opening == "[" else "}"
    emu.add_fault(
        "token:exchange", status=200, body=opening * 5000 + "1" + closing * 5000, times=-1
    )
    answer = client.get("/calendar", headers={"Accept": "application/json"})
    assert answer.status_code == 503 and answer.get_json()["error"] == "malformed_answer"


def _sign_in_with_answer(client: FlaskClient, emu: Emulator, body: str) -> Any:
    emu.set_auto_login(ALICE)
    code, state = _code_and_state(follow_to_emulator(client, "/auth/login?next=/"))
    emu.add_fault("token:authorization_code", status=200, body=body)
    return client.get(
        f"/auth/callback?code={code}&state={state}", headers={"Accept": "application/json"}
    )


@pytest.mark.parametrize(
    "body",
    [
        "[" * 5000 + "]" * 5000,
        '{"a":' * 5000 + "1" + "}" * 5000,
        '{"access_token": "a", "token_type": "Bearer", "expires_in": Infinity}',
        '{"access_token": "a", "token_type": "Bearer", "expires_in": 1e400}',
        '{"access_token": "a", "token_type": "Bearer", "expires_in": NaN}',
    ],
    ids=["deep list", "deep object", "Infinity", "1e400", "NaN"],
)
def test_an_odd_sign_in_answer_is_a_malformed_answer(
    client: FlaskClient, emu: Emulator, body: str
) -> None:
    answer = _sign_in_with_answer(client, emu, body)
    assert answer.status_code == 503, answer.get_data(as_text=True)
    assert answer.get_json()["error"] == "malformed_answer"
    assert whoami(client) is None
    # A code is redeemed once: an unreadable answer is not a reason to send it again.
    assert emu.stats()["token_requests"]["authorization_code"] == 1


# -- 7. discovery is checked against AUTH0_DOMAIN ------------------------------------------------


def _discovery(emu: Emulator, **changes: Any) -> None:
    document = requests.get(emu.url + "/.well-known/openid-configuration", timeout=5).json()
    document.update(changes)
    emu.add_fault("discovery", status=200, body=document, times=-1)


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("issuer", "https://evil.example/", "issuer_mismatch"),
        ("token_endpoint", "http://localhost:{port}/oauth/token", "discovery_mismatch"),
        ("authorization_endpoint", "https://evil.example/authorize", "discovery_mismatch"),
        ("jwks_uri", "https://evil.example/jwks.json", "discovery_mismatch"),
        ("token_endpoint", None, "discovery_mismatch"),
    ],
)
def test_discovery_pointing_elsewhere_is_refused(
    client: FlaskClient, emu: Emulator, field: str, value: str | None, error: str
) -> None:
    _discovery(emu, **{field: value.format(port=emu.port) if value else value})
    answer = client.get("/auth/login?next=/", headers={"Accept": "application/json"})
    assert answer.status_code == 500, answer.headers.get("Location")
    assert answer.get_json()["error"] == error
    assert emu.stats()["token_requests"] == {}


def test_an_id_token_with_alg_none_is_refused_even_when_discovery_offers_it(
    client: FlaskClient, emu: Emulator
) -> None:
    _discovery(emu, id_token_signing_alg_values_supported=["none", "RS256"])
    emu.set_auto_login(ALICE)
    authorize = follow_to_emulator(client, "/auth/login?next=/")
    nonce = parse_qs(urlsplit(authorize).query)["nonce"][0]
    code, state = _code_and_state(authorize)
    now = int(time.time())
    claims = {
        "iss": emu.issuer,
        "sub": emu.user_id_for(ALICE),
        "aud": emu.client_id,
        "iat": now,
        "exp": now + 3600,
        "nonce": nonce,
    }
    header = b64url_encode(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    id_token = header + "." + b64url_encode(json.dumps(claims).encode()) + "."
    body = {
        "access_token": "at",
        "refresh_token": "rt-from-a-forged-answer",
        "id_token": id_token,
        "token_type": "Bearer",
        "expires_in": 86400,
    }
    emu.add_fault("token:authorization_code", status=200, body=body)
    answer = client.get(f"/auth/callback?code={code}&state={state}")
    assert answer.status_code == 400 and "ID token" in answer.get_data(as_text=True)
    assert whoami(client) is None


def test_a_callback_naming_another_issuer_is_refused_before_the_code_is_used(
    client: FlaskClient, emu: Emulator
) -> None:
    emu.set_auto_login(ALICE)
    code, state = _code_and_state(follow_to_emulator(client, "/auth/login?next=/"))
    answer = client.get(
        "/auth/callback",
        query_string={"code": code, "state": state, "iss": "https://evil.example/"},
        headers={"Accept": "application/json"},
    )
    assert answer.status_code == 400 and answer.get_json()["error"] == "issuer_mismatch"
    assert "authorization_code" not in emu.stats()["token_requests"]
    assert whoami(client) is None


def test_a_callback_naming_this_issuer_signs_in(client: FlaskClient, emu: Emulator) -> None:
    emu.set_auto_login(ALICE)
    code, state = _code_and_state(follow_to_emulator(client, "/auth/login?next=/"))
    answer = client.get(
        "/auth/callback", query_string={"code": code, "state": state, "iss": emu.issuer}
    )
    assert answer.status_code == 302
    assert whoami(client) == emu.user_id_for(ALICE)


# -- 8. logout return URL, framing, SECRET_KEY ---------------------------------------------------


def _logout_return_to(app: Flask, emu: Emulator, host: str) -> str | None:
    client = app.test_client()
    login_as(client, emu, ALICE)
    token = csrf(client)
    # The test client files cookies by host: give the session to the host the request names.
    cookie = client.get_cookie("session", domain=app.config.get("SERVER_NAME") or "localhost")
    assert cookie is not None
    client.set_cookie("session", cookie.value, domain=host.split(":")[0])
    answer = client.post("/auth/logout", data={"csrf_token": token}, headers={"Host": host})
    assert answer.status_code == 302
    query = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert query["client_id"] == [emu.client_id]
    return query["returnTo"][0] if "returnTo" in query else None


def test_the_logout_return_url_is_not_built_from_the_host_header(app: Flask, emu: Emulator) -> None:
    assert _logout_return_to(app, emu, "evil.example") is None


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"TOKEN_VAULT_EXTERNAL_URL": "https://app.example.com"}, "https://app.example.com/"),
        (
            {"SERVER_NAME": "app.example.com", "PREFERRED_URL_SCHEME": "https"},
            "https://app.example.com/",
        ),
        (
            {"TOKEN_VAULT_LOGOUT_RETURN_TO": "https://app.example.com/bye"},
            "https://app.example.com/bye",
        ),
    ],
)
def test_the_logout_return_url_comes_from_trusted_settings(
    emu: Emulator, config: dict[str, Any], expected: str
) -> None:
    app = make_app(emu, **config)
    assert _logout_return_to(app, emu, "evil.example") == expected


def test_a_host_flask_checks_is_trusted(emu: Emulator) -> None:
    app = make_app(emu, TRUSTED_HOSTS=["app.example.com", "localhost"])
    assert _logout_return_to(app, emu, "app.example.com") == "http://app.example.com/"


def test_a_loopback_host_is_used_in_development(app: Flask, emu: Emulator) -> None:
    assert _logout_return_to(app, emu, "127.0.0.1:5000") == "http://127.0.0.1:5000/"


def test_the_callback_url_uses_the_external_url(emu: Emulator) -> None:
    app = make_app(emu, TOKEN_VAULT_EXTERNAL_URL="https://app.example.com")
    answer = app.test_client().get("/auth/login?next=/", headers={"Host": "evil.example"})
    query = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert query["redirect_uri"] == ["https://app.example.com/auth/callback"]


def _assert_not_framable(answer: Any) -> None:
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert answer.headers["Content-Security-Policy"] == "frame-ancestors 'none'"


def test_the_extensions_pages_cannot_be_framed(app: Flask, emu: Emulator) -> None:
    client = app.test_client()
    login_as(client, emu, ALICE)
    _assert_not_framable(client.get("/auth/logout"))  # the sign-out confirmation
    _assert_not_framable(client.get("/auth/callback"))  # an error page
    _assert_not_framable(client.get("/auth/connect/github"))


def test_the_apps_own_framing_policy_is_kept(app: Flask, emu: Emulator) -> None:
    @app.after_request
    def same_origin(response: Response) -> Response:
        response.headers["X-Frame-Options"] = "SAMEORIGIN"
        return response

    client = app.test_client()
    login_as(client, emu, ALICE)
    assert client.get("/auth/logout").headers["X-Frame-Options"] == "SAMEORIGIN"


PLACEHOLDERS = [
    "change-me-to-a-long-random-string",  # the README's example
    "change-me",
    "dev",
    "secret",
    "x" * 40,
    "short-but-not-a-placeholder",  # 27 bytes
]


@pytest.mark.parametrize("key", PLACEHOLDERS)
def test_a_placeholder_or_short_secret_key_refuses_to_start(emu: Emulator, key: str) -> None:
    with pytest.raises(ConfigurationError, match="SECRET_KEY"):
        make_app(emu, TESTING=False, SECRET_KEY=key)


@pytest.mark.parametrize("flag", ["TESTING", "DEBUG"])
def test_a_placeholder_is_accepted_in_debug_or_testing(emu: Emulator, flag: str) -> None:
    config = {"TESTING": False, flag: True, "SECRET_KEY": "change-me-to-a-long-random-string"}
    make_app(emu, **config)


def test_a_random_secret_key_starts(emu: Emulator) -> None:
    make_app(emu, TESTING=False, SECRET_KEY=secrets.token_urlsafe(32))


# -- 9. "not connected" is remembered; a rate limit answers at once ------------------------------


@pytest.fixture
def overview(app: Flask) -> Flask:
    """Add a page that shows each connection, as the example app's home page does."""
    return add_overview(app)


def _failed_exchanges(emu: Emulator) -> int:
    return int(emu.stats()["exchanges"]["failed"])


def test_a_user_with_nothing_connected_costs_no_exchange_per_view(
    overview: Flask, emu: Emulator
) -> None:
    client = overview.test_client()
    login_as(client, emu, ALICE)
    for _ in range(10):
        assert client.get("/overview").get_json() == {
            "google-oauth2": False,
            "windowslive": False,
        }
    assert _failed_exchanges(emu) == 2  # one per connection, not one per view


def test_connecting_forgets_the_not_connected_answer_at_once(
    overview: Flask, emu: Emulator
) -> None:
    client = overview.test_client()
    login_as(client, emu, ALICE)
    assert client.get("/overview").get_json()["google-oauth2"] is False
    assert browser_login(client, "/calendar").status_code == 200  # connects through the app
    assert client.get("/overview").get_json()["google-oauth2"] is True


def test_the_not_connected_answer_can_be_turned_off(emu: Emulator) -> None:
    app = make_app(emu, TOKEN_VAULT_NOT_CONNECTED_TTL=0)
    client = app.test_client()
    login_as(client, emu, ALICE)
    for _ in range(3):
        assert client.get("/calendar", headers={"Accept": "application/json"}).status_code == 401
    assert _failed_exchanges(emu) == 3


def test_a_rate_limited_view_answers_503_at_once(overview: Flask, emu: Emulator) -> None:
    answer, clock = overview_under_rate_limit(overview, emu)
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "2"
    assert answer.get_json()["error"] == "too_many_requests"
    assert exchange_requests(emu) == 1  # the second connection did not ask again
    assert sum(clock.sleeps) == 0


def test_a_short_rate_limit_is_waited_out(app: Flask, emu: Emulator) -> None:
    clock = app_clock(app)
    client = app.test_client()
    login_as(client, emu, ALICE, {"google-oauth2": [CAL_READ]})
    emu.add_fault(
        "token:exchange", status=429, error="too_many_requests", headers={"Retry-After": "1"}
    )
    assert client.get("/calendar").status_code == 200
    assert clock.sleeps == [1.0] and exchange_requests(emu) == 2


def test_the_rate_limit_wait_is_configurable(emu: Emulator) -> None:
    app = make_app(emu, TOKEN_VAULT_RATE_LIMIT_WAIT=0)
    clock = app_clock(app)
    client = app.test_client()
    login_as(client, emu, ALICE, {"google-oauth2": [CAL_READ]})
    emu.add_fault(
        "token:exchange", status=429, error="too_many_requests", headers={"Retry-After": "1"}
    )
    answer = client.get("/calendar", headers={"Accept": "application/json"})
    assert answer.status_code == 503 and clock.sleeps == []
    assert TokenVault.state(app).transport.rate_limit_wait == 0


@pytest.mark.parametrize("flag", ["", "DEBUG", "TESTING"])
def test_flasks_tutorial_key_gets_one_message_that_states_the_whole_rule(
    emu: Emulator, flag: str
) -> None:
    config: dict[str, object] = {"TESTING": False, "SECRET_KEY": "dev"}
    if flag:
        config[flag] = True
    with pytest.raises(ConfigurationError) as refused:
        make_app(emu, **config)
    # The same refusal with or without debug, naming both limits: turning DEBUG on is no fix.
    assert refused.value.key == "SECRET_KEY"
    assert str(refused.value) == (
        "SECRET_KEY: is only 3 bytes long. SECRET_KEY must be a random value of at least 32 bytes"
        " (with DEBUG or TESTING on, any value of at least 16). Set it from the environment to the"
        " output of `python -c 'import secrets; print(secrets.token_urlsafe(48))'`."
    )
