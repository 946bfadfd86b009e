"""Azure OpenAI's URL shape and headers, in front of a FakeOpenAI that does the work.

Azure answers at https://RESOURCE.openai.azure.com/openai/... in two shapes:
- the v1 API, `/openai/v1/<path>` (the plain OpenAI client with base_url=…/openai/v1/, the
  key as `Authorization: Bearer`, or the `api-key` header);
- the dated API, `/openai/<path>?api-version=YYYY-MM-DD[-preview]` with the key in the
  `api-key` header (the SDK's AzureOpenAI client with azure_endpoint and api_version).
The model is the *deployment name*. Errors use Azure's shape: {"error": {"code": "404",
"message": "Resource not found"}}; every answer carries an `apim-request-id` header.
"""

from __future__ import annotations

import socket
import uuid
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from .openai import FakeOpenAI

API_VERSIONS = {"2025-04-01-preview", "2025-03-01-preview", "preview"}


@dataclass
class AzureCall:
    method: str
    path: str
    api_version: str | None
    api_key_header: bool  # the key came as `api-key` (else as a Bearer token)
    model: str | None


class FakeAzureOpenAI:
    def __init__(self, inner: FakeOpenAI, api_key: str = "azure-key") -> None:
        self.inner = inner
        self.api_key = api_key
        self.calls: list[AzureCall] = []
        self.port: int | None = None
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None

    @property
    def endpoint(self) -> str:
        """What the Azure portal shows as the resource's endpoint."""
        return f"http://127.0.0.1:{self.port}/"

    async def __aenter__(self) -> FakeAzureOpenAI:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/openai/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        self._http = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._http is not None:
            await self._http.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @staticmethod
    def _error(status: int, message: str) -> web.Response:
        return web.json_response(
            {"error": {"code": str(status), "message": message}},
            status=status,
            headers={"apim-request-id": str(uuid.uuid4())},
        )

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        tail = request.match_info["tail"]
        by_header = request.headers.get("api-key") == self.api_key
        if not by_header and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._error(
                401,
                "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a "
                "valid key for an active subscription and use a correct regional API endpoint for your resource.",
            )
        version = request.query.get("api-version")
        if tail.startswith("v1/"):
            path = tail.removeprefix("v1/")
        elif version in API_VERSIONS:
            path = tail
        else:
            return self._error(404, "Resource not found")
        body = await request.read()
        model = None
        if body and request.content_type == "application/json":
            model = (await request.json()).get("model")
        self.calls.append(AzureCall(request.method, "/openai/" + tail, version, by_header, model))
        return await self._relay(request, path, body)

    async def _relay(self, request: web.Request, path: str, body: bytes) -> web.StreamResponse:
        assert self._http is not None
        headers = {"Authorization": f"Bearer {self.inner.api_key}"}
        if "Content-Type" in request.headers:
            headers["Content-Type"] = request.headers["Content-Type"]
        query = {k: v for k, v in request.query.items() if k != "api-version"}
        url = f"http://127.0.0.1:{self.inner.port}/v1/{path}"
        async with self._http.request(request.method, url, data=body, headers=headers, params=query) as upstream:
            answer = web.StreamResponse(
                status=upstream.status,
                headers={
                    "Content-Type": upstream.headers.get("Content-Type", "application/json"),
                    "apim-request-id": str(uuid.uuid4()),
                    "x-ms-region": "Sweden Central",
                },
            )
            await answer.prepare(request)
            async for chunk in upstream.content.iter_any():
                await answer.write(chunk)
            await answer.write_eof()
            return answer
