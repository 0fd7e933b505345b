"""The assistant's brain, kept small: two calendar tools, a scripted model and the agent loop.

The model speaks the tool-calling shape of OpenAI's Chat Completions (and of the frameworks
built on it): it reads the conversation as a list of messages and answers either with text or
with ``tool_calls``, each ``{"id", "type": "function", "function": {"name", "arguments"}}``
whose ``arguments`` is a JSON string. The loop runs each call and appends its result as a
``{"role": "tool", "tool_call_id", "content"}`` message, then asks the model again. Here the
model is a script, so the page works offline and in tests; a real model's client takes the
same messages and the same tool schemas (:func:`tool_schema`).

Two things pause the loop, and both resume *the same* tool call:

- a tool needs the user to connect Google or grant a scope: ``@token_vault_tool`` raises
  :class:`~flask_token_vault.TokenVaultInterrupt` before the tool runs;
- a tool asks the user's approval first (CIBA): :func:`approval` starts the request and
  pauses; once the user has answered on their phone, the call runs again and gets the answer.

A pause is "the last assistant message has a call with no result yet": running the loop again
runs that call again, with the same arguments.
"""

from __future__ import annotations

import inspect
import json
import threading
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

import requests

from example_app import CAL_READ, CAL_WRITE
from flask_token_vault import (
    Approval,
    PendingApproval,
    TokenVaultInterrupt,
    provider_api_url,
    start_approval,
    token_vault_tool,
    tool_token,
)

GOOGLE = "google-oauth2"
Message = dict[str, Any]
#: Model turns one question may take (a script never loops; a real model might).
MAX_STEPS = 8
_EVENTS_PATH = "/calendar/v3/calendars/primary/events"


class ApprovalPending(Exception):
    """The tool asked the user's approval; the loop pauses until they answer."""

    def __init__(self, pending: PendingApproval) -> None:
        super().__init__(pending.binding_message)
        self.pending = pending


#: The user's answer for the tool call running now, once they have given it.
_answer: ContextVar[Approval | None] = ContextVar("assistant_approval", default=None)


def approval(binding_message: str, details: list[dict[str, Any]]) -> Approval:
    """Return the user's answer to this tool call's request; the first time, ask and pause."""
    given = _answer.get()
    if given is not None:
        return given
    # The user is the one the loop acts for (acting_for); Auth0 reaches their phone.
    raise ApprovalPending(start_approval(binding_message, authorization_details=details))


# -- the tools -------------------------------------------------------------------------------


def _google(method: str, **kwargs: Any) -> requests.Response:
    """Call the user's primary calendar with the token of the tool running now."""
    return requests.request(
        method,
        provider_api_url(GOOGLE, _EVENTS_PATH),
        headers={"Authorization": f"Bearer {tool_token().access_token}"},
        timeout=10,
        **kwargs,
    )


@token_vault_tool(GOOGLE, scopes=[CAL_READ])
def list_events(max_results: int = 5) -> dict[str, Any]:
    """List the user's next events in their Google Calendar."""
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:  # what a model sends is not always what the schema says
        count = max(1, min(int(max_results), 20))
    except (TypeError, ValueError):
        count = 5
    answer = _google(
        "GET",
        params={
            "timeMin": now,
            "maxResults": str(count),
            "singleEvents": "true",
            "orderBy": "startTime",
        },
    )
    if not answer.ok:
        return {"error": f"Google answered {answer.status_code}"}
    return {"events": [_brief(event) for event in answer.json().get("items", [])]}


@token_vault_tool(GOOGLE, scopes=[CAL_READ, CAL_WRITE])
def create_event(summary: str, start: str, end: str) -> dict[str, Any]:
    """Create an event in the user's Google Calendar, once they approve it."""
    when = _label(start)
    answer = approval(
        f"Add {summary[:24]} on {when}?"[:64],
        [{"type": "calendar_event", "summary": summary, "start": start, "end": end}],
    )
    if not answer.approved:
        return {"status": answer.status}  # denied, or expired unanswered
    created = _google(
        "POST",
        json={"summary": summary, "start": {"dateTime": start}, "end": {"dateTime": end}},
    )
    if not created.ok:
        return {"error": f"Google answered {created.status_code}"}
    return {"status": "created", "event": _brief(created.json())}


TOOLS: dict[str, Callable[..., dict[str, Any]]] = {
    tool.__name__: tool for tool in (list_events, create_event)
}


def tool_schema(tool: Callable[..., Any]) -> dict[str, Any]:
    """Describe ``tool`` as a model reads it: name, docstring, JSON schema of its arguments."""
    kinds = {int: "integer", str: "string", "int": "integer", "str": "string"}
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, param in inspect.signature(tool).parameters.items():
        properties[name] = {"type": kinds.get(param.annotation, "string")}
        if param.default is inspect.Parameter.empty:
            required.append(name)
    return {
        "type": "function",
        "function": {
            "name": tool.__name__,
            "description": inspect.getdoc(tool) or "",
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }


def _brief(event: dict[str, Any]) -> dict[str, str]:
    start, end = event.get("start", {}), event.get("end", {})
    return {
        "summary": str(event.get("summary", "(no title)")),
        "start": str(start.get("dateTime") or start.get("date") or ""),
        "end": str(end.get("dateTime") or end.get("date") or ""),
    }


def _parse(moment: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _label(moment: str) -> str:
    parsed = _parse(moment)
    return parsed.astimezone(timezone.utc).strftime("%a %d %b %H:%M") if parsed else moment


# -- the scripted model ----------------------------------------------------------------------


class ScriptedModel:
    """A stand-in for a chat model: looks, proposes an hour of deep work, adds it, reports.

    :meth:`complete` has the shape of a Chat Completions call (messages and tool schemas in,
    one assistant message out), so a real model's client can take its place.
    """

    summary = "Deep work"

    def complete(self, messages: list[Message], tools: list[dict[str, Any]]) -> Message:
        """Return the next assistant message: text, or tool calls for the loop to run."""
        last = messages[-1]
        if last["role"] == "user":
            return _calls(
                len(messages), "Let me look at your calendar.", ("list_events", {"max_results": 5})
            )
        result = json.loads(last["content"])
        if _called(messages, last["tool_call_id"]) == "list_events":
            events = result.get("events", [])
            start = _free_hour(events, datetime.now(timezone.utc))
            end = start + timedelta(hours=1)
            seen = "; ".join(f"{e['summary']} ({_label(e['start'])})" for e in events)
            text = (
                f"Your next events: {seen or 'none'}. "
                f"I suggest an hour of deep work on {_label(start.isoformat())} UTC; "
                "I'll add it to your calendar."
            )
            arguments = {
                "summary": self.summary,
                "start": start.isoformat().replace("+00:00", "Z"),
                "end": end.isoformat().replace("+00:00", "Z"),
            }
            return _calls(len(messages), text, ("create_event", arguments))
        if result.get("status") == "created":
            event = result["event"]
            when = _label(event["start"])
            return _text(f"Done: “{event['summary']}” is in your calendar, {when}.")
        if result.get("status") in ("denied", "expired"):
            return _text("You did not approve it, so I left your calendar as it was.")
        return _text(f"That did not work: {result.get('error', 'no answer')}.")


def _free_hour(events: list[dict[str, str]], now: datetime) -> datetime:
    """Return the first working hour (09:00-17:00 UTC) from tomorrow that no event overlaps."""
    busy = [(a, b) for e in events if (a := _parse(e["start"])) and (b := _parse(e["end"]))]
    day = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    for offset in range(14 * 24):
        start = day + timedelta(hours=offset)
        if 9 <= start.hour < 17 and all(
            b <= start or a >= start + timedelta(hours=1) for a, b in busy
        ):
            return start
    return day + timedelta(hours=9)


def _calls(turn: int, text: str, *calls: tuple[str, dict[str, Any]]) -> Message:
    return {
        "role": "assistant",
        "content": text,
        "tool_calls": [
            {
                "id": f"call_{turn}_{index}",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(arguments)},
            }
            for index, (name, arguments) in enumerate(calls)
        ],
    }


def _text(text: str) -> Message:
    return {"role": "assistant", "content": text}


def _called(messages: list[Message], call_id: str) -> str | None:
    for call in _all_calls(messages):
        if call["id"] == call_id:
            return str(call["function"]["name"])
    return None


def _all_calls(messages: list[Message]) -> list[dict[str, Any]]:
    return [call for m in messages if m["role"] == "assistant" for call in m.get("tool_calls", [])]


# -- the loop --------------------------------------------------------------------------------


@dataclass
class Pause:
    """Why the loop stopped before the model's last word, and what the page offers."""

    kind: Literal["consent", "approval"]
    #: The tool call that runs again once the user has acted.
    call_id: str
    connect_url: str | None = None
    scopes: tuple[str, ...] = ()
    pending: PendingApproval | None = None


@dataclass
class Conversation:
    """One user's conversation with the assistant, and where it stands."""

    messages: list[Message] = field(default_factory=list)
    pause: Pause | None = None
    #: The answers the user gave, by tool call: the call reads its own when it runs again.
    answers: dict[str, Approval] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def done(self) -> bool:
        """Tell whether the model has had its last word."""
        return bool(self.messages) and self.pause is None and not _unanswered(self.messages)


def run(conversation: Conversation, model: ScriptedModel) -> None:
    """Run tool calls and model turns until the model answers in text, or the loop pauses.

    Call it inside ``acting_for(handle)``: the tools act for that user.
    """
    conversation.pause = None
    schemas = [tool_schema(tool) for tool in TOOLS.values()]
    for _ in range(MAX_STEPS):
        for call in _unanswered(conversation.messages):
            try:
                result = _run_tool(conversation, call)
            except TokenVaultInterrupt as interrupt:
                conversation.pause = Pause(
                    "consent", call["id"], interrupt.connect_url, interrupt.scopes
                )
                return
            except ApprovalPending as asked:
                conversation.pause = Pause("approval", call["id"], pending=asked.pending)
                return
            conversation.messages.append(_result(call["id"], result))
        reply = model.complete(conversation.messages, schemas)
        conversation.messages.append(reply)
        if not reply.get("tool_calls"):
            return


def settle(conversation: Conversation, answer: Approval) -> None:
    """Record the user's answer to the paused call's approval request (then :func:`run`)."""
    pause = conversation.pause
    if pause is None or pause.kind != "approval":
        return
    conversation.answers[pause.call_id] = answer
    conversation.pause = None


def _run_tool(conversation: Conversation, call: dict[str, Any]) -> dict[str, Any]:
    tool = TOOLS.get(call["function"]["name"])
    if tool is None:
        return {"error": "no such tool"}
    try:
        arguments = json.loads(call["function"]["arguments"] or "{}")
    except ValueError:
        return {"error": "arguments are not JSON"}
    try:
        # The model's arguments checked against the tool's signature, before any token is asked.
        inspect.signature(tool).bind(**arguments)
    except TypeError:
        return {"error": "wrong arguments"}
    reset = _answer.set(conversation.answers.get(call["id"]))
    try:
        return tool(**arguments)
    finally:
        _answer.reset(reset)


def _result(call_id: str, result: dict[str, Any]) -> Message:
    return {"role": "tool", "tool_call_id": call_id, "content": json.dumps(result)}


def _unanswered(messages: list[Message]) -> list[dict[str, Any]]:
    """Return the calls of the last assistant message that have no result yet."""
    answered = {m["tool_call_id"] for m in messages if m["role"] == "tool"}
    for message in reversed(messages):
        if message["role"] == "assistant":
            return [c for c in message.get("tool_calls", []) if c["id"] not in answered]
    return []
