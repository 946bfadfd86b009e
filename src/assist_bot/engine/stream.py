"""Reading one response's event stream: OpenAI's events (plain dicts, see sse.py)
become our TurnEvents, and what the response asks of us is collected in a Round."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from assist_bot.engine.tooling import FunctionCall
from assist_bot.errors import TurnError
from assist_bot.events import Failed, TextDelta, ToolActivity, TurnEvent

# Output items that are tool work the user should see while it happens.
_TOOL_ITEMS = {
    "file_search_call": "file_search",
    "code_interpreter_call": "code_interpreter",
    "web_search_call": "web_search",
    "image_generation_call": "image_generation",
    "function_call": "function",
}


@dataclass
class Round:
    """What one response produced."""

    text: list[str] = field(default_factory=list)
    calls: list[FunctionCall] = field(default_factory=list)
    annotations: list[Any] = field(default_factory=list)
    containers: set[str] = field(default_factory=set)
    response_id: str = ""
    compaction: dict[str, Any] | None = None  # the server compacted the input (context_management)


def _collect(item: dict[str, Any], into: Round) -> None:
    """Remember what a finished output item asks of us: calls to run, files to fetch, sources to cite."""
    kind = item.get("type", "")
    if kind == "function_call":
        into.calls.append(
            FunctionCall(call_id=item["call_id"], name=item["name"], arguments=item.get("arguments") or "{}")
        )
    elif kind == "compaction":
        into.compaction = {"type": "compaction", "encrypted_content": item.get("encrypted_content", "")}
    elif kind == "code_interpreter_call" and item.get("container_id"):
        into.containers.add(item["container_id"])
    elif kind == "message":
        for part in item.get("content") or []:
            into.annotations.extend(part.get("annotations") or [])


def _error_text(error: dict[str, Any] | None) -> str:
    error = error or {}
    return f"{error.get('code', '')}: {error.get('message', '')}"


async def translate(events: AsyncIterator[dict[str, Any]], into: Round) -> AsyncIterator[TurnEvent]:
    """OpenAI stream events (plain dicts) → our TurnEvents; the round's text and calls are collected in `into`."""
    async for event in events:
        kind = event.get("type")
        if kind == "response.output_text.delta":
            into.text.append(event["delta"])
            yield TextDelta(event["delta"])
        elif kind == "response.output_item.added":
            item = event.get("item") or {}
            tool = _TOOL_ITEMS.get(item.get("type", ""))
            if tool:
                yield ToolActivity(tool, item.get("name") or "")
        elif kind == "response.output_item.done":
            _collect(event.get("item") or {}, into)
        elif kind == "response.completed":
            into.response_id = event["response"].get("id", "")
            return
        elif kind == "response.incomplete":
            reason = (event["response"].get("incomplete_details") or {}).get("reason") or ""
            if reason != "max_output_tokens":
                yield Failed("model_failed", reason)
            return
        elif kind == "response.failed":
            yield Failed("model_failed", _error_text(event["response"].get("error")))
            return
        elif kind == "error":
            yield Failed("model_failed", _error_text(event))
            return
    # The stream ended without a terminal event: treat what arrived as incomplete.
    raise TurnError("openai_unavailable", "stream ended without response.completed")
