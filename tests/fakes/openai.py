"""A loopback fake of the OpenAI Conversations + Responses APIs that the official `openai` SDK uses unchanged.

One module per resource, each a mixin of FakeOpenAI: openai_responses.py (+ openai_stream.py for the SSE
body, openai_frames.py checking each frame against the SDK's event models, openai_replies.py for the
scripted replies, openai_history.py for what the model sees of a thread without a conversation:
stored responses, `store: false`, compaction), openai_conversations.py, openai_files.py,
openai_vector_stores.py, openai_containers.py.

Shapes follow openai 3.57 (openai/types/responses, openai/types/conversations): streamed responses are SSE
frames `event: <type>\\ndata: <json>\\n\\n` whose JSON repeats the type and carries a sequence_number, and
errors are `{"error": {"message", "type", "param", "code"}}` with the HTTP status the SDK maps to its
exception classes (400 -> BadRequestError, 404 -> NotFoundError, 500 -> InternalServerError...).
Note the SDK retries 408/409/429/5xx itself (max_retries=2 by default) and each retry consumes a reply.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections import deque
from collections.abc import Callable

from aiohttp import web

from .openai_containers import Containers
from .openai_conversations import Conversations, _conv_id
from .openai_files import Files
from .openai_history import History
from .openai_http import _error, _Reject
from .openai_models import ModelRoutes
from .openai_replies import (
    CONTEXT_WINDOW_MESSAGE,
    QUOTA_MESSAGE,
    RATE_LIMIT_MESSAGE,
    Cut,
    Failed,
    Hang,
    HttpError,
    Incomplete,
    Recorded,
    Refusal,
    Reply,
    ReplySource,
    StreamError,
    Text,
    input_texts,
)
from .openai_responses import Responses, function_outputs
from .openai_stream import message_item, new_id
from .openai_vector_stores import VectorStores
from .slack import wait_for

__all__ = [
    "CONTEXT_WINDOW_MESSAGE",
    "QUOTA_MESSAGE",
    "RATE_LIMIT_MESSAGE",
    "Cut",
    "Failed",
    "FakeOpenAI",
    "Hang",
    "HttpError",
    "Incomplete",
    "Recorded",
    "Refusal",
    "Reply",
    "ReplySource",
    "StreamError",
    "Text",
    "function_outputs",
    "input_texts",
    "message_item",
    "new_id",
]


class FakeOpenAI(Responses, History, Conversations, Files, VectorStores, Containers):
    def __init__(
        self,
        api_key: str = "sk-test",
        *,
        vector_file_polls: int = 1,
        poll_after_ms: int = 10,
        conversations: bool = True,
    ):
        self.api_key = api_key
        self._history_init(conversations=conversations)
        # Files, vector stores and containers (see the "Files" section below).
        self.files: dict[str, dict] = {}  # id -> file object fields + "content": bytes
        self.upload_errors: list[tuple[int, str]] = []  # (status, message) refusing the next uploads
        self.delete_errors: dict[str, int] = {}  # path → status refusing every DELETE of it
        self.vector_stores: dict[str, dict] = {}  # id -> {"meta": vector store, "files": {file_id: vs file}}
        self.containers: dict[str, dict] = {}  # id -> {"meta": container, "files": {cfile_id: fields + content}}
        self.vector_file_polls = vector_file_polls  # GETs of a vector store file before it leaves in_progress
        self.poll_after_ms = poll_after_ms  # openai-poll-after-ms hint, so the SDK's poll() does not wait 1 s
        self._vector_failures: list[tuple[Callable[[dict], bool], str, str]] = []
        self._vector_polls_left: dict[tuple[str, str], int] = {}
        self.conversations: dict[str, dict] = {}  # id -> {"id", "created_at", "metadata", "items"}
        self.response_requests: list[dict] = []  # every POST /v1/responses body, rejected ones included
        self.deletes: list[str] = []  # the path of every DELETE that passed the key check, in order
        self.responses: dict[str, dict] = {}  # final response objects (completed / failed) by id
        self.locked_rejections = 0
        # Words a conversation may hold before a response must truncate or compact it (None: no limit).
        self.context_window: int | None = None
        self.truncations = 0
        self.compactions = 0
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
        self._file_routes(r)
        self._vector_store_routes(r)
        self._container_routes(r)
        if self.has_conversations:
            self._conversation_routes(r)
        self.model_routes.add_to(r)
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
        if request.method == "DELETE":
            self.deletes.append(request.path)
        if request.method == "DELETE" and request.path in self.delete_errors:
            return _error(self.delete_errors[request.path], "The server had an error while processing your request.")
        try:
            return await handler(request)
        except _Reject as reject:
            return reject.response
        except web.HTTPNotFound:
            return _error(404, f"Invalid URL ({request.method} {request.path})")
        except web.HTTPMethodNotAllowed:
            return _error(405, f"Method not allowed ({request.method} {request.path})")

    # -------------------------------------------------------------- Conversations API
