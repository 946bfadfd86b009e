"""Native streaming (the default), over the real wire: chat.startStream / appendStream / stopStream
against the fake Slack, which keeps Slack's rules (recipient in channels, expiry, 429s)."""

from __future__ import annotations

import asyncio

import pytest

from assist_bot import texts
from assist_bot.slack import feedback
from tests.fakes.openai import Text
from tests.fakes.slack import mention, message, wait_for
from tests.support.bot import running_bot
from tests.support.flows import whole_reply_text

pytestmark = pytest.mark.timeout(60)


async def answered(bot, slack, event, expected):
    await wait_for(lambda: expected in whole_reply_text(slack, event["channel"], event["ts"]), message=expected)
    await bot.settled()


async def test_a_native_answer_streams_in_appends_and_stops_with_feedback(slack, openai_fake):
    chunks = [f"word{n} " for n in range(30)]
    openai_fake.enqueue(Text(chunks, delay=0.03))
    async with running_bot(slack, openai_fake) as bot:
        event = mention("C1", "U1", "tell me a story")
        await bot.send(event)
        await answered(bot, slack, event, "word29")
    (reply,) = slack.thread_replies("C1", event["ts"])
    assert reply.text == "".join(chunks)
    assert reply.recipient == ("T1", "U1")  # Slack requires the recipient in channels
    assert len(reply.history) >= 3  # visible progress: more than one append
    appends = slack.calls_to("chat.appendStream")
    assert len(appends) < len(chunks) - 1  # buffered, not one call per token
    assert not slack.calls_to("chat.update") and not slack.calls_to("chat.postMessage")
    [stop] = slack.calls_to("chat.stopStream")
    actions = stop.args["blocks"][-1]
    assert actions["type"] == "context_actions" and actions["elements"][0]["action_id"] == feedback.ACTION
    assert {
        b["value"].split(":")[0]
        for b in (actions["elements"][0]["positive_button"], actions["elements"][0]["negative_button"])
    } == {"good", "bad"}
    # The status showed while it thought, with loading messages, and was cleared at the end.
    statuses = slack.statuses("C1", event["ts"])
    assert statuses[0]["status"] == texts.THINKING_STATUS and statuses[0]["loading_messages"]
    assert statuses[-1]["status"] == ""


async def test_a_stream_that_expires_mid_answer_continues_with_nothing_lost_or_repeated(slack, openai_fake):
    gate = asyncio.Event()
    chunks = [f"part{n} " for n in range(20)]
    openai_fake.enqueue(Text(chunks, gate=gate))
    async with running_bot(slack, openai_fake) as bot:
        event = mention("C1", "U1", "long answer")
        await bot.send(event)
        await wait_for(lambda: "part18" in whole_reply_text(slack, "C1", event["ts"]))
        slack.expire_streams()  # Slack ended the stream: the next append is refused
        gate.set()
        await answered(bot, slack, event, "part19")
    replies = slack.thread_replies("C1", event["ts"])
    assert len(replies) == 2
    assert whole_reply_text(slack, "C1", event["ts"]) == "".join(chunks)  # all of it, once
    refused = [c for c in slack.calls if c.error == "message_not_in_streaming_state"]
    assert len(refused) == 1 and refused[0].method in ("chat.appendStream", "chat.stopStream")
    assert replies[-1].blocks[-1]["type"] == "context_actions"


async def test_expiry_before_the_stop_still_delivers_the_feedback_buttons(slack, openai_fake):
    gate = asyncio.Event()
    openai_fake.enqueue(Text(["All ", "said."], gate=gate))
    async with running_bot(slack, openai_fake) as bot:
        event = mention("C1", "U1", "short one")
        await bot.send(event)
        await wait_for(lambda: "All" in whole_reply_text(slack, "C1", event["ts"]))
        slack.fail_next("chat.stopStream", error="message_not_in_streaming_state")
        slack.fail_next("chat.appendStream", error="message_not_in_streaming_state")
        gate.set()
        await answered(bot, slack, event, "said.")
        await wait_for(lambda: any(m.blocks for m in slack.thread_replies("C1", event["ts"])))
    assert whole_reply_text(slack, "C1", event["ts"]).count("All ") == 1
    assert any(m.blocks and m.blocks[-1]["type"] == "context_actions" for m in slack.thread_replies("C1", event["ts"]))


@pytest.mark.parametrize("refusal", ["unknown_method", "not_allowed"])
async def test_a_workspace_that_refuses_streaming_gets_edits_from_then_on(slack, openai_fake, refusal):
    if refusal == "unknown_method":
        slack.streaming_enabled = False  # an older workspace: no chat.*Stream at all
    else:
        slack.fail_next("chat.startStream", error="not_allowed")
    async with running_bot(slack, openai_fake) as bot:
        first = mention("C1", "U1", "first question")
        await bot.send(first)
        await answered(bot, slack, first, "You said: [user-U1 (U1)] first question")
        second = mention("C2", "U1", "second question")
        await bot.send(second)
        await answered(bot, slack, second, "You said: [user-U1 (U1)] second question")
    assert len(slack.calls_to("chat.startStream")) == 1  # asked once; the workspace uses edits since
    for event in (first, second):
        (reply,) = slack.thread_replies(event["channel"], event["ts"])
        assert reply.history[0] == texts.THINKING  # the edit path's placeholder
        assert reply.blocks[-1]["type"] == "context_actions"


async def test_tool_steps_show_as_task_updates(slack, openai_fake):
    openai_fake.enqueue(Text(["Found ", "it."], delay=0.3, tools=["file_search"]))
    async with running_bot(slack, openai_fake) as bot:
        event = mention("C1", "U1", "search the handbook")
        await bot.send(event)
        await answered(bot, slack, event, "Found it.")
    (reply,) = slack.thread_replies("C1", event["ts"])
    tasks = [c for c in reply.chunks if c["type"] == "task_update"]
    # A quick step may be sent as complete at once (updates coalesce between two appends).
    assert [t["status"] for t in tasks] in (["in_progress", "complete"], ["complete"])
    assert {t["id"] for t in tasks} == {tasks[0]["id"]} and tasks[0]["title"] == texts.tool_activity("file_search")
    assert reply.text == "Found it."  # the step is not text in the answer
    statuses = [s["status"] for s in slack.statuses("C1", event["ts"])]
    assert texts.tool_activity("file_search") in statuses


async def test_appends_wait_out_a_429_and_the_answer_arrives_whole(slack, openai_fake):
    chunks = [f"tok{n} " for n in range(60)]
    openai_fake.enqueue(Text(chunks, delay=0.05))
    async with running_bot(slack, openai_fake) as bot:
        slack.fail_next("chat.appendStream", status=429, retry_after=1)
        event = message("D1", "U1", "go", channel_type="im")
        await bot.send(event)
        await answered(bot, slack, event, "tok59")
    assert whole_reply_text(slack, "D1", event["ts"]) == "".join(chunks)  # nothing dropped
    [limited] = [c for c in slack.calls_to("chat.appendStream") if c.error == "ratelimited"]
    # No append went out before Retry-After had passed; then they resumed.
    later = [c.at - limited.at for c in slack.calls_to("chat.appendStream") if c.at > limited.at]
    assert later and min(later) >= 0.95


async def test_a_paused_append_method_does_not_hold_up_the_end_of_the_answer(slack, openai_fake):
    chunks = [f"tok{n} " for n in range(30)]
    openai_fake.enqueue(Text(chunks, delay=0.05))
    async with running_bot(slack, openai_fake) as bot:
        slack.fail_next("chat.appendStream", status=429, retry_after=60)
        event = message("D1", "U1", "go", channel_type="im")
        await bot.send(event)
        # Long before the minute's pause is over: the rest of the text rides on chat.stopStream.
        await answered(bot, slack, event, "tok29")
    assert whole_reply_text(slack, "D1", event["ts"]) == "".join(chunks)
    [limited] = [c for c in slack.calls_to("chat.appendStream") if c.error == "ratelimited"]
    assert not [c for c in slack.calls_to("chat.appendStream") if c.at > limited.at]  # none during the pause


async def test_model_text_cannot_ping_or_disguise_a_link_when_streamed(slack, openai_fake):
    hostile = (
        "Hey <!channel> and <@U999>, see [https://corp.example](https://evil.example) or <https://evil|https://corp>"
    )
    openai_fake.enqueue(Text.of(hostile, parts=7))
    async with running_bot(slack, openai_fake) as bot:
        event = mention("C1", "U1", "say hi")
        await bot.send(event)
        await answered(bot, slack, event, "corp>")
    sent = whole_reply_text(slack, "C1", event["ts"])
    assert sent.replace("\u200b", "") == hostile  # reads the same
    for trigger in ("<!channel>", "<@U999>", "](https://evil", "<https://evil|"):
        assert trigger not in sent


async def test_model_text_cannot_ping_or_disguise_a_link_when_edited(slack, openai_fake):
    hostile = "Hey <!here> <!subteam^S1|@ops> see [https://corp.example](https://evil.example) & more"
    openai_fake.enqueue(Text.of(hostile, parts=5))
    async with running_bot(slack, openai_fake, ASSIST_BOT_STREAM_MODE="edit") as bot:
        event = mention("C1", "U1", "say hi")
        await bot.send(event)
        await answered(bot, slack, event, "more")
    (reply,) = slack.thread_replies("C1", event["ts"])
    for text in [*reply.history, *(b["text"]["text"] for b in reply.blocks if b["type"] == "section")]:
        assert "<!" not in text and "|https://corp" not in text
    assert "&lt;!here&gt;" in reply.text and "https://corp.example (https://evil.example) &amp; more" in reply.text


async def test_a_refusal_after_expiry_continues_with_edits_without_repeating_text(slack, openai_fake):
    gate = asyncio.Event()
    chunks = [f"part{n} " for n in range(20)]
    openai_fake.enqueue(Text(chunks, gate=gate))
    async with running_bot(slack, openai_fake) as bot:
        event = mention("C1", "U1", "long answer")
        await bot.send(event)
        await wait_for(lambda: "part18" in whole_reply_text(slack, "C1", event["ts"]))
        slack.expire_streams()
        slack.fail_next("chat.startStream", error="not_allowed")
        gate.set()
        await answered(bot, slack, event, "part19")
    first, second = slack.thread_replies("C1", event["ts"])
    assert first.text + second.text == "".join(chunks).strip()  # the edit carries only the rest
    assert second.history[0] == texts.THINKING and second.blocks[-1]["type"] == "context_actions"


async def test_the_stop_carries_the_sources_under_the_streamed_answer(slack, openai_fake):
    url = "https://www.britannica.com/place/Mount-Columbia"
    text = f"The tallest is **Mount Columbia**. ([britannica.com]({url}))"
    citation = {"type": "url_citation", "start_index": 0, "end_index": len(text), "title": "Mount <!here> Columbia"}
    openai_fake.enqueue(Text.of(text, 4, tools=["web_search"], annotations=[{**citation, "url": url}]))
    async with running_bot(slack, openai_fake) as bot:
        event = mention("C1", "U1", "tallest mountain?")
        await bot.send(event)
        await answered(bot, slack, event, "Mount Columbia")
    [stop] = slack.calls_to("chat.stopStream")
    sources, actions = stop.args["blocks"]
    assert sources["type"] == "section"
    assert sources["text"]["text"] == f"*Sources*\n[1] <{url}|Mount &lt;!here&gt; Columbia>"
    assert actions["type"] == "context_actions"
    (reply,) = slack.thread_replies("C1", event["ts"])
    assert "](https://" not in reply.text and "britannica.com" in reply.text  # the link shows its target
