"""The assistant page: ask, watch the agent work, allow access and approve when it asks.

Plain form posts, each answered with a redirect back to the page, so it works without
JavaScript; ``static/assistant.js`` only continues by itself after the consent screen and
watches for the user's approval instead of waiting for a click.

Each user has one conversation, kept in this process's memory (an app with several processes
keeps it in its database or Redis, with the pending approval).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any, TypeVar

from flask import (
    Blueprint,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.wrappers import Response

from example_app import _check_form_token, _form_token
from example_app.agent import Conversation, ScriptedModel, run, settle
from flask_token_vault import acting_for, check_approval, current_user, login_required, on_behalf

assistant = Blueprint("assistant", __name__)
QUESTION = "Find me an hour for deep work this week."
#: The most conversations kept: the oldest is forgotten first.
_MAX_KEPT = 1000
_model = ScriptedModel()
_View = TypeVar("_View", bound=Callable[..., Any])


class _Conversations:
    """Each signed-in user's conversation, by their Auth0 user id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_user: OrderedDict[str, Conversation] = OrderedDict()

    def get(self, sub: str) -> Conversation:
        with self._lock:
            return self._by_user.get(sub) or Conversation()

    def put(self, sub: str, conversation: Conversation) -> None:
        with self._lock:
            self._by_user[sub] = conversation
            self._by_user.move_to_end(sub)
            while len(self._by_user) > _MAX_KEPT:
                self._by_user.popitem(last=False)

    def drop(self, sub: str) -> None:
        with self._lock:
            self._by_user.pop(sub, None)


def _store() -> _Conversations:
    store = current_app.extensions.setdefault("example_assistant", _Conversations())
    assert isinstance(store, _Conversations)  # noqa: S101 - only this module sets it
    return store


def _user_id() -> str:
    user = current_user
    if not user:  # login_required let nobody else in
        abort(401)
    return user.sub


def _advance(conversation: Conversation) -> None:
    """Run the agent loop for the signed-in user until it answers or pauses."""
    # Back here after a consent screen; the page then continues the paused call by itself.
    handle = on_behalf(return_to=url_for("assistant.page", consented=1))
    with acting_for(handle):
        run(conversation, _model)


def _form_post(rule: str) -> Callable[[_View], _View]:
    """Register a view of a form the page posts: signed-in users only, its form token checked."""

    def register(view: _View) -> _View:
        @wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            _check_form_token()
            return view(*args, **kwargs)

        assistant.post(rule)(login_required(checked))
        return view

    return register


@contextmanager
def _conversation() -> Iterator[Conversation]:
    """Hold the signed-in user's conversation (its lock) while a posted form changes it."""
    conversation = _store().get(_user_id())
    with conversation.lock:
        yield conversation


def _back_to_page() -> Response:
    """Answer a form post with the page (303: reloading it does not post the form again)."""
    return redirect(url_for("assistant.page"), code=303)


@assistant.get("/assistant")
@login_required
def page() -> str:
    conversation = _store().get(_user_id())
    pause = conversation.pause
    return render_template(
        "assistant.html",
        question=QUESTION,
        transcript=_transcript(conversation),
        pause=pause,
        done=conversation.done,
        form_token=_form_token(),
        # Continue by itself only right after the consent screen, not on any later visit.
        auto_continue=request.args.get("consented") == "1",
    )


@_form_post("/assistant")
def ask() -> Response:
    text = request.form.get("message", "").strip()[:500] or QUESTION
    conversation = Conversation(messages=[{"role": "user", "content": text}])
    _store().put(_user_id(), conversation)
    with conversation.lock:
        _advance(conversation)
    return _back_to_page()


@_form_post("/assistant/continue")
def resume() -> Response:
    """Run the paused tool call again, once the user has allowed access."""
    with _conversation() as conversation:
        if conversation.pause is not None and conversation.pause.kind == "consent":
            _advance(conversation)
    return _back_to_page()


@_form_post("/assistant/approval")
def approval() -> Any:
    """Ask Auth0 once whether the user has answered; if so, the paused call runs again."""
    with _conversation() as conversation:
        pause = conversation.pause
        if pause is not None and pause.pending is not None:
            answer = check_approval(pause.pending)  # None while the user has not answered
            if answer is not None:
                settle(conversation, answer)
                _advance(conversation)
        waiting = conversation.pause is not None and conversation.pause.kind == "approval"
    if request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json":
        return jsonify(waiting=waiting)
    return _back_to_page()


@_form_post("/assistant/reset")
def reset() -> Response:
    _store().drop(_user_id())
    return _back_to_page()


def _transcript(conversation: Conversation) -> list[dict[str, str]]:
    """Return the conversation as the page shows it: who said what, and what the tools did."""
    names: dict[str, str] = {}
    shown: list[dict[str, str]] = []
    for message in conversation.messages:
        if message["role"] == "tool":
            name = names.get(message["tool_call_id"], "tool")
            result = json.dumps(json.loads(message["content"]), indent=1)
            shown.append({"kind": "result", "name": name, "text": result})
            continue
        shown.append({"kind": message["role"], "text": message.get("content") or ""})
        for call in message.get("tool_calls", []):
            name = call["function"]["name"]
            names[call["id"]] = name
            arguments = json.loads(call["function"]["arguments"] or "{}")
            listed = ", ".join(f"{key}={value!r}" for key, value in arguments.items())
            shown.append({"kind": "call", "name": name, "text": f"{name}({listed})"})
    return shown
