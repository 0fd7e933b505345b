"""Fixtures, one per real part: the emulator, its clock, Redis, the app and its client.

Helpers that tests import are in the ``tests/helpers`` package, not here.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from flask_token_vault_emulator import Emulator
from flask_token_vault_pytest.testing import FakeClock
from services.redis_servers import RedisServer
from tests.helpers.apps import make_app


@pytest.fixture(scope="session")
def emulator_clock() -> FakeClock:
    """The emulator's clock: real time plus an offset a test may move (reset for each test)."""
    return FakeClock(running=True)


@pytest.fixture(scope="session")
def emulator_server(emulator_clock: FakeClock) -> Iterator[Emulator]:
    """The one emulator of the test session, on a free 127.0.0.1 port."""
    with Emulator(clock=emulator_clock) as emulator:
        yield emulator


@pytest.fixture
def emu(emulator_server: Emulator, emulator_clock: FakeClock) -> Iterator[Emulator]:
    """The session's emulator, as new for each test.

    Before and after the test: ``reset()`` forgets users, codes, tokens, connected accounts,
    counters, faults, token lifetimes and auto-login; ``restore_tenant()`` puts back the default
    clients, connections and MFA policy; the emulator's clock goes back to real time.
    """

    def fresh() -> None:
        emulator_server.reset()
        emulator_server.restore_tenant()
        emulator_clock.reset()

    fresh()
    yield emulator_server
    fresh()


@pytest.fixture
def app(emu: Emulator) -> Flask:
    """A fresh app using the extension against the emulator (``helpers.apps.make_app``)."""
    return make_app(emu)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of :func:`app`."""
    return app.test_client()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One real redis-server process for the session."""
    server = RedisServer()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's Redis, emptied for this test."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server process of this test's own, to freeze, pause, fill or kill."""
    server = RedisServer()
    yield server
    server.stop()
