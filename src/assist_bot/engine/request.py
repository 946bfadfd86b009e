"""What a turn sends to the model server: the request body (the assistant's model and
settings, the tools offered at that server) and the user items of the turn's messages,
each saying who speaks. engine/turns.py adds how the thread's history is carried."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from typing import Any

from assist_bot.assistants import Assistant
from assist_bot.engine.backends import Backend
from assist_bot.engine.file_places import hosted_tools, thread_files_at, vector_store_setting
from assist_bot.engine.tooling import HOSTED_TOOLS
from assist_bot.inbound import Inbound
from assist_bot.store import ThreadKey
from assist_bot.store.base import TurnSnapshot
from assist_bot.tools import Tool

_NOT_IN_NAMES = re.compile(r"[\[\]<>\x00-\x1f\x7f-\x9f\u2028\u2029]")


def speaker(message: Inbound) -> str:
    """Who speaks, as the model reads it: the display name (which anyone can set to
    anything, so brackets, line breaks and control characters go) and the Slack user id,
    which nobody can choose — two people called "Ana", or one who calls themself
    "Ana] [Bob", stay apart."""
    name = " ".join(_NOT_IN_NAMES.sub(" ", message.user_name).split())[:64]
    return f"{name} ({message.user})" if name and name != message.user else message.user


def user_input(messages: Sequence[Inbound]) -> list[dict[str, Any]]:
    """One user item per Slack message, each saying who speaks, so that threads
    with several people make sense to the model; what the person had in view comes first."""
    return [
        {
            "role": "user",
            "content": [
                *([{"type": "input_text", "text": m.context}] if m.context else []),
                {"type": "input_text", "text": f"[{speaker(m)}] {m.text}"},
                *({"type": "input_image", "file_id": file_id, "detail": "auto"} for file_id in m.images),
            ],
        }
        for m in messages
    ]


def request_body(
    assistant: Assistant, backend: Backend, functions: Iterable[Tool], state: TurnSnapshot
) -> dict[str, Any]:
    """The assistant's model and settings, and the tools it has at `backend`'s server."""
    request: dict[str, Any] = {"model": assistant.model, "instructions": assistant.instructions, "stream": True}
    optional = {
        "temperature": assistant.temperature,
        "top_p": assistant.top_p,
        "max_output_tokens": assistant.max_output_tokens,
    }
    request.update({k: v for k, v in optional.items() if v is not None})
    if assistant.reasoning_effort:
        request["reasoning"] = {"effort": assistant.reasoning_effort}
    # A server without hosted tools refuses a request naming one: offer them only where they run.
    tools = []
    if backend.hosted_tools:
        tools += [HOSTED_TOOLS[name] for name in assistant.tools if name in HOSTED_TOOLS]
        tools += hosted_tools(
            # The channel's store and the thread's files at this server: another's would be refused.
            vector_store=state.channel_settings.get(vector_store_setting(backend.server)),
            file_ids=thread_files_at(state.thread_files, backend.server),
            code_interpreter="code_interpreter" in assistant.tools,
        )
    tools += [tool.openai_tool() for tool in functions]
    if tools:
        request["tools"] = tools
    return request


def identity(thread: ThreadKey, user: str) -> dict[str, str]:
    """Per-thread prompt caching (requests of one thread share a prefix) and a per-user safety
    identifier, both hashed: OpenAI needs them stable, not readable."""

    def digest(*parts: str) -> str:
        return hashlib.sha256(":".join(("assist-bot", *parts)).encode()).hexdigest()

    return {
        "prompt_cache_key": digest(thread.team, thread.channel, thread.thread_ts)[:48],
        "safety_identifier": digest(thread.team, user),
    }


def drop_file_search(request: dict[str, Any]) -> bool:
    """Take file_search out of a request (the channel's vector store is gone); False if it had none."""
    tools = request.get("tools") or []
    kept = [tool for tool in tools if tool.get("type") != "file_search"]
    if len(kept) == len(tools):
        return False
    if kept:
        request["tools"] = kept
    else:
        request.pop("tools", None)
    return True
