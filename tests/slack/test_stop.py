"""`stop` in the thread cancels the answer streaming there: only the asker or an admin may,
the message says who stopped it, and the next message is answered normally."""

from __future__ import annotations

import asyncio

import pytest

from assist_bot import texts
from assist_bot.assistants import Assistant, Assistants
from assist_bot.slack import stop
from tests.fakes.openai import Text
from tests.fakes.slack import mention, message, wait_for
from tests.slack import stop_tools
from tests.support.bot import block_actions, running_bot
from tests.support.flows import reply_containing, whole_reply_text

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("mode", ["native", "edit"])
async def test_the_asker_stops_an_answer_and_the_thread_goes_on(slack, openai_fake, mode):
    never = asyncio.Event()  # the model would go on for ever
    openai_fake.enqueue(Text(["Once ", "upon ", "a time"], gate=never))
    async with running_bot(slack, openai_fake, ASSIST_BOT_STREAM_MODE=mode, ASSIST_BOT_ADMINS="UADMIN") as bot:
        event = mention("C1", "U1", "tell me a long story")
        await bot.send(event)
        await wait_for(lambda: "upon" in whole_reply_text(slack, "C1", event["ts"]))
        await bot.send(message("C1", "U2", "stop", thread_ts=event["ts"]))  # not theirs to stop: told so
        await wait_for(lambda: ephemerals(slack, "U2") == ["Only <@U1> or an admin can stop this answer."])
        assert texts.failure("stopped:U2") not in whole_reply_text(slack, "C1", event["ts"])
        await bot.send(message("C1", "U1", "Stop", thread_ts=event["ts"]))
        await wait_for(lambda: texts.failure("stopped:U1") in whole_reply_text(slack, "C1", event["ts"]), seconds=5)
        await bot.settled()
        assert len(openai_fake.response_requests) == 1  # the stop was not asked as a question
        await bot.send(message("C1", "U1", "a short one then", thread_ts=event["ts"]))
        await reply_containing(slack, "C1", event["ts"], "You said: [user-U1 (U1)] a short one then")
    assert "Once upon" in whole_reply_text(slack, "C1", event["ts"])  # what was said stays


async def test_an_admin_may_stop_anyones_answer(slack, openai_fake):
    never = asyncio.Event()
    openai_fake.enqueue(Text(["Going ", "on"], gate=never))
    async with running_bot(slack, openai_fake, ASSIST_BOT_ADMINS="UADMIN") as bot:
        event = mention("C1", "U1", "go on")
        await bot.send(event)
        await wait_for(lambda: "Going" in whole_reply_text(slack, "C1", event["ts"]))
        await bot.send(message("C1", "UADMIN", "stop", thread_ts=event["ts"]))
        await wait_for(lambda: texts.failure("stopped:UADMIN") in whole_reply_text(slack, "C1", event["ts"]), seconds=5)


def stop_click(slack, *, user: str, channel: str, message_ts: str, thread_ts: str, value: str) -> dict:
    """A click on the Stop button of a streamed answer in a thread."""
    action = {"type": "button", "action_id": stop.ACTION, "block_id": f"{stop.ACTION}:{value}", "value": value}
    return block_actions(slack, action, user=user, channel=channel, message_ts=message_ts, thread_ts=thread_ts)


def stop_button(slack, channel: str):
    """The streamed answer and the Stop button its first chunk carried."""
    (answer,) = [m for m in slack.bot_messages(channel) if m.chunks]
    blocks = [c for c in answer.chunks if c["type"] == "blocks"]
    assert answer.chunks[0] is blocks[0]  # the button heads the answer
    [[actions]] = [c["blocks"] for c in blocks]
    return answer, actions["elements"][0]


def ephemerals(slack, user: str) -> list[str]:
    return [c.args["text"] for c in slack.calls_to("chat.postEphemeral") if c.args["user"] == user]


async def test_the_stop_button_stops_a_streaming_answer_for_the_asker_only(slack, openai_fake):
    never = asyncio.Event()
    openai_fake.enqueue(Text(["Once ", "upon ", "a time"], gate=never))
    async with running_bot(slack, openai_fake, ASSIST_BOT_ADMINS="UADMIN") as bot:
        event = mention("C1", "U1", "tell me a long story")
        await bot.send(event)
        await wait_for(lambda: "upon" in whole_reply_text(slack, "C1", event["ts"]))
        answer, button = stop_button(slack, "C1")
        assert button["action_id"] == stop.ACTION and button["value"] == event["ts"]

        async def click(user: str) -> None:
            payload = stop_click(
                slack, user=user, channel="C1", message_ts=answer.ts, thread_ts=event["ts"], value=button["value"]
            )
            status, _ = await bot.post_payload(payload)
            assert status == 200

        await click("U2")  # not theirs to stop: told so, privately
        await wait_for(lambda: ephemerals(slack, "U2") == ["Only <@U1> or an admin can stop this answer."])
        assert bot.bot.dispatcher.in_flight == 1 and texts.failure("stopped:U2") not in answer.text
        await click("U1")
        await wait_for(lambda: texts.failure("stopped:U1") in answer.text, seconds=5)
        await bot.settled()
        assert not answer.streaming and ephemerals(slack, "U1") == []
        await click("U1")  # the answer has ended: the button says so
        await wait_for(lambda: ephemerals(slack, "U1") == [texts.STOP_FINISHED])
        await bot.send(message("C1", "U1", "a short one then", thread_ts=event["ts"]))
        await reply_containing(slack, "C1", event["ts"], "You said: [user-U1 (U1)] a short one then")
    assert len(openai_fake.response_requests) == 2


async def test_the_stop_button_cancels_the_tool_loop(slack, openai_fake):
    # The model calls a tool that would wait for a minute: only the stop can end it sooner.
    stop_tools.started.clear()
    stop_tools.cancelled.clear()
    openai_fake.enqueue(Text(["Let me check. "], calls=[("wait_forever", {})]))
    async with running_bot(
        slack,
        openai_fake,
        assistants=Assistants({"acme": Assistant(name="acme", model="m", tools=("wait_forever",))}, "acme"),
        ASSIST_BOT_TOOL_MODULES="tests.slack.stop_tools",
    ) as bot:
        event = mention("C1", "U1", "check something")
        await bot.send(event)

        def tool_called():
            return any(c["type"] == "task_update" for m in slack.bot_messages("C1") for c in m.chunks)

        await wait_for(tool_called)  # the model asked for the tool (a step in the answer)…
        await wait_for(stop_tools.started.is_set)  # …which runs now, waiting
        assert bot.bot.dispatcher.in_flight == 1 and len(openai_fake.response_requests) == 1
        answer, button = stop_button(slack, "C1")
        payload = stop_click(
            slack, user="U1", channel="C1", message_ts=answer.ts, thread_ts=event["ts"], value=button["value"]
        )
        status, _ = await bot.post_payload(payload)
        assert status == 200
        await wait_for(lambda: texts.failure("stopped:U1") in answer.text, seconds=5)
        await bot.settled()
        assert stop_tools.cancelled.is_set()  # the tool itself was cancelled, not left running
    assert len(openai_fake.response_requests) == 1  # the tool's output never went back to the model


async def test_a_workspace_that_refuses_the_button_still_gets_a_streamed_answer(slack, openai_fake):
    slack.fail_next("chat.startStream", error="invalid_chunks")  # no `blocks` chunks there yet
    never = asyncio.Event()
    openai_fake.enqueue(Text(["Still ", "streaming ", "here"], gate=never))
    async with running_bot(slack, openai_fake) as bot:
        event = mention("C1", "U1", "go")
        await bot.send(event)
        await wait_for(lambda: "streaming" in whole_reply_text(slack, "C1", event["ts"]))
        first, second = slack.calls_to("chat.startStream")
        assert first.error == "invalid_chunks" and second.error is None
        assert [c["type"] for c in first.args["chunks"]][0] == "blocks"
        assert all(c["type"] != "blocks" for c in second.args["chunks"])  # the same text, without the button
        assert slack.calls_to("chat.update") == []  # still native streaming, not edits
        await bot.send(message("C1", "U1", "stop", thread_ts=event["ts"]))  # `stop` still works
        await wait_for(lambda: texts.failure("stopped:U1") in whole_reply_text(slack, "C1", event["ts"]), seconds=5)


@pytest.mark.parametrize("way", ["button", "reply"])
async def test_a_stop_reaches_the_replica_running_the_answer(slack, openai_fake, clean_redis, way):
    never = asyncio.Event()
    openai_fake.enqueue(Text(["Far ", "far ", "away"], gate=never))
    async with (
        running_bot(slack, openai_fake, REDIS_URL=clean_redis) as one,
        running_bot(slack, openai_fake, REDIS_URL=clean_redis) as two,
    ):
        event = mention("C1", "U1", "a long story")
        await one.send(event)  # one takes the thread: the answer streams there
        await wait_for(lambda: "far" in whole_reply_text(slack, "C1", event["ts"]))
        assert one.bot.dispatcher.in_flight == 1 and two.bot.dispatcher.in_flight == 0
        answer, button = stop_button(slack, "C1")
        for user in ("U2", "U1"):  # both reach the other replica
            if way == "button":
                payload = stop_click(
                    slack, user=user, channel="C1", message_ts=answer.ts, thread_ts=event["ts"], value=button["value"]
                )
                status, _ = await two.post_payload(payload)
                assert status == 200
            else:
                await two.send(message("C1", user, "stop", thread_ts=event["ts"]))
            if user == "U2":
                await asyncio.sleep(0.3)
                assert one.bot.dispatcher.in_flight == 1  # not theirs to stop
        await wait_for(lambda: texts.failure("stopped:U1") in answer.text, seconds=5)
        await one.settled()
        assert texts.failure("stopped:U2") not in answer.text
        assert ephemerals(slack, "U2") == ["Only <@U1> or an admin can stop this answer."]
        await two.send(message("C1", "U1", "and now?", thread_ts=event["ts"]))
        await reply_containing(slack, "C1", event["ts"], "You said: [user-U1 (U1)] and now?")
    assert len(openai_fake.response_requests) == 2
