"""Configuration is read once in init_app and a bad value names its key."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from flask_token_vault import ConfigurationError, TokenVault
from flask_token_vault._parsers import parse_domain
from flask_token_vault._secret_key import is_placeholder_secret

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
        ({"TOKEN_VAULT_CACHE_TIMEOUT": 0}, "TOKEN_VAULT_CACHE_TIMEOUT"),
        ({"TOKEN_VAULT_CACHE_TIMEOUT": float("nan")}, "TOKEN_VAULT_CACHE_TIMEOUT"),
        ({"TOKEN_VAULT_CACHE_COOLDOWN": "5"}, "TOKEN_VAULT_CACHE_COOLDOWN"),
        ({"TOKEN_VAULT_DEFAULT_EXPIRES_IN": 0}, "TOKEN_VAULT_DEFAULT_EXPIRES_IN"),
        ({"TOKEN_VAULT_DEFAULT_EXPIRES_IN": 10**6}, "TOKEN_VAULT_DEFAULT_EXPIRES_IN"),
        ({"TOKEN_VAULT_DEFAULT_EXPIRES_IN": float("inf")}, "TOKEN_VAULT_DEFAULT_EXPIRES_IN"),
        ({"TOKEN_VAULT_WORKER_AUDIT_CONTEXT": "x" * 257}, "TOKEN_VAULT_WORKER_AUDIT_CONTEXT"),
        ({"TOKEN_VAULT_WORKER_AUDIT_CONTEXT": "   "}, "TOKEN_VAULT_WORKER_AUDIT_CONTEXT"),
        ({"TOKEN_VAULT_WORKER_AUDIT_CONTEXT": ["sync"]}, "TOKEN_VAULT_WORKER_AUDIT_CONTEXT"),
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


# -- unknown keys ---------------------------------------------------------------------------------


def test_a_misspelt_key_stops_the_app_and_suggests_the_right_one() -> None:
    with pytest.raises(
        ConfigurationError,
        match=r"^TOKEN_VAULT_CONECTIONS: is not a Flask-Token-Vault setting.*"
        r"Did you mean TOKEN_VAULT_CONNECTIONS\?",
    ):
        TokenVault(_app(TOKEN_VAULT_CONECTIONS={"google-oauth2": {}}))


def test_an_unknown_key_without_a_close_match_is_still_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"^TOKEN_VAULT_FROBNICATE: .*ignored") as caught:
        TokenVault(_app(TOKEN_VAULT_FROBNICATE=True))
    assert "Did you mean" not in str(caught.value)


def test_keys_of_other_extensions_are_left_alone() -> None:
    TokenVault(_app(AUTH0_MANAGEMENT_AUDIENCE="x", VAULT_ADDR="https://vault", TOKEN_TTL=3))


def test_an_unknown_option_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"^URL_PREFIX: .*TOKEN_VAULT_URL_PREFIX"):
        TokenVault(_app(), URL_PREFIX="/login")


def test_every_key_the_package_reads_is_known() -> None:
    """A key added to the code but not to CONFIG_KEYS would be refused as unknown."""
    from flask_token_vault._config import CONFIG_KEYS
    from tests.docs.test_docs import config_keys_in_code

    assert config_keys_in_code() - {"TOKEN_VAULT_GRANT"} <= CONFIG_KEYS


# -- api_base -------------------------------------------------------------------------------------


def _connection(app: Flask, name: str) -> Any:
    return TokenVault.state(app).settings.connections[name]


@pytest.mark.parametrize("domain", [GOOD["AUTH0_DOMAIN"], "http://127.0.0.1:8100"])
def test_known_providers_default_to_their_real_apis_wherever_auth0_is(domain: str) -> None:
    """A local Auth0 stand-in changes no API base: only the app's own ``api_base`` does."""
    app = _app(
        AUTH0_DOMAIN=domain, TOKEN_VAULT_CONNECTIONS=["google-oauth2", "windowslive", "github"]
    )
    TokenVault(app)
    assert _connection(app, "google-oauth2").api_base == "https://www.googleapis.com"
    assert _connection(app, "windowslive").api_base == "https://graph.microsoft.com"
    assert _connection(app, "github").api_base is None


def test_api_base_can_be_set() -> None:
    app = _app(
        AUTH0_DOMAIN="http://127.0.0.1:8100",
        TOKEN_VAULT_CONNECTIONS={
            "google-oauth2": {"api_base": "https://www.googleapis.com/"},
            "github": {"api_base": "https://api.github.com"},
        },
    )
    TokenVault(app)
    assert _connection(app, "google-oauth2").api_base == "https://www.googleapis.com"
    assert _connection(app, "github").api_base == "https://api.github.com"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("http://api.example.com", "plain http"),
        ("api.example.com", "absolute https URL"),
        ("https://api.example.com/?x=1", "no query"),
        ("", "must be a URL"),
        (3, "must be a URL"),
    ],
)
def test_bad_api_base_is_named(value: Any, message: str) -> None:
    with pytest.raises(
        ConfigurationError,
        match=rf"TOKEN_VAULT_CONNECTIONS\['github'\]\['api_base'\]: .*{message}",
    ):
        TokenVault(_app(TOKEN_VAULT_CONNECTIONS={"github": {"api_base": value}}))


# -- placeholder secrets ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["change-me-to-a-long-random-string", "CHANGEME", " dev ", b"secret", "x" * 40, "dev-secret"],
)
def test_placeholder_secrets_are_recognised(value: str | bytes) -> None:

    assert is_placeholder_secret(value)


def test_a_random_secret_is_not_a_placeholder() -> None:
    import secrets

    assert not is_placeholder_secret(secrets.token_urlsafe(32))


def test_the_cache_timeout_stays_well_inside_the_deadline() -> None:
    app = _app(TOKEN_VAULT_DEADLINE=1.0, TOKEN_VAULT_HTTP_TIMEOUT=0.5, TOKEN_VAULT_CACHE_TIMEOUT=5)
    TokenVault(app)
    assert TokenVault.state(app).settings.cache_timeout == 0.25
    defaults = _app()
    TokenVault(defaults)
    settings = TokenVault.state(defaults).settings
    assert (settings.cache_timeout, settings.cache_cooldown) == (0.5, 5.0)
    assert settings.default_expires_in == 300


# -- one table of settings -------------------------------------------------------------------------


def test_an_app_that_sets_only_its_tenant_gets_the_tables_defaults() -> None:
    """load_settings and default_settings read the same table: an app's defaults are the parts'."""
    from dataclasses import asdict

    from flask_token_vault._config import default_settings

    app = _app()
    TokenVault(app)
    loaded = TokenVault.state(app).settings
    tenant = {"base_url", "client_id", "client_secret", "encryption_keys"}
    expected = {k: v for k, v in asdict(default_settings()).items() if k not in tenant}
    assert {k: v for k, v in asdict(loaded).items() if k not in tenant} == expected
    assert (loaded.cache_leeway, loaded.deadline, loaded.max_retries) == (60.0, 15.0, 3)


@pytest.mark.parametrize(
    "part",
    [
        "flask_token_vault._cache:TokenCache",
        "flask_token_vault._state:build_store",
        "flask_token_vault._store:Breaker",
        "flask_token_vault._redis:redis_client",
        "flask_token_vault._http:Transport",
        "flask_token_vault._exchange:checked_expires_in",
    ],
)
def test_core_parts_keep_no_default_of_a_setting(part: str) -> None:
    """A default of their own would drift from the table: they take Settings or explicit values."""
    import importlib
    import inspect

    module, _, name = part.partition(":")
    signature = inspect.signature(getattr(importlib.import_module(module), name))
    defaults = {p.name for p in signature.parameters.values() if p.default is not p.empty}
    # What remains are wiring and constants, not settings.
    assert defaults <= {
        "clock",
        "namespace",
        "listener",
        "connection",
        "threshold",
        "what",
        "probe",
        "pool_maxsize",
    }


@pytest.mark.parametrize(
    ("typo", "meant"),
    [("AUTH0_CLIENTID", "AUTH0_CLIENT_ID"), ("AUTH0_CLIENT_SECRT", "AUTH0_CLIENT_SECRET")],
)
def test_a_near_miss_of_an_auth0_key_is_named_with_the_key_meant(typo: str, meant: str) -> None:
    app = Flask(__name__)
    app.config.update({key: value for key, value in GOOD.items() if key != meant}, **{typo: "x"})
    with pytest.raises(ConfigurationError, match=f"Did you mean {meant}") as refused:
        TokenVault(app)
    assert refused.value.key == typo


def test_an_apps_own_auth0_key_is_left_alone() -> None:
    # Apps keep keys of their own beside ours (a tenant name, a list of client ids).
    app = _app(AUTH0_TENANT_NAME="acme", AUTH0_CLIENT_IDS="a b")
    TokenVault(app)
    assert TokenVault.state(app).settings.client_id == "cid"
