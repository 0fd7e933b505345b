"""Configuration is read once in init_app and a bad value names its key."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from flask_token_vault import ConfigurationError, TokenVault
from flask_token_vault.config import parse_domain

GOOD: dict[str, Any] = {
    "SECRET_KEY": "test-secret-key-0123456789abcdef",
    "AUTH0_DOMAIN": "tenant.us.auth0.com",
    "AUTH0_CLIENT_ID": "cid",
    "AUTH0_CLIENT_SECRET": "csecret",
}


def _app(**config: Any) -> Flask:
    app = Flask(__name__)
    app.config.update(GOOD)
    app.config.update(config)
    return app


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("tenant.us.auth0.com", "https://tenant.us.auth0.com"),
        ("https://tenant.us.auth0.com/", "https://tenant.us.auth0.com"),
        ("http://127.0.0.1:8100", "http://127.0.0.1:8100"),
        ("http://localhost:9000/", "http://localhost:9000"),
        ("login.example.com", "https://login.example.com"),
    ],
)
def test_domain_forms(value: str, expected: str) -> None:
    assert parse_domain(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("http://tenant.us.auth0.com", "plain http"),
        ("http://10.0.0.1:8000", "plain http"),
        ("ftp://tenant.us.auth0.com", "ftp"),
        ("tenant.us.auth0.com/path", "no path"),
        ("not a domain", "not a valid host"),
        ("", "is required"),
    ],
)
def test_bad_domain_fails_naming_the_key(value: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=f"AUTH0_DOMAIN: .*{message}"):
        TokenVault(_app(AUTH0_DOMAIN=value))


@pytest.mark.parametrize("key", ["AUTH0_DOMAIN", "AUTH0_CLIENT_ID", "AUTH0_CLIENT_SECRET"])
def test_missing_required_key_is_named(key: str) -> None:
    app = _app()
    del app.config[key]
    with pytest.raises(ConfigurationError, match=f"^{key}: "):
        TokenVault(app)


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"SECRET_KEY": None}, "SECRET_KEY"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),
        ({"TOKEN_VAULT_SCOPES": "openid profile"}, "TOKEN_VAULT_SCOPES"),
        ({"TOKEN_VAULT_CONNECTIONS": "google-oauth2"}, "TOKEN_VAULT_CONNECTIONS"),
        ({"TOKEN_VAULT_CONNECTIONS": {"bad name!": {}}}, "TOKEN_VAULT_CONNECTIONS"),
        (
            {"TOKEN_VAULT_CONNECTIONS": {"google-oauth2": {"scope": []}}},
            r"TOKEN_VAULT_CONNECTIONS\['google-oauth2'\]",
        ),
        (
            {"TOKEN_VAULT_CONNECTIONS": {"x": {"authorization_params": {"audience": "a"}}}},
            r"TOKEN_VAULT_CONNECTIONS\['x'\]\['authorization_params'\]",
        ),
        ({"TOKEN_VAULT_URL_PREFIX": "auth/../x"}, "TOKEN_VAULT_URL_PREFIX"),
        ({"TOKEN_VAULT_HTTP_TIMEOUT": "10"}, "TOKEN_VAULT_HTTP_TIMEOUT"),
        ({"TOKEN_VAULT_DEFAULT_NEXT": "//evil"}, "TOKEN_VAULT_DEFAULT_NEXT"),
        ({"TOKEN_VAULT_CONNECT_FLOW": "popup"}, "TOKEN_VAULT_CONNECT_FLOW"),
        ({"TOKEN_VAULT_CACHE": 42}, "TOKEN_VAULT_CACHE"),
        ({"TOKEN_VAULT_CACHE": "ftp://cache"}, "TOKEN_VAULT_CACHE"),
    ],
)
def test_malformed_key_is_named(config: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigurationError, match=f"^{key}: "):
        TokenVault(_app(**config))


def test_secret_is_not_in_config_error_or_repr() -> None:
    app = _app(TOKEN_VAULT_SCOPES="openid")
    with pytest.raises(ConfigurationError) as info:
        TokenVault(app)
    assert "csecret" not in str(info.value)
    good = _app()
    TokenVault(good)
    state = good.extensions["token_vault"]
    assert "csecret" not in repr(state.settings)
    assert "test-secret-key" not in repr(state.crypto)


def test_second_registration_is_refused() -> None:
    app = _app()
    vault = TokenVault(app)
    with pytest.raises(RuntimeError, match="already registered"):
        vault.init_app(app)


def test_one_extension_serves_several_apps() -> None:
    vault = TokenVault()
    first, second = _app(), _app(AUTH0_DOMAIN="other.eu.auth0.com", TOKEN_VAULT_URL_PREFIX="/x")
    vault.init_app(first)
    vault.init_app(second)
    assert TokenVault.state(first).settings.base_url == "https://tenant.us.auth0.com"
    assert TokenVault.state(second).settings.base_url == "https://other.eu.auth0.com"
    assert "/x/login" in {rule.rule for rule in second.url_map.iter_rules()}
    assert "/auth/login" in {rule.rule for rule in first.url_map.iter_rules()}


def test_google_defaults_apply_and_can_be_overridden() -> None:
    app = _app(
        TOKEN_VAULT_CONNECTIONS={
            "google-oauth2": {},
            "windowslive": {"authorization_params": {"prompt": "select_account"}},
        }
    )
    TokenVault(app)
    conns = TokenVault.state(app).settings.connections
    assert dict(conns["google-oauth2"].authorization_params) == {
        "access_type": "offline",
        "prompt": "consent",
    }
    assert dict(conns["windowslive"].authorization_params) == {"prompt": "select_account"}


def test_options_override_config() -> None:
    app = _app()
    TokenVault(app, TOKEN_VAULT_URL_PREFIX="/login-area")
    assert TokenVault.state(app).settings.url_prefix == "/login-area"


def test_extension_not_initialised_gives_clear_message() -> None:
    app = Flask(__name__)
    with app.app_context(), pytest.raises(RuntimeError, match="not initialised"):
        TokenVault.state()
