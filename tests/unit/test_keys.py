"""Keys instead of secrets: private_key_jwt for every call to /oauth/token, and its config."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask

from flask_token_vault import ConfigurationError, TokenVault, management_client
from flask_token_vault._keys import ASSERTION_TYPE, ClientKey
from flask_token_vault_emulator import Emulator
from tests.helpers import TIMEOUT
from tests.helpers.apps import make_app
from tests.helpers.browser import browser_login, sign_in_via_page
from tests.helpers.keys import ec_key_pem, keyed_config, register_client_key, rsa_key_pem


def _token(emu: Emulator, **data: str) -> requests.Response:
    return requests.post(emu.url + "/oauth/token", data=data, timeout=TIMEOUT)


def _assertion(emu: Emulator, pem: str | None = None, now: float | None = None, **over: Any) -> str:
    key = ClientKey((pem or rsa_key_pem()).encode(), str(over.pop("alg", "RS256")))
    claims = {
        "iss": emu.client_id,
        "sub": emu.client_id,
        "aud": emu.url + "/",
        "iat": int(now or time.time()),
        "exp": int(now or time.time()) + 60,
        "jti": over.pop("jti", "jti-" + str(time.time_ns())),
        **over,
    }
    return key.sign(claims)


def _client_credentials(emu: Emulator, assertion: str) -> requests.Response:
    return _token(
        emu,
        grant_type="client_credentials",
        audience=emu.url + "/api/v2/",
        client_assertion_type=ASSERTION_TYPE,
        client_assertion=assertion,
    )


def test_a_secret_less_app_signs_in_and_exchanges(emu: Emulator) -> None:
    register_client_key(emu)
    app = make_app(emu, **keyed_config())
    answer = browser_login(app.test_client(), "/calendar")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert emu.exchange_count() == 1
    # The client's secret no longer works once it authenticates with keys.
    refused = _token(
        emu,
        grant_type="client_credentials",
        audience=emu.url + "/api/v2/",
        client_id=emu.client_id,
        client_secret=emu.client_secret,
    )
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"


def test_the_management_client_authenticates_with_the_key(emu: Emulator) -> None:
    register_client_key(emu)
    app = make_app(emu, **keyed_config())
    client = management_client(app).get_client()
    assert client["token_endpoint_auth_method"] is None
    assert client["client_authentication_methods"]["private_key_jwt"]["credentials"]


def test_an_unregistered_key_cannot_sign_in(emu: Emulator) -> None:
    register_client_key(emu)
    app = make_app(emu, **keyed_config(rsa_key_pem("other")))
    client = app.test_client()
    answer = client.get("/auth/login")
    location = answer.headers["Location"]
    callback = sign_in_via_page(client, location)
    # The app's own credentials were refused: the operator's to fix, not a stale link.
    assert callback.status_code == 500
    assert "invalid_client" in callback.get_data(as_text=True)
    assert "client credentials add" in callback.get_data(as_text=True)


def test_each_assertion_is_used_once(emu: Emulator) -> None:
    register_client_key(emu)
    assertion = _assertion(emu)
    assert _client_credentials(emu, assertion).status_code == 200
    replay = _client_credentials(emu, assertion)
    assert replay.status_code == 401
    assert "already used" in replay.json()["error_description"]


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"aud": "https://elsewhere.example/"}, "aud"),
        ({"exp": int(time.time()) - 5}, "expired"),
        ({"exp": int(time.time()) + 3600}, "5 minutes"),
        ({"sub": "someone-else"}, "iss and sub"),
    ],
)
def test_the_emulator_checks_assertions(emu: Emulator, change: dict[str, Any], said: str) -> None:
    register_client_key(emu)
    answer = _client_credentials(emu, _assertion(emu, **change))
    assert answer.status_code == 401
    assert said in answer.json()["error_description"]


def test_an_assertion_signed_by_another_key_is_refused(emu: Emulator) -> None:
    register_client_key(emu)
    answer = _client_credentials(emu, _assertion(emu, rsa_key_pem("other")))
    assert answer.status_code == 401
    assert "signature" in answer.json()["error_description"]


def test_every_signing_algorithm_auth0_accepts_works(emu: Emulator) -> None:
    for alg in ("RS384", "PS256"):
        credential = emu.add_credential(
            ClientKey(rsa_key_pem().encode(), alg).public_pem(), alg=alg
        )
        emu.use_private_key_jwt(credential)
        app = make_app(emu, **keyed_config(AUTH0_CLIENT_PRIVATE_KEY_ALG=alg))
        assert management_client(app).get_client()["client_id"] == emu.client_id
        emu.restore_tenant()


# -- configuration ---------------------------------------------------------------------------


def _configure(emu: Emulator, **config: Any) -> None:
    app = Flask("keys")
    app.config.update(
        TESTING=True,  # a placeholder SECRET_KEY is refused outside tests
        SECRET_KEY="k" * 32,
        AUTH0_DOMAIN=emu.url,
        AUTH0_CLIENT_ID=emu.client_id,
        AUTH0_CLIENT_SECRET=emu.client_secret,
    )
    app.config.update(config)
    TokenVault(app)


@pytest.mark.parametrize(
    ("config", "key", "said"),
    [
        ({"AUTH0_CLIENT_PRIVATE_KEY": "PEM"}, "AUTH0_CLIENT_SECRET", "together"),
        ({"AUTH0_CLIENT_SECRET": None}, "AUTH0_CLIENT_SECRET", "AUTH0_CLIENT_PRIVATE_KEY"),
        (keyed_config("/no/such/key.pem"), "AUTH0_CLIENT_PRIVATE_KEY", "readable file"),
        (keyed_config("-----BEGIN PRIVATE KEY-----\nno"), "AUTH0_CLIENT_PRIVATE_KEY", "readable"),
        (keyed_config(ec_key_pem("ec-client")), "AUTH0_CLIENT_PRIVATE_KEY", "RSA"),
        (keyed_config(AUTH0_CLIENT_PRIVATE_KEY_ALG="HS256"), "AUTH0_CLIENT_PRIVATE_KEY_ALG", "RS"),
        ({"TOKEN_VAULT_DPOP_KEY": rsa_key_pem()}, "TOKEN_VAULT_DPOP_KEY", "P-256"),
        ({"TOKEN_VAULT_DPOP_KEY": 42}, "TOKEN_VAULT_DPOP_KEY", "PEM"),
    ],
)
def test_bad_key_settings_name_the_key(
    emu: Emulator, config: dict[str, Any], key: str, said: str
) -> None:
    with pytest.raises(ConfigurationError, match=said) as caught:
        _configure(emu, **config)
    assert caught.value.key == key
    assert "BEGIN" not in str(caught.value)  # never the key itself


def test_a_key_is_read_from_a_file_path(emu: Emulator, tmp_path: Path) -> None:
    register_client_key(emu)
    path = tmp_path / "client.pem"
    path.write_text(rsa_key_pem())
    app = make_app(emu, **keyed_config(str(path)))
    assert management_client(app).get_client()["client_id"] == emu.client_id


def test_keys_stay_out_of_reprs(emu: Emulator) -> None:
    app = make_app(emu, **keyed_config(TOKEN_VAULT_DPOP_KEY=ec_key_pem()))
    settings = TokenVault.state(app).settings
    assert settings.client_key is not None and settings.dpop_key is not None
    for shown in (repr(settings), repr(settings.client_key), repr(settings.dpop_key)):
        assert "BEGIN" not in shown and "PRIVATE" not in shown
