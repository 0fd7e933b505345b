"""The example app's assistant over HTTP: its agent loop pauses for consent and for approval.

Its page in a browser: tests/e2e/test_assistant.py.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from example_app import CAL_READ, CAL_WRITE
from example_app.agent import Conversation, ScriptedModel, run
from flask_token_vault_emulator import Emulator
from flask_token_vault_pytest.testing import login_as
from tests.helpers.browser import follow_to_emulator, form_fields, through_emulator

EMAIL = "robin@example.com"
JSON = {"Accept": "application/json"}


def page(client: FlaskClient) -> str:
    answer = client.get("/assistant")
    assert answer.status_code == 200
    return html.unescape(answer.get_data(as_text=True))


def post(client: FlaskClient, path: str, **fields: str) -> str:
    """Post one of the page's forms (with its form token); return the page it lands on."""
    token = form_fields(page(client))["form_token"]
    answer = client.post(path, data={"form_token": token, **fields})
    assert answer.status_code == 303, answer.get_data(as_text=True)
    assert answer.headers["Location"] == "/assistant"
    return page(client)


def ask_until_consent(client: FlaskClient) -> str:
    """Ask; the loop reads the calendar, proposes, then pauses on the write scope."""
    shown = post(client, "/assistant", message="Any time for deep work this week?")
    assert "calls <code>list_events(max_results=5)" in shown
    assert "list_events</code> answered" in shown
    assert "I suggest an hour of deep work" in shown
    assert shown.count("calls <code>create_event(") == 1
    assert 'id="consent"' in shown and 'id="approval"' not in shown
    link = re.search(r'id="allow-access" href="([^"]+)"', shown)
    assert link is not None
    return link.group(1)


def consent_then_continue(client: FlaskClient, emu: Emulator, connect_url: str) -> str:
    """Grant the scopes the link asks for, come back, and continue the paused call."""
    consent = follow_to_emulator(client, connect_url)
    emu.set_auto_login(EMAIL)
    back = through_emulator(client, consent)
    assert back.status_code == 302 and back.headers["Location"] == "/assistant?consented=1"
    (account,) = emu.state.tokensets_for(emu.user_id_for(EMAIL))
    assert {CAL_READ, CAL_WRITE} <= set(account.scopes)  # nothing granted before was lost
    # Back there, the page continues by itself (its script submits this form).
    assert 'data-auto="1"' in client.get("/assistant?consented=1").get_data(as_text=True)
    assert 'data-auto="0"' in page(client)
    return post(client, "/assistant/continue")


def test_the_loop_asks_for_the_write_scope_then_approval_then_creates_the_event(
    example: Flask, emu: Emulator
) -> None:
    emu.set_ciba_interval(1)
    client = example.test_client()
    login_as(client, emu, EMAIL, {"google-oauth2": [CAL_READ]})
    connect_url = ask_until_consent(client)
    assert "calendar.events" in connect_url

    # The same call runs again: now with the scope, it asks the user's approval and waits.
    shown = consent_then_continue(client, emu, connect_url)
    assert shown.count("calls <code>create_event(") == 1
    assert 'id="approval"' in shown and 'id="consent"' not in shown
    (asked,) = emu.ciba_requests()
    assert asked["user_id"] == emu.user_id_for(EMAIL) and asked["status"] == "pending"
    assert asked["binding_message"].startswith("Add Deep work on ")
    assert asked["binding_message"] in shown
    (detail,) = asked["authorization_details"]
    assert detail["type"] == "calendar_event" and detail["summary"] == "Deep work"

    token = form_fields(page(client))["form_token"]
    waiting = client.post("/assistant/approval", data={"form_token": token}, headers=JSON)
    assert waiting.get_json() == {"waiting": True}
    assert "Deep work" not in client.get("/calendar").get_data(as_text=True)

    emu.approve_ciba()
    answered = client.post("/assistant/approval", data={"form_token": token}, headers=JSON)
    assert answered.get_json() == {"waiting": False}
    shown = page(client)
    assert "Done: “Deep work” is in your calendar" in shown
    assert 'id="approval"' not in shown and 'id="ask-form"' in shown
    assert shown.count("calls <code>create_event(") == 1  # resumed, never called anew
    assert len(emu.ciba_requests()) == 1  # the approval was asked once, and used
    calendar = client.get("/calendar").get_data(as_text=True)
    assert calendar.count("Deep work") == 1


def test_a_denied_approval_leaves_the_calendar_alone(example: Flask, emu: Emulator) -> None:
    emu.set_ciba_interval(1)
    client = example.test_client()
    login_as(client, emu, EMAIL, {"google-oauth2": [CAL_READ, CAL_WRITE]})
    # With the scope already granted, the loop goes straight to asking approval.
    shown = post(client, "/assistant", message="Plan something")
    assert 'id="approval"' in shown and 'id="consent"' not in shown
    emu.deny_ciba()
    shown = post(client, "/assistant/approval")
    assert "You did not approve it, so I left your calendar as it was." in shown
    assert '"status": "denied"' in shown
    assert "Deep work" not in client.get("/calendar").get_data(as_text=True)


def test_a_user_with_no_google_account_is_asked_to_connect_it_first(
    example: Flask, emu: Emulator
) -> None:
    client = example.test_client()
    login_as(client, emu, EMAIL)
    shown = post(client, "/assistant")
    assert 'id="consent"' in shown
    assert shown.count("calls <code>list_events(") == 1
    assert "list_events</code> answered" not in shown
    link = re.search(r'id="allow-access" href="([^"]+)"', shown)
    assert link is not None and "/auth/connect/google-oauth2?" in link.group(1)


def test_its_forms_need_the_form_token_and_a_signed_in_user(example: Flask, emu: Emulator) -> None:
    client = example.test_client()
    assert client.get("/assistant").status_code == 302  # to sign in
    login_as(client, emu, EMAIL, {"google-oauth2": [CAL_READ]})
    for path in ("/assistant", "/assistant/continue", "/assistant/approval", "/assistant/reset"):
        assert client.post(path, data={"form_token": "forged"}).status_code == 400, path
    assert emu.ciba_requests() == []


class Confused(ScriptedModel):
    """A model that calls a tool that does not exist, then one with wrong arguments."""

    def __init__(self) -> None:
        self.tools_seen: list[dict[str, Any]] = []

    def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Any:
        self.tools_seen = tools
        if messages[-1]["role"] != "user":
            return {"role": "assistant", "content": "Sorry."}
        calls = [("delete_everything", "{}"), ("list_events", '{"days": 3}'), ("list_events", "{")]
        return {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": f"c{n}", "type": "function", "function": {"name": name, "arguments": args}}
                for n, (name, args) in enumerate(calls)
            ],
        }


def test_a_bad_tool_call_gets_an_error_the_model_reads_and_no_token_is_asked(
    example: Flask, emu: Emulator
) -> None:
    model = Confused()
    conversation = Conversation(messages=[{"role": "user", "content": "Tidy up"}])
    with example.app_context():  # no user, no request: a tool that ran would fail loudly
        run(conversation, model)
    results = [json.loads(m["content"]) for m in conversation.messages if m["role"] == "tool"]
    assert results == [
        {"error": "no such tool"},
        {"error": "wrong arguments"},
        {"error": "arguments are not JSON"},
    ]
    assert conversation.done and conversation.messages[-1]["content"] == "Sorry."
    # The model is shown each tool as frameworks describe functions: name, docstring, schema.
    described = {t["function"]["name"]: t["function"] for t in model.tools_seen}
    assert described["create_event"]["parameters"]["required"] == ["summary", "start", "end"]
    assert described["list_events"]["parameters"]["properties"] == {
        "max_results": {"type": "integer"}
    }
    assert described["list_events"]["description"].startswith("List the user's next events")
    assert emu.stats()["provider_calls"].get("google", {}) == {}
