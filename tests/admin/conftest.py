"""Fixtures of the administration tests: a fake clock and a Management API client on it."""

from __future__ import annotations

import pytest

from flask_token_vault import ManagementClient
from flask_token_vault_emulator import Emulator
from flask_token_vault_pytest.testing import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(running=True)


@pytest.fixture
def sleeps(clock: FakeClock) -> list[float]:
    return clock.sleeps


@pytest.fixture
def mgmt(emu: Emulator, clock: FakeClock) -> ManagementClient:
    return ManagementClient.from_credentials(
        emu.url, emu.client_id, emu.client_secret, deadline=5.0, clock=clock
    )
