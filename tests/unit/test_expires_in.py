"""Lifetimes Auth0 does not state: a missing ``expires_in`` is a conservative, configurable guess.

Odd values (``Infinity``, ``NaN``, ``1e400``...) are malformed answers (``test_hardening.py``);
here the exchange's answer has none at all, and the Management API token's has odd ones.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from flask_token_vault import ManagementError, get_provider_token_set, management_client
from flask_token_vault_emulator import Emulator
from tests.helpers.apps import alice_client, make_app


def _lifetime_route(app: Flask) -> None:
    @app.get("/lifetime")
    def lifetime() -> Any:
        return {"seconds": round(get_provider_token_set("google-oauth2").expires_in())}


@pytest.mark.parametrize("body", ["", ', "expires_in": null'], ids=["missing", "null"])
def test_a_missing_expires_in_means_the_conservative_default(
    app: Flask, emu: Emulator, body: str
) -> None:
    _lifetime_route(app)
    answer = '{"access_token": "ya29.x", "token_type": "Bearer"' + body + "}"
    emu.add_fault("token:exchange", status=200, body=answer)
    client = alice_client(app, emu)
    for _ in range(2):  # the exchange's answer, then the cached token
        assert client.get("/lifetime").get_json() == {"seconds": 300}
    assert sum(emu.stats()["token_requests"].values()) == 1


def test_the_default_lifetime_is_configurable(emu: Emulator) -> None:
    app = make_app(emu, TOKEN_VAULT_DEFAULT_EXPIRES_IN=60)
    _lifetime_route(app)
    emu.misreport_expires_in("google-oauth2")  # real tokens, no expires_in
    client = alice_client(app, emu)
    assert client.get("/lifetime").get_json() == {"seconds": 60}


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "1e400", "-5"])
def test_an_odd_management_token_lifetime_is_a_typed_error(
    app: Flask, emu: Emulator, raw: str
) -> None:
    body = '{"access_token": "m", "token_type": "Bearer", "expires_in": ' + raw + "}"
    emu.add_fault("token:client_credentials", status=200, body=body)
    with pytest.raises(ManagementError) as info:
        management_client(app).list_tokensets(emu.user_id_for("alice@example.com"))
    assert info.value.code == 503 and info.value.error == "malformed_answer"
