"""Function tools end to end: the tool loop on the conversation, consent for
side effects through Slack buttons, authorization, and the weather from a fake
Open-Meteo — over the real wire."""

from __future__ import annotations

import json
from email import message_from_bytes
from email.policy import default as default_policy

import pytest

from assist_bot import texts
from assist_bot.assistants import Assistant, Assistants
from tests.fakes.openai import Text, function_outputs
from tests.fakes.slack import mention, message, wait_for
from tests.fakes.smtp import smtp_server
from tests.support.bot import running_bot
from tests.support.modes import every_state_mode

pytestmark = pytest.mark.timeout(60)

ACME = "tests.support.acme_tools"


def acme_assistants(*tools: str) -> Assistants:
    return Assistants({"acme": Assistant(name="acme", model="gpt-5.4-mini", tools=tools)}, "acme")


def replies_in(slack, channel, thread_ts):
    return [m for m in slack.bot_messages(channel) if m.thread_ts == thread_ts]


def answer_with_outputs(body: dict) -> Text:
    """The model's second round: it repeats what the tools returned."""
    return Text.of("Tools said: " + json.dumps(sorted(function_outputs(body).values())))


@every_state_mode
async def test_weather_question_runs_get_weather_and_answers_from_open_meteo(slack, openai_fake, meteo):
    openai_fake.enqueue(Text([], calls=[("get_weather", {"city": "Paris", "unit": "celsius"})]), answer_with_outputs)
    async with running_bot(
        slack, openai_fake, OPEN_METEO_GEOCODING_URL=meteo.geocoding_url, OPEN_METEO_FORECAST_URL=meteo.forecast_url
    ) as bot:
        event = mention("C1", "U1", "What's the weather in Paris?")
        await bot.send(event)
        await wait_for(lambda: any("Tools said" in m.text for m in replies_in(slack, "C1", event["ts"])))
    first, second = openai_fake.response_requests
    offered = {t["name"]: t for t in first["tools"] if t["type"] == "function"}
    assert set(offered) == {"get_weather", "send_email"}
    assert offered["get_weather"]["strict"] is True
    assert offered["get_weather"]["parameters"]["additionalProperties"] is False
    assert "get_weather" in openai_fake.seen_texts(1)  # the second round sees the call it answers
    [output] = function_outputs(second).values()
    assert json.loads(output)["temperature"] == 20.2 and json.loads(output)["place"] == "Paris"
    assert meteo.geocoding[0]["name"] == "Paris" and meteo.forecast[0]["temperature_unit"] == "celsius"
    reply = replies_in(slack, "C1", event["ts"])[0]
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
    async with running_bot(
        slack,
        openai_fake,
        assistants=acme_assistants("wait_for_partner", "partner", "broken", "sleepy"),
        ASSIST_BOT_TOOL_MODULES=ACME,
    ) as bot:
        event = mention("C1", "U1", "do everything")
        await bot.send(event)
        await wait_for(lambda: any("Tools said" in m.text for m in replies_in(slack, "C1", event["ts"])))
    outputs = sorted(function_outputs(openai_fake.response_requests[1]).values())
    assert "met partner (x)" in outputs and "partner here" in outputs  # ran side by side
    assert any(o.startswith("Error:") and "broken on purpose: test" in o for o in outputs)
    assert any(o.startswith("Error:") and "did not finish" in o for o in outputs)
    assert any("no_such_tool is not available" in o for o in outputs)
    reply = replies_in(slack, "C1", event["ts"])[0]
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
        await wait_for(
            lambda: any(texts.failure("tool_rounds") in m.text for m in replies_in(slack, "C1", event["ts"]))
        )
    assert len(openai_fake.response_requests) == 3


async def test_a_tool_the_user_may_not_use_is_not_offered(slack, openai_fake):
    async with running_bot(
        slack, openai_fake, assistants=acme_assistants("vip_only", "partner"), ASSIST_BOT_TOOL_MODULES=ACME
    ) as bot:
        for user in ("U1", "UVIP"):
            event = mention("C1", user, f"hello from {user}")
            await bot.send(event)
            await wait_for(lambda: any(f"hello from {user}" in m.text for m in replies_in(slack, "C1", event["ts"])))
    offered = [{t["name"] for t in r["tools"]} for r in openai_fake.response_requests]
    assert offered == [{"partner"}, {"partner", "vip_only"}]


async def approval_message(slack, channel, thread_ts=None):
    def find():
        return next(
            (
                m
                for m in slack.bot_messages(channel)
                if m.blocks
                and any(b.get("type") == "actions" for b in m.blocks)
                and (thread_ts is None or m.thread_ts == thread_ts)
            ),
            None,
        )

    return await wait_for(find)


def approval_id(msg) -> str:
    actions = next(b for b in msg.blocks if b["type"] == "actions")
    return actions["elements"][0]["value"]


@pytest.fixture
async def smtp():
    async with smtp_server() as server:
        yield server


def smtp_settings(smtp):
    controller, _ = smtp
    return {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": controller.port,
        "SMTP_FROM": "bot@example.com",
        "SMTP_STARTTLS": False,
    }


EMAIL = {"to": "ana@example.com", "subject": "Summary", "body": "Here is the summary of the thread."}


@every_state_mode
async def test_send_email_asks_first_and_only_the_requester_can_approve(slack, openai_fake, smtp):
    openai_fake.enqueue(Text([], calls=[("send_email", EMAIL)]), answer_with_outputs)
    async with running_bot(slack, openai_fake, **smtp_settings(smtp)) as bot:
        event = mention("C1", "U1", "email the summary to ana@example.com")
        await bot.send(event)
        ask = await approval_message(slack, "C1", event["ts"])
        assert "ana@example.com" in json.dumps(ask.blocks) and "Here is the summary" in json.dumps(ask.blocks)
        assert smtp[1].envelopes == []  # nothing sent before approval
        await bot.click(slack, "assist_approve", approval_id(ask), user="U2", channel="C1", message_ts=ask.ts)
        await wait_for(lambda: slack.calls_to("chat.postEphemeral"))
        assert "Only <@U1>" in slack.calls_to("chat.postEphemeral")[0].args["text"]
        await bot.click(slack, "assist_approve", approval_id(ask), user="U1", channel="C1", message_ts=ask.ts)
        await wait_for(lambda: any("Tools said" in m.text for m in replies_in(slack, "C1", event["ts"])))
    [envelope] = smtp[1].envelopes
    mail = message_from_bytes(envelope.content, policy=default_policy)
    assert envelope.rcpt_tos == ["ana@example.com"]
    assert (mail["To"], mail["Subject"]) == ("ana@example.com", "Summary")
    assert mail.get_content().strip() == EMAIL["body"]
    assert function_outputs(openai_fake.response_requests[1]) and "Sent to ana@example.com" in json.dumps(
        function_outputs(openai_fake.response_requests[1])
    )
    settled = next(m for m in slack.bot_messages("C1") if m.ts == ask.ts)
    assert "approved by <@U1>" in settled.text and not any(b["type"] == "actions" for b in settled.blocks)


@every_state_mode
async def test_a_declined_email_is_not_sent_and_the_model_is_told(slack, openai_fake, smtp):
    openai_fake.enqueue(Text([], calls=[("send_email", EMAIL)]), answer_with_outputs)
    async with running_bot(slack, openai_fake, **smtp_settings(smtp), ASSIST_BOT_ADMINS="UADMIN") as bot:
        event = mention("C1", "U1", "email it")
        await bot.send(event)
        ask = await approval_message(slack, "C1", event["ts"])
        await bot.click(slack, "assist_decline", approval_id(ask), user="UADMIN", channel="C1", message_ts=ask.ts)
        await wait_for(lambda: any("Tools said" in m.text for m in replies_in(slack, "C1", event["ts"])))
    assert smtp[1].envelopes == []
    [output] = function_outputs(openai_fake.response_requests[1]).values()
    assert "declined" in output and "<@UADMIN>" in output
    settled = next(m for m in slack.bot_messages("C1") if m.ts == ask.ts)
    assert "declined by <@UADMIN>" in settled.text


async def test_no_answer_in_time_counts_as_declined(slack, openai_fake, smtp):
    openai_fake.enqueue(Text([], calls=[("send_email", EMAIL)]), answer_with_outputs)
    async with running_bot(slack, openai_fake, **smtp_settings(smtp), ASSIST_BOT_APPROVAL_TIMEOUT=0.5) as bot:
        event = mention("C1", "U1", "email it")
        await bot.send(event)
        await wait_for(lambda: any("Tools said" in m.text for m in replies_in(slack, "C1", event["ts"])))
    assert smtp[1].envelopes == []
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
        await wait_for(lambda: any("Tools said" in m.text for m in replies_in(slack, "C1", event["ts"])))
        await bot.send(message("C1", "U1", "and then?", thread_ts=event["ts"]))
        await wait_for(lambda: any("and then?" in m.text for m in replies_in(slack, "C1", event["ts"])))
    assert "partner here" in openai_fake.seen_texts(2)  # the next turn sees the tool's output
