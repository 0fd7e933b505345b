"""A Token Vault tool as an OpenAI Agents SDK function tool (``agents.FunctionTool``).

Install with ``pip install "Flask-Token-Vault[openai-agents]"``::

    from agents import Agent, Runner
    from flask_token_vault.agents.openai_agents import openai_function_tool, reraise_interrupts

    agent = Agent(name="Assistant", tools=[openai_function_tool(list_events)])
    with acting_for(handle), reraise_interrupts():
        result = Runner.run_sync(agent, message)

The SDK turns an exception in a tool into a message for the model (``failure_error_function``,
by default a fixed "An error occurred"), so the model would apologise instead of the user being
asked to consent. The tool made here lets a :class:`~flask_token_vault.TokenVaultInterrupt`
through; ``Runner.run`` then raises it wrapped in the SDK's ``UserError``, and
:func:`reraise_interrupts` raises the interrupt itself again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from agents import FunctionTool, RunContextWrapper, function_tool
from agents.tool import ToolErrorFunction, default_tool_error_function
from agents.util._types import MaybeAwaitable

from ..errors import TokenVaultInterrupt
from ._wrap import as_vault_tool

__all__ = ["find_interrupt", "openai_function_tool", "reraise_interrupts"]


def openai_function_tool(
    fn: Callable[..., Any],
    *,
    connection: str | None = None,
    scopes: Iterable[str] = (),
    login_hint: str | None = None,
    failure_error_function: ToolErrorFunction | None = default_tool_error_function,
    **options: Any,
) -> FunctionTool:
    """Return an Agents SDK ``FunctionTool`` that runs ``fn`` for the user with their token.

    ``fn`` is a function decorated with :func:`~flask_token_vault.token_vault_tool`, or a plain
    function together with the ``connection`` and ``scopes`` it needs (and, if any, the
    ``login_hint`` of the account). ``options`` go to ``agents.function_tool``
    (``name_override``, ``description_override``, ``strict_mode``, ...); the name, description
    and parameters are otherwise read from ``fn``. A synchronous ``fn`` runs in a worker
    thread, which the SDK starts with this context, so :func:`~flask_token_vault.acting_for`
    reaches it.

    ``failure_error_function`` says what the model is told when ``fn`` fails, as in the SDK;
    it never sees a :class:`~flask_token_vault.TokenVaultInterrupt`, which fails the run
    instead (see :func:`reraise_interrupts`).
    """
    tool = as_vault_tool(fn, connection, scopes, login_hint)
    return function_tool(
        tool,
        failure_error_function=(
            None if failure_error_function is None else _passing_interrupts(failure_error_function)
        ),
        **options,
    )


def _passing_interrupts(handler: ToolErrorFunction) -> ToolErrorFunction:
    """Return ``handler``, except that an interrupt is raised again rather than described."""

    def describe(context: RunContextWrapper[Any], error: Exception) -> MaybeAwaitable[str]:
        if isinstance(error, TokenVaultInterrupt):
            raise error
        return handler(context, error)

    return describe


def find_interrupt(error: BaseException) -> TokenVaultInterrupt | None:
    """Return the :class:`~flask_token_vault.TokenVaultInterrupt` ``error`` is or came from."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, TokenVaultInterrupt):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


@contextmanager
def reraise_interrupts() -> Iterator[None]:
    """Raise the :class:`~flask_token_vault.TokenVaultInterrupt` that ended a run, unwrapped.

    ``Runner.run`` reports a tool's exception as ``UserError("Error running tool ...")``
    caused by it; inside this block the interrupt itself is raised instead, so a chat endpoint
    answers it as it answers a plain tool's. Any other error is raised as it was.
    """
    try:
        yield
    except Exception as error:
        interrupt = find_interrupt(error)
        if interrupt is None or interrupt is error:
            raise
        raise interrupt from interrupt.__cause__
