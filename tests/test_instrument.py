"""The OpenAI hook reads `usage` off the wire without changing what the SDK gets: gzip
bodies, a stream whose terminal event arrives in pieces, and a plain JSON response —
served by a loopback server, read by the official client."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest
from aiohttp import web
from aiohttp.web_response import ContentCoding

from assist_bot.instrument import endpoint, openai_http_client
from assist_bot.metrics import Metrics

pytestmark = pytest.mark.timeout(30)

USAGE = {
    "input_tokens": 21,
    "input_tokens_details": {"cached_tokens": 5},
    "output_tokens": 13,
    "output_tokens_details": {"reasoning_tokens": 7},
    "total_tokens": 34,
}
RESPONSE = {"id": "resp_1", "object": "response", "model": "gpt-5.4-mini", "status": "completed", "output": []}


async def responses(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    if not body.get("stream"):
        answer = web.json_response({**RESPONSE, "usage": USAGE})
        answer.enable_compression(ContentCoding.gzip)
        return answer
    stream = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    stream.enable_compression(ContentCoding.gzip)
    await stream.prepare(request)
    delta = {"type": "response.output_text.delta", "delta": "Hi"}
    await stream.write(f"event: response.output_text.delta\ndata: {json.dumps(delta)}\n\n".encode())
    completed = {"type": "response.completed", "response": {**RESPONSE, "usage": USAGE}}
    done = f"event: response.completed\ndata: {json.dumps(completed)}\n\n"
    for piece in (done[:40], done[40:90], done[90:]):  # the terminal event in three writes
        await stream.write(piece.encode())
        await asyncio.sleep(0)
    await stream.write_eof()
    return stream


@pytest.fixture
async def server():
    app = web.Application()
    app.router.add_post("/v1/responses", responses)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    await runner.cleanup()


def tokens(metrics: Metrics) -> dict[str, float]:
    return {
        kind: metrics.registry.get_sample_value("assist_bot_tokens_total", {"model": "gpt-5.4-mini", "kind": kind}) or 0
        for kind in ("input", "cached", "output", "reasoning")
    }


async def test_usage_from_a_gzipped_stream_in_pieces(server):
    metrics = Metrics()
    async with openai.AsyncOpenAI(api_key="sk-x", base_url=server, http_client=openai_http_client(metrics)) as client:
        async with client.responses.with_streaming_response.create(model="gpt-5.4-mini", input="hi", stream=True) as r:
            lines = [line async for line in r.iter_lines()]
    assert any('"delta": "Hi"' in line for line in lines)  # the SDK still reads the stream as sent
    assert tokens(metrics) == {"input": 21, "cached": 5, "output": 13, "reasoning": 7}
    labels = {"method": "POST", "endpoint": "/v1/responses", "status": "200"}
    assert metrics.registry.get_sample_value("assist_bot_openai_requests_total", labels) == 1


async def test_usage_from_a_gzipped_json_response(server):
    metrics = Metrics()
    async with openai.AsyncOpenAI(api_key="sk-x", base_url=server, http_client=openai_http_client(metrics)) as client:
        response = await client.responses.create(model="gpt-5.4-mini", input="hi")
    assert response.id == "resp_1" and response.usage is not None and response.usage.input_tokens == 21
    assert tokens(metrics) == {"input": 21, "cached": 5, "output": 13, "reasoning": 7}


def test_ids_in_paths_become_a_placeholder():
    assert endpoint("/v1/conversations/conv_abc123/items") == "/v1/conversations/{id}/items"
    assert endpoint("/v1/models/gpt-5.4-mini") == "/v1/models/{id}"
    assert endpoint("/v1/containers/cntr_1/files/cfile_2/content") == "/v1/containers/{id}/files/{id}/content"


async def test_slack_calls_that_never_got_an_answer_are_counted(slack):
    import aiohttp
    from slack_sdk.web.async_client import AsyncWebClient

    from assist_bot.instrument import SlackCallCounter
    from tests.support.redis_server import free_port

    metrics = Metrics()
    nowhere = f"http://127.0.0.1:{free_port()}/api/"
    client = AsyncWebClient(
        token="xoxb-x", base_url=nowhere, retry_handlers=[SlackCallCounter(metrics, api_url=nowhere)]
    )
    with pytest.raises(aiohttp.ClientError):
        await client.chat_postMessage(channel="C1", text="hi")
    sample = metrics.registry.get_sample_value
    assert sample("assist_bot_slack_requests_total", {"method": "chat.postMessage", "status": "error"}) == 1
    assert sample("assist_bot_slack_errors_total", {"method": "chat.postMessage", "error": "ClientConnectorError"}) == 1
    # An answer with ok: false is an error by its code; the HTTP status is still 200.
    answered = AsyncWebClient(
        token="xoxb-wrong", base_url=slack.api_url, retry_handlers=[SlackCallCounter(metrics, api_url=slack.api_url)]
    )
    with pytest.raises(Exception, match="invalid_auth"):
        await answered.auth_test()
    assert sample("assist_bot_slack_requests_total", {"method": "auth.test", "status": "200"}) == 1
    assert sample("assist_bot_slack_errors_total", {"method": "auth.test", "error": "invalid_auth"}) == 1
