"""A loopback Chat Completions server: the model behind a gateway (the LiteLLM proxy) in
tests. Shapes follow OpenAI's chat.completion and chat.completion.chunk objects; the
stream is SSE `data: {json}` lines ending with `data: [DONE]`.

What it answers (a scripted model): after a tool message, "Tool said: <its content>";
when tools are offered and the last user message asks to "use the tool", a call of the
first tool; otherwise "You said: <the last user message>".
"""

from __future__ import annotations

import json
import secrets
import socket
import time
from typing import Any

from aiohttp import web


def _text_of(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content or ""


class FakeChatCompletions:
    def __init__(self, api_key: str = "sk-upstream") -> None:
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []
        self.port: int | None = None
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def __aenter__(self) -> FakeChatCompletions:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._complete)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def seen_texts(self, n: int) -> list[str]:
        """Every message text (and tool result) the model saw in request `n`."""
        return [_text_of(m) for m in self.requests[n]["messages"] if _text_of(m)]

    @staticmethod
    def _answer(body: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
        messages = body.get("messages") or []
        last = messages[-1] if messages else {}
        if last.get("role") == "tool":
            return f"Tool said: {_text_of(last)}", None
        tools = body.get("tools") or []
        if tools and "use the tool" in _text_of(last):
            name = tools[0]["function"]["name"]
            return "", {"id": f"call_{secrets.token_hex(6)}", "type": "function", "function": {"name": name}}
        return f"You said: {_text_of(last)}", None

    async def _complete(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return web.json_response({"error": {"message": "bad key", "type": "invalid_request_error"}}, status=401)
        body = await request.json()
        self.requests.append(body)
        text, call = self._answer(body)
        base = {"id": f"chatcmpl-{secrets.token_hex(8)}", "created": int(time.time()), "model": body.get("model")}
        finish = "tool_calls" if call else "stop"
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": text or None}
            if call:
                message["tool_calls"] = [{**call, "function": {**call["function"], "arguments": "{}"}}]
            choice = {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
            usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
            return web.json_response({**base, "object": "chat.completion", "choices": [choice], "usage": usage})
        return await self._stream(request, base, text, call, finish)

    @staticmethod
    async def _stream(
        request: web.Request, base: dict[str, Any], text: str, call: dict[str, Any] | None, finish: str
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)

        async def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> None:
            choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
            payload = {**base, "object": "chat.completion.chunk", "choices": [choice]}
            await response.write(f"data: {json.dumps(payload)}\n\n".encode())

        await chunk({"role": "assistant", "content": ""})
        for start in range(0, len(text), 8):
            await chunk({"content": text[start : start + 8]})
        if call:
            await chunk({"tool_calls": [{"index": 0, **call, "function": {**call["function"], "arguments": ""}}]})
            await chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]})
        await chunk({}, finish)
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response
