"""A short fuzz run of the callback and cookie parsers: arbitrary input never gives a 5xx."""

from __future__ import annotations

from typing import Any

from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flask_token_vault_emulator import Emulator
from tests.helpers.apps import make_app

_APP: dict[str, Flask] = {}

query_values = st.text(max_size=80)
queries = st.dictionaries(
    st.sampled_from(["code", "state", "error", "error_description", "next", "x"]),
    query_values,
    max_size=5,
)


def _app(emu: Emulator) -> Flask:
    if "app" not in _APP:
        _APP["app"] = make_app(emu)
    return _APP["app"]


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(query=queries)
def test_callback_never_fails_with_5xx(emulator_server: Emulator, query: dict[str, Any]) -> None:
    client = _app(emulator_server).test_client()
    answer = client.get("/auth/callback", query_string=query)
    assert 300 <= answer.status_code < 500


cookie_text = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters=';,\\"'),
    max_size=600,
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cookie=cookie_text)
def test_any_cookie_reads_as_logged_out(emulator_server: Emulator, cookie: str) -> None:
    client = _app(emulator_server).test_client()
    client.set_cookie("session", cookie)
    answer = client.get("/calendar", headers={"Accept": "application/json"})
    assert answer.status_code == 401


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    query=st.dictionaries(
        st.sampled_from(
            ["next", "returnTo", "connection", "connection_scope", "login_hint", "sig"]
        ),
        query_values,
        max_size=4,
    )
)
def test_login_never_fails_with_5xx(emulator_server: Emulator, query: dict[str, Any]) -> None:
    client = _app(emulator_server).test_client()
    answer = client.get("/auth/login", query_string=query)
    assert answer.status_code in (302, 400)
