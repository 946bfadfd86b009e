"""Counting Slack and OpenAI calls where they leave the process.

Slack: a retry handler that never retries but sees every attempt (slack_sdk consults
the handlers after each response and each connection error, first one first).
OpenAI: an httpx response hook that counts each attempt and taps the body of
`POST /responses` for the `usage` OpenAI reports — in the terminal event of a stream,
or in the JSON of a plain response — without holding the stream back."""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx2
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from assist_bot.metrics import Metrics


class SlackCallCounter(AsyncRetryHandler):
    """Put first in the client's retry_handlers: counts, never asks for a retry."""

    observes_only = True  # kept by clients that drop the retrying handlers (slack/calls.py)

    def __init__(self, metrics: Metrics, *, api_url: str) -> None:
        super().__init__(max_retry_count=0)
        self._metrics = metrics
        self._api_url = api_url

    def _method(self, url: str) -> str:
        # Only API methods become labels: upload URLs carry ids, which would make a label per file.
        if not url.startswith(self._api_url):
            return "upload"
        return url[len(self._api_url) :].split("?")[0] or "unknown"

    async def can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        method = self._method(request.url)
        m = self._metrics
        if response is None:
            m.slack_requests.labels(method, "error").inc()
            m.slack_errors.labels(method, type(error).__name__ if error else "unknown").inc()
            return False
        m.slack_requests.labels(method, str(response.status_code)).inc()
        if response.status_code == 429:
            m.slack_rate_limited.labels(method).inc()
        body = response.body if isinstance(response.body, dict) else {}
        if body.get("ok") is False:
            m.slack_errors.labels(method, str(body.get("error") or "unknown")).inc()
        elif response.status_code >= 400:
            m.slack_errors.labels(method, f"http_{response.status_code}").inc()
        return False


# Path segments that name a kind of resource; any other segment is an id and becomes {id}.
_RESOURCES = frozenset(
    "v1 responses conversations items input_items files content vector_stores file_batches containers "
    "models cancel uploads parts chat completions embeddings".split()
)
_TERMINAL = re.compile(rb'"type":\s*"response\.(?:completed|incomplete|failed)"')


def endpoint(path: str) -> str:
    return "/" + "/".join(p if p in _RESOURCES else "{id}" for p in path.strip("/").split("/") if p)


def openai_http_client(metrics: Metrics) -> httpx2.AsyncClient:
    """The SDK's own default client (its limits, redirects and proxies) with a response hook."""
    import openai

    async def on_response(response: httpx2.Response) -> None:
        request = response.request
        where = endpoint(request.url.path)
        status = str(response.status_code)
        metrics.openai_requests.labels(request.method, where, status).inc()
        if response.status_code >= 400:
            metrics.openai_errors.labels(request.method, where, status).inc()
        if response.status_code == 429:
            metrics.openai_rate_limited.labels(where).inc()
        if request.method == "POST" and where == "/v1/responses" and response.status_code < 300:
            response.stream = UsageTap(response, on_usage=lambda model, usage: count_tokens(metrics, model, usage))

    return openai.DefaultAsyncHttpxClient(event_hooks={"response": [on_response]})


def count_tokens(metrics: Metrics, model: str, usage: dict[str, Any]) -> None:
    kinds = {
        "input": usage.get("input_tokens"),
        "cached": (usage.get("input_tokens_details") or {}).get("cached_tokens"),
        "output": usage.get("output_tokens"),
        "reasoning": (usage.get("output_tokens_details") or {}).get("reasoning_tokens"),
    }
    for kind, count in kinds.items():
        if isinstance(count, int) and count > 0:
            metrics.tokens.labels(model or "unknown", kind).inc(count)


class UsageTap(httpx2.AsyncByteStream):
    """Passes the body through unchanged; on the way, finds the response object that
    carries `usage` (the stream's terminal event, or the plain JSON body)."""

    def __init__(self, response: httpx2.Response, *, on_usage: Callable[[str, dict[str, Any]], None]) -> None:
        self._inner = response.stream
        self._sse = response.headers.get("content-type", "").startswith("text/event-stream")
        encoding = response.headers.get("content-encoding", "").lower()
        # The raw stream is still compressed; gzip and deflate are undone here, others go untapped.
        self._inflate = zlib.decompressobj(wbits=47) if encoding in ("gzip", "deflate") else None
        self._tappable = encoding in ("", "identity", "gzip", "deflate")
        self._pending = b""
        self._on_usage = on_usage

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:  # type: ignore[union-attr]
            if self._tappable:
                self._see(chunk)
            yield chunk
        if self._tappable and not self._sse:
            self._report(self._pending)

    async def aclose(self) -> None:
        await self._inner.aclose()  # type: ignore[union-attr]

    def _see(self, chunk: bytes) -> None:
        data = self._inflate.decompress(chunk) if self._inflate is not None else chunk
        if not self._sse:
            self._pending += data
            return
        events = (self._pending + data).split(b"\n\n")
        self._pending = events.pop()
        for event in events:
            if _TERMINAL.search(event, 0, 200):
                payload = b"\n".join(line[5:] for line in event.split(b"\n") if line.startswith(b"data:"))
                self._report(payload, key="response")

    def _report(self, payload: bytes, key: str | None = None) -> None:
        try:
            obj = json.loads(payload)
        except ValueError:
            return
        response = obj.get(key) if key and isinstance(obj, dict) else obj
        if isinstance(response, dict) and isinstance(response.get("usage"), dict):
            self._on_usage(str(response.get("model") or ""), response["usage"])
