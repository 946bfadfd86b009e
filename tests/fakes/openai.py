"""A loopback fake of the OpenAI Conversations + Responses APIs that the official `openai` SDK uses unchanged.

Shapes follow openai 3.57 (openai/types/responses, openai/types/conversations): streamed responses are SSE
frames `event: <type>\\ndata: <json>\\n\\n` whose JSON repeats the type and carries a sequence_number, and
errors are `{"error": {"message", "type", "param", "code"}}` with the HTTP status the SDK maps to its
exception classes (400 -> BadRequestError, 404 -> NotFoundError, 500 -> InternalServerError...).
Note the SDK retries 408/409/429/5xx itself (max_retries=2 by default) and each retry consumes a reply.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import secrets
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .openai_models import ModelRoutes
from .slack import wait_for


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


# ------------------------------------------------------------------------ scripted replies
@dataclass
class Text:
    """A successful response streamed as these chunks, `delay` seconds before each one."""

    chunks: list[str]
    delay: float = 0.0
    tools: list[str] = field(default_factory=list)  # "file_search" / "code_interpreter" / "web_search", run first
    # Annotations on the output_text part: file_citation {type, file_id, filename, index}, container_file_citation
    # {type, container_id, file_id, filename, start_index, end_index}, file_path {type, file_id, index}, ...
    annotations: list[dict] = field(default_factory=list)
    # `outputs` of the code_interpreter_call item ({"type": "logs", "logs"} / {"type": "image", "url"}) and its
    # container; either one adds a code_interpreter call when `tools` lacks it.
    code_outputs: list[dict] | None = None
    container_id: str | None = None
    # Function calls the model makes after its text: (name, arguments as a dict or a raw JSON string).
    calls: list[tuple[str, Any]] = field(default_factory=list)
    # When set, the stream holds before its last chunk until this event is set (deterministic "slow" streams).
    gate: asyncio.Event | None = None

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
class StreamError:
    """Streams these chunks, then an `error` event (type "error") and ends the stream."""

    message: str
    code: str | None = "server_error"
    after_chunks: list[str] = field(default_factory=list)


Reply = Text | HttpError | Hang | Failed | StreamError
ReplySource = Reply | Callable[[dict], Reply]  # a callable builds the reply from the request body


# ------------------------------------------------------------------------ request helpers
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
        item.setdefault("id", _id("msg" if item.get("type") == "message" else "item"))
        items.append(item)
    return items


class _Reject(Exception):
    """Raised by lookups deep in a handler to answer with an error response (see the _auth middleware)."""

    def __init__(self, response: web.Response):
        self.response = response


def _error(
    status: int,
    message: str,
    type_: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: dict | None = None,
) -> web.Response:
    return web.json_response(
        {"error": {"message": message, "type": type_, "param": param, "code": code}}, status=status, headers=headers
    )


# Built-in tool call items: (output item type, the middle event's name).
_TOOLS = {
    "file_search": ("file_search_call", "searching"),
    "code_interpreter": ("code_interpreter_call", "interpreting"),
    "web_search": ("web_search_call", "searching"),
}


def _tool_item(kind: str, reply: Text | None = None) -> dict:
    """The completed output item of a built-in tool call, with the fields the SDK models require."""
    if kind == "file_search":
        return {
            "id": _id("fs"),
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
        container = reply.container_id if reply is not None and reply.container_id else _id("cntr")
        return {
            "id": _id("ci"),
            "type": "code_interpreter_call",
            "status": "completed",
            "code": "print(6 * 7)",
            "container_id": container,
            "outputs": outputs,
        }
    if kind == "web_search":
        return {
            "id": _id("ws"),
            "type": "web_search_call",
            "status": "completed",
            "action": {"type": "search", "query": "fake query", "sources": None},
        }
    raise ValueError(f"unknown tool {kind!r}; expected one of {sorted(_TOOLS)}")


def _message_item(msg_id: str, text: str, status: str, annotations: list[dict] | None = None) -> dict:
    return {
        "id": msg_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": list(annotations or []), "logprobs": []}],
    }


def _function_call_item(name: str, arguments: Any, status: str = "completed") -> dict:
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {
        "id": _id("fc"),
        "type": "function_call",
        "call_id": _id("call"),
        "name": name,
        "arguments": raw,
        "status": status,
    }


def function_outputs(body: dict) -> dict[str, str]:
    """call_id → output of the function_call_output items a request sends back."""
    inp = body.get("input")
    return {
        item["call_id"]: item["output"]
        for item in (inp if isinstance(inp, list) else [])
        if isinstance(item, dict) and item.get("type") == "function_call_output"
    }


def _annotation_at(annotation: dict) -> int:
    """The text offset an annotation points at; the stream announces it once the text has got that far."""
    return int(annotation.get("index", annotation.get("end_index", 0)) or 0)


# ------------------------------------------------------------------------ the server
class FakeOpenAI:
    def __init__(self, api_key: str = "sk-test", *, vector_file_polls: int = 1, poll_after_ms: int = 10):
        self.api_key = api_key
        # Files, vector stores and containers (see the "Files" section below).
        self.files: dict[str, dict] = {}  # id -> file object fields + "content": bytes
        self.vector_stores: dict[str, dict] = {}  # id -> {"meta": vector store, "files": {file_id: vs file}}
        self.containers: dict[str, dict] = {}  # id -> {"meta": container, "files": {cfile_id: fields + content}}
        self.vector_file_polls = vector_file_polls  # GETs of a vector store file before it leaves in_progress
        self.poll_after_ms = poll_after_ms  # openai-poll-after-ms hint, so the SDK's poll() does not wait 1 s
        self._vector_failures: list[tuple[Callable[[dict], bool], str, str]] = []
        self._vector_polls_left: dict[tuple[str, str], int] = {}
        self.conversations: dict[str, dict] = {}  # id -> {"id", "created_at", "metadata", "items"}
        self.response_requests: list[dict] = []  # every POST /v1/responses body, rejected ones included
        self.responses: dict[str, dict] = {}  # final response objects (completed / failed) by id
        self.locked_rejections = 0
        self.stream_disconnects = 0  # streams the client abandoned before they ended
        self.default: Callable[[dict], Reply] = Text.echo
        self.port: int | None = None
        self._queue: deque[ReplySource] = deque()
        self._rules: list[list] = []  # [predicate, reply source, remaining uses or None]
        self._busy: set[str] = set()  # conversations with a response in flight
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.model_routes = ModelRoutes()  # GET /v1/models[/{id}]: edit .models to retire one

    # -------------------------------------------------------------- lifecycle
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self) -> FakeOpenAI:
        # File uploads of a few MB must fit: aiohttp's default request cap is 1 MiB.
        app = web.Application(middlewares=[self._auth], client_max_size=256 * 1024 * 1024)
        r = app.router
        self._add_file_routes(r)
        self.model_routes.add_to(r)
        r.add_post("/v1/conversations", self._create_conversation)
        r.add_route("*", "/v1/conversations/{cid}", self._conversation)
        r.add_route("*", "/v1/conversations/{cid}/items", self._items)
        r.add_post("/v1/responses", self._create_response)
        # handler_cancellation: a client closing a stream cancels its handler at once, which frees the
        # conversation lock as the real service does; a short shutdown_timeout keeps stop() quick.
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))  # bind ourselves to learn the free port race-free
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        self._stopping.clear()
        return self

    async def stop(self) -> None:
        self._stopping.set()  # releases Hang replies so their handlers end
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeOpenAI:
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    # -------------------------------------------------------------- scripting & inspection
    def enqueue(self, *replies: ReplySource) -> None:
        """Replies consumed in order by the next requests that no reply_for() rule claims."""
        self._queue.extend(replies)

    def reply_for(
        self, predicate: Callable[[dict], bool] | str, reply: ReplySource, *, times: int | None = None
    ) -> None:
        """Answer requests matching `predicate(body)` (or containing this marker string in their input)."""
        if isinstance(predicate, str):
            marker = predicate
            predicate = lambda body: marker in " ".join(input_texts(body)) or marker in json.dumps(body.get("input"))
        self._rules.append([predicate, reply, times])

    def requests_for(self, conversation_id: str) -> list[dict]:
        return [b for b in self.response_requests if _conv_id(b.get("conversation")) == conversation_id]

    async def wait_requests(self, n: int, seconds: float = 10) -> list[dict]:
        await wait_for(lambda: len(self.response_requests) >= n, seconds, message=f"{n} POST /v1/responses requests")
        return self.response_requests

    input_texts = staticmethod(input_texts)

    @property
    def busy_conversations(self) -> set[str]:
        return set(self._busy)

    def _pick(self, body: dict) -> Reply:
        chosen: ReplySource | None = None
        for rule in self._rules:
            if rule[0](body):
                chosen = rule[1]
                if rule[2] is not None:
                    rule[2] -= 1
                    if rule[2] <= 0:
                        self._rules.remove(rule)
                break
        if chosen is None:
            chosen = self._queue.popleft() if self._queue else self.default
        return chosen(body) if callable(chosen) else chosen

    # -------------------------------------------------------------- auth
    @web.middleware
    async def _auth(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _error(401, "Incorrect API key provided.", code="invalid_api_key")
        try:
            return await handler(request)
        except _Reject as reject:
            return reject.response
        except web.HTTPNotFound:
            return _error(404, f"Invalid URL ({request.method} {request.path})")
        except web.HTTPMethodNotAllowed:
            return _error(405, f"Method not allowed ({request.method} {request.path})")

    # -------------------------------------------------------------- Conversations API
    @staticmethod
    async def _json(request: web.Request) -> dict:
        return await request.json() if request.can_read_body else {}

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
            "id": _id("conv"),
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

    # -------------------------------------------------------------- Files, vector stores, containers
    def fail_vector_file(
        self,
        filename_or_predicate: str | Callable[[dict], bool],
        code: str = "unsupported_file",
        message: str = "The file type is not supported.",
    ) -> None:
        """Files attached to a vector store whose filename matches (or whose file object satisfies the
        predicate) end "failed" with last_error {code, message} instead of "completed"."""
        pred = filename_or_predicate
        if isinstance(pred, str):
            name = pred
            pred = lambda f: f.get("filename") == name
        self._vector_failures.append((pred, code, message))

    def add_container_file(self, container_id: str, name: str, content: bytes) -> str:
        """Simulate code interpreter writing /mnt/data/<name>; creates the container if unknown. Returns the
        container file id (cfile_…)."""
        if container_id not in self.containers:
            self.containers[container_id] = {"meta": self._container_meta(container_id, "fake-container"), "files": {}}
        return self._put_container_file(container_id, name, content, "assistant")["id"]

    def _add_file_routes(self, r: web.UrlDispatcher) -> None:
        r.add_route("*", "/v1/files", self._files_root)
        r.add_route("*", "/v1/files/{fid}", self._file)
        r.add_get("/v1/files/{fid}/content", self._file_content)
        r.add_post("/v1/vector_stores", self._create_vector_store)
        r.add_route("*", "/v1/vector_stores/{vsid}", self._vector_store)
        r.add_route("*", "/v1/vector_stores/{vsid}/files", self._vector_store_files)
        r.add_route("*", "/v1/vector_stores/{vsid}/files/{fid}", self._vector_store_file)
        r.add_post("/v1/containers", self._create_container)
        r.add_route("*", "/v1/containers/{cid}", self._container)
        r.add_route("*", "/v1/containers/{cid}/files", self._container_files)
        r.add_route("*", "/v1/containers/{cid}/files/{fid}", self._container_file)
        r.add_get("/v1/containers/{cid}/files/{fid}/content", self._container_file_content)

    @staticmethod
    def _public(record: dict) -> dict:
        return {k: v for k, v in record.items() if k != "content"}

    @staticmethod
    def _list(data: list[dict]) -> web.Response:
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "has_more": False,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            }
        )

    @staticmethod
    def _lookup(table: dict, key: str, what: str) -> Any:
        if key not in table:
            raise _Reject(_error(404, f"No {what} found with id '{key}'."))
        return table[key]

    @staticmethod
    async def _upload(request: web.Request) -> tuple[dict, str | None, bytes | None]:
        """Read a multipart body (SDK uploads): the plain fields, and the `file` part's name and bytes."""
        if request.content_type != "multipart/form-data":
            return (await request.json() if request.can_read_body else {}), None, None
        form = await request.post()
        upload = form.get("file")
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        if not isinstance(upload, web.FileField):
            return fields, None, None
        return fields, upload.filename, upload.file.read()

    async def _files_root(self, request: web.Request) -> web.Response:
        if request.method == "GET":
            purpose = request.query.get("purpose")
            return self._list([self._public(f) for f in self.files.values() if purpose in (None, f["purpose"])])
        fields, name, content = await self._upload(request)
        if content is None or not fields.get("purpose"):
            return _error(
                400, "Both 'file' and 'purpose' are required.", param="file" if content is None else "purpose"
            )
        record = {
            "id": f"file-{secrets.token_hex(11)}",
            "object": "file",
            "bytes": len(content),
            "created_at": int(time.time()),
            "filename": name or "upload",
            "purpose": fields["purpose"],
            "status": "processed",
            "expires_at": None,
            "status_details": None,
            "content": content,
        }
        self.files[record["id"]] = record
        return web.json_response(self._public(record))

    async def _file(self, request: web.Request) -> web.Response:
        record = self._lookup(self.files, request.match_info["fid"], "file")
        if request.method == "DELETE":
            del self.files[record["id"]]
            for store in self.vector_stores.values():  # deleting a file also removes it from vector stores
                store["files"].pop(record["id"], None)
            return web.json_response({"id": record["id"], "object": "file", "deleted": True})
        return web.json_response(self._public(record))

    async def _file_content(self, request: web.Request) -> web.Response:
        record = self._lookup(self.files, request.match_info["fid"], "file")
        return web.Response(body=record["content"], content_type="application/octet-stream")

    # vector stores
    def _vs_json(self, store: dict) -> dict:
        files = store["files"].values()
        counts = {
            s: sum(1 for f in files if f["status"] == s) for s in ("in_progress", "completed", "failed", "cancelled")
        }
        usage = sum(f["usage_bytes"] for f in files if f["status"] == "completed")
        return {
            **store["meta"],
            "file_counts": {**counts, "total": len(store["files"])},
            "usage_bytes": usage,
            "status": "in_progress" if counts["in_progress"] else "completed",
        }

    async def _create_vector_store(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        now, expires = int(time.time()), body.get("expires_after")
        meta = {
            "id": _id("vs"),
            "object": "vector_store",
            "created_at": now,
            "last_active_at": now,
            "name": body.get("name") or "",
            "metadata": body.get("metadata") or {},
            "expires_after": expires,
            "expires_at": now + 86400 * int(expires["days"]) if expires else None,
        }
        for file_id in body.get("file_ids") or []:
            self._lookup(self.files, file_id, "file")  # 404 before anything is created
        store = self.vector_stores[meta["id"]] = {"meta": meta, "files": {}}
        for file_id in body.get("file_ids") or []:
            self._attach(store, file_id, {})
        return web.json_response(self._vs_json(store))

    async def _vector_store(self, request: web.Request) -> web.Response:
        store = self._lookup(self.vector_stores, request.match_info["vsid"], "vector store")
        if request.method == "DELETE":
            del self.vector_stores[store["meta"]["id"]]
            return web.json_response({"id": store["meta"]["id"], "object": "vector_store.deleted", "deleted": True})
        if request.method == "POST":  # update name / metadata / expires_after
            store["meta"].update(
                {k: v for k, v in (await self._json(request)).items() if k in ("name", "metadata", "expires_after")}
            )
        return web.json_response(self._vs_json(store))

    def _attach(self, store: dict, file_id: str, attributes: dict) -> dict:
        record = self._lookup(self.files, file_id, "file")
        vs_id = store["meta"]["id"]
        entry = {
            "id": file_id,
            "object": "vector_store.file",
            "created_at": int(time.time()),
            "vector_store_id": vs_id,
            "status": "in_progress",
            "last_error": None,
            "usage_bytes": record["bytes"],
            "attributes": attributes or {},
            "chunking_strategy": {
                "type": "static",
                "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400},
            },
        }
        store["files"][file_id] = entry
        self._vector_polls_left[(vs_id, file_id)] = self.vector_file_polls
        self._advance(entry, record, polled=False)
        return entry

    def _advance(self, entry: dict, record: dict | None, *, polled: bool) -> None:
        """Count a poll; once the polls are used up the file ends completed, or failed if scripted so."""
        key = (entry["vector_store_id"], entry["id"])
        if entry["status"] != "in_progress" or key not in self._vector_polls_left:
            return
        left = self._vector_polls_left[key] - (1 if polled else 0)
        self._vector_polls_left[key] = left
        if left > 0:
            return
        del self._vector_polls_left[key]
        failure = next(((c, m) for pred, c, m in self._vector_failures if record is not None and pred(record)), None)
        if failure:
            entry.update(status="failed", last_error={"code": failure[0], "message": failure[1]}, usage_bytes=0)
        else:
            entry["status"] = "completed"

    def _poll_hint(self) -> dict[str, str]:
        return {"openai-poll-after-ms": str(self.poll_after_ms)}

    async def _vector_store_files(self, request: web.Request) -> web.Response:
        store = self._lookup(self.vector_stores, request.match_info["vsid"], "vector store")
        if request.method == "POST":
            body = await self._json(request)
            entry = self._attach(store, body.get("file_id") or "", body.get("attributes") or {})
            return web.json_response(entry, headers=self._poll_hint())
        status = request.query.get("filter")
        return self._list([f for f in store["files"].values() if status in (None, f["status"])])

    async def _vector_store_file(self, request: web.Request) -> web.Response:
        store = self._lookup(self.vector_stores, request.match_info["vsid"], "vector store")
        entry = self._lookup(store["files"], request.match_info["fid"], "vector store file")
        if request.method == "DELETE":
            del store["files"][entry["id"]]
            return web.json_response({"id": entry["id"], "object": "vector_store.file.deleted", "deleted": True})
        if request.method == "POST":  # update attributes
            entry["attributes"] = (await self._json(request)).get("attributes") or {}
        else:
            self._advance(entry, self.files.get(entry["id"]), polled=True)
        return web.json_response(entry, headers=self._poll_hint())

    # containers
    @staticmethod
    def _container_meta(cid: str, name: str, expires_after: dict | None = None) -> dict:
        now = int(time.time())
        return {
            "id": cid,
            "object": "container",
            "created_at": now,
            "last_active_at": now,
            "name": name,
            "status": "running",
            "memory_limit": "1g",
            "expires_after": expires_after or {"anchor": "last_active_at", "minutes": 20},
        }

    def _put_container_file(self, cid: str, name: str, content: bytes, source: str) -> dict:
        record = {
            "id": f"cfile_{secrets.token_hex(12)}",
            "object": "container.file",
            "container_id": cid,
            "created_at": int(time.time()),
            "bytes": len(content),
            "path": f"/mnt/data/{name}",
            "source": source,
            "content": content,
        }
        self.containers[cid]["files"][record["id"]] = record
        return record

    async def _create_container(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        copies = [self._lookup(self.files, fid, "file") for fid in body.get("file_ids") or []]
        meta = self._container_meta(_id("cntr"), body.get("name") or "", body.get("expires_after"))
        if body.get("memory_limit"):
            meta["memory_limit"] = body["memory_limit"]
        self.containers[meta["id"]] = {"meta": meta, "files": {}}
        for record in copies:
            self._put_container_file(meta["id"], record["filename"], record["content"], "user")
        return web.json_response(meta)

    async def _container(self, request: web.Request) -> web.Response:
        container = self._lookup(self.containers, request.match_info["cid"], "container")
        if request.method == "DELETE":
            del self.containers[container["meta"]["id"]]
            return web.json_response({"id": container["meta"]["id"], "object": "container.deleted", "deleted": True})
        return web.json_response(container["meta"])

    async def _container_files(self, request: web.Request) -> web.Response:
        container = self._lookup(self.containers, request.match_info["cid"], "container")
        cid = container["meta"]["id"]
        if request.method == "GET":
            return self._list([self._public(f) for f in container["files"].values()])
        fields, name, content = await self._upload(request)
        if content is None:  # JSON {file_id}: copy an uploaded file in
            record = self._lookup(self.files, fields.get("file_id") or "", "file")
            name, content = record["filename"], record["content"]
        return web.json_response(self._public(self._put_container_file(cid, name or "upload", content, "user")))

    async def _container_file(self, request: web.Request) -> web.Response:
        container = self._lookup(self.containers, request.match_info["cid"], "container")
        record = self._lookup(container["files"], request.match_info["fid"], "container file")
        if request.method == "DELETE":
            del container["files"][record["id"]]
            return web.Response(status=200)
        return web.json_response(self._public(record))

    async def _container_file_content(self, request: web.Request) -> web.Response:
        container = self._lookup(self.containers, request.match_info["cid"], "container")
        record = self._lookup(container["files"], request.match_info["fid"], "container file")
        return web.Response(body=record["content"], content_type="application/octet-stream")

    # -------------------------------------------------------------- Responses API
    def _response_obj(self, body: dict, conv_id: str | None) -> dict:
        """An in-progress Response carrying every field openai.types.responses.Response requires."""
        obj = {
            "id": _id("resp"),
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

    def _finish(self, obj: dict, body: dict, conv_id: str | None, status: str, error: dict | None = None) -> None:
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
            completed_at=int(time.time()) if status == "completed" else None,
            usage={
                "input_tokens": in_tokens,
                "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                "output_tokens": out_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": in_tokens + out_tokens,
            },
        )
        self.responses[obj["id"]] = obj
        if conv_id in self.conversations and status == "completed":
            self.conversations[conv_id]["items"].extend(dict(it) for it in obj["output"])
        self._busy.discard(conv_id)

    async def _create_response(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "We could not parse the JSON body of your request.")
        self.response_requests.append(body)
        conv_id = _conv_id(body.get("conversation"))
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
            return _error(500, reply.message, "server_error", None, reply.code)
        if await self._pause(reply.delay * len(reply.chunks)):
            return _error(500, "The server is shutting down.", "server_error")
        obj["output"] = (
            [_tool_item(t, reply) for t in reply.tool_calls]
            + [_message_item(_id("msg"), reply.text, "completed", reply.annotations)]
            + [_function_call_item(name, arguments) for name, arguments in reply.calls]
        )
        self._finish(obj, body, conv_id, "completed")
        return web.json_response(obj, headers={"x-request-id": _id("req")})

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
                "x-request-id": _id("req"),
            }
        )
        await resp.prepare(request)
        seq = itertools.count()

        async def emit(type_: str, **data: Any) -> None:
            payload = {"type": type_, "sequence_number": next(seq), **data}
            await resp.write(f"event: {type_}\ndata: {json.dumps(payload)}\n\n".encode())

        await emit("response.created", response=obj)
        await emit("response.in_progress", response=obj)
        is_text = isinstance(reply, Text)
        for kind in reply.tool_calls if is_text else []:
            item = _tool_item(kind, reply)
            type_, middle = _TOOLS[kind]
            idx = len(obj["output"])
            await emit("response.output_item.added", output_index=idx, item={**item, "status": "in_progress"})
            for phase in ("in_progress", middle, "completed"):
                await emit(f"response.{type_}.{phase}", output_index=idx, item_id=item["id"])
            await emit("response.output_item.done", output_index=idx, item=item)
            obj["output"].append(item)

        chunks = reply.chunks if is_text else reply.after_chunks
        if chunks or (is_text and not reply.calls):
            msg_id, idx, text, announced = _id("msg"), len(obj["output"]), "", 0
            where = {"item_id": msg_id, "output_index": idx, "content_index": 0}
            empty_part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            await emit(
                "response.output_item.added",
                output_index=idx,
                item={"id": msg_id, "type": "message", "status": "in_progress", "role": "assistant", "content": []},
            )
            await emit("response.content_part.added", part=empty_part, **where)
            for n, chunk in enumerate(chunks):
                if is_text and await self._pause(reply.delay):
                    return resp  # stop() cut the stream short, as a dropped connection would
                if is_text and reply.gate is not None and n == len(chunks) - 1 and await self._gated(reply.gate):
                    return resp
                text += chunk
                await emit("response.output_text.delta", delta=chunk, logprobs=[], **where)
                if is_text:
                    announced = await self._announce(emit, reply.annotations, announced, len(text), where)
            if is_text:
                await self._announce(emit, reply.annotations, announced, math.inf, where)
                # As in the real stream, output_text.done carries no annotations; the parts and items do.
                done = _message_item(msg_id, text, "completed", reply.annotations)
                await emit("response.output_text.done", text=text, logprobs=[], **where)
                await emit("response.content_part.done", part=done["content"][0], **where)
                await emit("response.output_item.done", output_index=idx, item=done)
                obj["output"].append(done)
            else:
                obj["output"].append(_message_item(msg_id, text, "incomplete"))

        for name, arguments in reply.calls if is_text else []:
            item, idx = _function_call_item(name, arguments), len(obj["output"])
            await emit(
                "response.output_item.added", output_index=idx, item={**item, "arguments": "", "status": "in_progress"}
            )
            await emit(
                "response.function_call_arguments.delta", item_id=item["id"], output_index=idx, delta=item["arguments"]
            )
            await emit(
                "response.function_call_arguments.done",
                item_id=item["id"],
                output_index=idx,
                arguments=item["arguments"],
                name=name,
            )
            await emit("response.output_item.done", output_index=idx, item=item)
            obj["output"].append(item)

        if is_text:
            self._finish(obj, body, conv_id, "completed")
            await emit("response.completed", response=obj)
        elif isinstance(reply, Failed):
            self._finish(obj, body, conv_id, "failed", {"code": reply.code, "message": reply.message})
            await emit("response.failed", response=obj)
        elif isinstance(reply, StreamError):
            self._busy.discard(conv_id)
            await emit("error", code=reply.code, message=reply.message, param=None)
        elif await self._hang(request):  # Hang: nobody is left to write to
            self.stream_disconnects += 1
            return resp
        await resp.write_eof()
        return resp

    @staticmethod
    async def _announce(emit: Callable, annotations: list[dict], announced: int, upto: float, where: dict) -> int:
        """Emit response.output_text.annotation.added for annotations the text has reached; returns the count."""
        while announced < len(annotations) and _annotation_at(annotations[announced]) <= upto:
            await emit(
                "response.output_text.annotation.added",
                annotation=annotations[announced],
                annotation_index=announced,
                **where,
            )
            announced += 1
        return announced
