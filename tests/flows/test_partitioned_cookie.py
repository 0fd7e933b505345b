"""CHIPS: with ``SESSION_COOKIE_PARTITIONED`` the session cookie is partitioned, and works."""

from __future__ import annotations

from flask_token_vault_emulator import Emulator
from tests.helpers.apps import make_app
from tests.helpers.browser import csrf, follow_to_emulator, through_emulator, whoami

EMAIL = "alice@example.com"


def test_sign_in_and_out_with_a_partitioned_session_cookie(emu: Emulator) -> None:
    app = make_app(emu, SESSION_COOKIE_PARTITIONED=True, SESSION_COOKIE_SECURE=True)
    client = app.test_client()
    emu.set_auto_login(EMAIL)
    authorize = follow_to_emulator(client, "/auth/login?next=/")
    back = through_emulator(client, authorize)
    assert back.status_code == 302
    cookie = back.headers["Set-Cookie"]
    assert "Partitioned" in cookie and "Secure" in cookie
    assert whoami(client) == emu.user_id_for(EMAIL)
    out = client.post("/auth/logout", data={"csrf_token": csrf(client)})
    assert out.status_code == 302 and "Partitioned" in out.headers["Set-Cookie"]
    assert whoami(client) is None
