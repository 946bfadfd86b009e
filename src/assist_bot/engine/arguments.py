"""Free text → a tool's arguments, by the model with a forced tool choice
(for slash commands like `/weather what about Paris tomorrow`)."""

from __future__ import annotations

import json
from typing import Any

import openai
from openai.types.responses import ToolChoiceFunctionParam

from assist_bot.engine.openai_errors import to_turn_error
from assist_bot.engine.tooling import function_tool
from assist_bot.tools import Tool, ToolArgumentsError


async def arguments_from_text(client: openai.AsyncOpenAI, *, model: str, tool: Tool, text: str) -> dict[str, Any]:
    """The JSON arguments the model fills in for `tool` from `text` (validated by the caller)."""
    try:
        response = await client.responses.create(
            model=model,
            instructions=f"Fill in the arguments of {tool.name} from the user's request. Do not invent values.",
            input=text,
            tools=[function_tool(tool)],
            tool_choice=ToolChoiceFunctionParam(type="function", name=tool.name),
            store=False,
        )
    except openai.OpenAIError as exc:
        raise to_turn_error(exc) from exc
    for item in response.output:
        if item.type == "function_call" and item.name == tool.name:
            try:
                return json.loads(item.arguments or "{}")
            except ValueError:
                raise ToolArgumentsError("the model did not produce valid arguments") from None
    raise ToolArgumentsError("the model could not work out the arguments; try key=value pairs")
