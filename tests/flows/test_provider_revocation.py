"""Opt-in revocation of the provider's grant before an account leaves the vault."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from flask_token_vault import (
    ProviderRevocation,
    forget_provider_tokens,
    revoke_provider_grant,
    signals,
)
from flask_token_vault_emulator import Emulator
from tests.helpers.browser import csrf
from tests.helpers.connected_accounts import two_google_accounts

EMAIL = "ola@example.com"


def two_google_accounts_on_apis(emu: Emulator) -> tuple[Flask, FlaskClient, str]:
    """Sign ``EMAIL`` in with two Google accounts and a Microsoft one, on the emulator's APIs."""
    connections = {
        "google-oauth2": {"scopes": ["openid"], "api_base": emu.google_api_base},
        "windowslive": {"scopes": ["User.Read"], "api_base": emu.graph_api_base},
    }
    return two_google_accounts(emu, EMAIL, TOKEN_VAULT_CONNECTIONS=connections)


def test_disconnecting_one_account_revokes_its_google_grant_first(emu: Emulator) -> None:
    app, client, user_id = two_google_accounts_on_apis(emu)
    work = next(a for a in emu.state.tokensets_for(user_id) if a.account == "ola.work@example.com")
    seen: list[ProviderRevocation] = []

    def receive(sender: Any, user_id: str, revocation: ProviderRevocation) -> None:
        seen.append(revocation)

    with signals.provider_revoked.connected_to(receive, app):
        answer = client.post(
            f"/auth/disconnect/account/{work.account_id}",
            data={"csrf_token": csrf(client), "revoke_provider": "1"},
            headers={"Accept": "application/json"},
        )
    assert answer.status_code == 200, answer.get_data(as_text=True)
    (report,) = answer.get_json()["revocations"]
    assert report["outcome"] == "revoked" and report["account_id"] == work.account_id
    assert [r.outcome for r in seen] == ["revoked"]
    # Google ended that account's grant (its tokens) and no other account's.
    revoked = {t.account for t in emu.state.provider_tokens.values() if t.revoked}
    assert revoked == {"ola.work@example.com"}
    assert emu.stats()["provider_calls"]["google"]["revoke"] == 1
    left = sorted(a.account for a in emu.state.tokensets_for(user_id))
    assert left == sorted([EMAIL, "ola.home@example.com"])


def test_without_the_option_nothing_is_revoked(emu: Emulator) -> None:
    _, client, user_id = two_google_accounts_on_apis(emu)
    account = emu.state.tokensets_for(user_id)[0]
    answer = client.post(
        f"/auth/disconnect/account/{account.account_id}",
        data={"csrf_token": csrf(client)},
        headers={"Accept": "application/json"},
    )
    assert "revocations" not in answer.get_json()
    assert not any(t.revoked for t in emu.state.provider_tokens.values())


def test_microsoft_says_plainly_it_has_no_revocation(emu: Emulator) -> None:
    _, client, _ = two_google_accounts_on_apis(emu)
    answer = client.post(
        "/auth/disconnect/windowslive",
        data={"csrf_token": csrf(client), "revoke_provider": "1"},
        headers={"Accept": "application/json"},
    )
    (report,) = answer.get_json()["revocations"]
    assert report["outcome"] == "not_supported" and "Microsoft" in report["detail"]
    assert answer.get_json()["removed"] == 1


def test_a_grant_already_revoked_is_reported_failed(emu: Emulator) -> None:
    app, client, _ = two_google_accounts_on_apis(emu)

    @app.get("/revoke-twice")
    def twice() -> Any:
        first = revoke_provider_grant("google-oauth2", "ola.home@example.com")
        forget_provider_tokens("google-oauth2")
        # Google ended the grant: Token Vault can no longer renew a token to revoke.
        second = revoke_provider_grant("google-oauth2", "ola.home@example.com")
        return [first.outcome, second.outcome, second.detail]

    first, second, detail = client.get("/revoke-twice").get_json()
    assert (first, second) == ("revoked", "failed") and "No provider token" in detail
