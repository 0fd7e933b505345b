"""A signed-in user's "on behalf of" handle, taken in a real request of the test app."""

from __future__ import annotations

from flask_token_vault import OnBehalf, on_behalf
from flask_token_vault_emulator import Emulator
from flask_token_vault_pytest.testing import login_as
from tests.helpers.apps import make_app

GOOGLE = "google-oauth2"
ALICE = "alice@example.com"


def handle_of(emu: Emulator, scopes: list[str] | None, user: str = ALICE) -> OnBehalf:
    """Sign ``user`` in with Google granted ``scopes`` (``None``: not connected); take a handle."""
    app = make_app(emu)
    taken: list[OnBehalf] = []

    @app.post("/take")
    def take() -> str:
        taken.append(on_behalf(return_to="/assistant"))
        return ""

    client = app.test_client()
    login_as(client, emu, user, None if scopes is None else {GOOGLE: scopes})
    assert client.post("/take").status_code == 200
    return taken.pop()
