"""Token Vault tools as LangChain tools: invoked as an agent would, with no model."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from langchain_core.messages import ToolMessage
from langchain_core.tools import StructuredTool

from flask_token_vault import TokenVaultInterrupt, acting_for, tool_token
from flask_token_vault.agents.langchain import langchain_tool
from flask_token_vault_emulator import Emulator
from tests.helpers import TIMEOUT
from tests.helpers.apps import CAL_READ, CAL_WRITE
from tests.helpers.handles import GOOGLE, handle_of
from tests.helpers.tools import count_calendars


def write_scopes(note: str) -> list[str]:
    """Return the scopes of the token the tool got (a plain function, wrapped below)."""
    return sorted(tool_token().scopes or ())


async def read_scopes(note: str) -> list[str]:
    """The same, as a coroutine."""
    await asyncio.sleep(0)
    return sorted(tool_token().scopes or ())


def test_the_tool_reads_name_and_arguments_and_gets_the_users_token(emu: Emulator) -> None:
    tool = langchain_tool(count_calendars)
    assert isinstance(tool, StructuredTool)
    assert tool.name == "count_calendars" and "calendars" in tool.description
    assert set(tool.args) == {"base"}
    with acting_for(handle_of(emu, [CAL_READ])):
        assert tool.invoke({"base": emu.google_api_base}) >= 1
        # As an agent calls it: a tool call in, a ToolMessage out.
        message = tool.invoke(
            {
                "type": "tool_call",
                "id": "call-1",
                "name": tool.name,
                "args": {"base": emu.google_api_base},
            }
        )
    assert isinstance(message, ToolMessage) and int(message.content) >= 1  # type: ignore[arg-type]


def test_a_plain_function_with_a_connection_and_a_coroutine(emu: Emulator) -> None:
    sync_tool = langchain_tool(write_scopes, connection=GOOGLE, scopes=[CAL_READ])
    async_tool = langchain_tool(read_scopes, connection=GOOGLE, scopes=[CAL_READ])
    with acting_for(handle_of(emu, [CAL_READ])):
        assert CAL_READ in sync_tool.invoke({"note": "x"})
        assert CAL_READ in asyncio.run(async_tool.ainvoke({"note": "x"}))


def test_a_missing_scope_raises_the_interrupt_with_the_union(emu: Emulator) -> None:
    # handle_tool_error=True turns a ToolException into text for the model: not the interrupt.
    tool = langchain_tool(
        write_scopes, connection=GOOGLE, scopes=[CAL_WRITE], handle_tool_error=True
    )
    with acting_for(handle_of(emu, [CAL_READ])), pytest.raises(TokenVaultInterrupt) as paused:
        tool.invoke(
            {"type": "tool_call", "id": "call-2", "name": tool.name, "args": {"note": "lunch"}}
        )
    interrupt = paused.value
    assert interrupt.error == "insufficient_scope" and interrupt.tool == "write_scopes"
    # The union: the scope granted before (not required here) is asked for again with the new one.
    assert CAL_READ in interrupt.granted and {CAL_READ, CAL_WRITE} <= set(interrupt.scopes)
    assert interrupt.required == (CAL_WRITE,)
    assert interrupt.arguments == {"note": "lunch"}
    assert interrupt.connect_url is not None and interrupt.connect_url.startswith(
        f"/auth/connect/{GOOGLE}"
    )


def test_an_account_not_connected_raises_the_interrupt_from_ainvoke(emu: Emulator) -> None:
    tool = langchain_tool(count_calendars)

    async def call() -> object:
        return await tool.ainvoke({"base": emu.google_api_base})

    with acting_for(handle_of(emu, None)), pytest.raises(TokenVaultInterrupt) as paused:
        asyncio.run(call())
    assert paused.value.tool == "count_calendars" and CAL_READ in paused.value.scopes


def test_five_concurrent_invocations_make_one_exchange(emu: Emulator) -> None:
    tool = langchain_tool(count_calendars)
    handle = handle_of(emu, [CAL_READ])
    before = emu.exchange_count(handle.sub)
    start = threading.Barrier(5)

    def in_thread(_: int) -> int:
        start.wait(TIMEOUT)
        with acting_for(handle):
            return int(tool.invoke({"base": emu.google_api_base}))

    with ThreadPoolExecutor(5) as pool:
        counts = list(pool.map(in_thread, range(5)))
    assert all(count >= 1 for count in counts)
    assert emu.exchange_count(handle.sub) == before + 1


def test_a_tool_needs_its_connection_said_once() -> None:
    with pytest.raises(TypeError, match="needs a connection"):
        langchain_tool(write_scopes)
    with pytest.raises(TypeError, match="already a token_vault_tool"):
        langchain_tool(count_calendars, connection=GOOGLE)
