"""Accounts are first-class: each with its id and login_hint, disconnected one at a time."""

from __future__ import annotations

from flask_token_vault_emulator import Emulator
from tests.helpers.apps import CAL_READ, cached_token
from tests.helpers.browser import csrf
from tests.helpers.connected_accounts import two_google_accounts

EMAIL = "ola@example.com"


def test_each_account_says_which_one_it_is(emu: Emulator) -> None:
    _, client, _ = two_google_accounts(emu)
    listed = {a["login_hint"]: a for a in client.get("/accounts").get_json()}
    assert set(listed) == {"ola.work@example.com", "ola.home@example.com", EMAIL}
    work = listed["ola.work@example.com"]
    assert work["id"].startswith("cac_") and work["connection"] == "google-oauth2"
    assert CAL_READ in work["scopes"] and work["expires_at"] and work["org_id"] is None


def test_one_account_is_disconnected_and_the_others_stay(emu: Emulator) -> None:
    app, client, user_id = two_google_accounts(emu)
    assert client.get("/ad-hoc/ola.work@example.com").status_code == 200  # cached, ad hoc
    kept = ("https://www.googleapis.com/auth/calendar.readonly", "openid")
    assert cached_token(app, user_id, "google-oauth2", kept, "ola.work@example.com") is not None
    work = next(a for a in emu.state.tokensets_for(user_id) if a.account == "ola.work@example.com")
    answer = client.post(
        f"/auth/disconnect/account/{work.account_id}",
        data={"csrf_token": csrf(client)},
        headers={"Accept": "application/json"},
    )
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_json()["account"]["login_hint"] == "ola.work@example.com"
    left = sorted(a.account for a in emu.state.tokensets_for(user_id))
    assert left == sorted([EMAIL, "ola.home@example.com"])
    # Its tokens went, under whatever scopes they were asked for (not only the declared ones).
    assert cached_token(app, user_id, "google-oauth2", kept, "ola.work@example.com") is None
    assert client.get("/ad-hoc/ola.home@example.com").status_code == 200  # the other account


def test_an_unknown_account_id_is_a_404(emu: Emulator) -> None:
    _, client, _ = two_google_accounts(emu)
    answer = client.get("/drop-account/cac_nope", headers={"Accept": "application/json"})
    assert answer.status_code == 404 and answer.get_json()["error"] == "account_not_found"
    bad = client.get("/drop-account/fcts_x", headers={"Accept": "application/json"})
    assert bad.status_code == 400


def test_the_disconnect_route_needs_the_form_token(emu: Emulator) -> None:
    _, client, user_id = two_google_accounts(emu)
    account = emu.state.tokensets_for(user_id)[0]
    answer = client.post(f"/auth/disconnect/account/{account.account_id}")
    assert answer.status_code == 400
    assert len(emu.state.tokensets_for(user_id)) == 3
