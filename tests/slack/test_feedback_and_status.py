"""👍/👎 on answers (stored, thanked privately, counted by /assist feedback) and the thread status
(loading messages while waiting, refreshed before Slack drops it, cleared at the end)."""

from __future__ import annotations

import asyncio

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from assist_bot import texts
from assist_bot.slack import feedback
from assist_bot.slack.calls import RateGate, SlackCalls
from assist_bot.slack.status import REFRESH_SECONDS, ThreadStatus
from tests.fakes.openai import Text
from tests.fakes.slack import mention, wait_for
from tests.support.bot import block_actions, running_bot
from tests.support.waits import ControlledDeadlines

pytestmark = pytest.mark.timeout(60)


def feedback_click(slack, *, user: str, channel: str, message_ts: str, thread_ts: str, value: str) -> dict:
    """A click on Slack's feedback_buttons element under an answer in a thread."""
    action = {"type": "feedback_buttons", "action_id": feedback.ACTION, "block_id": "fb", "value": value}
    return block_actions(slack, action, user=user, channel=channel, message_ts=message_ts, thread_ts=thread_ts)


@pytest.mark.parametrize("mode", ["native", "edit"])
async def test_feedback_is_stored_thanked_privately_and_counted(slack, openai_fake, mode):
    openai_fake.default = lambda body: Text(["An ", "answer."])
    async with running_bot(slack, openai_fake, ASSIST_BOT_STREAM_MODE=mode, ASSIST_BOT_ADMINS="UADMIN") as bot:
        event = mention("C1", "U1", "question")
        await bot.send(event)
        await wait_for(lambda: any(m.blocks for m in slack.bot_messages("C1")))
        await bot.settled()
        answer = next(m for m in slack.bot_messages("C1") if m.blocks)
        buttons = answer.blocks[-1]["elements"][0]
        good, bad = buttons["positive_button"]["value"], buttons["negative_button"]["value"]
        [response_id] = [rid for rid, obj in openai_fake.responses.items() if obj.get("status") == "completed"]
        assert good == f"good:{response_id}" and bad == f"bad:{response_id}"
        for user, value in (("U1", bad), ("U1", good), ("U2", bad)):  # U1 changes their mind
            click = feedback_click(
                slack, user=user, channel="C1", message_ts=answer.ts, thread_ts=event["ts"], value=value
            )
            status, _ = await bot.post_payload(click)
            assert status == 200
        await wait_for(lambda: len(slack.calls_to("chat.postEphemeral")) == 3)
        records = await bot.bot.store.feedback("T1")
        assert sorted((r["user"], r["value"]) for r in records) == [("U1", "good"), ("U2", "bad")]
        assert all(
            r["channel"] == "C1"
            and r["thread_ts"] == event["ts"]
            and r["response"] == response_id
            and r["assistant"] == "default"
            for r in records
        )
        thanks = slack.calls_to("chat.postEphemeral")
        assert [c.args["user"] for c in thanks] == ["U1", "U1", "U2"]  # each to the clicker alone
        assert thanks[1].args["text"] == feedback.THANKS["good"]
        await bot.command(slack, "/assist", "feedback", user="U1")
        await bot.command(slack, "/assist", "feedback", user="UADMIN", channel="C1")
        await wait_for(lambda: len(slack.responses) == 2)
    by_user = sorted(slack.responses, key=lambda r: "Per assistant" in r["text"])
    assert "👍 1 · 👎 1" in by_user[0]["text"] and "Per assistant" not in by_user[0]["text"]
    assert "*default*: 👍 1 · 👎 1" in by_user[1]["text"]
    assert all(r["response_type"] == "ephemeral" for r in slack.responses)


async def test_without_configured_admins_a_workspace_admin_sees_feedback_per_assistant(slack, openai_fake):
    slack.users["UBOSS"] = {"is_admin": True}  # no ASSIST_BOT_ADMINS: the workspace's admins, as for /assist use
    async with running_bot(slack, openai_fake) as bot:
        await bot.command(slack, "/assist", "feedback", user="UBOSS", channel="C1")
        await bot.command(slack, "/assist", "feedback", user="U2", channel="C1")
        await wait_for(lambda: len(slack.responses) == 2)
    by_user = sorted(slack.responses, key=lambda r: "Per assistant" in r["text"])
    assert "Per assistant" not in by_user[0]["text"]  # a member: this channel only
    assert "Per assistant" in by_user[1]["text"]


async def test_status_is_refreshed_before_slack_drops_it_and_cleared(slack):
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    refreshes = ControlledDeadlines()  # each refresh comes when the test says, not after 90 s
    status = ThreadStatus(
        client, SlackCalls(RateGate()), team="T1", channel="C1", thread_ts="1.000100", deadline=refreshes
    )
    status.thinking()
    for sent_so_far in (1, 2, 3):
        await wait_for(lambda n=sent_so_far: len(slack.statuses("C1", "1.000100")) == len(refreshes.asked) == n)
        assert refreshes.asked[-1] == REFRESH_SECONDS < 120  # before Slack drops it (two minutes)
        if sent_so_far < 3:
            refreshes.expire()
    assert len({s["status"] for s in slack.statuses("C1", "1.000100")}) == 1  # re-sent, unchanged
    status.show(texts.tool_activity("web_search"))
    await wait_for(lambda: slack.statuses("C1", "1.000100")[-1]["status"] == texts.tool_activity("web_search"))
    await status.clear()
    sent = slack.statuses("C1", "1.000100")
    assert sent[0]["status"] == texts.THINKING_STATUS and len(sent[0]["loading_messages"]) <= 10
    assert sent[-1]["status"] == ""
    # nothing after the clear: the task that refreshes it is gone
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "status 1.000100" and not t.done()]


class _DeafOnce(AsyncWebClient):
    """A client whose first call hangs and ignores being cancelled once (as a library stuck
    under us might); later calls go to the fake Slack as usual."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.stuck = asyncio.Event()
        self.release = asyncio.Event()

    async def api_call(self, *args, **kwargs):
        if not self.stuck.is_set():
            self.stuck.set()
            try:
                await self.release.wait()
            except asyncio.CancelledError:
                await self.release.wait()  # deaf to the first cancellation
            raise asyncio.CancelledError
        return await super().api_call(*args, **kwargs)


async def test_a_status_refresher_that_will_not_stop_does_not_hold_up_the_end_of_the_reply(slack):
    client = _DeafOnce(token=slack.bot_token, base_url=slack.api_url)
    status = ThreadStatus(client, SlackCalls(RateGate()), team="T1", channel="C1", thread_ts="1.000200")
    status.thinking()
    await asyncio.wait_for(client.stuck.wait(), timeout=5)
    clearing = asyncio.create_task(status.clear())
    try:
        # Not wait_for: cancelling clear() on time-out could itself be what lets it return.
        done, _ = await asyncio.wait({clearing}, timeout=10)
        assert clearing in done  # the reply's end came although the refresher has not stopped
        assert slack.statuses("C1", "1.000200")[-1]["status"] == ""  # and the status is cleared
    finally:
        client.release.set()  # the stuck refresher, and the clear if it waits for it, end with the test
        await asyncio.wait({clearing}, timeout=5)


async def test_the_status_shows_in_channels_while_waiting_for_the_first_token(slack, openai_fake):
    gate = asyncio.Event()
    openai_fake.enqueue(Text(["late ", "answer"], gate=gate))
    async with running_bot(slack, openai_fake) as bot:
        event = mention("C7", "U1", "question")
        await bot.send(event)
        await wait_for(lambda: slack.statuses("C7", event["ts"]))
        assert slack.statuses("C7", event["ts"])[0]["status"] == texts.THINKING_STATUS
        gate.set()
        await bot.settled()
    assert slack.statuses("C7", event["ts"])[-1]["status"] == ""
