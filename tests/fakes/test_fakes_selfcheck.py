"""Proof that the fakes speak the real wire protocols: the official SDKs talk to them unchanged."""

import asyncio
import contextlib

import openai
import pytest
import pytest_asyncio
from openai.types.responses import (
    ResponseCompletedEvent,
    ResponseErrorEvent,
    ResponseFailedEvent,
    ResponseFileSearchCallCompletedEvent,
    ResponseTextDeltaEvent,
)
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from .openai import Failed, FakeOpenAI, Hang, HttpError, StreamError, Text
from .slack import FakeSlack, event_body, mention, wait_for

LIMIT = 20  # seconds; every test is bounded so a protocol mismatch fails instead of hanging


@pytest_asyncio.fixture
async def slack():
    async with FakeSlack() as fake:
        yield fake


@pytest_asyncio.fixture
async def oai():
    async with FakeOpenAI() as fake:
        yield fake


@pytest.mark.asyncio
async def test_slack_web_api_roundtrip(slack):
    async with asyncio.timeout(LIMIT):
        client = AsyncWebClient(token="xoxb-test", base_url=slack.api_url)
        auth = await client.auth_test()
        assert (auth["user_id"], auth["bot_id"], auth["team_id"]) == ("UBOT", "BBOT", "T1")
        posted = await client.chat_postMessage(channel="C1", text="thinking…", thread_ts="111.000100")
        await client.chat_update(channel="C1", ts=posted["ts"], text="done")
        (msg,) = slack.thread_replies("C1", "111.000100")
        assert (msg.ts, msg.text, msg.history) == (posted["ts"], "done", ["thinking…", "done"])
        assert [c.method for c in slack.calls] == ["auth.test", "chat.postMessage", "chat.update"]
        assert slack.calls_to("chat.update")[0].args["text"] == "done"
        user = await client.users_info(user="U42")  # sent as a GET with query params
        assert user["user"]["profile"]["display_name"] == "user-U42"
        with pytest.raises(SlackApiError) as err:
            await client.chat_update(channel="C1", ts="1.000000", text="x")
        assert err.value.response["error"] == "message_not_found"


@pytest.mark.asyncio
async def test_slack_wrong_token_and_scripted_failures(slack):
    async with asyncio.timeout(LIMIT):
        with pytest.raises(SlackApiError) as err:
            await AsyncWebClient(token="xoxb-wrong", base_url=slack.api_url).auth_test()
        assert err.value.response["error"] == "invalid_auth"
        client = AsyncWebClient(token="xoxb-test", base_url=slack.api_url)
        slack.fail_next("chat.postMessage", status=429, retry_after=7)
        with pytest.raises(SlackApiError) as err:
            await client.chat_postMessage(channel="C1", text="hi")
        assert err.value.response.status_code == 429 and err.value.response.headers["Retry-After"] == "7"
        assert (await client.chat_postMessage(channel="C1", text="hi"))["ok"]
        slack.rate_limit("reactions.add", per_minute=1)
        await client.reactions_add(channel="C1", timestamp="1.000100", name="eyes")
        with pytest.raises(SlackApiError):
            await client.reactions_add(channel="C1", timestamp="1.000100", name="eyes")
        assert slack.rate_limited["reactions.add"] == 1


@pytest.mark.asyncio
async def test_socket_mode_event_is_delivered_and_acked(slack):
    async with asyncio.timeout(LIMIT):
        received = []

        async def listener(client, req):
            received.append(req.payload)
            await client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))

        web = AsyncWebClient(token="xoxb-test", base_url=slack.api_url)
        client = SocketModeClient(app_token="xapp-test", web_client=web, ping_interval=0.2)
        client.socket_mode_request_listeners.append(listener)
        try:
            await client.connect()
            await slack.wait_socket_connected()
            body = event_body(mention("C1", "U1", "hello there", "1700000000.000100"))
            envelope_id = await slack.push_socket_event(body)
            assert await slack.wait_ack(envelope_id) == {"envelope_id": envelope_id}
            assert received[0]["event"]["text"] == "<@UBOT> hello there"
            # The SDK's heartbeat pings must be answered: its pong time moves on once a pong came back.
            first = await wait_for(lambda: client.last_ping_pong_time, message="the SDK's first ping")
            await wait_for(lambda: (client.last_ping_pong_time or 0) > first, message="a pong from the fake")
            assert await client.is_connected()
            eid = await slack.push_socket_payload("slash_commands", {"command": "/ask", "text": "q"})
            await slack.wait_ack(eid)
        finally:
            await client.close()
        assert slack.calls_to("apps.connections.open")[0].token == "xapp-test"


@pytest.mark.asyncio
async def test_openai_streamed_response_on_conversation(oai):
    async with asyncio.timeout(LIMIT), contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(
            openai.AsyncOpenAI(api_key="sk-test", base_url=oai.base_url, max_retries=0)
        )
        conv = await client.conversations.create(metadata={"slack_thread": "C1:1.1"})
        stream = await client.responses.create(model="gpt-5.4-mini", conversation=conv.id, input="hi", stream=True)
        events = [e async for e in stream]
        deltas = "".join(e.delta for e in events if isinstance(e, ResponseTextDeltaEvent))
        assert deltas == "You said: hi"
        assert isinstance(events[-1], ResponseCompletedEvent)
        assert events[-1].response.output_text == "You said: hi"
        assert events[-1].response.conversation.id == conv.id
        assert [e.sequence_number for e in events] == list(range(len(events)))
        items = [i async for i in client.conversations.items.list(conv.id, order="asc")]
        assert [i.role for i in items] == ["user", "assistant"]
        assert oai.input_texts(oai.requests_for(conv.id)[0]) == ["hi"]
        plain = await client.responses.create(model="gpt-5.4-mini", input=[{"role": "user", "content": "yo"}])
        assert plain.output_text == "You said: yo" and plain.usage.total_tokens > 0
        with pytest.raises(openai.NotFoundError):
            await client.responses.create(model="gpt-5.4-mini", conversation="conv_nope", input="x")


@pytest.mark.asyncio
async def test_openai_concurrent_response_is_locked(oai):
    async with asyncio.timeout(LIMIT), contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(
            openai.AsyncOpenAI(api_key="sk-test", base_url=oai.base_url, max_retries=0)
        )
        conv = await client.conversations.create()
        oai.enqueue(Hang(after_chunks=["partial"]))
        first = await client.responses.create(model="gpt-5.4-mini", conversation=conv.id, input="one", stream=True)
        await first.__anext__()  # response.created: the first response now holds the conversation
        with pytest.raises(openai.BadRequestError) as err:
            await client.responses.create(model="gpt-5.4-mini", conversation=conv.id, input="two", stream=True)
        assert err.value.code == "conversation_locked" and oai.locked_rejections == 1
        await first.close()  # the client walks away; the fake must notice and release the lock
        await wait_for(lambda: not oai.busy_conversations)
        again = await client.responses.create(model="gpt-5.4-mini", conversation=conv.id, input="three")
        assert again.output_text == "You said: three"


@pytest.mark.asyncio
async def test_openai_errors_and_event_kinds(oai):
    async with asyncio.timeout(LIMIT), contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(
            openai.AsyncOpenAI(api_key="sk-test", base_url=oai.base_url, max_retries=0)
        )
        oai.enqueue(HttpError(500, None, "boom"))
        with pytest.raises(openai.InternalServerError):
            await client.responses.create(model="gpt-5.4-mini", input="x", stream=True)
        with pytest.raises(openai.AuthenticationError):
            async with openai.AsyncOpenAI(api_key="sk-bad", base_url=oai.base_url, max_retries=0) as bad:
                await bad.conversations.create()

        async def events(**kw):
            stream = await client.responses.create(model="gpt-5.4-mini", input="x", stream=True, **kw)
            return [e async for e in stream]

        oai.enqueue(Text(["a", "b"], tools=["file_search", "code_interpreter", "web_search"]))
        evs = await events()
        assert any(isinstance(e, ResponseFileSearchCallCompletedEvent) for e in evs)
        assert [o.type for o in evs[-1].response.output] == [
            "file_search_call",
            "code_interpreter_call",
            "web_search_call",
            "message",
        ]
        oai.enqueue(Failed(code="server_error", message="nope", after_chunks=["par"]))
        failed = (await events())[-1]
        assert isinstance(failed, ResponseFailedEvent) and failed.response.error.message == "nope"
        oai.enqueue(StreamError("stream broke"))
        assert isinstance((await events())[-1], ResponseErrorEvent)
        oai.reply_for("MARK", Text(["matched"]))
        assert (await client.responses.create(model="m", input="has MARK")).output_text == "matched"
