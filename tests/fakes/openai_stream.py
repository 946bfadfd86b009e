"""The streamed body of one fake response: the SSE events a real Responses stream sends,
in the real order, each checked against the SDK's event model (openai_frames.frame).

Order (as recorded in tests/fakes/openai_payloads/streams): response.created,
response.in_progress, then per output item `output_item.added` … its own events …
`output_item.done`, then one terminal event (response.completed / .failed / .incomplete,
or an `error` event) — or, for a Cut, none at all.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .openai_frames import frame
from .openai_http import new_id
from .openai_replies import Cut, Failed, Incomplete, Refusal, Reply, StreamError, Text

Emit = Callable[..., Awaitable[None]]


def message_item(msg_id: str, text: str, status: str, annotations: list[dict] | None = None) -> dict:
    return {
        "id": msg_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": list(annotations or []), "logprobs": []}],
    }


def refusal_item(msg_id: str, refusal: str, status: str) -> dict:
    return {
        "id": msg_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [{"type": "refusal", "refusal": refusal}],
    }


def function_call_item(name: str, arguments: Any, status: str = "completed") -> dict:
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {
        "id": new_id("fc"),
        "type": "function_call",
        "call_id": new_id("call"),
        "name": name,
        "arguments": raw,
        "status": status,
    }


def _annotation_at(annotation: dict) -> int:
    """The text offset an annotation points at; the stream announces it once the text has got that far."""
    return int(annotation.get("index", annotation.get("end_index", 0)) or 0)


class Streamer:
    """Writes one response's events to an open StreamResponse. `pause(seconds)` and
    `gated(event)` return True when the fake is stopping (the stream is then cut short)."""

    def __init__(self, resp: web.StreamResponse, obj: dict, *, pause: Callable, gated: Callable) -> None:
        self.resp = resp
        self.obj = obj
        self._seq = itertools.count()
        self._pause = pause
        self._gated = gated

    async def emit(self, type_: str, **data: Any) -> None:
        await self.resp.write(frame({"type": type_, "sequence_number": next(self._seq), **data}))

    async def head(self) -> None:
        await self.emit("response.created", response=self.obj)
        await self.emit("response.in_progress", response=self.obj)

    async def tool(self, kind: str, item: dict, phases: tuple[str, ...]) -> None:
        idx = len(self.obj["output"])
        added = {**item, "status": "in_progress"} if "status" in item else item
        await self.emit("response.output_item.added", output_index=idx, item=added)
        for phase in phases:
            await self.emit(f"response.{item['type']}.{phase}", output_index=idx, item_id=item["id"])
        await self.emit("response.output_item.done", output_index=idx, item=item)
        self.obj["output"].append(item)

    async def message(self, reply: Reply) -> bool:
        """The assistant message (text or refusal); False when the stream was cut short by stop()."""
        if isinstance(reply, Refusal):
            return await self._refusal(reply.chunks)
        is_text = isinstance(reply, Text)
        chunks = reply.chunks if isinstance(reply, Text) else getattr(reply, "after_chunks", [])
        if not chunks and not (is_text and not reply.calls):
            return True
        msg_id, idx, text, announced = new_id("msg"), len(self.obj["output"]), "", 0
        where = {"item_id": msg_id, "output_index": idx, "content_index": 0}
        annotations = reply.annotations if isinstance(reply, Text) else []
        await self._open_message(msg_id, idx, {"type": "output_text", "text": "", "annotations": [], "logprobs": []})
        for n, chunk in enumerate(chunks):
            if isinstance(reply, Text):
                if await self._pause(reply.delay):
                    return False  # stop() cut the stream short, as a dropped connection would
                if reply.gate is not None and n == len(chunks) - 1 and await self._gated(reply.gate):
                    return False
            text += chunk
            await self.emit("response.output_text.delta", delta=chunk, logprobs=[], **where)
            announced = await self._announce(annotations, announced, len(text), where)
        if not is_text:  # the response ends mid-message: the item stays incomplete
            self.obj["output"].append(message_item(msg_id, text, "incomplete"))
            return True
        await self._announce(annotations, announced, math.inf, where)
        # As in the real stream, output_text.done carries no annotations; the parts and items do.
        done = message_item(msg_id, text, "completed", annotations)
        await self.emit("response.output_text.done", text=text, logprobs=[], **where)
        await self.emit("response.content_part.done", part=done["content"][0], **where)
        await self.emit("response.output_item.done", output_index=idx, item=done)
        self.obj["output"].append(done)
        return True

    async def _open_message(self, msg_id: str, idx: int, part: dict) -> None:
        item = {"id": msg_id, "type": "message", "status": "in_progress", "role": "assistant", "content": []}
        await self.emit("response.output_item.added", output_index=idx, item=item)
        await self.emit("response.content_part.added", part=part, item_id=msg_id, output_index=idx, content_index=0)

    async def _refusal(self, chunks: list[str]) -> bool:
        msg_id, idx = new_id("msg"), len(self.obj["output"])
        where = {"item_id": msg_id, "output_index": idx, "content_index": 0}
        await self._open_message(msg_id, idx, {"type": "refusal", "refusal": ""})
        for chunk in chunks:
            await self.emit("response.refusal.delta", delta=chunk, **where)
        done = refusal_item(msg_id, "".join(chunks), "completed")
        await self.emit("response.refusal.done", refusal="".join(chunks), **where)
        await self.emit("response.content_part.done", part=done["content"][0], **where)
        await self.emit("response.output_item.done", output_index=idx, item=done)
        self.obj["output"].append(done)
        return True

    async def calls(self, calls: list[tuple[str, Any]]) -> None:
        for name, arguments in calls:
            item, idx = function_call_item(name, arguments), len(self.obj["output"])
            added = {**item, "arguments": "", "status": "in_progress"}
            await self.emit("response.output_item.added", output_index=idx, item=added)
            where = {"item_id": item["id"], "output_index": idx}
            await self.emit("response.function_call_arguments.delta", delta=item["arguments"], **where)
            await self.emit("response.function_call_arguments.done", arguments=item["arguments"], **where)
            await self.emit("response.output_item.done", output_index=idx, item=item)
            self.obj["output"].append(item)

    async def _announce(self, annotations: list[dict], announced: int, upto: float, where: dict) -> int:
        """Emit response.output_text.annotation.added for annotations the text has reached; returns the count."""
        while announced < len(annotations) and _annotation_at(annotations[announced]) <= upto:
            await self.emit(
                "response.output_text.annotation.added",
                annotation=annotations[announced],
                annotation_index=announced,
                **where,
            )
            announced += 1
        return announced


def terminal(reply: Reply) -> tuple[str, dict | None, dict | None]:
    """(final status, response.error, response.incomplete_details) of a reply that ends the stream."""
    if isinstance(reply, Failed):
        return "failed", {"code": reply.code, "message": reply.message}, None
    if isinstance(reply, Incomplete):
        return "incomplete", None, {"reason": reply.reason}
    return "completed", None, None


def ends_without_event(reply: Reply) -> bool:
    return isinstance(reply, (Cut, StreamError))
