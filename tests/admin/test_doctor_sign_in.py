"""doctor reports the Organizations and Authentication Assurance settings it finds."""

from __future__ import annotations

from flask_token_vault.admin.app_checks import FAIL, PASS, SKIP, Check
from flask_token_vault.admin.doctor import run_doctor
from flask_token_vault_emulator import Emulator
from tests.helpers.apps import make_app


def _checks(emu: Emulator, **config: object) -> dict[str, Check]:
    app = make_app(emu, **config)
    with app.app_context():
        return {check.name: check for check in run_doctor(app)}


def test_an_organization_the_application_refuses_is_a_failed_check(emu: Emulator) -> None:
    org_id = emu.add_organization("acme")
    check = _checks(emu, AUTH0_ORGANIZATION=org_id)["Organizations"]
    assert check.status == FAIL and "organization_usage is deny" in check.detail
    assert "Type of users" in check.fix


def test_an_organization_the_application_allows_passes(emu: Emulator) -> None:
    org_id = emu.add_organization("acme")
    emu.state.clients[emu.client_id].organization_usage = "require"
    check = _checks(emu, AUTH0_ORGANIZATION=org_id)["Organizations"]
    assert check.status == PASS and org_id in check.detail


def test_no_organization_is_reported_as_not_used(emu: Emulator) -> None:
    assert _checks(emu)["Organizations"].status == SKIP


def test_the_assurance_step_up_is_reported(emu: Emulator) -> None:
    check = _checks(emu, TOKEN_VAULT_CONNECT_FLOW="connected_accounts")[
        "Authentication Assurance step-up"
    ]
    assert check.status == PASS and "multi-factor" in check.detail
    assert "steps up by itself" in check.detail
    off = _checks(emu, TOKEN_VAULT_STEP_UP_ACR_VALUES="")["Authentication Assurance step-up"]
    assert off.status == FAIL
