"""Free text → a tool's arguments, by the model with a forced tool choice
(for slash commands like `/weather what about Paris tomorrow`).

Metered like an answer, through the same `Meter`: a used-up budget of the workspace,
channel or person refuses the call before it is made (TurnError "budget_<scope>", told
like an answer's refusal), and what the call used is recorded once it is back.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import openai
from openai.types.responses import Response, ToolChoiceFunctionParam

from assist_bot.engine.openai_errors import to_turn_error
from assist_bot.engine.tooling import function_tool
from assist_bot.errors import TurnError
from assist_bot.tools import Caller, Tool, ToolArgumentsError
from assist_bot.usage import Meter, report_from_response

log = logging.getLogger(__name__)


async def arguments_from_text(
    client: openai.AsyncOpenAI,
    *,
    model: str,
    tool: Tool,
    text: str,
    caller: Caller,
    assistant: str,
    meter: Meter | None,
) -> dict[str, Any]:
    """The JSON arguments the model fills in for `tool` from `text` (validated by the caller),
    on `caller`'s budgets; `assistant` is the channel's, whose figures the call joins."""
    if meter is not None:
        await _refuse_over_budget(meter, caller)
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
    if meter is not None:  # before reading the arguments: a call that found none used tokens too
        await _record(meter, caller, assistant, response)
    return _arguments_in(response, tool)


async def _refuse_over_budget(meter: Meter, caller: Caller) -> None:
    scope = await meter.over_budget(team=caller.team, channel=caller.channel, user=caller.user)
    if scope is not None:
        log.info("arguments for %s in %s refused: %s budget used up", caller.user, caller.channel, scope)
        raise TurnError(f"budget_{scope}", "the model was not asked for the arguments")


async def _record(meter: Meter, caller: Caller, assistant: str, response: Response) -> None:
    try:
        await meter.record_call(
            team=caller.team,
            channel=caller.channel,
            user=caller.user,
            assistant=assistant,
            report=report_from_response(response.model_dump()),
        )
    except Exception:  # figures lost for one call must not lose the person their command
        log.warning("recording the usage of %s's arguments failed", caller.user, exc_info=True)


def _arguments_in(response: Response, tool: Tool) -> dict[str, Any]:
    for item in response.output:
        if item.type == "function_call" and item.name == tool.name:
            try:
                return json.loads(item.arguments or "{}")
            except ValueError:
                raise ToolArgumentsError("the model did not produce valid arguments") from None
    raise ToolArgumentsError("the model could not work out the arguments; try key=value pairs")
