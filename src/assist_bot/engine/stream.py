"""Reading one response's event stream: OpenAI's events (plain dicts, see sse.py)
become our TurnEvents, and what the response asks of us is collected in a Round."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from assist_bot.engine.openai_errors import incomplete_kind, stream_failure_kind
from assist_bot.engine.tooling import FunctionCall
from assist_bot.errors import TurnError
from assist_bot.events import Failed, TextDelta, ToolActivity, TurnEvent
from assist_bot.usage import report_from_response

# Output items that are work the user should see while it happens (hosted tools run on
# OpenAI's side with no event of ours otherwise; reasoning can take a while before any text).
_TOOL_ITEMS = {
    "reasoning": "reasoning",
    "file_search_call": "file_search",
    "code_interpreter_call": "code_interpreter",
    "web_search_call": "web_search",
    "image_generation_call": "image_generation",
    "mcp_call": "mcp",
    "mcp_list_tools": "mcp_list_tools",
    "function_call": "function",
}
# Events that carry (part of) the answer the user reads; a refusal is the model's words too.
_TEXT_DELTAS = {"response.output_text.delta", "response.refusal.delta"}


@dataclass
class Usage:
    """Tokens of a response (response.completed `usage`), summed over a turn's rounds."""

    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0

    def add(self, usage: dict[str, Any] | None) -> None:
        usage = usage or {}
        self.input_tokens += int(usage.get("input_tokens") or 0)
        self.cached_tokens += int((usage.get("input_tokens_details") or {}).get("cached_tokens") or 0)
        self.output_tokens += int(usage.get("output_tokens") or 0)


@dataclass
class Round:
    """What one response produced."""

    text: list[str] = field(default_factory=list)
    calls: list[FunctionCall] = field(default_factory=list)
    annotations: list[Any] = field(default_factory=list)
    containers: set[str] = field(default_factory=set)
    response_id: str = ""
    compaction: dict[str, Any] | None = None  # the server compacted the input (context_management)
    usage: Usage = field(default_factory=Usage)

    @property
    def produced(self) -> bool:
        """Did the user see any of this response's answer, or did it ask for a tool run?
        (Then it cannot simply be asked again.)"""
        return bool(self.text or self.calls)


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


def _activity(item: dict[str, Any], *, active: bool) -> ToolActivity | None:
    tool = _TOOL_ITEMS.get(item.get("type", ""))
    if not tool:
        return None
    name = item.get("name") or ""
    if tool == "mcp" and item.get("server_label"):
        name = f"{item['server_label']}: {name}" if name else item["server_label"]
    return ToolActivity(tool, name, active=active)


def _error_text(error: dict[str, Any] | None) -> str:
    error = error or {}
    return f"{error.get('code', '')}: {error.get('message', '')}"


def terminal(event: dict[str, Any], into: Round) -> Failed | None:
    """What a terminal event means: None for a completed response, else the failure."""
    kind = event.get("type")
    response = event.get("response") or {}
    if kind == "response.completed":
        into.response_id = response.get("id", "")
        into.usage.add(response.get("usage"))
        return None
    into.usage.add(response.get("usage"))
    if kind == "response.incomplete":
        reason = (response.get("incomplete_details") or {}).get("reason") or ""
        return Failed(incomplete_kind(reason), f"incomplete: {reason}")
    error = response.get("error") if kind == "response.failed" else event
    return Failed(stream_failure_kind((error or {}).get("code")), _error_text(error))


_TERMINAL = {"response.completed", "response.incomplete", "response.failed", "error"}


async def translate(events: AsyncIterator[dict[str, Any]], into: Round) -> AsyncIterator[TurnEvent]:
    """OpenAI stream events (plain dicts) → our TurnEvents; the round's text and calls are collected in `into`."""
    async for event in events:
        kind = event.get("type")
        if kind in _TEXT_DELTAS:
            into.text.append(event["delta"])
            yield TextDelta(event["delta"])
        elif kind in ("response.output_item.added", "response.output_item.done"):
            item = event.get("item") or {}
            done = kind == "response.output_item.done"
            if done:
                _collect(item, into)
            activity = _activity(item, active=not done)
            if activity:
                yield activity
        elif kind in _TERMINAL:
            if event.get("response"):  # its tokens are billed whether it answered or not
                yield report_from_response(event["response"])
            failed = terminal(event, into)
            if failed:
                yield failed
            return
    # The stream ended without a terminal event: what arrived is all there is.
    raise TurnError("stream_cut", "stream ended without response.completed")
