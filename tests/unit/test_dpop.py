"""DPoP: tokens bound to the app's key, proofs on every try, the use_dpop_nonce retry."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from flask_token_vault import MyAccountError, TokenVault, my_connected_accounts
from flask_token_vault._keys import DPoPKey
from flask_token_vault._my_account import READ_SCOPE, MyAccountClient
from flask_token_vault_emulator import Emulator
from flask_token_vault_emulator.constants import (
    TOKEN_VAULT_GRANT,
)
from tests.helpers.apps import make_app
from tests.helpers.browser import browser_login, follow_to_emulator, sign_in_via_page
from tests.helpers.keys import ec_key_pem, keyed_config, register_client_key
from tests.helpers.oauth import token_request, vault_exchange


def _only_refresh_token(emu: Emulator) -> Any:
    records = list(emu.state.refresh_tokens.values())
    assert len(records) == 1
    return records[0]


def test_a_bound_refresh_token_replayed_without_the_key_is_refused(emu: Emulator) -> None:
    emu.require_proof_of_possession()
    app = make_app(emu, TOKEN_VAULT_DPOP_KEY=ec_key_pem())
    client = app.test_client()
    assert browser_login(client, "/calendar").status_code == 200
    record = _only_refresh_token(emu)
    key = TokenVault.state(app).settings.dpop_key
    assert key is not None and record.jkt == key.thumbprint
    # The refresh token as someone who copied it out of a session would hold it: no key.
    stolen = vault_exchange(emu, record.token)
    assert stolen.status_code == 400
    assert stolen.json()["error"] in ("invalid_dpop_proof", "invalid_request")
    # Nor with a proof of a key of their own.
    other = DPoPKey(ec_key_pem("thief").encode())
    url = emu.url + "/oauth/token"
    proof = other.proof("POST", url, emu.state.now())
    with_other_key = vault_exchange(emu, record.token, headers={"DPoP": proof})
    assert with_other_key.status_code == 400
    assert with_other_key.json()["error"] == "invalid_dpop_proof"
    # The app, which holds the key, still gets tokens.
    assert client.get("/calendar?again=1").status_code == 200


def test_a_bound_refresh_token_needs_its_key_even_when_the_client_does_not_insist(
    emu: Emulator,
) -> None:
    app = make_app(emu, TOKEN_VAULT_DPOP_KEY=ec_key_pem())
    assert browser_login(app.test_client(), "/calendar").status_code == 200
    refused = token_request(
        emu, {"grant_type": "refresh_token", "refresh_token": _only_refresh_token(emu).token}
    )
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_dpop_proof"


def test_a_client_requiring_proofs_refuses_an_app_without_a_key(emu: Emulator) -> None:
    emu.require_proof_of_possession()
    app = make_app(emu)
    client = app.test_client()
    callback = sign_in_via_page(client, follow_to_emulator(client, "/calendar"))
    assert callback.status_code == 400
    assert "invalid_request" in callback.get_data(as_text=True)


def test_the_use_dpop_nonce_answer_is_retried_once_with_a_fresh_proof(emu: Emulator) -> None:
    register_client_key(emu)
    emu.require_dpop_nonce()
    app = make_app(emu, **keyed_config(TOKEN_VAULT_DPOP_KEY=ec_key_pem()))
    client = app.test_client()
    assert browser_login(client, "/calendar").status_code == 200
    # The code exchange met the nonce demand once; the exchange then knew the nonce. Each
    # retry carried a new client assertion and a new proof (the emulator refuses a reused jti).
    requests_by_grant = emu.stats()["token_requests"]
    assert requests_by_grant == {"authorization_code": 2, TOKEN_VAULT_GRANT: 1}
    # A new nonce: the next call meets the demand again, and again only once.
    emu.require_dpop_nonce()
    with app.test_request_context():
        TokenVault.state(app).cache.invalidate_user(_only_refresh_token(emu).user_id)
    assert client.get("/calendar").status_code == 200
    assert emu.stats()["token_requests"][TOKEN_VAULT_GRANT] == 3


def test_my_account_calls_carry_the_dpop_token_and_a_proof_with_ath(emu: Emulator) -> None:
    app = make_app(emu, TOKEN_VAULT_DPOP_KEY=ec_key_pem())

    @app.get("/accounts")
    def accounts() -> Any:
        return jsonify([a.connection for a in my_connected_accounts()])

    client = app.test_client()
    assert browser_login(client, "/calendar").status_code == 200
    answer = client.get("/accounts")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_json() == ["google-oauth2"]


def test_a_bound_my_account_token_sent_as_bearer_is_refused(emu: Emulator) -> None:
    app = make_app(emu, TOKEN_VAULT_DPOP_KEY=ec_key_pem())
    assert browser_login(app.test_client(), "/calendar").status_code == 200
    state = TokenVault.state(app)
    answer = state.exchanger.post_token(
        {
            "grant_type": "refresh_token",
            "refresh_token": _only_refresh_token(emu).token,
            "audience": emu.url + "/me/",
            "scope": READ_SCOPE,
        }
    )
    assert answer["token_type"] == "DPoP"
    bearer_client = MyAccountClient(state.settings, state.transport)  # no DPoP
    try:
        bearer_client.list_accounts(answer["access_token"])
    except MyAccountError as exc:
        assert exc.upstream_status == 401
    else:
        raise AssertionError("a bound token sent as Bearer was accepted")
    assert state.my_account.list_accounts(answer["access_token"])
