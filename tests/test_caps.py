"""Caps on what one thread may ask at once (issue 11, item 10), each reproducing the abuse
over the wire: a flood of messages in one thread, a flood of bytes, one huge message, and a
model asking for dozens of side-effect calls in one answer."""

from __future__ import annotations

import asyncio
import json

import pytest

from assist_bot.assistants import Assistant, Assistants
from assist_bot.store import ThreadKey
from tests.fakes.openai import Text, function_outputs, input_texts
from tests.fakes.slack import event_body, mention, message, wait_for
from tests.support.answers import answer_with_outputs
from tests.support.bot import running_bot, wait_pending
from tests.support.flows import approval_id, is_consent_prompt, reply_containing

pytestmark = pytest.mark.timeout(120)


def notices(slack):
    return slack.calls_to("chat.postEphemeral")


async def hold_first_answer(bot, openai_fake, send) -> dict:
    """A first mention whose answer streams until the returned gate opens."""
    gate = asyncio.Event()
    openai_fake.enqueue(Text(["first answer"], gate=gate))
    first = mention("C1", "U1", "start")
    await send(first)
    await wait_for(lambda: openai_fake.busy_conversations)
    first["gate"] = gate
    return first


# -- queued messages per thread ----------------------------------------------------------------
async def test_two_hundred_long_messages_in_one_thread_become_a_capped_turn(slack, openai_fake, clean_redis):
    # The attack: 200 × 3.9 KB follow-ups while an answer streams became one 800 KB request.
    # With the defaults (20 messages) the next turn takes 20; the other 180 authors are told.
    async with running_bot(slack, openai_fake, REDIS_URL=clean_redis) as bot:
        first = await hold_first_answer(bot, openai_fake, bot.send)
        flood = [message("C1", "U2", f"{n:03d} " + "x" * 3896, thread_ts=first["ts"]) for n in range(200)]
        for start in range(0, 200, 20):  # as fast as Slack would deliver them, 20 at a time
            statuses = await asyncio.gather(*(bot.send(event) for event in flood[start : start + 20]))
            assert set(statuses) == {200}  # acked: refusing is not an error Slack should retry
        await wait_pending(bot.bot.store, ThreadKey("T1", "C1", first["ts"]), 20)
        await wait_for(lambda: len(notices(slack)) == 180, seconds=60)
        first["gate"].set()
        [_, batched] = await openai_fake.wait_requests(2)
        await reply_containing(slack, "C1", first["ts"], "You said")
        # The thread takes messages again once its queue was answered.
        await bot.send(message("C1", "U3", "still there?", thread_ts=first["ts"]))
        await reply_containing(slack, "C1", first["ts"], "still there?")
    assert len(input_texts(batched)) == 20
    assert len(json.dumps(batched)) < 100_000  # was 800 KB
    taken = {text.split()[2] for text in input_texts(batched)}  # "[user-U2 (U2)] <text>"
    for call in notices(slack):
        assert (call.args["channel"], call.args["user"], call.args["thread_ts"]) == ("C1", "U2", first["ts"])
        assert "20 messages already wait for my next answer" in call.args["text"]
    refused = {call.args["text"] for call in notices(slack)}
    assert len(refused) == 1 and len(taken) == 20  # nothing of a refused message reached the model
    assert len(openai_fake.response_requests) == 3


# -- queued bytes per thread -------------------------------------------------------------------
async def test_queued_bytes_are_capped_over_socket_mode(slack, openai_fake):
    async with running_bot(slack, openai_fake, socket_mode=True, ASSIST_BOT_MAX_QUEUED_BYTES=10_000) as bot:
        await slack.wait_socket_connected()

        async def send(event: dict) -> None:
            await slack.wait_ack(await slack.push_socket_event(event_body(event)))

        first = await hold_first_answer(bot, openai_fake, send)
        long = [f"long {n} " + "y" * 3890 for n in range(3)]  # about 4 KB each as queued
        for text in [*long, "short one"]:
            await send(message("C1", "U2", text, thread_ts=first["ts"]))
        [note] = await wait_for(lambda: notices(slack))
        first["gate"].set()
        [_, batched] = await openai_fake.wait_requests(2)
    assert input_texts(batched) == [
        f"[user-U2 (U2)] {long[0]}",
        f"[user-U2 (U2)] {long[1]}",
        "[user-U2 (U2)] short one",
    ]
    assert "10 KB of messages already wait for my next answer" in note.args["text"]
    assert (note.args["user"], note.args["thread_ts"]) == ("U2", first["ts"])


# -- message size -----------------------------------------------------------------------------
async def test_a_message_over_the_size_cap_is_refused_once_and_nothing_is_stored(slack, openai_fake):
    huge = "z" * 16_001
    async with running_bot(slack, openai_fake) as bot:
        top = mention("C1", "U1", huge)
        assert await bot.send(top, event_id="EvHuge") == 200
        [note] = await wait_for(lambda: notices(slack))
        assert await bot.send(top, event_id="EvHuge", retry_num=1) == 200  # Slack's retry
        # Not half-stored: the thread it would have started is not the bot's.
        assert not await bot.bot.store.thread_known(ThreadKey("T1", "C1", top["ts"]))
        # In a thread the bot is part of, a mention arrives twice (app_mention and message).
        ok = mention("C1", "U1", "a" * 16_000)  # at the cap: taken
        await bot.send(ok)
        await wait_for(
            lambda: slack.thread_replies("C1", ok["ts"]) and "aaaa" in slack.thread_replies("C1", ok["ts"])[0].text
        )
        twin = mention("C1", "U1", huge, thread_ts=ok["ts"])
        await bot.send(twin)
        await bot.send(message("C1", "U1", twin["text"], ts=twin["ts"], thread_ts=ok["ts"]))
        await wait_for(lambda: len(notices(slack)) == 2)
        # Answered after the refusals: by now a second notice for either would have been posted.
        await bot.send(message("C1", "U1", "short", thread_ts=ok["ts"]))
        await reply_containing(slack, "C1", ok["ts"], "short")
    assert len(notices(slack)) == 2
    assert (note.args["channel"], note.args["user"], note.args.get("thread_ts")) == ("C1", "U1", None)
    assert "16,001 characters long and I take at most 16,000" in note.args["text"]
    assert notices(slack)[1].args["thread_ts"] == ok["ts"]  # a reply in a thread is told in the thread
    assert [len(input_texts(r)[0]) for r in openai_fake.response_requests] == [
        len("[user-U1 (U1)] ") + 16_000,
        len("[user-U1 (U1)] short"),
    ]
    assert not [m for m in slack.bot_messages("C1") if m.thread_ts == top["ts"]]  # no placeholder, no reply


async def test_the_note_waits_for_nothing_and_a_note_slack_refuses_changes_nothing(slack, openai_fake, caplog):
    async with running_bot(slack, openai_fake) as bot:
        slack.fail_next("chat.postEphemeral", error="user_not_in_channel")
        await bot.send(mention("C1", "U2", "z" * 20_000))
        await wait_for(lambda: notices(slack) and notices(slack)[0].error)
        held = slack.hold_next("chat.postEphemeral")
        # Acked while the note is still on its way: the ack path makes no Slack call.
        assert await asyncio.wait_for(bot.send(mention("C1", "U1", "z" * 20_000)), 10) == 200
        await wait_for(lambda: len(notices(slack)) == 2)
        held.set()
        after = mention("C1", "U2", "and now a short one")
        await bot.send(after)
        await reply_containing(slack, "C1", after["ts"], "short one")
    assert "could not tell U2 why their message was not taken: user_not_in_channel" in caplog.text
    assert len(openai_fake.response_requests) == 1


# -- side-effect calls per answer ----------------------------------------------------------------
def email(n: int) -> tuple[str, dict]:
    return ("send_email", {"to": f"p{n}@example.com", "subject": f"Hello {n}", "body": "Hi."})


def prompts(slack) -> list:
    """Consent prompts waiting for a click."""
    return [m for m in slack.bot_messages("C1") if is_consent_prompt(m)]


def prompts_posted(slack) -> int:
    """Consent prompts ever posted: chat.postMessage calls carrying Approve/Decline buttons."""
    return sum('"assist_approve"' in json.dumps(call.args.get("blocks")) for call in slack.calls_to("chat.postMessage"))


async def test_forty_emails_in_one_answer_ask_three_times_and_the_rest_are_refused(slack, openai_fake, mail_inbox):
    # The attack: the model asked for 40 send_email calls in one response, and 40 consent prompts
    # were posted. Now the first 3 (the default cap) are asked; the model hears why the rest were
    # not run — also when it asks again in the next round of the same answer.
    openai_fake.enqueue(
        Text([], calls=[email(n) for n in range(40)]),
        Text([], calls=[email(40)]),
        answer_with_outputs,
    )
    async with running_bot(slack, openai_fake, ASSIST_BOT_ADMINS="UADMIN") as bot:
        event = mention("C1", "U1", "email everyone")
        await bot.send(event)
        await wait_for(lambda: len(prompts(slack)) == 3)
        for ask in prompts(slack):
            await bot.click(slack, "assist_approve", approval_id(ask), user="UADMIN", channel="C1", message_ts=ask.ts)
        await reply_containing(slack, "C1", event["ts"], "Tools said")
    assert prompts_posted(slack) == 3
    assert sorted(rcpt for envelope in mail_inbox.envelopes for rcpt in envelope.rcpt_tos) == [
        "p0@example.com",
        "p1@example.com",
        "p2@example.com",
    ]
    first_round = list(function_outputs(openai_fake.response_requests[1]).values())
    refused = [o for o in first_round if "was not run: one answer may make at most 3 calls" in o]
    assert len(first_round) == 40 and len(refused) == 37
    assert all("tell the user which actions were not run" in o for o in refused)
    [again] = function_outputs(openai_fake.response_requests[2]).values()
    assert "was not run: one answer may make at most 3 calls" in again


async def test_the_side_effect_cap_counts_only_calls_that_would_ask_and_renews_with_each_answer(slack, openai_fake):
    acme = Assistants({"acme": Assistant(name="acme", model="gpt-5.4-mini", tools=("note_down", "partner"))}, "acme")
    calls = [
        ("partner", {}),
        ("note_down", {"wrong": 1}),  # invalid: never shown, so it uses no share of the cap
        ("note_down", {"text": "a"}),
        ("partner", {}),
        ("note_down", {"text": "b"}),
        ("note_down", {"text": "c"}),
    ]
    openai_fake.enqueue(Text([], calls=calls), answer_with_outputs)
    openai_fake.enqueue(Text([], calls=[("note_down", {"text": "d"})]), answer_with_outputs)
    async with running_bot(
        slack,
        openai_fake,
        assistants=acme,
        ASSIST_BOT_TOOL_MODULES="tests.support.acme_tools",
        ASSIST_BOT_MAX_SIDE_EFFECT_CALLS=2,
    ) as bot:

        async def approve_all(expected: int) -> None:
            await wait_for(lambda: prompts_posted(slack) == expected)
            for ask in prompts(slack):
                await bot.click(slack, "assist_approve", approval_id(ask), user="U1", channel="C1", message_ts=ask.ts)

        event = mention("C1", "U1", "note a, b and c")
        await bot.send(event)
        await approve_all(2)
        await reply_containing(slack, "C1", event["ts"], "Tools said")
        # The next answer has its own share.
        await bot.send(message("C1", "U1", "and d", thread_ts=event["ts"]))
        await approve_all(3)
        await wait_for(lambda: len(openai_fake.response_requests) == 4)
    outputs = list(function_outputs(openai_fake.response_requests[1]).values())
    assert outputs[0] == outputs[3] == "partner here"
    assert outputs[1].startswith("Error: invalid arguments")
    assert (outputs[2], outputs[4]) == ("noted: a", "noted: b")
    assert "was not run: one answer may make at most 2 calls" in outputs[5]
    assert list(function_outputs(openai_fake.response_requests[3]).values()) == ["noted: d"]
