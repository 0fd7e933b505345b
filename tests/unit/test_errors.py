"""The error hierarchy's rules, and each error class from a real emulator answer."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, jsonify

from flask_token_vault import (
    AccountNotConnected,
    Auth0Unavailable,
    CacheUnavailable,
    ExchangeRejected,
    InsufficientScope,
    LoginRequired,
    Misconfigured,
    RateLimited,
    ReconsentRequired,
    TokenVault,
    TokenVaultError,
    UpstreamError,
    get_provider_token,
    signals,
)
from flask_token_vault._session import SESSION_KEY, make_record
from flask_token_vault.errors import GROUPS
from flask_token_vault_emulator import Emulator
from flask_token_vault_pytest.testing import login_as
from tests.docs.test_docs import error_classes
from tests.helpers.apps import CAL_READ, CAL_WRITE, alice_client, make_app

# -- the hierarchy: who must act, a code per leaf, a status in its group's range -----------------

LEAVES = [
    cls
    for cls in error_classes()
    if issubclass(cls, TokenVaultError) and cls is not TokenVaultError and cls not in GROUPS
]


@pytest.mark.parametrize("cls", LEAVES, ids=lambda cls: cls.__name__)
def test_every_error_is_in_one_group_with_a_status_of_that_group(
    cls: type[TokenVaultError],
) -> None:
    (group,) = [group for group in GROUPS if issubclass(cls, group)]
    assert cls.code in group.statuses


@pytest.mark.parametrize("cls", LEAVES, ids=lambda cls: cls.__name__)
def test_every_error_says_what_to_do(cls: type[TokenVaultError]) -> None:
    assert cls.default_remedy and cls.default_remedy != TokenVaultError.default_remedy


def test_no_two_errors_share_a_code() -> None:
    codes = [cls.default_error for cls in LEAVES]
    assert len(LEAVES) > 20 and sorted(set(codes)) == sorted(codes)


def test_a_restated_error_keeps_all_but_what_it_says() -> None:
    original = RateLimited("Auth0 said 429.", retry_after=7, upstream_status=429)
    restated = original.restated("Auth0 is busy signing in.")
    assert type(restated) is RateLimited and restated is not original
    assert (restated.retry_after, restated.upstream_status, restated.remedy) == (
        7,
        429,
        original.remedy,
    )
    assert restated.description == "Auth0 is busy signing in."
    assert original.description == "Auth0 said 429."
    assert original.restated("x", remedy="Wait.").remedy == "Wait."


def test_the_groups_catch_with_one_handler_each(probe: Flask) -> None:
    @probe.errorhandler(UpstreamError)
    def upstream(error: UpstreamError) -> tuple[str, int]:
        return f"upstream {error.error}", 599

    @probe.get("/cache-down")
    def cache_down() -> str:
        raise CacheUnavailable("The logout could not be recorded.")

    answer = probe.test_client().get("/cache-down")
    assert (answer.status_code, answer.get_data(as_text=True)) == (
        599,
        "upstream cache_unavailable",
    )


@pytest.fixture
def probe(emu: Emulator) -> Flask:
    app = make_app(emu, TOKEN_VAULT_DEADLINE=1.0, TOKEN_VAULT_HTTP_TIMEOUT=0.5)

    @app.get("/probe/<connection>")
    def probe_view(connection: str) -> Any:
        scopes = [CAL_WRITE] if connection == "google-oauth2" else None
        try:
            get_provider_token(connection, scopes)
        except TokenVaultError as exc:
            return jsonify(
                cls=type(exc).__name__,
                error=exc.error,
                description=exc.description,
                remedy=exc.remedy,
                status=exc.code,
                upstream=exc.upstream_status,
            )
        return jsonify(cls=None)

    return app


def _probe(app: Flask, emu: Emulator, connection: str = "windowslive") -> dict[str, Any]:
    client = alice_client(app, emu)
    body = client.get(f"/probe/{connection}").get_json()
    assert isinstance(body, dict)
    return body


def test_not_connected(probe: Flask, emu: Emulator) -> None:
    body = _probe(probe, emu)
    assert body["cls"] == AccountNotConnected.__name__
    assert body["error"] == "federated_connection_refresh_token_not_found"
    assert body["status"] == 401 and body["upstream"] == 401
    assert "windowslive" in body["description"] and "Connect" in body["remedy"]


def test_provider_refused_stored_grant(probe: Flask, emu: Emulator) -> None:
    emu.connect_account("alice@example.com", "windowslive", ["User.Read"])
    emu.break_provider_refresh("alice@example.com", "windowslive")
    body = _probe(probe, emu)
    assert body["cls"] == ReconsentRequired.__name__
    assert body["error"] == "federated_connection_refresh_token_flow_failed"
    assert "again" in body["remedy"]


def test_missing_scopes(probe: Flask, emu: Emulator) -> None:
    body = _probe(probe, emu, "google-oauth2")
    assert body["cls"] == InsufficientScope.__name__
    assert body["error"] == "insufficient_scope" and body["status"] == 403
    assert CAL_WRITE in body["description"]


def test_unknown_refresh_token_means_login_again(probe: Flask, emu: Emulator) -> None:
    client = probe.test_client()
    state = TokenVault.state(probe)
    with client.session_transaction() as session:
        session[SESSION_KEY] = make_record(state, {"sub": "auth0|gone"}, "v1.emu.revoked")
    body = client.get("/probe/windowslive").get_json()
    assert body["cls"] == LoginRequired.__name__
    assert body["error"] == "invalid_grant" and body["status"] == 401


# Auth0's refusal (status, error, description) -> the class, and what its body must mention.
REFUSALS = {
    "tokenset_not_found is also not connected": (
        (401, "tokenset_not_found", "x"),
        AccountNotConnected,
        None,
    ),
    "a client without the grant is misconfigured": (
        (403, "unauthorized_client", "Grant type not allowed for the client."),
        Misconfigured,
        ("remedy", "doctor"),
    ),
    "the MFA policy is named": (
        (403, "access_denied", "Multifactor authentication required"),
        Misconfigured,
        ("remedy", "MFA policy"),
    ),
    "other rejections keep the code": (
        (400, "invalid_request", "bad"),
        ExchangeRejected,
        ("description", "bad"),
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_an_exchange_refusal_becomes_its_error(probe: Flask, emu: Emulator, case: str) -> None:
    (status, error, description), cls, mention = REFUSALS[case]
    emu.add_fault("token:exchange", status=status, error=error, error_description=description)
    body = _probe(probe, emu)
    assert (body["cls"], body["error"]) == (cls.__name__, error)
    if mention is not None:
        field, text = mention
        assert text in body[field]


def test_rate_limited_keeps_retry_after(probe: Flask, emu: Emulator) -> None:
    emu.add_fault(
        "token:exchange", status=429, error="too_many_requests", headers={"Retry-After": "120"}
    )
    client = probe.test_client()
    login_as(client, emu, "alice@example.com", {"windowslive": ["User.Read"]})
    answer = client.get("/me", headers={"Accept": "application/json"})
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "120"
    assert answer.get_json()["error"] == "too_many_requests"
    assert answer.get_json()["retry_after"] == 120


def test_auth0_down_is_unavailable(probe: Flask, emu: Emulator) -> None:
    emu.add_fault("token:exchange", status=503, times=-1)
    body = _probe(probe, emu)
    assert body["cls"] == Auth0Unavailable.__name__ and body["status"] == 503


def test_unhandled_error_renders_a_page_not_a_traceback(probe: Flask, emu: Emulator) -> None:
    @probe.get("/raw")
    def raw() -> str:
        return get_provider_token("windowslive")

    client = probe.test_client()
    login_as(client, emu, "alice@example.com")
    page = client.get("/raw")
    assert page.status_code == 401
    text = page.get_data(as_text=True)
    assert "No windowslive account is connected" in text and "Traceback" not in text
    assert "federated_connection_refresh_token_not_found" in text


def test_signals_carry_the_connection_and_error(probe: Flask, emu: Emulator) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []

    def record(name: str) -> Any:
        def receiver(sender: Flask, **kwargs: Any) -> None:
            seen.append((name, kwargs))

        return receiver

    receivers = {
        "exchanged": record("exchanged"),
        "failed": record("failed"),
        "reconsent": record("reconsent"),
    }
    signals.token_exchanged.connect(receivers["exchanged"], probe)
    signals.exchange_failed.connect(receivers["failed"], probe)
    signals.reconsent_required.connect(receivers["reconsent"], probe)
    _probe(probe, emu, "windowslive")
    client = alice_client(probe, emu)
    client.get("/probe/google-oauth2")
    names = [name for name, _ in seen]
    assert names == ["failed", "exchanged", "reconsent"]
    assert seen[0][1]["connection"] == "windowslive"
    assert isinstance(seen[0][1]["error"], AccountNotConnected)
    assert seen[1][1]["scopes"] and seen[1][1]["expires_in"] > 3000
    assert CAL_WRITE in seen[2][1]["required_scopes"]


def test_rate_limited_is_a_tokenvaulterror_and_http_exception() -> None:
    from werkzeug.exceptions import HTTPException

    error = RateLimited("slow down", retry_after=3.2)
    assert isinstance(error, TokenVaultError) and isinstance(error, HTTPException)
    assert error.extra_headers()["Retry-After"] == "3"


def test_the_app_answers_a_rate_limit_with_retry_after(probe: Flask) -> None:
    @probe.get("/slow")
    def slow() -> str:
        raise RateLimited("slow down", retry_after=3.2)

    answer = probe.test_client().get("/slow", headers={"Accept": "application/json"})
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "3"
    assert answer.get_json()["retry_after"] == 3.2


def test_one_errorhandler_for_the_base_class_catches_every_error(
    probe: Flask, emu: Emulator
) -> None:
    caught: list[str] = []

    @probe.errorhandler(TokenVaultError)
    def handle(error: TokenVaultError) -> tuple[str, int]:
        caught.append(type(error).__name__)
        return f"handled {error.error}", error.code or 500

    @probe.get("/raise/<kind>")
    def raise_kind(kind: str) -> str:
        if kind == "login":
            raise LoginRequired()
        if kind == "scope":
            raise InsufficientScope(connection="c", granted=["a"], required=["b"])
        raise TokenVaultError("base")

    client = probe.test_client()
    assert client.get("/raise/login").get_data(as_text=True) == "handled login_required"
    assert client.get("/raise/scope").status_code == 403
    base = client.get("/raise/base")
    assert base.status_code == 500 and base.get_data(as_text=True) == "handled token_vault_error"
    assert caught == ["LoginRequired", "InsufficientScope", "TokenVaultError"]


def test_invalid_scope_from_auth0_still_names_the_scopes_to_ask_for(emu: Emulator) -> None:
    app = make_app(emu, TOKEN_VAULT_SEND_EXCHANGE_SCOPE=True)
    client = alice_client(app, emu)
    assert client.get("/calendar").status_code == 200
    answer = client.get("/calendar/write", headers={"Accept": "application/json"})
    body = answer.get_json()
    assert answer.status_code == 401 and body["error"] == "invalid_scope"
    assert set(body["required_scopes"]) >= {CAL_READ, CAL_WRITE}
