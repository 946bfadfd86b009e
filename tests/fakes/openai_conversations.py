"""The fake's Conversations API: /v1/conversations and their items."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from .openai_http import Resource, _error, _Reject, new_id


def _conv_id(conversation: Any) -> str | None:
    """`conversation` may be sent as "conv_..." or {"id": "conv_..."}."""
    if isinstance(conversation, dict):
        return conversation.get("id")
    return conversation or None


def _normalize_items(inp: Any) -> list[dict]:
    """Store input the way the Conversations API lists it: typed message items with ids and parts."""
    if inp is None:
        return []
    if isinstance(inp, str):
        inp = [{"role": "user", "content": inp}]
    items = []
    for raw in inp:
        item = dict(raw)
        if "role" in item and item.get("type", "message") == "message":
            content = item.get("content")
            if isinstance(content, str):
                kind = "output_text" if item["role"] == "assistant" else "input_text"
                content = [{"type": kind, "text": content, **({"annotations": []} if kind == "output_text" else {})}]
            item.update(type="message", content=content, status="completed")
        item.setdefault("id", new_id("msg" if item.get("type") == "message" else "item"))
        items.append(item)
    return items


def _tokens(items: list[dict]) -> int:
    """A conversation's size in words, the fake's stand-in for tokens."""
    words = 0
    for item in items:
        for part in item.get("content") or [] if isinstance(item.get("content"), list) else []:
            words += len(str(part.get("text") or part.get("refusal") or "").split())
        words += len(str(item.get("output") or "").split())
    return words


class Conversations(Resource):
    conversations: dict[str, dict]

    def _conversation_routes(self, r: web.UrlDispatcher) -> None:
        r.add_post("/v1/conversations", self._create_conversation)
        r.add_route("*", "/v1/conversations/{cid}", self._conversation)
        r.add_route("*", "/v1/conversations/{cid}/items", self._items)

    def _conv(self, request: web.Request) -> dict:
        cid = request.match_info["cid"]
        if cid not in self.conversations:
            raise _Reject(_error(404, f"Conversation with id '{cid}' not found.", param="conversation_id"))
        return self.conversations[cid]

    @staticmethod
    def _conv_json(conv: dict) -> dict:
        return {
            "id": conv["id"],
            "object": "conversation",
            "created_at": conv["created_at"],
            "metadata": conv["metadata"],
        }

    async def _create_conversation(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        conv = {
            "id": new_id("conv"),
            "created_at": int(time.time()),
            "metadata": body.get("metadata") or {},
            "items": _normalize_items(body.get("items")),
        }
        self.conversations[conv["id"]] = conv
        return web.json_response(self._conv_json(conv))

    async def _conversation(self, request: web.Request) -> web.Response:
        conv = self._conv(request)
        if request.method == "DELETE":
            del self.conversations[conv["id"]]
            return web.json_response({"id": conv["id"], "object": "conversation.deleted", "deleted": True})
        if request.method == "POST":  # update metadata
            conv["metadata"] = (await self._json(request)).get("metadata") or {}
        return web.json_response(self._conv_json(conv))

    async def _items(self, request: web.Request) -> web.Response:
        conv = self._conv(request)
        if request.method == "POST":
            page = _normalize_items((await self._json(request)).get("items") or [])
            conv["items"].extend(page)
            has_more = False
        else:
            # The real API lists newest first unless order=asc, 20 per page, paged with `after`.
            q = request.query
            seq = conv["items"] if q.get("order", "desc") == "asc" else conv["items"][::-1]
            ids = [it["id"] for it in seq]
            if q.get("after") in ids:
                seq = seq[ids.index(q["after"]) + 1 :]
            limit = int(q.get("limit", 20))
            page, has_more = seq[:limit], len(seq) > limit
        return web.json_response(
            {
                "object": "list",
                "data": page,
                "has_more": has_more,
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
            }
        )
