"""Token Vault tools as OpenAI Agents SDK function tools: invoked directly and by a Runner.

No language model: the tools are invoked as the SDK invokes them, and a scripted model (the
SDK's own ``Model`` interface) asks for one tool call, so ``Runner.run`` runs it for real.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from agents import (
    Agent,
    FunctionTool,
    Model,
    ModelResponse,
    RunConfig,
    Runner,
    Usage,
    UserError,
)
from agents.tool_context import ToolContext
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

from flask_token_vault import TokenVaultInterrupt, acting_for, tool_token
from flask_token_vault.agents.openai_agents import (
    find_interrupt,
    openai_function_tool,
    reraise_interrupts,
)
from flask_token_vault_emulator import Emulator
from tests.helpers.apps import CAL_READ, CAL_WRITE
from tests.helpers.handles import GOOGLE, handle_of
from tests.helpers.tools import count_calendars


def token_scopes(note: str) -> str:
    """Return the scopes of the token the tool got (a plain function, wrapped below)."""
    return " ".join(sorted(tool_token().scopes or ()))


def invoke(tool: FunctionTool, arguments: dict[str, Any]) -> Any:
    """Invoke ``tool`` as the SDK does: a tool context and the model's JSON arguments."""
    text = json.dumps(arguments)
    context = ToolContext(
        context=None, tool_name=tool.name, tool_call_id="call-1", tool_arguments=text
    )
    return tool.on_invoke_tool(context, text)


class ScriptedModel(Model):
    """A model that asks for one tool call, then answers with the tool's output."""

    def __init__(self, tool: str, arguments: dict[str, Any]) -> None:
        self.call = ResponseFunctionToolCall(
            arguments=json.dumps(arguments),
            call_id="call-1",
            name=tool,
            type="function_call",
            id="fc-1",
            status="completed",
        )

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        items = args[1] if len(args) > 1 else kwargs["input"]
        outputs = (
            [
                item
                for item in items
                if isinstance(item, dict) and item.get("type") == ("function_call_output")
            ]
            if isinstance(items, list)
            else []
        )
        if not outputs:
            return ModelResponse(output=[self.call], usage=Usage(), response_id=None)
        text = ResponseOutputText(
            annotations=[], text=str(outputs[-1]["output"]), type="output_text"
        )
        message = ResponseOutputMessage(
            id="msg-1", content=[text], role="assistant", status="completed", type="message"
        )
        return ModelResponse(output=[message], usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        raise NotImplementedError


def run(tool: FunctionTool, arguments: dict[str, Any]) -> Any:
    agent = Agent(name="assistant", tools=[tool], model=ScriptedModel(tool.name, arguments))
    result = asyncio.run(
        Runner.run(agent, "how many calendars?", run_config=RunConfig(tracing_disabled=True))
    )
    return result.final_output


def test_the_tool_reads_name_and_parameters_and_gets_the_users_token(emu: Emulator) -> None:
    tool = openai_function_tool(count_calendars)
    assert isinstance(tool, FunctionTool) and tool.name == "count_calendars"
    assert set(tool.params_json_schema["properties"]) == {"base"}
    assert "calendars" in tool.description
    with acting_for(handle_of(emu, [CAL_READ])):
        assert int(asyncio.run(invoke(tool, {"base": emu.google_api_base}))) >= 1
        assert int(run(tool, {"base": emu.google_api_base})) >= 1


def test_a_plain_function_with_a_connection(emu: Emulator) -> None:
    tool = openai_function_tool(token_scopes, connection=GOOGLE, scopes=[CAL_READ])
    with acting_for(handle_of(emu, [CAL_READ])):
        assert CAL_READ in asyncio.run(invoke(tool, {"note": "x"})).split()


def test_a_missing_scope_raises_the_interrupt_with_the_union(emu: Emulator) -> None:
    tool = openai_function_tool(token_scopes, connection=GOOGLE, scopes=[CAL_WRITE])
    with acting_for(handle_of(emu, [CAL_READ])), pytest.raises(TokenVaultInterrupt) as paused:
        asyncio.run(invoke(tool, {"note": "lunch"}))
    interrupt = paused.value
    assert interrupt.error == "insufficient_scope" and interrupt.tool == "token_scopes"
    # The union: the scope granted before (not required here) is asked for again with the new one.
    assert CAL_READ in interrupt.granted and {CAL_READ, CAL_WRITE} <= set(interrupt.scopes)
    assert interrupt.required == (CAL_WRITE,)
    assert interrupt.arguments == {"note": "lunch"}


def test_other_errors_still_go_to_the_model_as_the_sdk_says(emu: Emulator) -> None:
    tool = openai_function_tool(count_calendars)
    with acting_for(handle_of(emu, [CAL_READ])):  # the base URL is not one: requests fails
        answer = asyncio.run(invoke(tool, {"base": "not-a-url"}))
    assert isinstance(answer, str) and "error occurred" in answer


def test_the_runner_fails_with_the_interrupt_and_reraise_unwraps_it(emu: Emulator) -> None:
    tool = openai_function_tool(count_calendars)
    with acting_for(handle_of(emu, None)), pytest.raises(UserError) as failed:
        run(tool, {"base": emu.google_api_base})
    interrupt = find_interrupt(failed.value)
    assert interrupt is not None and interrupt.tool == "count_calendars"
    assert interrupt.connect_url is not None and CAL_READ in interrupt.scopes
    handle = handle_of(emu, None)
    with acting_for(handle), pytest.raises(TokenVaultInterrupt), reraise_interrupts():
        run(tool, {"base": emu.google_api_base})
    with pytest.raises(ValueError, match="kept"), reraise_interrupts():
        raise ValueError("kept")


def test_five_concurrent_invocations_make_one_exchange(emu: Emulator) -> None:
    tool = openai_function_tool(count_calendars)
    handle = handle_of(emu, [CAL_READ])
    before = emu.exchange_count(handle.sub)

    async def five() -> list[Any]:
        # The SDK runs a synchronous tool in a worker thread each: five at once.
        return await asyncio.gather(
            *(invoke(tool, {"base": emu.google_api_base}) for _ in range(5))
        )

    with acting_for(handle):
        counts = asyncio.run(five())
    assert all(int(count) >= 1 for count in counts)
    assert emu.exchange_count(handle.sub) == before + 1
