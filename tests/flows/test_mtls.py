"""mTLS client authentication (RFC 8705): the client certificate instead of the secret."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask

from flask_token_vault import (
    ConfigurationError,
    Misconfigured,
    TokenVault,
    management_client,
    start_approval,
    wait_for_approval,
)
from flask_token_vault._config import default_settings
from flask_token_vault._exchange import token_failure
from flask_token_vault._oidc import checked_metadata
from flask_token_vault_emulator import Emulator
from flask_token_vault_emulator.__main__ import mtls_banner, parse_args
from flask_token_vault_emulator.tls import MtlsListener
from flask_token_vault_pytest.testing import FakeClock, login_as
from tests.helpers import TIMEOUT
from tests.helpers.apps import CAL_READ, SharedClock, make_app
from tests.helpers.browser import browser_login, log_out, sign_in_via_page
from tests.helpers.keys import keyed_config, register_client_key
from tests.helpers.oauth import management_grant
from tests.helpers.tls import certificate_config, client_certificate

EMAIL = "alice@example.com"


@pytest.fixture
def mtls(emu: Emulator) -> Iterator[MtlsListener]:
    """The emulator's TLS listener, advertised as the tenant's mTLS endpoint aliases."""
    with MtlsListener(emu) as listener:
        yield listener


@pytest.fixture
def cert(tmp_path: Path) -> tuple[str, str, str]:
    """A self-signed client certificate: its PEM, its path and its key's path."""
    return client_certificate(tmp_path)


@pytest.fixture
def cert_app(emu: Emulator, mtls: MtlsListener, cert: tuple[str, str, str]) -> Flask:
    """The test app authenticating with :func:`cert`, which the listener trusts for its client."""
    pem, cert_path, key_path = cert
    mtls.register(pem)
    return make_app(emu, **certificate_config(mtls, cert_path, key_path))


def test_sign_in_and_token_vault_work_with_the_certificate(emu: Emulator, cert_app: Flask) -> None:
    answer = browser_login(cert_app.test_client(), "/calendar")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert emu.exchange_count() == 1
    # The plain endpoint no longer takes the secret: the certificate was the way in.
    assert management_grant(emu).status_code == 401


def test_no_secret_or_assertion_is_sent(
    emu: Emulator, mtls: MtlsListener, cert: tuple[str, str, str], cert_app: Flask
) -> None:
    exchanger = TokenVault.state(cert_app).exchanger
    assert exchanger.client_auth() == {"client_id": emu.client_id}
    assert exchanger.mtls is not None
    url, _, tls = exchanger.mtls.route("token_endpoint", "unused", token_failure)
    assert url == mtls.url + "/oauth/token"
    assert tls == {"cert": (cert[1], cert[2]), "verify": mtls.ca_bundle}


def test_the_management_client_and_logout_use_the_certificate(
    emu: Emulator, cert_app: Flask
) -> None:
    methods = management_client(cert_app).get_client()["client_authentication_methods"]
    assert methods["self_signed_tls_client_auth"]["credentials"]
    client = cert_app.test_client()
    login_as(client, emu, EMAIL)
    refresh_token = next(iter(emu.state.refresh_tokens))
    log_out(cert_app, client)
    assert not emu.refresh_token_active(refresh_token)


def test_a_worker_authenticates_by_certificate_and_signs_with_its_key(
    emu: Emulator, mtls: MtlsListener, cert: tuple[str, str, str]
) -> None:
    pem, cert_path, key_path = cert
    credential = register_client_key(emu)
    emu.set_privileged_access(credential, {"google-oauth2": [CAL_READ, "openid"]})
    mtls.register(pem)
    emu.connect_account(EMAIL, "google-oauth2", [CAL_READ])
    config = certificate_config(mtls, cert_path, key_path, **keyed_config())
    config["AUTH0_CLIENT_SECRET"] = None
    app = make_app(emu, **config)
    assert TokenVault.state(app).exchanger.client_auth() == {"client_id": emu.client_id}
    token = TokenVault().worker_token(
        emu.user_id_for(EMAIL), "google-oauth2", [CAL_READ], audit_context="sync", app=app
    )
    assert token.has_scopes([CAL_READ])


def test_a_certificate_registered_for_another_client_is_misconfigured(
    emu: Emulator, mtls: MtlsListener, cert: tuple[str, str, str]
) -> None:
    pem, cert_path, key_path = cert
    mtls.register(pem, emu.api_client_id)  # trusted by the listener, but not this client's
    app = make_app(emu, **certificate_config(mtls, cert_path, key_path))
    client = app.test_client()
    callback = sign_in_via_page(client, client.get("/auth/login").headers["Location"], EMAIL)
    page = callback.get_data(as_text=True)
    assert callback.status_code == 500
    assert "invalid_client" in page and "AUTH0_CLIENT_CERTIFICATE" in page
    # Refused by the endpoint (401), not at the handshake: the listener trusts the certificate.
    with pytest.raises(Misconfigured) as caught:
        TokenVault.state(app).exchanger.post_token(
            {"grant_type": "client_credentials", "audience": emu.url + "/api/v2/"}
        )
    assert caught.value.upstream_status == 401 and caught.value.error == "invalid_client"
    assert "AUTH0_CLIENT_CERTIFICATE" in caught.value.remedy


def test_a_ciba_approval_goes_through_the_certificate(
    emu: Emulator, cert_app: Flask, emulator_clock: FakeClock
) -> None:
    app = cert_app
    TokenVault.state(app).set_clock(SharedClock(emulator_clock))
    user_id = login_as(app.test_client(), emu, EMAIL)
    emu.set_ciba_interval(1)
    with app.app_context():
        pending = start_approval("Create Lunch?", user_id=user_id)
        emu.approve_ciba()
        approval = wait_for_approval(pending, deadline=30)
    assert approval.approved and approval.access_token


def test_an_untrusted_certificate_fails_the_handshake_as_misconfigured(
    emu: Emulator, mtls: MtlsListener, cert: tuple[str, str, str], tmp_path: Path
) -> None:
    mtls.register(cert[0])
    _, cert_path, key_path = client_certificate(tmp_path, "stranger")
    app = make_app(emu, **certificate_config(mtls, cert_path, key_path))
    clock = FakeClock()
    TokenVault.state(app).set_clock(clock)
    with pytest.raises(Misconfigured, match="TLS handshake") as caught:
        TokenVault.state(app).exchanger.post_token(
            {"grant_type": "client_credentials", "audience": emu.url + "/api/v2/"}
        )
    assert caught.value.error == "invalid_client"
    assert clock.sleeps == []  # a refused certificate is not tried again
    assert "AUTH0_CLIENT_CERTIFICATE_KEY" in caught.value.remedy


def test_the_emulator_refuses_a_call_without_a_certificate(
    emu: Emulator, mtls: MtlsListener
) -> None:
    answer = requests.post(
        mtls.url + "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "audience": emu.url + "/api/v2/",
            "client_id": emu.client_id,
            "client_secret": emu.client_secret,
        },
        verify=mtls.ca_bundle,
        timeout=TIMEOUT,
    )
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_client"
    document = requests.get(emu.url + "/.well-known/openid-configuration", timeout=TIMEOUT).json()
    assert document["mtls_endpoint_aliases"]["token_endpoint"] == mtls.url + "/oauth/token"


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ({"AUTH0_CLIENT_CERTIFICATE_KEY": None}, "AUTH0_CLIENT_CERTIFICATE_KEY"),
        ({"AUTH0_CLIENT_SECRET": "s3cr3t-value"}, "AUTH0_CLIENT_SECRET"),
        ({"AUTH0_CLIENT_CERTIFICATE": "/nonexistent.pem"}, "AUTH0_CLIENT_CERTIFICATE"),
    ],
)
def test_bad_certificate_settings_name_the_key(
    emu: Emulator,
    mtls: MtlsListener,
    cert: tuple[str, str, str],
    given: dict[str, str | None],
    named: str,
) -> None:
    config = {**certificate_config(mtls, cert[1], cert[2]), **given}
    with pytest.raises(ConfigurationError, match=named) as caught:
        make_app(emu, **config)
    assert "s3cr3t" not in str(caught.value)


def test_a_key_that_is_not_the_certificates_is_refused(
    emu: Emulator, mtls: MtlsListener, cert: tuple[str, str, str], tmp_path: Path
) -> None:
    _, _, other_key = client_certificate(tmp_path, "other")
    with pytest.raises(ConfigurationError, match=r"AUTH0_CLIENT_CERTIFICATE_KEY.*not the private"):
        make_app(emu, **certificate_config(mtls, cert[1], other_key))


def test_the_certificate_stays_out_of_reprs(
    emu: Emulator, mtls: MtlsListener, cert: tuple[str, str, str]
) -> None:
    app = make_app(emu, **certificate_config(mtls, cert[1], cert[2]))
    shown = repr(TokenVault.state(app).settings.client_certificate)
    assert cert[2] not in shown and "BEGIN" not in shown


@pytest.mark.parametrize(
    "alias", ["http://127.0.0.1:1/oauth/token", "https://evil.example/oauth/token"]
)
def test_an_mtls_alias_off_the_tenant_is_refused(alias: str) -> None:
    settings = default_settings(base_url="http://127.0.0.1:8000", client_id="x")
    document = {
        "issuer": "http://127.0.0.1:8000/",
        "authorization_endpoint": "http://127.0.0.1:8000/authorize",
        "token_endpoint": "http://127.0.0.1:8000/oauth/token",
        "jwks_uri": "http://127.0.0.1:8000/.well-known/jwks.json",
        "mtls_endpoint_aliases": {"token_endpoint": alias},
    }
    with pytest.raises(Misconfigured, match="mTLS alias"):
        checked_metadata(document, settings)


def test_the_emulators_mtls_banner_gives_settings_that_work(
    emu: Emulator, mtls: MtlsListener
) -> None:
    assert parse_args(["--mtls"]).mtls
    text = mtls_banner(mtls)
    assert "unset AUTH0_CLIENT_SECRET" in text
    exports = dict(
        line.strip().removeprefix("export ").split("=", 1)
        for line in text.splitlines()
        if line.strip().startswith("export ")
    )
    app = make_app(emu, AUTH0_CLIENT_SECRET=None, **exports)
    answer = browser_login(app.test_client(), "/calendar")
    assert answer.status_code == 200, answer.get_data(as_text=True)
