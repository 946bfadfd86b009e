"""Running the model's function calls: concurrently, each with its time-out,
side-effect tools only after a person approves. Every outcome — result, error,
decline — becomes a `function_call_output` the model reads."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from openai.types.responses import FunctionToolParam

from assist_bot.events import ApprovalRequest, Decision
from assist_bot.tools import Tool, ToolArgumentsError, ToolContext

Approver = Callable[[ApprovalRequest], Awaitable[Decision]]
Deadline = Callable[[float], asyncio.Timeout]

# Tools OpenAI runs itself; an assistant lists them by these names. (file_search and
# code_interpreter come from the channel's knowledge and the thread's files: file_places.py.)
HOSTED_TOOLS = {
    "web_search": {"type": "web_search"},
    "image_generation": {"type": "image_generation"},
}


def function_tool(tool: Tool) -> FunctionToolParam:
    """The tool as the Responses API takes it (typed, so a misspelt field fails the type check)."""
    spec = tool.openai_tool()
    return FunctionToolParam(
        type="function", name=tool.name, description=spec["description"], parameters=spec["parameters"], strict=True
    )


class SideEffectBudget:
    """Calls of side-effect tools one answer may still make (ASSIST_BOT_MAX_SIDE_EFFECT_CALLS):
    each is a consent prompt, and a model asked to send 40 emails must not post 40 of them.
    One per turn, shared by its tool rounds, so asking again in the next round gains nothing."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.left = limit

    def take(self) -> bool:
        if self.left <= 0:
            return False
        self.left -= 1
        return True


@dataclass(frozen=True, slots=True)
class FunctionCall:
    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ToolRun:
    """What running a turn's function calls needs, the same in each of its rounds."""

    tools: dict[str, Tool]
    ctx: ToolContext[Any]
    approve: Approver
    who: tuple[str, ...]  # everyone whose message is in the turn (an approval must hold for each)
    # The turn's side-effect calls left: the calls past it, in the model's order, are refused
    # with a reason the model can relay.
    budget: SideEffectBudget
    deadline: Deadline = asyncio.timeout  # what bounds each run (tests pass one they control)


async def run_calls(calls: Sequence[FunctionCall], run: ToolRun) -> list[dict[str, Any]]:
    outputs = await asyncio.gather(*(_run_one(call, run) for call in calls))
    return [
        {"type": "function_call_output", "call_id": call.call_id, "output": output}
        for call, output in zip(calls, outputs, strict=True)
    ]


async def _run_one(call: FunctionCall, run: ToolRun) -> str:
    tool, ctx, budget = run.tools.get(call.name), run.ctx, run.budget
    if tool is None:
        # Not offered this turn (unknown, or the asking user may not use it).
        return f"Error: the tool {call.name} is not available to this user here."
    if not tool.side_effects:
        return (await tool.invoke(call.arguments, ctx, deadline=run.deadline)).output
    try:
        # Ask people only about calls that can run, showing exactly what would run.
        shown = tool.as_run(call.arguments)
    except ToolArgumentsError as exc:
        return f"Error: invalid arguments: {exc}"
    # Taken before the first await: gather starts the calls in order, so the first ones get it.
    if not budget.take():
        return (
            f"{tool.name} was not run: one answer may make at most {budget.limit} calls that need a person's "
            "approval. Do not retry in this answer; tell the user which actions were not run, so they can "
            "ask for them again in a new message."
        )
    decision = await run.approve(
        ApprovalRequest(
            tool=tool.name, description=tool.description, arguments=shown, requester=ctx.user, requesters=run.who
        )
    )
    if not decision.approved:
        if not decision.by and not decision.timed_out:  # nobody could be asked (the prompt failed)
            return f"{tool.name} was not run: it could not be shown to people for approval. Do not retry."
        why = "nobody approved it in time" if decision.timed_out else f"<@{decision.by}> declined it"
        return f"The user declined to run {tool.name} ({why}). It was not run. Do not retry unless asked."
    return (await tool.invoke(call.arguments, ctx, deadline=run.deadline)).output
