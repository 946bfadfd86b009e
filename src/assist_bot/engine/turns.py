"""One turn: the queued user messages of a thread become one streamed response
on the thread's conversation (Responses API with `conversation=…`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import openai

from assist_bot.assistants import Assistant
from assist_bot.engine.errors import is_conversation_locked, is_missing_conversation, to_turn_error
from assist_bot.errors import TurnError
from assist_bot.events import Done, Failed, TextDelta, ToolActivity, TurnEvent
from assist_bot.inbound import Inbound
from assist_bot.store import Store, ThreadKey

log = logging.getLogger(__name__)

# Output items that are tool work the user should see while it happens.
_TOOL_ITEMS = {
    "file_search_call": "file_search",
    "code_interpreter_call": "code_interpreter",
    "web_search_call": "web_search",
    "image_generation_call": "image_generation",
    "function_call": "function",
}

# conversation_locked: another response is still finishing on OpenAI's side.
LOCKED_BACKOFF = (0.25, 0.5, 1.0, 2.0, 4.0)


def user_input(messages: Sequence[Inbound]) -> list[dict[str, Any]]:
    """One user item per Slack message, each saying who speaks, so that threads
    with several people make sense to the model."""
    return [
        {
            "role": "user",
            "content": [{"type": "input_text", "text": f"[{m.user_name or m.user}] {m.text}"}],
        }
        for m in messages
    ]


class Engine:
    def __init__(self, *, client: openai.AsyncOpenAI, store: Store, locked_backoff: Sequence[float] = LOCKED_BACKOFF) -> None:
        self._client = client
        self._store = store
        self._locked_backoff = tuple(locked_backoff)

    async def ensure_conversation(self, thread: ThreadKey) -> str:
        existing = await self._store.get_conversation(thread)
        if existing:
            return existing
        return await self._new_conversation(thread)

    async def _new_conversation(self, thread: ThreadKey) -> str:
        try:
            conversation = await self._client.conversations.create(
                metadata={"team": thread.team, "channel": thread.channel, "thread_ts": thread.thread_ts}
            )
        except openai.OpenAIError as exc:
            raise to_turn_error(exc) from exc
        await self._store.set_conversation(thread, conversation.id)
        log.info("new conversation %s for %s/%s", conversation.id, thread.channel, thread.thread_ts)
        return conversation.id

    async def run(self, *, thread: ThreadKey, messages: Sequence[Inbound], assistant: Assistant) -> AsyncIterator[TurnEvent]:
        """Stream one response; raises TurnError for API errors the user should hear about."""
        conversation_id = await self.ensure_conversation(thread)
        try:
            stream = await self._create(conversation_id, messages, assistant)
        except openai.OpenAIError as exc:
            if not is_missing_conversation(exc):
                raise to_turn_error(exc) from exc
            # The conversation expired on OpenAI's side: start a fresh one for this thread.
            conversation_id = await self._new_conversation(thread)
            try:
                stream = await self._create(conversation_id, messages, assistant)
            except openai.OpenAIError as exc2:
                raise to_turn_error(exc2) from exc2
        try:
            async for event in _translate(stream):
                yield event
        except openai.OpenAIError as exc:
            raise to_turn_error(exc) from exc
        finally:
            await stream.close()

    async def _create(self, conversation_id: str, messages: Sequence[Inbound], assistant: Assistant) -> Any:
        request = _request(conversation_id, messages, assistant)
        for delay in (*self._locked_backoff, None):
            try:
                return await self._client.responses.create(**request)
            except openai.BadRequestError as exc:
                if not is_conversation_locked(exc) or delay is None:
                    raise
                log.info("conversation %s is locked; retrying in %.2fs", conversation_id, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")


def _request(conversation_id: str, messages: Sequence[Inbound], assistant: Assistant) -> dict[str, Any]:
    request: dict[str, Any] = {
        "model": assistant.model,
        "instructions": assistant.instructions,
        "conversation": conversation_id,
        "input": user_input(messages),
        "stream": True,
    }
    optional = {
        "temperature": assistant.temperature,
        "top_p": assistant.top_p,
        "max_output_tokens": assistant.max_output_tokens,
    }
    request.update({k: v for k, v in optional.items() if v is not None})
    if assistant.reasoning_effort:
        request["reasoning"] = {"effort": assistant.reasoning_effort}
    return request


async def _translate(stream: Any) -> AsyncIterator[TurnEvent]:
    """OpenAI stream events → our TurnEvents."""
    text_parts: list[str] = []
    async for event in stream:
        kind = event.type
        if kind == "response.output_text.delta":
            text_parts.append(event.delta)
            yield TextDelta(event.delta)
        elif kind in ("response.output_item.added", "response.output_item.done"):
            tool = _TOOL_ITEMS.get(getattr(event.item, "type", ""))
            if tool:
                yield ToolActivity(tool, getattr(event.item, "name", "") or "", active=kind.endswith("added"))
        elif kind == "response.completed":
            yield Done(event.response.output_text or "".join(text_parts), event.response.id)
            return
        elif kind == "response.incomplete":
            reason = getattr(event.response.incomplete_details, "reason", "") or ""
            yield Done("".join(text_parts), event.response.id) if reason == "max_output_tokens" else Failed(
                "model_failed", reason
            )
            return
        elif kind == "response.failed":
            error = event.response.error
            yield Failed("model_failed", f"{getattr(error, 'code', '')}: {getattr(error, 'message', '')}")
            return
        elif kind == "error":
            yield Failed("model_failed", f"{getattr(event, 'code', '')}: {getattr(event, 'message', '')}")
            return
    # The stream ended without a terminal event: treat what arrived as incomplete.
    raise TurnError("openai_unavailable", "stream ended without response.completed")
