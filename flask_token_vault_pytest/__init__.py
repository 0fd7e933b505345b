"""Pytest fixtures for testing apps that use Flask-Token-Vault against the bundled emulator.

Installing Flask-Token-Vault registers this module as a pytest plugin (the ``pytest11`` entry
point ``token_vault``), so the fixtures below are available in any test suite without a
``conftest.py`` import. It is a package of its own, next to ``flask_token_vault``, so that
loading it costs a project that does not use its fixtures nothing but this file (importing
``flask_token_vault_pytest`` would import the whole extension first).

Every name starts with ``token_vault_`` so it cannot shadow an app's own
``app``, ``client`` or ``emulator`` fixtures.

- ``token_vault_emulator`` (session): one running :class:`~flask_token_vault_emulator.Emulator`.
- ``token_vault_emulator_reset``: that emulator, reset before and after the test.
- ``token_vault_app_config``: the ``AUTH0_*`` keys pointing an app at the emulator, and its
  fake APIs' ``GOOGLE_API_BASE`` and ``MICROSOFT_GRAPH_API_BASE``.
- ``token_vault_environ``: the same keys set as environment variables (and a ``SECRET_KEY``
  when none is set), for an app that reads ``os.environ`` when it is imported.
- ``token_vault_login_as``: :func:`~flask_token_vault_pytest.testing.login_as` bound to the
  emulator.
- ``token_vault_fail_next_exchange``: :func:`~flask_token_vault_pytest.testing.fail_next_exchange`
  bound to the emulator.

The function-scoped fixtures all depend on ``token_vault_emulator_reset``: a test that uses any
of them starts with an emulator that has no users, connected accounts, counters or faults.

Example::

    @pytest.fixture
    def app(token_vault_app_config):
        # The extension reads its configuration in init_app: pass it to the factory.
        return create_app(
            {"TESTING": True, "SECRET_KEY": "test-secret-0123456789", **token_vault_app_config}
        )

    def test_calendar(app, token_vault_login_as):
        client = app.test_client()
        token_vault_login_as(client, "alice@example.com", {"google-oauth2": [CALENDAR_READ]})
        assert client.get("/calendar").status_code == 200

To turn the plugin off, run pytest with ``-p no:token_vault``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

import pytest

# The extension is imported inside the fixtures, not here: pytest loads this module at start-up
# in every project that has Flask-Token-Vault installed, before coverage starts measuring.
if TYPE_CHECKING:
    from flask.testing import FlaskClient

    from flask_token_vault_emulator import Emulator, Fault
    from flask_token_vault_pytest.testing import FailNextExchange, LoginAs

__all__ = [
    "token_vault_app_config",
    "token_vault_emulator",
    "token_vault_emulator_reset",
    "token_vault_environ",
    "token_vault_fail_next_exchange",
    "token_vault_login_as",
]


@pytest.fixture(scope="session")
def token_vault_emulator() -> Iterator[Emulator]:
    """Run one Auth0 emulator on a free 127.0.0.1 port for the whole test session.

    Its state carries over from test to test; use ``token_vault_emulator_reset`` (or any other
    function-scoped ``token_vault_`` fixture) for a clean one.

    :rtype: ~flask_token_vault_emulator.Emulator
    """
    from flask_token_vault_emulator import Emulator

    with Emulator() as emulator:
        yield emulator


@pytest.fixture
def token_vault_emulator_reset(token_vault_emulator: Emulator) -> Iterator[Emulator]:
    """Give the session's emulator, with users, accounts, counters and faults reset around it.

    :rtype: ~flask_token_vault_emulator.Emulator
    """
    token_vault_emulator.reset()
    yield token_vault_emulator
    token_vault_emulator.reset()


@pytest.fixture
def token_vault_app_config(token_vault_emulator_reset: Emulator) -> dict[str, str]:
    """Give the ``AUTH0_*`` keys and the fake APIs' bases (``GOOGLE_API_BASE``...) for the emulator.

    A fresh dict per test, to pass to the app factory before the extension reads its config.
    """
    from flask_token_vault_pytest.testing import emulator_config

    return emulator_config(token_vault_emulator_reset)


@pytest.fixture
def token_vault_environ(
    token_vault_app_config: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Set the emulator's keys as environment variables for this test; give what was set.

    For an app that reads its settings from ``os.environ`` when its module is imported (as the
    quick start's ``app.py`` does): import the module after this fixture, and afresh in each
    test. A random ``SECRET_KEY`` is set too unless the environment has one.
    """
    import secrets

    environ = dict(token_vault_app_config)
    environ.setdefault("SECRET_KEY", secrets.token_urlsafe(32))
    for key, value in environ.items():
        if key != "SECRET_KEY" or "SECRET_KEY" not in os.environ:
            monkeypatch.setenv(key, value)
    return environ


@pytest.fixture
def token_vault_login_as(token_vault_emulator_reset: Emulator) -> LoginAs:
    """Give ``login_as(client, email="alice@example.com", connections=None, *, name=None)``.

    It signs a Flask test client in without a browser: the emulator connects the accounts in
    ``connections`` (connection name -> granted scopes) and issues a real refresh token, which is
    put in the client's session. Returns the user's Auth0 user id.
    """
    from flask_token_vault_pytest.testing import login_as

    def bound_login_as(
        client: FlaskClient,
        email: str = "alice@example.com",
        connections: Mapping[str, Iterable[str]] | None = None,
        *,
        name: str | None = None,
    ) -> str:
        return login_as(client, token_vault_emulator_reset, email, connections, name=name)

    return bound_login_as


@pytest.fixture
def token_vault_fail_next_exchange(token_vault_emulator_reset: Emulator) -> FailNextExchange:
    """Give ``fail_next_exchange(error=..., status=401, times=1, *, description=None)``.

    Calling it makes the emulator's next ``times`` Token Vault exchanges answer ``status`` with
    ``error`` (by default ``federated_connection_refresh_token_flow_failed``, which the extension
    turns into :class:`~flask_token_vault.ReconsentRequired`). Returns the fault record.
    """
    from flask_token_vault_pytest.testing import REFRESH_FLOW_FAILED, fail_next_exchange

    def bound_fail_next_exchange(
        error: str = REFRESH_FLOW_FAILED,
        status: int = 401,
        times: int = 1,
        *,
        description: str | None = None,
    ) -> Fault:
        return fail_next_exchange(
            token_vault_emulator_reset, error, status, times, description=description
        )

    return bound_fail_next_exchange
