"""The bot on a real redis-server (state survives a restart, replicas share it)
and over Socket Mode (a real WebSocket), end to end."""

from __future__ import annotations

import pytest

from tests.fakes.openai import Text, input_texts
from tests.fakes.slack import event_body, mention, message, wait_for
from tests.support.bot import running_bot
from tests.support.flows import reply_containing
from tests.support.replicas import retry_and_follow_ups_on_two_replicas

pytestmark = pytest.mark.timeout(60)


async def test_a_restart_between_messages_keeps_the_thread_conversation(slack, openai_fake, clean_redis):
    first = mention("C1", "U1", "before the restart")
    async with running_bot(slack, openai_fake, REDIS_URL=clean_redis) as bot:
        await bot.send(first)
        await reply_containing(slack, "C1", first["ts"], "before the restart")
    async with running_bot(slack, openai_fake, REDIS_URL=clean_redis) as bot:
        # A follow-up without a mention: the new process knows the thread from Redis.
        await bot.send(message("C1", "U1", "after the restart", thread_ts=first["ts"]))
        await reply_containing(slack, "C1", first["ts"], "after the restart")
    convs = [r["conversation"] for r in openai_fake.response_requests]
    assert len(convs) == 2 and convs[0] == convs[1]
    assert len(openai_fake.conversations) == 1


async def test_two_replicas_answer_a_retry_once_and_share_the_thread_queue(slack, openai_fake, clean_redis):
    await retry_and_follow_ups_on_two_replicas(slack, openai_fake, clean_redis, "replicated")
    assert len(openai_fake.response_requests) == 2
    assert input_texts(openai_fake.response_requests[1]) == [
        "[user-U2 (U2)] queued on one",
        "[user-U3 (U3)] queued on two",
    ]
    assert openai_fake.locked_rejections == 0


async def test_socket_mode_end_to_end(slack, openai_fake):
    openai_fake.enqueue(Text(["Hello ", "over ", "the socket"], delay=0.05))
    async with running_bot(slack, openai_fake, socket_mode=True):
        await slack.wait_socket_connected()
        assert slack.calls_to("apps.connections.open")[0].token == slack.app_token
        event = mention("C9", "U1", "via socket")
        envelope = await slack.push_socket_event(event_body(event))
        await slack.wait_ack(envelope)
        await wait_for(lambda: any(r.text == "Hello over the socket" for r in slack.thread_replies("C9", event["ts"])))
        # Events we ignore are acknowledged too, or Slack would redeliver them.
        edit = await slack.push_socket_event(event_body(message("C9", None, "", subtype="message_changed")))
        await slack.wait_ack(edit)
        started = await slack.push_socket_event(
            event_body(
                {
                    "type": "assistant_thread_started",
                    "assistant_thread": {"user_id": "U1", "channel_id": "D1", "thread_ts": "1.1", "context": {}},
                    "event_ts": "1.2",
                }
            )
        )
        await slack.wait_ack(started)
    assert len(openai_fake.response_requests) == 1


async def test_replicas_split_each_workspaces_edit_budget(slack, openai_fake, clean_redis):
    async with running_bot(slack, openai_fake, REDIS_URL=clean_redis, ASSIST_BOT_SLACK_UPDATES_PER_MINUTE=50) as one:
        assert one.bot.pacer.per_minute == 50
        async with running_bot(
            slack, openai_fake, REDIS_URL=clean_redis, ASSIST_BOT_SLACK_UPDATES_PER_MINUTE=50
        ) as two:
            assert two.bot.pacer.per_minute == 25
            await one.bot._beat()  # its next heartbeat sees the second replica
            assert one.bot.pacer.per_minute == 25


async def test_a_replayed_slash_command_runs_once_across_replicas(slack, openai_fake, clean_redis):
    form = {
        "team_id": "T1",
        "channel_id": "C1",
        "user_id": "U1",
        "command": "/assist",
        "text": "status",
        "response_url": slack.response_url(),
        "trigger_id": "13345224609.738474920.8088930838d88f008e0",
    }
    async with (
        running_bot(slack, openai_fake, REDIS_URL=clean_redis) as one,
        running_bot(slack, openai_fake, REDIS_URL=clean_redis) as two,
    ):
        # The same signed request, replayed to the other replica: the trigger_id is claimed in Redis.
        for bot in (one, two, two):
            assert await bot.post_form(form) == 200
        await wait_for(lambda: slack.responses)
        await wait_for(lambda: one.bot.dispatcher.in_flight == 0 and two.bot.dispatcher.in_flight == 0)
    assert len(slack.responses) == 1
