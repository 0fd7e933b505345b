"""Fixtures of the flow tests: the example app, for the tests of its pages and its assistant."""

from __future__ import annotations

import pytest
from flask import Flask

from example_app import create_app
from flask_token_vault_emulator import Emulator


@pytest.fixture
def example(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> Flask:
    """The example app on the session's emulator (its tenant as the test left it)."""
    for key in ("AUTH0_DOMAIN", "AUTH0_CLIENT_ID", "AUTH0_CLIENT_SECRET", "AUTH0_AUDIENCE"):
        monkeypatch.delenv(key, raising=False)
    app = create_app({"SECRET_KEY": "example-test-secret-key-0123456789abcdef"}, emu)
    app.config["TESTING"] = True
    return app
