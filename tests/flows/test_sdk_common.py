"""What the vault does alike through every provider's SDK: renewing a token, asking for consent."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask

from flask_token_vault_emulator import Emulator
from tests.helpers.apps import CAL_WRITE, alice_client
from tests.helpers.sdk import consent_query, statuses_after_expiry
from tests.helpers.sdk_apps import (
    GITHUB_GRANTS,
    GOOGLE_GRANTS,
    GRAPH_GRANTS,
    SLACK,
    SLACK_GRANTS,
    github_app,
    google_app,
    graph_app,
    slack_app,
)

AppBuilder = Callable[[Emulator], Flask]


SDKS = ["google", "microsoft", "github", "slack"]


@pytest.mark.parametrize(
    ("build", "grants", "path"),
    [
        (google_app, GOOGLE_GRANTS, "/sdk/calendars"),
        (graph_app, GRAPH_GRANTS, "/sdk/me"),
        (github_app, GITHUB_GRANTS, "/sdk/user"),
        (slack_app, SLACK_GRANTS, "/sdk/channels"),
    ],
    ids=SDKS,
)
def test_an_expired_token_is_renewed_once_for_many_threads(
    emu: Emulator, build: AppBuilder, grants: dict[str, list[str]], path: str
) -> None:
    statuses = statuses_after_expiry(emu, build(emu), grants, path)
    assert statuses == [200] * 6
    assert emu.exchange_count() == 2


@pytest.mark.parametrize(
    ("build", "grants", "method", "path", "connection", "scope"),
    [
        (google_app, GOOGLE_GRANTS, "GET", "/sdk/write", "google-oauth2", CAL_WRITE),
        (graph_app, GRAPH_GRANTS, "GET", "/sdk/events", "windowslive", "Calendars.Read"),
        (github_app, GITHUB_GRANTS, "GET", "/sdk/emails", "github", "user:email"),
        (slack_app, SLACK_GRANTS, "POST", "/sdk/post", SLACK, "chat:write"),
    ],
    ids=SDKS,
)
def test_a_scope_not_granted_becomes_a_consent_step(
    emu: Emulator,
    build: AppBuilder,
    grants: dict[str, list[str]],
    method: str,
    path: str,
    connection: str,
    scope: str,
) -> None:
    """The view asks its SDK for more than its decorator: the SDK call itself finds the gap."""
    client = alice_client(build(emu), emu, grants)
    query = consent_query(client.open(path, method=method), connection)
    assert scope in query["scope"][0].split() and query["next"] == [path]
