"""Hostile input: each case gets a 4xx (or a safe redirect) that says what went wrong.

Never a 500, never a changed session. Every case is recorded for the reliability summary.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from flask_token_vault import TokenVault
from flask_token_vault_emulator import Emulator
from flask_token_vault_emulator.signing import SigningKey, b64url_encode
from tests.helpers.apps import CAL_READ, alice_client, app_clock, make_api_app, make_app
from tests.helpers.browser import (
    client_with_cookie,
    follow_to_emulator,
    held_cookie,
    session_cookie,
)
from tests.helpers.oauth import TOKEN_VAULT_GRANT, bearer, hs256_with_public_key

from .figures import HOSTILE


def _refused(name: str, answer: Any, *, words: str | None = None) -> None:
    """Assert a clear 4xx (or a redirect to this site) and record the case."""
    status = answer.status_code
    text = answer.get_data(as_text=True)
    ok = 400 <= status < 500 or (
        status in (302, 303)
        and urlsplit(answer.headers.get("Location", "")).netloc in ("", "localhost")
    )
    if ok and words is not None:
        ok = words.lower() in text.lower()
    if ok and 400 <= status < 500:
        ok = "Traceback" not in text and len(text) > 20
    HOSTILE[name] = (ok, f"{status}: {text[:120]!r}")
    assert ok, HOSTILE[name][1]


@pytest.fixture
def signed_in(app: Flask, emu: Emulator) -> FlaskClient:
    return alice_client(app, emu)


# -- redirect targets --------------------------------------------------------------------------

OPEN_REDIRECTS = [
    "//evil.example",
    "///evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "https://evil.example/",
    "http:evil.example",
    "javascript:alert(1)",
    "%2F%2Fevil.example",
    "/%2F/evil.example",
    "/%5Cevil.example",
    "/%0d%0aSet-Cookie:%20x=y",
    "/ok\r\nSet-Cookie: x=y",
    "/\t/evil.example",
    "evil.example",
    "/" + "a" * 3000,
]


@pytest.mark.parametrize("target", OPEN_REDIRECTS)
@pytest.mark.parametrize("param", ["next", "returnTo"])
def test_open_redirects_are_refused(signed_in: FlaskClient, target: str, param: str) -> None:
    before = session_cookie(signed_in)
    answer = signed_in.get(f"/auth/login?{param}={quote(target, safe='%')}")
    _refused(f"login {param}={target[:30]!r}", answer, words="path on this site")
    assert session_cookie(signed_in) == before


# Targets that are harmless as they arrive and dangerous once percent-decoded (a proxy or a
# browser may decode once more): sent so that the app receives them still encoded.
ENCODED_REDIRECTS = [
    "/%2F/evil.example",
    "/%2f%2fevil.example",
    "/%5Cevil.example",
    "/%0d%0aSet-Cookie:%20x=y",
    "/%09/evil.example",
    "/%2F%5Cevil.example",
]


@pytest.mark.parametrize("target", ENCODED_REDIRECTS)
def test_open_redirects_hidden_by_one_more_encoding_are_refused(
    signed_in: FlaskClient, target: str
) -> None:
    before = session_cookie(signed_in)
    answer = signed_in.get(f"/auth/login?next={quote(target, safe='')}")
    _refused(f"login next={target[:30]!r} (encoded once more)", answer, words="path on this site")
    assert session_cookie(signed_in) == before


# -- connection and scope names ----------------------------------------------------------------

BAD_NAMES = ["github", "x" * 300, "google-oauth2\x00", "google%0aoauth2", "../google-oauth2", ""]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_unknown_or_malformed_connection(signed_in: FlaskClient, name: str) -> None:
    before = session_cookie(signed_in)
    answer = signed_in.get("/auth/login", query_string={"connection": name, "next": "/"})
    if name == "":
        # An empty connection means "no connection": a plain login, sent to Auth0.
        assert answer.status_code == 302
        return
    _refused(f"connection {name[:20]!r}", answer, words="not offered")
    assert session_cookie(signed_in) == before
    answer = signed_in.get(f"/auth/connect/{quote(name, safe='')}")
    assert answer.status_code in (400, 404)


@pytest.mark.parametrize(
    "scope",
    [
        "https://mail.google.com/",  # not configured, not signed
        "openid\x07bell",
        "a" * 600,
        " ".join(f"s{i}" for i in range(80)),
        'scope"with"quotes',
    ],
)
def test_scopes_not_allowed(signed_in: FlaskClient, scope: str) -> None:
    before = session_cookie(signed_in)
    answer = signed_in.get("/auth/connect/google-oauth2", query_string={"scope": scope})
    _refused(f"scope {scope[:20]!r}", answer)
    assert session_cookie(signed_in) == before


def test_scope_signature_for_another_connection_is_refused(
    app: Flask, signed_in: FlaskClient
) -> None:
    with app.test_request_context():
        sig = TokenVault.state(app).links.sign("windowslive", ["Mail.Read"])
    answer = signed_in.get(
        "/auth/connect/google-oauth2", query_string={"scope": "Mail.Read", "sig": sig}
    )
    _refused("signed scope for another connection", answer, words="not requested")


def test_connection_scope_on_login_without_signature(signed_in: FlaskClient) -> None:
    answer = signed_in.get(
        "/auth/login",
        query_string={
            "connection": "google-oauth2",
            "connection_scope": "https://mail.google.com/",
        },
    )
    _refused("login connection_scope unsigned", answer, words="not requested")


def test_query_max_age_can_only_ask_for_a_fresher_sign_in(client: FlaskClient) -> None:
    """``max_age`` is the fresh-login link's own: a number asks Auth0 for a recent sign-in."""
    refused = client.get("/auth/login", query_string={"max_age": "attacker-value", "next": "/"})
    _refused("login sets max_age to a word", refused, words="max_age")
    answer = client.get("/auth/login", query_string={"max_age": "60", "next": "/"})
    sent = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert sent["max_age"] == ["60"] and sent["prompt"] == ["login"]


@pytest.mark.parametrize("param", ["audience", "prompt", "redirect_uri", "scope"])
def test_query_cannot_set_authorize_parameters(client: FlaskClient, param: str) -> None:
    answer = client.get("/auth/login", query_string={param: "attacker-value", "next": "/"})
    assert answer.status_code == 302
    sent = parse_qs(urlsplit(answer.headers["Location"]).query)
    ok = "attacker-value" not in json.dumps(sent)
    HOSTILE[f"login sets {param}"] = (ok, json.dumps(sent)[:120])
    assert ok


def test_login_hint_with_control_characters(client: FlaskClient) -> None:
    answer = client.get("/auth/login", query_string={"login_hint": "a@b.example\r\nX: y"})
    _refused("login_hint with CRLF", answer, words="login hint")


# -- callback ------------------------------------------------------------------------------------


def _authorize(client: FlaskClient) -> tuple[str, dict[str, list[str]]]:
    url = follow_to_emulator(client, "/auth/connect/google-oauth2?next=/calendar")
    return url, parse_qs(urlsplit(url).query)


def _code_for(url: str) -> tuple[str, str]:
    answer = requests.get(url, allow_redirects=False, timeout=5)
    back = urlsplit(answer.headers["Location"])
    query = parse_qs(back.query)
    return query["code"][0], query["state"][0]


def test_forged_state(client: FlaskClient, emu: Emulator) -> None:
    _authorize(client)
    before = session_cookie(client)
    answer = client.get("/auth/callback?code=x&state=forged")
    _refused("forged state", answer, words="state")
    assert session_cookie(client) == before


def test_missing_state(client: FlaskClient) -> None:
    _refused("missing state", client.get("/auth/callback?code=x"), words="state")


def test_overlong_state(client: FlaskClient) -> None:
    _refused("overlong state", client.get("/auth/callback?code=x&state=" + "s" * 5000))


def test_missing_code(client: FlaskClient, emu: Emulator) -> None:
    _, query = _authorize(client)
    answer = client.get(f"/auth/callback?state={query['state'][0]}")
    _refused("missing code", answer, words="no code")


def test_replayed_code(client: FlaskClient, emu: Emulator) -> None:
    emu.set_auto_login("alice@example.com")
    url, _ = _authorize(client)
    code, state = _code_for(url)
    assert client.get(f"/auth/callback?code={code}&state={state}").status_code == 302
    # Same code, same state: the state was used up.
    _refused("replayed code+state", client.get(f"/auth/callback?code={code}&state={state}"))
    # Same code with a fresh state: Auth0 refuses the code.
    _, query = _authorize(client)
    answer = client.get(f"/auth/callback?code={code}&state={query['state'][0]}")
    _refused("replayed code with new state", answer, words="invalid_grant")
    with client.session_transaction() as session:
        assert session["_token_vault"]["sub"] == emu.user_id_for("alice@example.com")


def test_callback_error_access_denied(client: FlaskClient, emu: Emulator) -> None:
    _, query = _authorize(client)
    answer = client.get(
        f"/auth/callback?error=access_denied&error_description=no&state={query['state'][0]}"
    )
    _refused("callback error=access_denied", answer, words="not granted")
    with client.session_transaction() as session:
        assert "_token_vault" not in session


def test_callback_error_with_forged_state(client: FlaskClient) -> None:
    answer = client.get("/auth/callback?error=access_denied&state=forged")
    _refused("callback error with forged state", answer, words="state")


# -- ID token attacks (the emulator answers the code exchange with a crafted token) ---------------


def _id_token_case(
    client: FlaskClient, emu: Emulator, make: Callable[[dict[str, Any]], str]
) -> Any:
    emu.set_auto_login("alice@example.com")
    url, query = _authorize(client)
    code, state = _code_for(url)
    now = int(time.time())
    claims = {
        "iss": emu.issuer,
        "sub": emu.user_id_for("alice@example.com"),
        "aud": emu.client_id,
        "iat": now,
        "exp": now + 3600,
        "nonce": query["nonce"][0],
    }
    body = {
        "access_token": "at",
        "refresh_token": "rt-from-crafted-answer",
        "id_token": make(claims),
        "token_type": "Bearer",
        "expires_in": 86400,
    }
    emu.add_fault("token:authorization_code", status=200, body=body)
    return client.get(f"/auth/callback?code={code}&state={state}")


def _unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    parts = [b64url_encode(json.dumps(p).encode()) for p in (header, claims)]
    return ".".join(parts) + "." + b64url_encode(signature)


def _other_key_same_kid(emu: Emulator) -> SigningKey:
    other = SigningKey()
    other.kid = emu.state.signing_key.kid
    return other


ID_TOKEN_ATTACKS: dict[str, Callable[[Emulator, dict[str, Any]], str]] = {
    "nonce mismatch": lambda e, c: e.state.signing_key.sign({**c, "nonce": "other"}),
    "nonce missing": lambda e, c: e.state.signing_key.sign(
        {k: v for k, v in c.items() if k != "nonce"}
    ),
    "issuer mismatch": lambda e, c: e.state.signing_key.sign({**c, "iss": "https://evil.example/"}),
    "audience mismatch": lambda e, c: e.state.signing_key.sign({**c, "aud": "another-client"}),
    "expired": lambda e, c: e.state.signing_key.sign({**c, "exp": c["iat"] - 7200}),
    "signed with another key": lambda e, c: SigningKey().sign(c),
    "another key, same kid": lambda e, c: _other_key_same_kid(e).sign(c),
    "alg none": lambda e, c: _unsigned({"alg": "none", "typ": "JWT"}, c),
    "alg HS256 with public key": hs256_with_public_key,
    "garbage": lambda e, c: "not.a.jwt",
}


@pytest.mark.parametrize("attack", list(ID_TOKEN_ATTACKS))
def test_id_token_attacks(client: FlaskClient, emu: Emulator, attack: str) -> None:
    answer = _id_token_case(client, emu, lambda c: ID_TOKEN_ATTACKS[attack](emu, c))
    _refused(f"id_token {attack}", answer, words="ID token")
    with client.session_transaction() as session:
        assert "_token_vault" not in session


# -- cookies -------------------------------------------------------------------------------------


def _json_401(client: FlaskClient) -> Any:
    return client.get("/calendar", headers={"Accept": "application/json"})


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(
            lambda v: v[:-4] + ("AAAA" if not v.endswith("AAAA") else "BBBB"), id="tampered"
        ),
        pytest.param(lambda v: v[: len(v) // 2], id="truncated"),
        pytest.param(lambda v: "x" * 4000, id="oversized"),
        pytest.param(lambda v: "%%%not-base64%%%", id="garbage"),
        pytest.param(lambda v: "." + v, id="bad compression flag"),
    ],
)
def test_mangled_cookie_reads_as_logged_out(
    signed_in: FlaskClient, mangle: Callable[[str], str], request: pytest.FixtureRequest
) -> None:
    signed_in.set_cookie("session", mangle(held_cookie(signed_in)))
    answer = _json_401(signed_in)
    _refused(f"cookie {request.node.callspec.id}", answer, words="login_required")


def test_cookie_from_another_app_key(emu: Emulator, signed_in: FlaskClient) -> None:
    other = client_with_cookie(
        make_app(emu, SECRET_KEY="a-different-secret-key-0123456789"), session_cookie(signed_in)
    )
    _refused("cookie signed by a foreign key", _json_401(other), words="login_required")


@pytest.mark.parametrize(
    "record",
    [
        {"v": 1, "sub": 42, "rt": "x"},
        {"v": 1, "sub": "auth0|x", "rt": 7},
        {"v": 1, "sub": "auth0|x", "rt": "not-sealed"},
        {"v": 2, "sub": "auth0|x", "rt": "x"},
        {"v": 1, "sub": "auth0|x", "rt": "x" * 10000},
        {"v": 1, "sub": "auth0|x", "rt": "x", "name": ["list"]},
        "a string",
    ],
)
def test_signed_but_malformed_session_record(app: Flask, record: Any) -> None:
    client = app.test_client()
    with client.session_transaction() as session:
        session["_token_vault"] = record
    _refused(f"session record {str(record)[:30]}", _json_401(client), words="login_required")


def test_refresh_token_sealed_for_the_cache_does_not_open_as_session(
    app: Flask, emu: Emulator
) -> None:
    crypto = TokenVault.state(app).crypto
    sealed = base64.urlsafe_b64encode(crypto.seal_cache(b"rt")).decode().rstrip("=")
    client = app.test_client()
    with client.session_transaction() as session:
        session["_token_vault"] = {"v": 1, "sub": "auth0|x", "rt": sealed}
    _refused("cache-sealed value as session", _json_401(client), words="login_required")


# -- logout CSRF and session fixation ------------------------------------------------------------


def test_cross_site_get_does_not_log_out(signed_in: FlaskClient) -> None:
    answer = signed_in.get("/auth/logout", headers={"Sec-Fetch-Site": "cross-site"})
    ok = answer.status_code == 200 and signed_in.get("/calendar").status_code == 200
    HOSTILE["logout via cross-site GET"] = (ok, str(answer.status_code))
    assert ok


@pytest.mark.parametrize("token", [None, "", "forged-token-value-forged-token-value-12345"])
def test_logout_post_without_valid_token(signed_in: FlaskClient, token: str | None) -> None:
    signed_in.get("/auth/logout")
    data = {} if token is None else {"csrf_token": token}
    before = session_cookie(signed_in)
    _refused(
        f"logout POST token={token!r}",
        signed_in.post("/auth/logout", data=data),
        words="not sent from this site",
    )
    assert session_cookie(signed_in) == before
    assert signed_in.get("/calendar").status_code == 200


def test_session_is_renewed_on_login(client: FlaskClient, emu: Emulator) -> None:
    with client.session_transaction() as session:
        session["planted"] = "by-attacker"
        session["_token_vault_csrf"] = "planted-csrf-token-planted-csrf-token-12345"
    emu.set_auto_login("alice@example.com")
    url, _ = _authorize(client)
    code, state = _code_for(url)
    assert client.get(f"/auth/callback?code={code}&state={state}").status_code == 302
    with client.session_transaction() as session:
        ok = "planted" not in session and "_token_vault_csrf" not in session
    HOSTILE["session fixation"] = (ok, "planted keys survived" if not ok else "renewed")
    assert ok


def test_hostile_case_count() -> None:
    """The suite tries at least 40 hostile inputs (counted when the whole module runs)."""
    assert (
        len(OPEN_REDIRECTS) * 2 + len(ENCODED_REDIRECTS) + len(BAD_NAMES) + len(ID_TOKEN_ATTACKS)
        >= 40
    )


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/auth/logout", {"csrf_token": "é"}),
        ("/auth/disconnect/google-oauth2", {"csrf_token": "é"}),
    ],
)
def test_non_ascii_form_token_is_a_400(signed_in: FlaskClient, path: str, data: Any) -> None:
    signed_in.get("/auth/logout")
    _refused(f"non-ASCII token on {path}", signed_in.post(path, data=data), words="csrf_failed")


def test_non_ascii_scope_signature_is_a_400(client: FlaskClient) -> None:
    answer = client.get(
        "/auth/connect/google-oauth2",
        query_string={"scope": "https://www.googleapis.com/auth/drive", "sig": "é"},
    )
    _refused("non-ASCII scope signature", answer, words="not requested")


def test_abandoned_sign_ins_do_not_grow_the_cookie(client: FlaskClient) -> None:
    sizes = []
    for _ in range(40):
        assert client.get("/auth/login?next=/").status_code == 302
        cookie = client.get_cookie("session")
        assert cookie is not None
        sizes.append(len(cookie.value))
    ok = max(sizes) < 1500 and sizes[-1] <= sizes[5] + 50
    HOSTILE["40 abandoned sign-ins"] = (ok, f"cookie {sizes[0]} -> {sizes[-1]} bytes")
    assert ok


def test_the_latest_sign_in_still_completes_after_many_abandoned(
    client: FlaskClient, emu: Emulator
) -> None:
    for _ in range(10):
        client.get("/auth/login?next=/")
    emu.set_auto_login("alice@example.com")
    url, _ = _authorize(client)
    code, state = _code_for(url)
    answer = client.get(f"/auth/callback?code={code}&state={state}")
    assert answer.status_code == 302 and answer.headers["Location"] == "/calendar"


def test_an_expired_sign_in_is_refused(app: Flask, client: FlaskClient, emu: Emulator) -> None:
    clock = app_clock(app)
    emu.set_auto_login("alice@example.com")
    url, _ = _authorize(client)
    code, state = _code_for(url)
    clock.advance(3601)
    answer = client.get(f"/auth/callback?code={code}&state={state}")
    _refused("expired sign-in", answer, words="expired")
    with client.session_transaction() as session:
        assert "_token_vault" not in session


# -- Authorization headers of API calls --------------------------------------------------------

HOSTILE_AUTHORIZATION = {
    "empty bearer": "Bearer ",
    "bearer with spaces only": "Bearer    ",
    "two tokens": "Bearer a.b.c d.e.f",
    "non-ASCII token": "Bearer eyJ\u00e9.eyJ.sig",
    "100 KB token": "Bearer " + "A" * 100_000,
    "JSON header that is a list": "Bearer " + b64url_encode(b"[1,2]") + ".e30.",
    "header not JSON": "Bearer " + b64url_encode(b"\xff\xfe") + ".e30.c2ln",
    "kid not a string": "Bearer "
    + b64url_encode(json.dumps({"alg": "RS256", "kid": {"$ne": ""}}).encode())
    + ".e30.c2ln",
    "lower-case scheme, garbage": "bearer %%%",
}


@pytest.mark.parametrize("case", list(HOSTILE_AUTHORIZATION))
def test_hostile_bearer_headers_get_401(emu: Emulator, case: str) -> None:
    app = make_api_app(emu)
    client = alice_client(app, emu)
    before = session_cookie(client)
    answer = client.get("/api/open", headers={"Authorization": HOSTILE_AUTHORIZATION[case]})
    _refused(f"Authorization: {case}", answer, words="access token")
    assert answer.status_code == 401 and "Location" not in answer.headers
    assert session_cookie(client) == before
    assert emu.stats()["token_requests"].get(TOKEN_VAULT_GRANT, 0) == 0


# -- numbers in tokens the tenant signed -------------------------------------------------------

_FAR = 10**400  # 400 digits: float() of it raises OverflowError
HOSTILE_TIME_CLAIMS: dict[str, dict[str, Any]] = {
    "exp of 400 digits": {"exp": _FAR},
    "exp 1e300": {"exp": 1e300},
    "exp NaN": {"exp": float("nan")},
    "exp Infinity": {"exp": float("inf")},
    "exp true": {"exp": True},
    "iat -Infinity": {"iat": float("-inf")},
    "iat of minus 400 digits": {"iat": -_FAR},
    "auth_time true": {"auth_time": True},
    "nbf of minus 400 digits": {"nbf": -_FAR},
    "auth_time of 400 digits": {"auth_time": _FAR},
    "auth_time a string": {"auth_time": "yesterday"},
}


@pytest.mark.parametrize("case", list(HOSTILE_TIME_CLAIMS))
def test_time_claims_of_a_signed_access_token_are_bounded(emu: Emulator, case: str) -> None:
    """Signed by the tenant, yet a time no code can compute with: 401 invalid_token, never 500."""
    app = make_api_app(emu)
    token = emu.issue_access_token(
        "alice@example.com", scope="read:calendar", claims=HOSTILE_TIME_CLAIMS[case]
    )
    answer = app.test_client().get("/api/open", headers={"Authorization": f"Bearer {token}"})
    _refused(f"access token with {case}", answer, words="access token")
    assert answer.status_code == 401 and answer.json is not None
    assert answer.json["error"] == "invalid_token"
    assert emu.stats()["token_requests"].get(TOKEN_VAULT_GRANT, 0) == 0


# -- API scopes: one ASCII space between them, nothing else (RFC 6749 3.3, RFC 9068) ------------

LOOKALIKE_SCOPES: dict[str, dict[str, Any]] = {
    "scope with a trailing comma": {"scope": "read:calendar,"},
    "scope joined by a comma": {"scope": "read:calendar,admin"},
    "scope joined by a no-break space": {"scope": "read:calendar\u00a0x"},
    "scope joined by a tab": {"scope": "read:calendar\tadmin"},
    "scope joined by a line feed": {"scope": "read:calendar\nadmin"},
    "permission with a comma": {"scope": "openid", "permissions": ["read:calendar,admin"]},
    "permission with a space": {"scope": "openid", "permissions": ["read:calendar admin"]},
}


@pytest.mark.parametrize("case", list(LOOKALIKE_SCOPES))
def test_api_scopes_are_not_split_on_commas_or_other_spaces(emu: Emulator, case: str) -> None:
    """A scope is what lies between ASCII spaces: ``read:calendar,admin`` is not read:calendar."""
    emu.connect_account("alice@example.com", "google-oauth2", [CAL_READ])
    # As claims: the emulator's own scope parameter would tidy the value up.
    token = emu.issue_access_token("alice@example.com", claims=LOOKALIKE_SCOPES[case])
    answer = make_api_app(emu).test_client().get("/api/calendar", headers=bearer(token))
    _refused(f"access token with {case}", answer, words="insufficient_api_scope")
    assert answer.status_code == 403
    assert emu.stats()["token_requests"].get(TOKEN_VAULT_GRANT, 0) == 0


def test_api_scopes_between_ascii_spaces_still_count(emu: Emulator) -> None:
    emu.connect_account("alice@example.com", "google-oauth2", [CAL_READ])
    claims = {"scope": "openid  read:calendar profile"}
    token = emu.issue_access_token("alice@example.com", claims=claims)
    answer = make_api_app(emu).test_client().get("/api/calendar", headers=bearer(token))
    assert answer.status_code == 200, answer.get_data(as_text=True)
