"""What the fake OpenAI answers to POST /v1/responses: scripted replies, one dataclass per
outcome a real response can have (text, refusal, cut short, failed, an error event, a stream
cut or reset, an HTTP error before any stream). Tests import them from `tests.fakes.openai`."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Real error texts, as recorded (tests/fakes/openai_payloads/events/codex-response-failed-*.json).
CONTEXT_WINDOW_MESSAGE = "Your input exceeds the context window of this model. Please adjust your input and try again."
RATE_LIMIT_MESSAGE = (
    "Rate limit reached for gpt-5.1 in organization org-AAA on tokens per min (TPM): Limit 30000, Used 22999, "
    "Requested 12528. Please try again in 11.054s. Visit https://platform.openai.com/account/rate-limits to learn more."
)
QUOTA_MESSAGE = (
    "You exceeded your current quota, please check your plan and billing details. For more information on this "
    "error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors."
)


def input_texts(body: dict) -> list[str]:
    """All user-authored text in a request's `input`, in order (string input, str content or input_text parts)."""
    inp = body.get("input")
    if isinstance(inp, str):
        return [inp]
    out: list[str] = []
    for item in inp or []:
        if not isinstance(item, dict) or item.get("role") != "user":
            continue
        content = item.get("content")
        if isinstance(content, str):
            out.append(content)
        else:
            out.extend(
                p.get("text", "") for p in content or [] if isinstance(p, dict) and p.get("type") == "input_text"
            )
    return out


@dataclass
class Text:
    """A successful response streamed as these chunks, `delay` seconds before each one."""

    chunks: list[str]
    delay: float = 0.0
    # Hosted tools run before the text: "file_search" / "code_interpreter" / "web_search" / "mcp", and
    # "reasoning" for a reasoning item.
    tools: list[str] = field(default_factory=list)
    # Annotations on the output_text part: file_citation {type, file_id, filename, index}, container_file_citation
    # {type, container_id, file_id, filename, start_index, end_index}, url_citation {type, url, title,
    # start_index, end_index}, file_path {type, file_id, index}, ...
    annotations: list[dict] = field(default_factory=list)
    # `outputs` of the code_interpreter_call item ({"type": "logs", "logs"} / {"type": "image", "url"}) and its
    # container; either one adds a code_interpreter call when `tools` lacks it.
    code_outputs: list[dict] | None = None
    container_id: str | None = None
    # Function calls the model makes after its text: (name, arguments as a dict or a raw JSON string).
    calls: list[tuple[str, Any]] = field(default_factory=list)
    # When set, the stream holds before its last chunk until this event is set (deterministic "slow" streams).
    gate: asyncio.Event | None = None
    # When set, the stream holds after its tool items and before any text until this event is set
    # (to see what the user sees while hosted tools or reasoning run).
    hold: asyncio.Event | None = None
    cached_tokens: int = 0  # usage.input_tokens_details.cached_tokens of the completed response
    # The completed response's `usage` as given (the Responses API shape), instead of one counted from words.
    usage: dict | None = None

    @property
    def tool_calls(self) -> list[str]:
        wants_code = self.code_outputs is not None or self.container_id is not None
        return self.tools + ["code_interpreter"] if wants_code and "code_interpreter" not in self.tools else self.tools

    @property
    def text(self) -> str:
        return "".join(self.chunks)

    @classmethod
    def of(cls, text: str, parts: int = 3, **kwargs: Any) -> Text:
        """Split `text` into about `parts` chunks."""
        size = max(1, math.ceil(len(text) / max(1, parts)))
        return cls([text[i : i + size] for i in range(0, len(text), size)] or [""], **kwargs)

    @classmethod
    def echo(cls, body: dict) -> Text:
        texts = input_texts(body)
        return cls.of(f"You said: {texts[-1] if texts else ''}")


@dataclass
class Refusal:
    """The model declines: a `refusal` content part streamed with response.refusal.delta/done."""

    chunks: list[str]


@dataclass
class HttpError:
    """A plain HTTP error before any stream starts."""

    status: int
    code: str | None
    message: str
    type: str = "server_error"
    param: str | None = None
    headers: dict[str, str] = field(default_factory=dict)  # e.g. {"retry-after": "0"} for 429s


@dataclass
class Hang:
    """Streams these chunks, then neither completes nor fails until the client disconnects or stop()."""

    after_chunks: list[str] = field(default_factory=list)


@dataclass
class Failed:
    """Streams these chunks, then a `response.failed` event carrying response.error."""

    code: str = "server_error"
    message: str = "The model failed to generate a response."
    after_chunks: list[str] = field(default_factory=list)


@dataclass
class Incomplete:
    """Streams these chunks, then `response.incomplete` with incomplete_details.reason."""

    reason: str = "max_output_tokens"  # or "content_filter"
    after_chunks: list[str] = field(default_factory=list)


@dataclass
class StreamError:
    """Streams these chunks, then an `error` event (type "error") and ends the stream."""

    message: str
    code: str | None = "server_error"
    after_chunks: list[str] = field(default_factory=list)


@dataclass
class Cut:
    """Streams these chunks, then ends the HTTP body cleanly with no terminal event
    (`reset=True`: drops the connection mid-body instead, as a crashed proxy would)."""

    after_chunks: list[str] = field(default_factory=list)
    reset: bool = False


@dataclass
class Recorded:
    """A stream recorded from the real API, replayed byte for byte: one of
    tests/fakes/openai_payloads/streams/*.sse (see SOURCES.md there). Real shapes are looser
    than the SDK's models (fields missing, extra fields), which the bot must take as they come."""

    stream: str  # file name, e.g. "pai-web-search-url-citation.sse"

    @property
    def body(self) -> bytes:
        return (Path(__file__).parent / "openai_payloads" / "streams" / self.stream).read_bytes()


Reply = Text | Refusal | HttpError | Hang | Failed | Incomplete | StreamError | Cut | Recorded
ReplySource = Reply | Callable[[dict], Reply]  # a callable builds the reply from the request body
