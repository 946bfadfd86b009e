"""The fake Slack is strict, as Slack is: a method it does not know fails, and the streaming
methods keep Slack's rules (recipient in channels, expiry, limits)."""

from __future__ import annotations

import asyncio

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

pytestmark = pytest.mark.timeout(20)


async def test_a_misspelt_method_is_unknown(slack):
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    with pytest.raises(SlackApiError) as err:
        await client.api_call("chat.postMesage", json={"channel": "C1", "text": "hi"})
    assert err.value.response["error"] == "unknown_method"
    assert slack.bot_messages() == []


async def test_streaming_in_a_channel_needs_the_recipient(slack):
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    with pytest.raises(SlackApiError) as err:
        await client.chat_startStream(channel="C1", thread_ts="1.000100", markdown_text="hi")
    assert err.value.response["error"] == "missing_recipient_user_id"
    started = await client.chat_startStream(channel="D1", thread_ts="1.000100", markdown_text="in a DM")
    assert slack.bot_messages("D1")[0].text == "in a DM" and started["ts"]


async def test_a_stream_streams_then_expires(slack):
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    started = await client.chat_startStream(
        channel="C1", thread_ts="1.000100", recipient_user_id="U1", recipient_team_id="T1", markdown_text="Hello"
    )
    await client.chat_appendStream(
        channel="C1",
        ts=started["ts"],
        markdown_text=", world",
        chunks=[{"type": "task_update", "id": "t1", "title": "Searching", "status": "in_progress"}],
    )
    (msg,) = slack.bot_messages("C1")
    assert msg.text == "Hello, world" and msg.history == ["Hello", "Hello, world"]
    assert [c["type"] for c in msg.chunks] == ["markdown_text", "markdown_text", "task_update"]
    slack.expire_streams()
    with pytest.raises(SlackApiError) as err:
        await client.chat_appendStream(channel="C1", ts=started["ts"], markdown_text="lost")
    assert err.value.response["error"] == "message_not_in_streaming_state"
    assert msg.text == "Hello, world"


async def test_streaming_methods_are_unknown_where_the_workspace_lacks_them(slack):
    slack.streaming_enabled = False
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    with pytest.raises(SlackApiError) as err:
        await client.chat_startStream(channel="D1", thread_ts="1.000100", markdown_text="hi")
    assert err.value.response["error"] == "unknown_method"


async def test_per_method_limits_answer_429_with_retry_after(slack):
    slack.rate_limit("chat.appendStream", 1)
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    started = await client.chat_startStream(channel="D1", thread_ts="1.000100", markdown_text="a")
    await client.chat_appendStream(channel="D1", ts=started["ts"], markdown_text="b")
    with pytest.raises(SlackApiError) as err:
        await asyncio.wait_for(client.chat_appendStream(channel="D1", ts=started["ts"], markdown_text="c"), 5)
    assert err.value.response.status_code == 429 and int(err.value.response.headers["Retry-After"]) >= 1
    assert slack.bot_messages("D1")[0].text == "ab"
