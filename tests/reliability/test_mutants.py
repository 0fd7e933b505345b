"""Checks that kill the changes a mutation pass found the rest of the suite did not notice.

Each test is named after the one-place change (a *mutant*) of a security line that it fails on,
and records in ``MUTANTS`` what it saw; ``tools/mutants.py`` applies each change and runs its
test to show it is killed. The changes are listed there, with the test that answers each.
"""

from __future__ import annotations

import base64
import json
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask, jsonify, request
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, OctKey
from joserfc.jws import JWSRegistry

from flask_token_vault import ProviderToken, TokenVault, provider_token_required
from flask_token_vault._cache import Slot, TokenCache
from flask_token_vault._clock import Clock
from flask_token_vault._config import default_settings
from flask_token_vault._crypto import Crypto
from flask_token_vault._keys import ClientKey, DPoPKey
from flask_token_vault._session import SESSION_KEY, make_record
from flask_token_vault._store import MemoryStore
from flask_token_vault_emulator import Emulator
from flask_token_vault_pytest.testing import FakeClock, login_as
from tests.helpers.apps import API_READ, CAL_READ, CAL_WRITE, app_clock, make_api_app, make_app
from tests.helpers.browser import (
    client_with_cookie,
    emulator_redirect,
    follow_to_emulator,
    log_out,
    session_cookie,
    whoami,
)
from tests.helpers.keys import ec_key_pem, rsa_key_pem
from tests.helpers.oauth import bearer
from tests.helpers.servers import LiveServer

from .figures import MUTANTS

ALICE = "alice@example.com"
BOB = "bob@example.com"
DAY = 86_400
JSON = {"Accept": "application/json"}


def _held(name: str, ok: bool, detail: str) -> None:
    MUTANTS[name] = (ok, detail)
    assert ok, detail


def _payload(token: str) -> dict[str, Any]:
    """Return a JWT's claims without checking anything (the test reads what was sent)."""
    part = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


class _SharedStore(MemoryStore):
    """An in-process store that says it is shared: two caches on it act as two processes."""

    shared = True


# -- sessions and sign-out ---------------------------------------------------------------------


def test_the_sealed_refresh_token_opens_for_its_own_user_only(app: Flask, emu: Emulator) -> None:
    """Mutant: the seal of the session's refresh token binds the tenant and client, not the user."""
    client = app.test_client()
    login_as(client, emu, ALICE, {"google-oauth2": [CAL_READ]})
    with client.session_transaction() as session:
        session[SESSION_KEY] = {**session[SESSION_KEY], "sub": emu.user_id_for(BOB)}
    answer = client.get("/calendar", headers=JSON)
    body = answer.get_json() or {}
    ok = answer.status_code == 401 and body.get("error") == "session_unreadable"
    _held("refresh token bound to its user", ok, f"{answer.status_code} {body.get('error')}")
    assert emu.exchange_count() == 0


def test_a_logout_tokens_jti_is_remembered_while_the_token_lives(app: Flask, emu: Emulator) -> None:
    """Mutant: a logout token's jti is remembered for one second, so a replay later passes."""
    clock = app_clock(app)
    login_as(app.test_client(), emu, ALICE)
    (sid,) = emu.sessions_for(ALICE)
    token = emu.logout_token(ALICE, sid=sid)  # valid 120 s, and 60 s of leeway
    server = app.test_client()
    assert server.post("/auth/backchannel-logout", data={"logout_token": token}).status_code == 200
    clock.advance(150)
    replay = server.post("/auth/backchannel-logout", data={"logout_token": token})
    _held("logout token replayed 150 s later", replay.status_code == 400, str(replay.status_code))


def test_an_ended_session_stays_ended_for_the_whole_session_lifetime(
    app: Flask, emu: Emulator
) -> None:
    """Mutant: the record of an ended session lives the idle timeout, not the session lifetime.

    The record expires on the store's clock, the idle timeout is read on the app's wall clock:
    after the wall clock steps back (an NTP correction, or a Redis host's clock ahead of the
    app's), a record kept only the idle timeout is gone while the copy is not yet idle.
    """
    clock = app_clock(app)
    owner = app.test_client()
    login_as(owner, emu, ALICE)
    (sid,) = emu.sessions_for(ALICE)
    copy = client_with_cookie(app, session_cookie(owner))
    token = emu.logout_token(ALICE, sid=sid)
    assert app.test_client().post("/auth/backchannel-logout", data={"logout_token": token})
    clock.step_wall(-2 * 3600)
    clock.advance(DAY + 60)  # past the idle timeout on the store's clock, not on the wall's
    ended = whoami(copy) is None
    _held("ended session, a day later", ended, "ended" if ended else "signed in again")


def test_a_failed_revocation_logs_no_part_of_the_refresh_token(
    app: Flask, emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    """Mutant: the failed-revocation log line names the start of the refresh token."""
    caplog.set_level(logging.DEBUG)
    client = app.test_client()
    login_as(client, emu, ALICE)
    refresh_token = next(iter(emu.state.refresh_tokens))
    emu.add_fault("revoke", status=400, error="invalid_request", times=-1)
    log_out(app, client)
    text = caplog.text + "".join(repr(r.args) for r in caplog.records)
    assert "refresh token revocation failed" in text
    fragments = {refresh_token[i : i + 12] for i in range(len(refresh_token) - 11)}
    hits = sum(fragment in text for fragment in fragments)
    _held("failed revocation log line", hits == 0, f"{hits} fragments of the refresh token")


# -- tokens from the tenant --------------------------------------------------------------------


def test_id_tokens_are_pinned_to_rs256_even_with_a_key_that_verifies_hs256(app: Flask) -> None:
    """Mutant: the discovery document handed to authlib allows HS256 beside RS256.

    authlib verifies ID tokens with the algorithms that document lists; with a key that could
    verify an HS256 token (a shared secret in the key set), only that list refuses it.
    """
    with app.app_context():
        metadata = TokenVault.state(app).oauth.load_server_metadata()
    allowed = metadata["id_token_signing_alg_values_supported"]
    secret = OctKey.import_key("a-shared-secret-" * 4, {"kid": "shared"})
    forged = jwt.encode({"alg": "HS256", "kid": "shared"}, {"sub": "auth0|x"}, secret)
    try:  # as authlib's parse_id_token calls joserfc
        jwt.decode(forged, KeySet([secret]), registry=JWSRegistry(algorithms=allowed))
        refused = False
    except JoseError:
        refused = True
    _held("ID token HS256 with a key that verifies it", refused, f"algorithms {allowed}")


@pytest.mark.parametrize("alg", ["HS256", "RS384", "none"])
def test_the_header_check_names_rs256_whatever_the_token_offers(emu: Emulator, alg: str) -> None:
    """Mutant: the header check lets other algorithms through (the signature check alone left)."""
    header = base64.urlsafe_b64encode(json.dumps({"alg": alg, "kid": "k"}).encode()).decode()
    token = header.rstrip("=") + ".e30.c2ln"
    answer = make_api_app(emu).test_client().get("/api/open", headers=bearer(token))
    said = answer.headers.get("WWW-Authenticate", "")
    ok = answer.status_code == 401 and f"must be signed with RS256, not {alg}" in said
    _held(f"access token header alg {alg}", ok, said[:120])


def test_an_access_token_needs_every_required_api_scope(emu: Emulator) -> None:
    """Mutant: any one of the required API scopes suffices."""
    app = make_api_app(emu)

    @app.get("/api/both")
    @provider_token_required("google-oauth2", [CAL_READ], api_scopes=[API_READ, "write:calendar"])
    def both() -> Any:
        return jsonify(ok=True)

    emu.connect_account(ALICE, "google-oauth2", [CAL_READ])
    client = app.test_client()
    one = client.get("/api/both", headers=bearer(emu.issue_access_token(ALICE, scope=API_READ)))
    _held("one of two API scopes", one.status_code == 403, str(one.status_code))
    token = emu.issue_access_token(ALICE, claims={"scope": f"{API_READ} write:calendar"})
    assert client.get("/api/both", headers=bearer(token)).status_code == 200


def test_keys_the_tenant_dropped_stop_verifying_within_a_day(emu: Emulator) -> None:
    """Mutant: the key set never goes stale, so a key Auth0 dropped stays trusted."""
    app = make_api_app(emu)
    clock = app_clock(app)
    client = app.test_client()
    token = emu.issue_access_token(ALICE, claims={"exp": int(time.time()) + 3 * DAY})
    assert client.get("/api/whoami", headers=bearer(token)).status_code == 200
    emu.add_fault("jwks", status=200, body={"keys": []}, times=-1)  # the key is gone
    clock.advance(DAY + 1)
    answer = client.get("/api/whoami", headers=bearer(token))
    _held("dropped signing key, a day later", answer.status_code == 401, str(answer.status_code))


# -- connect links and Connected Accounts ------------------------------------------------------


def test_a_connect_links_signature_covers_its_scopes(app: Flask, emu: Emulator) -> None:
    """Mutant: the link's signature leaves the scopes out: any declared scope may be swapped in."""
    client = app.test_client()
    user_id = login_as(client, emu, ALICE)
    expires = int(time.time()) + 600
    sig = TokenVault.state(app).links.sign("google-oauth2", [CAL_READ], user_id, expires)
    answer = client.get(
        "/auth/connect/google-oauth2",
        query_string={"scope": CAL_WRITE, "exp": str(expires), "sig": sig},
    )
    _held("connect link with another scope", answer.status_code == 400, str(answer.status_code))


def test_a_connection_started_by_another_user_is_not_completed(emu: Emulator) -> None:
    """Mutant: the Connected Accounts callback completes a connection another user started."""
    emu.state.connections["google-oauth2"].connected_accounts = {"active": True}
    app = make_app(emu, TOKEN_VAULT_CONNECT_FLOW="connected_accounts")
    client = app.test_client()
    login_as(client, emu, ALICE)
    emu.set_auto_login(ALICE)
    back = urlsplit(emulator_redirect(follow_to_emulator(client, "/calendar")))
    # Another user in the same browser, the pending connection kept (as a session store may).
    bob = make_record(TokenVault.state(app), {"sub": emu.user_id_for(BOB)}, "rt-of-bob")
    with client.session_transaction() as session:
        session[SESSION_KEY] = bob
    answer = client.get(back.path + "?" + back.query, headers=JSON)
    error = (answer.get_json() or {}).get("error")
    ok = answer.status_code == 400 and error == "state_mismatch"
    _held("connection completed for another user", ok, f"{answer.status_code} {error}")
    assert emu.state.tokensets_for(emu.user_id_for(ALICE)) == []


# -- the cache ---------------------------------------------------------------------------------


def _two_caches(store: MemoryStore, clock: Clock) -> tuple[TokenCache, TokenCache]:
    crypto, settings = Crypto([b"k" * 32]), default_settings()
    return (
        TokenCache(store, crypto, clock, settings, namespace="t"),
        TokenCache(store, crypto, clock, settings, namespace="t"),
    )


def test_a_token_read_from_the_store_is_kept_no_longer_than_the_store_keeps_it() -> None:
    """Mutant: the store's own TTL is ignored when an entry is read.

    After a backward step of the wall clock the token looks fresh for an hour more; the store,
    on the monotonic clock, drops it on time, and so must the process that read it.
    """
    fake = FakeClock(1_000_000.0)
    clock = Clock(fake)
    store = _SharedStore(clock)
    one, two = _two_caches(store, clock)
    slot = Slot("alice", "google-oauth2", None, ())
    token = ProviderToken("T1", clock.time() + 3600, None, "google-oauth2")
    one.fetch_entry(slot, lambda: (token, clock.time()))
    entry = store.read(one.key_for(slot))
    assert entry is not None and entry.ttl is not None
    fake.step_wall(-3600)
    fake.advance(entry.ttl - 2)
    assert two.get(slot) is not None  # read from the store: 2 s left there
    fake.advance(3)
    kept = two.get(slot)
    _held("token past the store's TTL", kept is None, "dropped" if kept is None else "still served")


def test_a_token_exchanged_while_another_process_signed_the_user_out_is_not_kept() -> None:
    """Mutant: a token produced while another process invalidated the user stays near."""
    clock = Clock(FakeClock(1_000_000.0))
    here, elsewhere = _two_caches(_SharedStore(clock), clock)
    slot = Slot("alice", "google-oauth2", None, ())

    def exchange_during_a_logout_elsewhere() -> tuple[ProviderToken, float]:
        elsewhere.invalidate_user("alice")
        return ProviderToken("OLD", clock.time() + 3600, None, "google-oauth2"), clock.time()

    assert here.fetch_entry(slot, exchange_during_a_logout_elsewhere).token.access_token == "OLD"
    new = ProviderToken("NEW", clock.time() + 3600, None, "google-oauth2")
    served = here.fetch_entry(slot, lambda: (new, clock.time())).token.access_token
    _held("token of a user signed out meanwhile", served == "NEW", f"served {served}")


# -- what the app sends ------------------------------------------------------------------------


def test_a_token_request_answered_with_a_redirect_is_not_followed(emu: Emulator) -> None:
    """Mutant: the transport follows redirects, re-posting the client secret elsewhere."""
    received: list[str] = []
    elsewhere = Flask("elsewhere")

    @elsewhere.post("/token")
    def token() -> Any:
        received.append(request.get_data(as_text=True))
        return jsonify(access_token="x", expires_in=3600, token_type="Bearer")

    with LiveServer(elsewhere) as server:
        app = make_app(emu)
        client = app.test_client()
        login_as(client, emu, ALICE, {"google-oauth2": [CAL_READ]})
        emu.add_fault(
            "token:exchange", status=307, body="", headers={"Location": server.url + "/token"}
        )
        answer = client.get("/calendar", headers=JSON)
    _held("token request redirected", received == [], f"{len(received)} forms sent elsewhere")
    assert answer.status_code >= 400


def test_a_dpop_proof_names_the_url_without_query_or_fragment() -> None:
    """Mutant: the proof's htu keeps the query (RFC 9449 4.2: without query and fragment)."""
    proof = DPoPKey(ec_key_pem()).proof("GET", "https://t.example/me/v1/x?from=abc#top", 1e9)
    htu = _payload(proof)["htu"]
    _held("DPoP htu", htu == "https://t.example/me/v1/x", htu)


def test_a_subject_token_lives_no_longer_than_auth0_accepts_it() -> None:
    """Mutant: the Privileged Worker subject token lives an hour; Auth0 refuses one past 60 s."""
    token = ClientKey(rsa_key_pem()).subject_token(
        "client", "https://t/", "auth0|u", 1e9, audit_context="nightly calendar sync"
    )
    claims = _payload(token)
    life = claims["exp"] - claims["iat"]
    _held("subject token lifetime", 0 < life <= 60, f"{life} s")


def test_every_mutant_of_the_mutation_pass_still_finds_its_line() -> None:
    """``tools/mutants.py`` mutates lines it finds by their text: each must occur exactly once.

    A refactor that moves or rewrites such a line must carry the mutant along.
    """
    listed = subprocess.run(
        [sys.executable, "tools/mutants.py", "--list"],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "error:" not in listed.stdout, listed.stdout
    assert listed.returncode == 0 and listed.stdout.count("    tests: ") >= 50
