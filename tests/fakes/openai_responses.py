"""The fake's Responses API: POST /v1/responses, streamed (SSE) or plain, scripted by the
replies in openai_replies.py, on conversations with a lock and an optional context window."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from .openai_conversations import _conv_id, _normalize_items, _tokens
from .openai_http import Resource, _error
from .openai_replies import (
    CONTEXT_WINDOW_MESSAGE,
    Cut,
    Failed,
    Hang,
    HttpError,
    Recorded,
    Reply,
    StreamError,
    Text,
    input_texts,
)
from .openai_stream import Streamer, function_call_item, message_item, new_id, terminal

# Built-in tool call items: (output item type, the events between added and done; none for reasoning).
_TOOLS = {
    "file_search": ("file_search_call", ("in_progress", "searching", "completed")),
    "code_interpreter": ("code_interpreter_call", ("in_progress", "interpreting", "completed")),
    "web_search": ("web_search_call", ("in_progress", "searching", "completed")),
    "mcp": ("mcp_call", ("in_progress", "completed")),
    "reasoning": ("reasoning", ()),
}


def _tool_item(kind: str, reply: Text | None = None) -> dict:
    """The completed output item of a built-in tool call, with the fields the SDK models require."""
    if kind == "file_search":
        return {
            "id": new_id("fs"),
            "type": "file_search_call",
            "status": "completed",
            "queries": ["fake query"],
            "results": None,
        }
    if kind == "code_interpreter":
        outputs = (
            reply.code_outputs
            if reply is not None and reply.code_outputs is not None
            else [{"type": "logs", "logs": "42\n"}]
        )
        container = reply.container_id if reply is not None and reply.container_id else new_id("cntr")
        return {
            "id": new_id("ci"),
            "type": "code_interpreter_call",
            "status": "completed",
            "code": "print(6 * 7)",
            "container_id": container,
            "outputs": outputs,
        }
    if kind == "web_search":
        return {
            "id": new_id("ws"),
            "type": "web_search_call",
            "status": "completed",
            "action": {"type": "search", "query": "fake query", "sources": None},
        }
    if kind == "mcp":
        return {
            "id": new_id("mcp"),
            "type": "mcp_call",
            "status": "completed",
            "server_label": "deepwiki",
            "name": "ask_question",
            "arguments": '{"question": "fake"}',
            "output": "fake answer",
            "error": None,
        }
    if kind == "reasoning":
        return {"id": new_id("rs"), "type": "reasoning", "summary": [], "encrypted_content": None}
    raise ValueError(f"unknown tool {kind!r}; expected one of {sorted(_TOOLS)}")


def function_outputs(body: dict) -> dict[str, str]:
    """call_id → output of the function_call_output items a request sends back."""
    inp = body.get("input")
    return {
        item["call_id"]: item["output"]
        for item in (inp if isinstance(inp, list) else [])
        if isinstance(item, dict) and item.get("type") == "function_call_output"
    }


class Responses(Resource):
    # With the History mixin (openai_history.py): FakeOpenAI is both.

    def _response_obj(self, body: dict, conv_id: str | None) -> dict:
        """An in-progress Response carrying every field openai.types.responses.Response requires."""
        obj = {
            "id": new_id("resp"),
            "object": "response",
            "created_at": int(time.time()),
            "status": "in_progress",
            "background": bool(body.get("background", False)),
            "completed_at": None,
            "error": None,
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "max_tool_calls": body.get("max_tool_calls"),
            "model": body.get("model", "gpt-5.4-mini"),
            "output": [],
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
            "service_tier": "default",
            "store": body.get("store", True),
            "temperature": body.get("temperature", 1.0),
            "text": body.get("text") or {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools") or [],
            "top_logprobs": 0,
            "top_p": body.get("top_p", 1.0),
            "truncation": body.get("truncation", "disabled"),
            "usage": None,
            "user": None,
            "metadata": body.get("metadata") or {},
        }
        if conv_id:
            obj["conversation"] = {"id": conv_id}
        return obj

    def _finish(
        self,
        obj: dict,
        body: dict,
        conv_id: str | None,
        status: str,
        error: dict | None = None,
        incomplete: dict | None = None,
        cached: int = 0,
    ) -> None:
        """Seal the response, store its output in the conversation and free the lock.

        Runs *before* the terminal event is written so a client that reacts instantly to
        response.completed never sees a stale conversation_locked.
        """
        out_text = " ".join(p.get("text", "") for it in obj["output"] if it["type"] == "message" for p in it["content"])
        in_tokens = 8 + sum(len(t.split()) for t in input_texts(body))
        out_tokens = len(out_text.split())
        obj.update(
            status=status,
            error=error,
            incomplete_details=incomplete,
            completed_at=int(time.time()) if status == "completed" else None,
            usage={
                "input_tokens": in_tokens,
                "input_tokens_details": {"cached_tokens": min(cached, in_tokens), "cache_write_tokens": 0},
                "output_tokens": out_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": in_tokens + out_tokens,
            },
        )
        self.responses[obj["id"]] = obj
        self._keep(obj, body)
        if conv_id in self.conversations and status == "completed":
            self.conversations[conv_id]["items"].extend(dict(it) for it in obj["output"])
        self._busy.discard(conv_id)

    def _fit_context(self, body: dict, conv_id: str | None) -> Reply | None:
        """With `context_window` set: a conversation past it is truncated (truncation="auto"),
        compacted (context_management compaction), or refused with the real context-window
        failure (tests/fakes/openai_payloads/events/codex-response-failed-context-window.json)."""
        if self.context_window is None or conv_id is None:
            return None
        items = self.conversations[conv_id]["items"]
        if _tokens(items) <= self.context_window:
            return None
        if body.get("truncation") == "auto":
            while len(items) > 1 and _tokens(items) > self.context_window:
                items.pop(0)  # the oldest items go first, as the API drops them
            self.truncations += 1
            return None
        if any(entry.get("type") == "compaction" for entry in body.get("context_management") or []):
            compacted = {"id": new_id("cmp"), "type": "compaction", "encrypted_content": "gAAAA-fake"}
            items[:-1] = [compacted]
            self.compactions += 1
            return None
        return Failed("context_length_exceeded", CONTEXT_WINDOW_MESSAGE)

    async def _create_response(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "We could not parse the JSON body of your request.")
        self.response_requests.append(body)
        conv_id = _conv_id(body.get("conversation"))
        context = self._context(body, conv_id)
        self.contexts.append(context)
        refused = self._refuse_history(body, conv_id)
        if refused is not None:
            return refused
        if conv_id is not None and conv_id not in self.conversations:
            return _error(404, f"Conversation with id '{conv_id}' not found.", param="conversation")
        for tool in body.get("tools") or []:
            for vs in tool.get("vector_store_ids") or [] if isinstance(tool, dict) else []:
                if vs not in self.vector_stores:  # deleted, or expired after days unused
                    return _error(404, f"Vector store with id '{vs}' not found.", param="tools")
        if conv_id in self._busy:
            self.locked_rejections += 1
            return _error(
                400,
                "Another process is currently operating on this conversation. Please retry in a few seconds.",
                param="conversation",
                code="conversation_locked",
            )
        reply = self._pick(body)
        if isinstance(reply, HttpError):
            return _error(reply.status, reply.message, reply.type, reply.param, reply.code, reply.headers)
        obj = self._response_obj(body, conv_id)
        if conv_id:
            self._busy.add(conv_id)
            self.conversations[conv_id]["items"].extend(_normalize_items(body.get("input")))
            reply = self._fit_context(body, conv_id) or reply
        else:
            reply = self._fit_stateless(body, obj, context) or reply
        try:
            if body.get("stream"):
                return await self._stream(request, body, reply, obj, conv_id)
            return await self._plain(request, body, reply, obj, conv_id)
        except (ConnectionResetError, asyncio.CancelledError):
            self.stream_disconnects += 1  # the client went away mid-response
            raise
        finally:
            self._busy.discard(conv_id)  # whatever happened, never leave the conversation locked

    async def _plain(
        self, request: web.Request, body: dict, reply: Reply, obj: dict, conv_id: str | None
    ) -> web.Response:
        """A non-streaming request: the final Response JSON, or an error for the failure kinds."""
        if isinstance(reply, Hang):
            if await self._hang(request):
                self.stream_disconnects += 1
            return _error(500, "The server is shutting down.", "server_error")
        if not isinstance(reply, Text):
            message = getattr(reply, "message", "The model failed to generate a response.")
            return _error(500, message, "server_error", None, getattr(reply, "code", "server_error"))
        if await self._pause(reply.delay * len(reply.chunks)):
            return _error(500, "The server is shutting down.", "server_error")
        compaction = self._compactions.pop(obj["id"], None)
        obj["output"] = (
            ([compaction] if compaction else [])
            + [_tool_item(t, reply) for t in reply.tool_calls]
            + [message_item(new_id("msg"), reply.text, "completed", reply.annotations)]
            + [function_call_item(name, arguments) for name, arguments in reply.calls]
        )
        self._finish(obj, body, conv_id, "completed")
        if reply.usage is not None:  # as given, like the streamed response.completed
            obj["usage"] = reply.usage
        return web.json_response(obj, headers={"x-request-id": new_id("req")})

    async def _pause(self, seconds: float) -> bool:
        """Sleep like a slow model, but wake at once on stop() (-> True) so shutdown stays quick."""
        if seconds > 0:
            try:
                await asyncio.wait_for(self._stopping.wait(), seconds)
            except TimeoutError:
                pass
        return self._stopping.is_set()

    async def _gated(self, gate: asyncio.Event) -> bool:
        """Wait for the test to open the gate; True when stop() came first."""
        stopping = asyncio.ensure_future(self._stopping.wait())
        opened = asyncio.ensure_future(gate.wait())
        await asyncio.wait({stopping, opened}, return_when=asyncio.FIRST_COMPLETED)
        for task in (stopping, opened):
            task.cancel()
        return self._stopping.is_set()

    async def _hang(self, request: web.Request) -> bool:
        """Wait for stop() (-> False) or for the client to go away (-> True)."""
        # Polling the transport catches a vanished client even if cancellation were not delivered.
        while not self._stopping.is_set():
            if request.transport is None or request.transport.is_closing():
                return True
            await asyncio.sleep(0.05)
        return False

    async def _stream(
        self, request: web.Request, body: dict, reply: Reply, obj: dict, conv_id: str | None
    ) -> web.StreamResponse:
        resp = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "x-request-id": new_id("req"),
            }
        )
        await resp.prepare(request)
        if isinstance(reply, Recorded):
            self._busy.discard(conv_id)
            await resp.write(reply.body)
            await resp.write_eof()
            return resp
        out = Streamer(resp, obj, pause=self._pause, gated=self._gated)
        await out.head()
        compaction = self._compactions.pop(obj["id"], None)
        if compaction:  # server-side compaction comes first in the output, before the reply
            await out.tool("compaction", compaction, ())
        for kind in reply.tool_calls if isinstance(reply, Text) else []:
            await out.tool(kind, _tool_item(kind, reply), _TOOLS[kind][1])
        if isinstance(reply, Text) and reply.hold is not None and await self._gated(reply.hold):
            return resp
        if not await out.message(reply):
            return resp
        if isinstance(reply, Text):
            await out.calls(reply.calls)
        if isinstance(reply, Hang):
            if await self._hang(request):  # nobody is left to write to
                self.stream_disconnects += 1
            return resp
        if isinstance(reply, Cut):
            self._busy.discard(conv_id)
            if reply.reset and request.transport is not None:
                request.transport.abort()  # mid-body, no last chunk: the client sees a reset
                return resp
        elif isinstance(reply, StreamError):
            self._busy.discard(conv_id)
            await out.emit("error", code=reply.code, message=reply.message, param=None)
        else:
            status, error, incomplete = terminal(reply)
            cached = reply.cached_tokens if isinstance(reply, Text) else 0
            self._finish(obj, body, conv_id, status, error, incomplete, cached)
            if isinstance(reply, Text) and reply.usage is not None:
                obj["usage"] = reply.usage
            await out.emit(f"response.{status}", response=obj)
        await resp.write_eof()
        return resp
