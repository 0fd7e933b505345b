"""The pytest plugin shipped in the package (flask_token_vault_pytest) and its helpers."""

from __future__ import annotations

import textwrap
from importlib.metadata import entry_points

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from flask_token_vault_emulator import Emulator
from flask_token_vault_pytest.testing import (
    FailNextExchange,
    LoginAs,
    emulator_config,
    fail_next_exchange,
    login_as,
)
from tests.helpers.apps import CAL_READ, make_app

pytest_plugins = ["pytester"]

JSON = {"Accept": "application/json"}

# A user's project: its own app and tests, using nothing but the plugin's fixtures.
USER_TESTS = textwrap.dedent(
    """
    import pytest
    from flask import Flask, jsonify

    from flask_token_vault import TokenVault, get_provider_token, provider_token_required

    CAL_READ = "https://www.googleapis.com/auth/calendar.readonly"
    SEEN = []


    @pytest.fixture
    def app(token_vault_app_config):
        app = Flask(__name__)
        app.config.update(SECRET_KEY="user-project-secret-key-0123456789", TESTING=True)
        app.config.update(token_vault_app_config)
        app.config["TOKEN_VAULT_CONNECTIONS"] = {"google-oauth2": {"scopes": ["openid"]}}
        TokenVault(app)

        @app.get("/calendar")
        @provider_token_required("google-oauth2", scopes=[CAL_READ])
        def calendar():
            return jsonify(token_length=len(get_provider_token("google-oauth2")))

        return app


    def test_config_points_at_the_emulator(token_vault_app_config, token_vault_emulator):
        assert token_vault_app_config["AUTH0_DOMAIN"] == token_vault_emulator.url
        assert token_vault_emulator.running
        SEEN.append(token_vault_emulator)


    def test_login_as_gets_a_token(app, token_vault_login_as, token_vault_emulator_reset):
        client = app.test_client()
        user_id = token_vault_login_as(client, "bo@example.com", {"google-oauth2": [CAL_READ]})
        answer = client.get("/calendar")
        assert answer.status_code == 200
        assert answer.json["token_length"] > 10
        assert token_vault_emulator_reset.exchange_count(user_id, "google-oauth2") == 1


    def test_each_test_starts_with_a_reset_emulator(token_vault_emulator_reset):
        assert token_vault_emulator_reset.exchange_count() == 0
        assert token_vault_emulator_reset is SEEN[0]


    def test_fail_next_exchange(app, token_vault_login_as, token_vault_fail_next_exchange):
        client = app.test_client()
        token_vault_login_as(client, "bo@example.com", {"google-oauth2": [CAL_READ]})
        token_vault_fail_next_exchange()
        refused = client.get("/calendar", headers={"Accept": "application/json"})
        assert refused.status_code == 401
        assert refused.json["error"] == "federated_connection_refresh_token_flow_failed"
        assert "/auth/connect/google-oauth2" in refused.json["connect_url"]
        assert client.get("/calendar").status_code == 200
    """
)


def test_entry_point_registers_the_plugin() -> None:
    names = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert names.get("token_vault") == "flask_token_vault_pytest"


def test_a_project_using_only_the_plugin_fixtures_passes(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh interpreter finds the fixtures through the entry point alone (no conftest)."""
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    pytester.makeini("[pytest]\nfilterwarnings = error\n")
    pytester.makepyfile(test_user_app=USER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=4)


def test_the_plugin_can_be_turned_off(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        "def test_needs_it(token_vault_emulator):\n    assert token_vault_emulator\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:token_vault", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'token_vault_emulator' not found*"])


def test_emulator_config_names_the_emulator_and_its_apis(emu: Emulator) -> None:
    config = emulator_config(emu)
    assert config == {
        "AUTH0_DOMAIN": emu.url,
        "AUTH0_CLIENT_ID": emu.client_id,
        "AUTH0_CLIENT_SECRET": emu.client_secret,
        "GOOGLE_API_BASE": emu.url + "/google",
        "MICROSOFT_GRAPH_API_BASE": emu.url + "/microsoft",
    }
    discovery = requests.get(
        config["AUTH0_DOMAIN"] + "/.well-known/openid-configuration", timeout=5
    )
    assert discovery.json()["issuer"] == emu.issuer


def test_fail_next_exchange_fails_exactly_once(emu: Emulator, client: FlaskClient) -> None:
    login_as(client, emu, "ann@example.com", {"google-oauth2": [CAL_READ]})
    fault = fail_next_exchange(emu)
    assert (fault.endpoint, fault.status, fault.times) == ("token:exchange", 401, 1)
    refused = client.get("/calendar", headers=JSON)
    assert refused.status_code == 401
    assert refused.json is not None
    assert refused.json["error"] == "federated_connection_refresh_token_flow_failed"
    assert refused.json["connection"] == "google-oauth2"
    assert client.get("/calendar", headers=JSON).status_code == 200
    assert emu.exchange_count() == 1


def test_fail_next_exchange_times_and_error(emu: Emulator, client: FlaskClient) -> None:
    login_as(client, emu, "ann@example.com", {"google-oauth2": [CAL_READ]})
    fail_next_exchange(emu, "invalid_grant", times=2)
    for _ in range(2):
        refused = client.get("/calendar", headers=JSON)
        assert refused.status_code == 401
        assert refused.json is not None
        assert refused.json["error"] == "invalid_grant"
    assert client.get("/calendar", headers=JSON).status_code == 200


def test_fail_next_exchange_until_cleared(emu: Emulator, client: FlaskClient) -> None:
    login_as(client, emu, "ann@example.com", {"google-oauth2": [CAL_READ]})
    fail_next_exchange(emu, times=-1, description="The provider said no.")
    for _ in range(3):
        assert client.get("/calendar", headers=JSON).status_code == 401
    emu.clear_faults()
    assert client.get("/calendar", headers=JSON).status_code == 200


def test_fail_next_exchange_rejects_a_bad_count(emu: Emulator) -> None:
    with pytest.raises(ValueError, match="times must be a positive count"):
        fail_next_exchange(emu, times=0)


def test_fixtures_drive_the_projects_own_app(
    token_vault_app_config: dict[str, str],
    token_vault_login_as: LoginAs,
    token_vault_fail_next_exchange: FailNextExchange,
    token_vault_emulator_reset: Emulator,
) -> None:
    app: Flask = make_app(token_vault_emulator_reset, **token_vault_app_config)
    client = app.test_client()
    user_id = token_vault_login_as(client, "cy@example.com", {"google-oauth2": [CAL_READ]})
    assert client.get("/calendar", headers=JSON).status_code == 200
    token_vault_fail_next_exchange(status=429, error="too_many_requests", times=5)
    # A cached token is served without asking the emulator, so the fault is never reached.
    assert client.get("/calendar", headers=JSON).status_code == 200
    assert token_vault_emulator_reset.exchange_count(user_id) == 1


def test_login_as_refuses_an_app_that_does_not_point_at_the_emulator(emu: Emulator) -> None:
    """An app configured before the emulator's settings were applied fails loudly, not later."""
    app = make_app(emu, AUTH0_DOMAIN="https://tenant.example.com")
    with pytest.raises(RuntimeError) as refused:
        login_as(app.test_client(), emu)
    said = str(refused.value)
    assert f"AUTH0_DOMAIN is 'https://tenant.example.com', not '{emu.url}'" in said
    assert "token_vault_environ" in said and "token_vault_app_config" in said
