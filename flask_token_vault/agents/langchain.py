"""A Token Vault tool as a LangChain tool (``langchain_core.tools.StructuredTool``).

Install with ``pip install "Flask-Token-Vault[langchain]"``::

    from flask_token_vault.agents.langchain import langchain_tool

    @token_vault_tool("google-oauth2", scopes=[CAL_READ])
    def list_events(day: str) -> list[dict]:
        \"\"\"List the user's events on a day.\"\"\"
        ...

    tools = [langchain_tool(list_events)]

LangChain handles only ``ToolException`` (``handle_tool_error``) and argument validation errors
(``handle_validation_error``); a :class:`~flask_token_vault.TokenVaultInterrupt` is neither, so
``invoke`` and ``ainvoke`` raise it, whatever those are set to.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

from langchain_core.tools import StructuredTool

from ._wrap import as_vault_tool

__all__ = ["langchain_tool"]


def langchain_tool(
    fn: Callable[..., Any],
    *,
    connection: str | None = None,
    scopes: Iterable[str] = (),
    login_hint: str | None = None,
    **options: Any,
) -> StructuredTool:
    """Return a LangChain ``StructuredTool`` that runs ``fn`` for the user with their token.

    ``fn`` is a function decorated with :func:`~flask_token_vault.token_vault_tool`, or a plain
    function together with the ``connection`` and ``scopes`` it needs (and, if any, the
    ``login_hint`` of the account). A coroutine function makes a tool for ``ainvoke`` (and
    ``invoke`` is refused, as LangChain does). ``options`` go to
    ``StructuredTool.from_function`` (``name``, ``description``, ``args_schema``,
    ``return_direct``, ``handle_tool_error``, ...); the name, description and argument schema
    are otherwise read from ``fn``.

    The tool acts for the user of :func:`~flask_token_vault.acting_for` (else of the current
    request): run the agent inside that block. When the user must connect the account or grant
    more, ``invoke`` raises :class:`~flask_token_vault.TokenVaultInterrupt` before ``fn`` runs.
    """
    tool = as_vault_tool(fn, connection, scopes, login_hint)
    if inspect.iscoroutinefunction(tool):
        return StructuredTool.from_function(coroutine=tool, **options)
    return StructuredTool.from_function(func=tool, **options)
